import { runBaseBuild } from '../commands/base-build.ts';
import { runIndexRecord, runIndexUpdate, runResolve } from '../commands/index.ts';
import type { IndexRecorded } from '../commands/model-build.ts';
import type { UpdateResult } from '../compat/index-update.ts';
import { baseBuildConfig } from '../config/base-build.ts';
import { indexRecordConfig, indexUpdateConfig, resolveConfig } from '../config/index-commands.ts';
import { UsageError } from '../util/errors.ts';
import { parseFlags } from './args.ts';
import { cliEdge } from './edge.ts';
import type { CliIo } from './io.ts';
import {
  credentialNote,
  OUTPUT_HELP,
  REGISTRY_FLAGS,
  REGISTRY_HELP,
  rawRegistry,
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

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** The index as it stands, in one line. */
export function describeIndex(
  where: string,
  index: Pick<UpdateResult, 'digest' | 'models' | 'bases' | 'pairs'>,
) {
  return `index ${where} is ${index.digest}: ${plural(index.models, 'model artifact')}, ${plural(index.bases, 'base image')}, ${plural(index.pairs, 'compatible pair')}`;
}

/** What recording in the index did (index record, and --index of the build commands), as lines for a person. */
export function formatRecorded({ where, recorded, index }: IndexRecorded): string {
  const catalog = where.slice(0, where.lastIndexOf(':'));
  const what = recorded.kind === 'model' ? 'model artifact' : 'base image';
  const how = recorded.written
    ? `recorded ${what} ${recorded.digest} as ${catalog}:${recorded.tag}`
    : `${what} ${recorded.digest} was already recorded as ${catalog}:${recorded.tag}`;
  return `${how}\n${describeIndex(where, index)}\n`;
}

/** `base build`'s flags → its config (the same config the Action builds from its inputs). */
export async function baseBuildConfigFromArgs(argv: readonly string[], env: NodeJS.ProcessEnv) {
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
  const { raw, passwordFrom } = await rawRegistry(values, env);
  const config = await baseBuildConfig(
    {
      ...raw,
      context: positionals[0],
      dockerfile: values.file,
      image: values.image,
      buildArgs: values['build-arg'],
      buildTarget: values.target,
      platform: values.platform,
      builder: values.builder,
      runtime: values.runtime,
      force: values.force,
      index: values.index,
    },
    cliEdge(env, { password: passwordFrom }),
  );
  return { config, values };
}

export async function baseBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { config, values } = await baseBuildConfigFromArgs(argv, process.env);
  const { result, indexed } = await runBaseBuild(
    config,
    {
      ...credentialNote(values, io),
      ...(values.quiet ? {} : { onLog: (line: string) => io.stderr(`${line}\n`) }),
    },
    signal,
  );
  if (values.json) {
    io.stdout(`${JSON.stringify({ ...result, ...(indexed ? { index: indexed } : {}) }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    result.status === 'skipped' ? `skipped ${result.image}: ${result.reason}` : `built ${result.image}`,
    `  digest        ${result.digest}`,
    `  input digest  ${result.inputDigest}`,
    ...(result.runtime ? [`  runtime       ${result.runtime.name} ${result.runtime.version}`] : []),
    ...result.upstream.map((u) => `  FROM          ${u.image} ${u.digest}`),
  ];
  io.stdout(`${lines.join('\n')}\n${indexed ? formatRecorded(indexed) : ''}`);
  return 0;
}

/** `index record`'s flags → its config. */
export async function indexRecordConfigFromArgs(argv: readonly string[], env: NodeJS.ProcessEnv) {
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
  const { raw, passwordFrom } = await rawRegistry(values, env);
  const config = await indexRecordConfig(
    { ...raw, index: values.index, from: values.from },
    cliEdge(env, { password: passwordFrom }),
  );
  return { config, values };
}

export async function indexRecordCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { config, values } = await indexRecordConfigFromArgs(argv, process.env);
  const indexed = await runIndexRecord(config, credentialNote(values, io), signal);
  io.stdout(values.json ? `${JSON.stringify(indexed, null, 2)}\n` : formatRecorded(indexed));
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
  const { raw, passwordFrom } = await rawRegistry(values, process.env);
  const config = await indexUpdateConfig(
    { ...raw, index: values.index },
    cliEdge(process.env, { password: passwordFrom }),
  );
  const { where, index } = await runIndexUpdate(config, credentialNote(values, io), signal);
  const skipped = index.skipped.map((s) => `  left out ${s.tag}: ${s.reason}\n`).join('');
  io.stdout(
    values.json ? `${JSON.stringify(index, null, 2)}\n` : `${describeIndex(where, index)}\n${skipped}`,
  );
  return 0;
}

/** `resolve`'s flags → its config. */
export async function resolveConfigFromArgs(argv: readonly string[], env: NodeJS.ProcessEnv) {
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
  const { raw, passwordFrom } = await rawRegistry(values, env);
  const config = await resolveConfig(
    { ...raw, index: values.index, model: values.model, runtime: values.runtime },
    cliEdge(env, { password: passwordFrom }),
  );
  return { config, values };
}

export async function resolveCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { config, values } = await resolveConfigFromArgs(argv, process.env);
  const { found } = await runResolve(config, credentialNote(values, io), signal);
  io.stdout(
    values.json
      ? `${JSON.stringify(found, null, 2)}\n`
      : `model ${found.model.ref}\n${found.model.image ? `image ${found.model.image.ref}\n` : ''}base  ${found.base.ref} (${found.base.runtime} ${found.base.version})\n`,
  );
  return 0;
}
