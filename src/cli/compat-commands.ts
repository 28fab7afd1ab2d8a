import { parseArgs } from 'node:util';
import { buildBase } from '../base/build-base.ts';
import { parseProvidedRuntime } from '../base/runtime.ts';
import { recordAndUpdate, withCatalog } from '../compat/catalog.ts';
import { updateIndex } from '../compat/index-update.ts';
import { resolveModel } from '../compat/resolve.ts';
import { parseReference, type Reference } from '../oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import type { CliIo } from './main.ts';
import { REGISTRY_FLAGS, REGISTRY_HELP, registryOptions } from './registry-flags.ts';

export const BASE_BUILD_HELP = `Usage: model-oci base build <context> --image REGISTRY/REPO:TAG [options]

Builds the runtime base image when its inputs changed — the Dockerfile, the context files not in
.dockerignore, build args, target, platform, and the digest of every FROM image — and pushes it with
zstd layers; otherwise reports "skipped". A changed upstream image (a security patch) rebuilds.

Options:
  --image REF            where to push (required)
  --file FILE            the Dockerfile or Containerfile (default: the one in the context)
  --build-arg KEY=VALUE  (repeatable)
  --target STAGE         the stage to build
  --platform OS/ARCH     e.g. linux/amd64
  --builder auto|buildx|buildah
  --runtime "NAME VERSION"  the runtime the image provides (else its io.model-oci.runtime.* labels)
  --force                rebuild (pulling the FROM images, no cache) even when nothing changed
  --index REF            record the image in this compatibility index
  --json                 print the result as JSON
${REGISTRY_HELP}`;

export const INDEX_HELP = `Usage:
  model-oci index record --index REGISTRY/CATALOG:TAG --from REGISTRY/REPO[:TAG|@DIGEST]
  model-oci index update --index REGISTRY/CATALOG:TAG
  model-oci resolve --index REGISTRY/CATALOG:TAG --model NAME [--runtime "NAME RANGE"] [--json]

record copies a model artifact or base image into the catalog repository (blobs mounted) and
updates the index; update rebuilds the index from the catalog; resolve prints the model artifact
and the newest compatible base image, from one read of the index (docs/compat-index.md).
${REGISTRY_HELP}`;

function reference(flag: string, text: string | undefined): Reference {
  if (!text) throw new UserError(`${flag} is required`);
  try {
    return parseReference(text);
  } catch (err) {
    throw new UserError(`${flag}: ${(err as Error).message}`);
  }
}

/** The catalog the `--index` flag names; see withCatalog. */
function withIndex<T>(
  indexRef: string | undefined,
  registry: RegistryOptions,
  work: (catalog: RegistryTarget, tag: string) => Promise<T>,
): Promise<T> {
  if (!indexRef) throw new UserError('--index is required');
  return withCatalog(indexRef, registry, '--index', work);
}

export async function baseBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      image: { type: 'string' },
      file: { type: 'string' },
      'build-arg': { type: 'string', multiple: true, default: [] },
      target: { type: 'string' },
      platform: { type: 'string' },
      builder: { type: 'string', default: 'auto' },
      runtime: { type: 'string' },
      force: { type: 'boolean', default: false },
      index: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
    },
  });
  if (positionals.length !== 1)
    throw new UserError('expected the build context directory (model-oci base build <context>)');
  const image = reference('--image', values.image);
  const builder = values.builder;
  if (builder !== 'auto' && builder !== 'buildx' && builder !== 'buildah')
    throw new UserError(`--builder must be auto, buildx or buildah, not ${JSON.stringify(builder)}`);
  const buildArgs: Record<string, string> = {};
  for (const arg of values['build-arg']) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new UserError(`--build-arg ${JSON.stringify(arg)}: expected KEY=VALUE`);
    buildArgs[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  const registry = await registryOptions(values, io);
  const result = await buildBase({
    context: positionals[0]!,
    ...(values.file ? { dockerfile: values.file } : {}),
    image: values.image!,
    buildArgs,
    ...(values.target ? { target: values.target } : {}),
    ...(values.platform ? { platform: values.platform } : {}),
    builder,
    force: values.force,
    ...(values.runtime ? { runtime: parseProvidedRuntime(values.runtime, '--runtime') } : {}),
    registry,
    signal,
    ...(values.quiet ? {} : { onLog: (line: string) => io.stderr(`${line}\n`) }),
  });
  let index: unknown;
  if (values.index) {
    const source = await openRegistryTarget(image, 'pull', registry);
    try {
      index = await withIndex(values.index, registry, (catalog, tag) =>
        recordAndUpdate(catalog, tag, source, result.digest, signal),
      );
    } finally {
      await source.close();
    }
  }
  if (values.json) io.stdout(`${JSON.stringify({ ...result, ...(index ? { index } : {}) }, null, 2)}\n`);
  else
    io.stdout(
      `${result.status === 'skipped' ? `skipped ${result.image}: ${result.reason}` : `built ${result.image}`}\n  digest        ${result.digest}\n  input digest  ${result.inputDigest}\n${result.upstream.map((u) => `  FROM          ${u.image} ${u.digest}\n`).join('')}`,
    );
  return 0;
}

export async function indexCommand(
  sub: string | undefined,
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      index: { type: 'string' },
      from: { type: 'string' },
      model: { type: 'string' },
      runtime: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
    },
  });
  const registry = await registryOptions(values, io);
  if (sub === 'record') {
    const from = reference('--from', values.from);
    const source = await openRegistryTarget(from, 'pull', registry);
    try {
      const desc = await source.resolve(from.digest ?? from.tag ?? 'latest', signal);
      if (!desc) throw new UserError(`--from ${values.from}: nothing there to record`);
      const out = await withIndex(values.index, registry, (catalog, tag) =>
        recordAndUpdate(catalog, tag, source, desc.digest, signal),
      );
      io.stdout(`${JSON.stringify(out, null, values.json ? 2 : undefined)}\n`);
    } finally {
      await source.close();
    }
    return 0;
  }
  if (sub === 'update') {
    const out = await withIndex(values.index, registry, (catalog, tag) =>
      updateIndex(catalog, tag, { signal }),
    );
    io.stdout(`${JSON.stringify(out, null, values.json ? 2 : undefined)}\n`);
    return 0;
  }
  if (sub === 'resolve') {
    if (!values.model) throw new UserError('--model is required');
    const found = await withIndex(values.index, registry, (catalog, tag) =>
      resolveModel(
        catalog,
        tag,
        { model: values.model!, ...(values.runtime ? { runtime: values.runtime } : {}) },
        signal,
      ),
    );
    io.stdout(
      values.json
        ? `${JSON.stringify(found, null, 2)}\n`
        : `model ${found.model.ref}\nbase  ${found.base.ref} (${found.base.runtime} ${found.base.version})\n`,
    );
    return 0;
  }
  throw new UserError(`unknown index command ${JSON.stringify(sub ?? '')}; use record, update or resolve`);
}
