import { buildBase } from '../base/build-base.ts';
import { parseProvidedRuntime } from '../base/runtime.ts';
import { recordAndUpdate, withCatalog } from '../compat/catalog.ts';
import type { UpdateResult } from '../compat/index-update.ts';
import { updateIndex } from '../compat/index-update.ts';
import type { RecordResult } from '../compat/record.ts';
import { resolveModel } from '../compat/resolve.ts';
import { parseReference, type Reference } from '../oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UsageError, UserError } from '../util/errors.ts';
import { parseFlags } from './args.ts';
import type { CliIo } from './io.ts';
import { parseKeyValues } from './model-build.ts';
import {
  OUTPUT_HELP,
  REGISTRY_FLAGS,
  REGISTRY_HELP,
  registryOptions,
  UPLOAD_FLAGS,
  UPLOAD_HELP,
} from './registry-flags.ts';

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
  --builder auto|buildah|buildx  auto: buildah when installed, else docker buildx
  --runtime "NAME VERSION"  the runtime the image provides (else its io.model-oci.runtime.* labels)
  --force                rebuild (pulling the FROM images, no cache) even when nothing changed
  --index REF            record the image in this compatibility index
${OUTPUT_HELP}
${REGISTRY_HELP}
${UPLOAD_HELP}`;

export const INDEX_HELP = `Usage:
  model-oci index record --index REGISTRY/CATALOG:TAG --from REGISTRY/REPO[:TAG|@DIGEST] [--json]
  model-oci index update --index REGISTRY/CATALOG:TAG [--json]

record copies a model artifact or base image into the catalog repository (blobs mounted) and
updates the index; update rebuilds the index from the catalog (docs/compat-index.md).

Options:
  --index REF            the compatibility index (required; the tag defaults to "index")
  --from REF             record: the artifact or image to record (required)
${OUTPUT_HELP}
${REGISTRY_HELP}
${UPLOAD_HELP.replace('Upload options:', 'Upload options (record: blobs a registry declines to mount are copied):')}`;

export const RESOLVE_HELP = `Usage: model-oci resolve --index REGISTRY/CATALOG:TAG --model NAME [--runtime "NAME RANGE"] [--json]

Prints the model artifact and the newest compatible base image, from one read of the index
(docs/compat-index.md).

Options:
  --index REF            the compatibility index (required; the tag defaults to "index")
  --model NAME           the model name (required)
  --runtime "NAME RANGE" a constraint the base image must meet too, e.g. "vllm >=0.8.2"
${OUTPUT_HELP}
${REGISTRY_HELP}`;

function reference(flag: string, text: string | undefined): Reference {
  if (!text) throw new UsageError(`${flag} is required`);
  try {
    return parseReference(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

/** The catalog the `--index` flag names; see withCatalog. */
function withIndex<T>(
  indexRef: string | undefined,
  registry: RegistryOptions,
  work: (catalog: RegistryTarget, tag: string) => Promise<T>,
): Promise<T> {
  if (!indexRef) throw new UsageError('--index is required');
  return withCatalog(indexRef, registry, '--index', work);
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** The index as it stands, in one line. */
export function describeIndex(
  where: string,
  index: Pick<UpdateResult, 'digest' | 'models' | 'bases' | 'pairs'>,
) {
  return `index ${where} is ${index.digest}: ${plural(index.models, 'model artifact')}, ${plural(index.bases, 'base image')}, ${plural(index.pairs, 'compatible pair')}`;
}

/** What `index record` (and `--index` of the build commands) did, as lines for a person. */
export function formatRecorded(
  catalog: string,
  tag: string,
  out: { recorded: RecordResult; index: UpdateResult },
): string {
  const { recorded } = out;
  const what = recorded.kind === 'model' ? 'model artifact' : 'base image';
  const how = recorded.written
    ? `recorded ${what} ${recorded.digest} as ${catalog}:${recorded.tag}`
    : `${what} ${recorded.digest} was already recorded as ${catalog}:${recorded.tag}`;
  return `${how}\n${describeIndex(`${catalog}:${tag}`, out.index)}\n`;
}

export async function baseBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseFlags('base build', {
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
      ...UPLOAD_FLAGS,
    },
  });
  if (positionals.length !== 1)
    throw new UsageError('expected the build context directory (model-oci base build <context>)');
  const image = reference('--image', values.image);
  const builder = values.builder;
  if (builder !== 'auto' && builder !== 'buildx' && builder !== 'buildah')
    throw new UsageError(`--builder must be auto, buildah or buildx, not ${JSON.stringify(builder)}`);
  if (values.index) reference('--index', values.index);
  const registry = await registryOptions(values, io);
  const result = await buildBase({
    context: positionals[0]!,
    ...(values.file ? { dockerfile: values.file } : {}),
    image: values.image!,
    buildArgs: parseKeyValues('--build-arg', values['build-arg']),
    ...(values.target ? { target: values.target } : {}),
    ...(values.platform ? { platform: values.platform } : {}),
    builder,
    force: values.force,
    ...(values.runtime ? { runtime: parseProvidedRuntime(values.runtime, '--runtime') } : {}),
    registry,
    ...(values['temp-dir'] ? { tempDir: values['temp-dir'] } : {}),
    signal,
    ...(values.quiet ? {} : { onLog: (line: string) => io.stderr(`${line}\n`) }),
  });
  let recorded:
    | { catalog: string; tag: string; out: Awaited<ReturnType<typeof recordAndUpdate>> }
    | undefined;
  if (values.index) {
    const source = await openRegistryTarget(image, 'pull', registry);
    try {
      recorded = await withIndex(values.index, registry, async (catalog, tag) => ({
        catalog: catalog.displayName,
        tag,
        out: await recordAndUpdate(catalog, tag, source, result.digest, signal),
      }));
    } finally {
      await source.close();
    }
  }
  if (values.json) {
    io.stdout(`${JSON.stringify({ ...result, ...(recorded ? { index: recorded.out } : {}) }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    result.status === 'skipped' ? `skipped ${result.image}: ${result.reason}` : `built ${result.image}`,
    `  digest        ${result.digest}`,
    `  input digest  ${result.inputDigest}`,
    ...(result.runtime ? [`  runtime       ${result.runtime.name} ${result.runtime.version}`] : []),
    ...result.upstream.map((u) => `  FROM          ${u.image} ${u.digest}`),
  ];
  io.stdout(
    `${lines.join('\n')}\n${recorded ? formatRecorded(recorded.catalog, recorded.tag, recorded.out) : ''}`,
  );
  return 0;
}

