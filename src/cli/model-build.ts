import { runModelBuild } from '../commands/model-build.ts';
import { DEFAULT_TARGET, type ModelBuildConfig, modelBuildConfig } from '../config/model-build.ts';
import { DEFAULT_FRAME_SIZE, DEFAULT_LEVEL } from '../model/build-types.ts';
import { UsageError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { parseFlags } from './args.ts';
import { formatRecorded } from './compat-commands.ts';
import { cliEdge } from './edge.ts';
import type { CliIo } from './io.ts';
import { progressPrinter } from './progress.ts';
import * as flags from './registry-flags.ts';
import { formatBuildReport } from './report.ts';

export const MODEL_BUILD_HELP = `Usage: model-oci model build <dir> --name <name> [options]
       model-oci model build hf://ORG/NAME[@REVISION] --name <name> [options]

Packs a model directory, or a Hugging Face repository revision (streamed: no file is staged on
disk; HF_TOKEN for gated repos, HF_ENDPOINT for another Hub), into a ModelPack OCI artifact.
When an artifact with the same weights, encoding and metadata (name, annotations, runtime) is
already in the target, nothing is written: the run reports "skipped" (for hf://, from the Hub's
file listing alone, without downloading a weight). Same weights with other metadata get a new manifest that reuses every layer.

Options:
  --name NAME            model name (required): [A-Za-z0-9._-], up to 128 characters
  --to TARGET            oci-layout:PATH[:TAG] (default ${DEFAULT_TARGET}; tag "latest" when none),
                         or a registry reference REGISTRY/REPO[:TAG]
  --tag TAG              an extra tag for the artifact (repeatable)
  --encoding tar|raw     tar layers (default) or one plain blob per file (for "oras pull")
  --compression zstd|none  compress tar layers with zstd (default) or not
  --level N              zstd level 1-22 (default ${DEFAULT_LEVEL})
  --frame-size SIZE      uncompressed bytes per zstd frame (default ${DEFAULT_FRAME_SIZE / 1024 / 1024}MiB)
  --include GLOB         package only matching files (repeatable)
  --exclude GLOB         leave matching files out (repeatable; .git, .cache, .huggingface always are)
  --annotation KEY=VALUE manifest annotation (repeatable)
  --runtime "NAME RANGE" the runtime the model needs, e.g. "vllm >=0.8 <0.9" (for the compatibility index)
  --index REF            record the artifact in this compatibility index (needs --runtime)
  --concurrency N        layers packed and uploaded at once (default 2 into a layout, 4 to a registry)
  --digest-cache FILE    where file digests are cached (default: under ~/.cache/model-oci)
  --no-digest-cache      do not read or write the digest cache
  --verify               hash every file again instead of trusting the digest cache
  --force                build even if these weights are already there; re-pack every layer
  --dry-run              pack and report what would be written or pushed, and write nothing
  --mount-from REPO      a repository of the same registry whose blobs may be mounted (repeatable)
  --image-form           also publish the model as a plain OCI image (same blobs, tag <tag>-image):
                         what containerd and Kubernetes image volumes load
  --image-platforms LIST the image form's platforms (default linux/amd64,linux/arm64)
${flags.OUTPUT_HELP}
${flags.REGISTRY_HELP}
${flags.UPLOAD_HELP}
${flags.LAYER_LIMIT_HELP}`;

function parseBuildArgs(argv: readonly string[]) {
  return parseFlags('model build', {
    args: [...argv],
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      to: { type: 'string', default: DEFAULT_TARGET },
      tag: { type: 'string', multiple: true, default: [] },
      encoding: { type: 'string', default: 'tar' },
      compression: { type: 'string', default: 'zstd' },
      level: { type: 'string' },
      'frame-size': { type: 'string' },
      include: { type: 'string', multiple: true, default: [] },
      exclude: { type: 'string', multiple: true, default: [] },
      annotation: { type: 'string', multiple: true, default: [] },
      runtime: { type: 'string' },
      index: { type: 'string' },
      concurrency: { type: 'string' },
      'digest-cache': { type: 'string' },
      'no-digest-cache': { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...flags.REGISTRY_FLAGS,
      ...flags.UPLOAD_FLAGS,
      ...flags.LAYER_LIMIT_FLAGS,
      'mount-from': { type: 'string', multiple: true, default: [] },
      'image-form': { type: 'boolean', default: false },
      'image-platforms': { type: 'string' },
    },
  });
}

/** `--encoding tar|raw` and `--compression zstd|none` → the one encoding the config takes. */
function encodingOf(encoding: string, compression: string): string {
  if (encoding !== 'tar' && encoding !== 'raw')
    throw new UsageError(`--encoding must be tar or raw, not ${JSON.stringify(encoding)}`);
  if (compression !== 'zstd' && compression !== 'none') {
    throw new UsageError(`--compression must be zstd or none, not ${JSON.stringify(compression)}`);
  }
  if (encoding === 'raw') return 'raw';
  return compression === 'zstd' ? 'tar+zstd' : 'tar';
}

/** `model build`'s flags → its config (the same config the Action builds from its inputs). */
export async function modelBuildConfigFromArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ config: ModelBuildConfig; json: boolean; quiet: boolean }> {
  const { values, positionals } = parseBuildArgs(argv);
  if (positionals.length !== 1)
    throw new UsageError(
      `expected exactly one model directory, got ${positionals.length} (model-oci model build <dir> --name <name>)`,
    );
  const { raw: registry, passwordFrom } = await flags.rawRegistry(values, env);
  const config = await modelBuildConfig(
    {
      ...registry,
      path: positionals[0],
      name: values.name,
      target: values.to,
      tags: values.tag,
      encoding: encodingOf(values.encoding, values.compression),
      level: values.level,
      frameSize: values['frame-size'],
      concurrency: values.concurrency,
      include: values.include,
      exclude: values.exclude,
      annotations: values.annotation,
      runtime: values.runtime,
      index: values.index,
      force: values.force,
      verify: values.verify,
      dryRun: values['dry-run'],
      mountFrom: values['mount-from'],
      imageForm: values['image-form'],
      imagePlatforms: values['image-platforms'],
      digestCache: { enabled: !values['no-digest-cache'], file: values['digest-cache'] },
    },
    cliEdge(env, { password: passwordFrom }),
  );
  return { config, json: values.json, quiet: values.quiet };
}

export async function modelBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { config, json, quiet } = await modelBuildConfigFromArgs(argv, process.env);
  const { result, indexed, hub } = await runModelBuild(
    config,
    {
      ...flags.credentialNote({ quiet }, io),
      onEvent: progressPrinter(
        (line) => io.stderr(`${line}\n`),
        quiet ? Number.POSITIVE_INFINITY : config.progressMs,
      ),
    },
    signal,
  );
  if (json) {
    io.stdout(
      `${JSON.stringify({ ...result, ...(hub ? { hub } : {}), ...(indexed ? { index: indexed } : {}) }, null, 2)}\n`,
    );
    return 0;
  }
  io.stdout(formatBuildReport(result, { dryRun: config.dryRun }));
  if (hub)
    io.stdout(
      `  from ${config.source} at commit ${hub.commit}: ${formatBytes(hub.downloaded)} of LFS files downloaded\n`,
    );
  if (indexed) io.stdout(formatRecorded(indexed));
  return 0;
}