export async function indexRecordCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values } = parseFlags('index record', {
    args: [...argv],
    options: {
      index: { type: 'string' },
      from: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
      ...UPLOAD_FLAGS,
    },
  });
  const from = reference('--from', values.from);
  reference('--index', values.index);
  const registry = await registryOptions(values, io);
  const source = await openRegistryTarget(from, 'pull', registry);
  try {
    const desc = await source.resolve(from.digest ?? from.tag ?? 'latest', signal);
    if (!desc) throw new UserError(`--from ${values.from}: nothing there to record`);
    const done = await withIndex(values.index, registry, async (catalog, tag) => ({
      catalog: catalog.displayName,
      tag,
      out: await recordAndUpdate(catalog, tag, source, desc.digest, signal),
    }));
    io.stdout(
      values.json
        ? `${JSON.stringify(done.out, null, 2)}\n`
        : formatRecorded(done.catalog, done.tag, done.out),
    );
  } finally {
    await source.close();
  }
  return 0;
}

export async function indexUpdateCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values } = parseFlags('index update', {
    args: [...argv],
    options: {
      index: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
    },
  });
  reference('--index', values.index);
  const registry = await registryOptions(values, io);
  const done = await withIndex(values.index, registry, async (catalog, tag) => ({
    where: `${catalog.displayName}:${tag}`,
    out: await updateIndex(catalog, tag, { signal }),
  }));
  const skipped = done.out.skipped.map((s) => `  left out ${s.tag}: ${s.reason}\n`).join('');
  io.stdout(
    values.json
      ? `${JSON.stringify(done.out, null, 2)}\n`
      : `${describeIndex(done.where, done.out)}\n${skipped}`,
  );
  return 0;
}

export async function resolveCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values } = parseFlags('resolve', {
    args: [...argv],
    options: {
      index: { type: 'string' },
      model: { type: 'string' },
      runtime: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
    },
  });
  reference('--index', values.index);
  const model = values.model;
  if (!model) throw new UsageError('--model is required');
  const runtime = values.runtime;
  const registry = await registryOptions(values, io);
  const found = await withIndex(values.index, registry, (catalog, tag) =>
    resolveModel(catalog, tag, { model, ...(runtime ? { runtime } : {}) }, signal),
  );
  io.stdout(
    values.json
      ? `${JSON.stringify(found, null, 2)}\n`
      : `model ${found.model.ref}\nbase  ${found.base.ref} (${found.base.runtime} ${found.base.version})\n`,
  );
  return 0;
}
