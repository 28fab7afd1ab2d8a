import { parseArgs } from 'node:util';
import { DryRunTarget } from '../content/dry-run-target.ts';
import { openTarget } from '../content/open-target.ts';
import type { Target } from '../content/target.ts';
import { parseTargetRef, type TargetRef, targetTag } from '../content/target-ref.ts';
import { buildModel, DEFAULT_FRAME_SIZE, DEFAULT_LEVEL } from '../model/build.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import { parseSize } from '../util/format.ts';
import type { CliIo } from './main.ts';
import { progressPrinter } from './progress.ts';
import { REGISTRY_FLAGS, REGISTRY_HELP, registryOptions } from './registry-flags.ts';
import { formatBuildReport } from './report.ts';

export const DEFAULT_TARGET = 'oci-layout:./oci-layout';

export const MODEL_BUILD_HELP = `Usage: model-oci model build <dir> --name <name> [options]

Packs a model directory into a ModelPack OCI artifact. Nothing is written when an artifact with the
same weights (and encoding) is already in the target: the run reports "skipped".

Options:
  --name NAME            model name (required): [A-Za-z0-9._-], up to 128 characters
  --to TARGET            oci-layout:PATH[:TAG] (default ${DEFAULT_TARGET}, tag "latest"),
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
  --concurrency N        layers packed and uploaded at once (default 2 into a layout, 4 to a registry)
  --digest-cache FILE    where file digests are cached (default: under ~/.cache/model-oci)
  --no-digest-cache      do not read or write the digest cache
  --verify               hash every file again instead of trusting the digest cache
  --force                build even if these weights are already there; re-pack every layer
  --dry-run              pack and report what would be written or pushed, and write nothing
  --json                 print the result as JSON on stdout
  --mount-from REPO      a repository of the same registry whose blobs may be mounted (repeatable)
${REGISTRY_HELP}`;

/** Progress lines at most every 2 s, or every MODEL_OCI_PROGRESS_MS milliseconds. */
function progressInterval(): number {
  const ms = Number(process.env.MODEL_OCI_PROGRESS_MS);
  return Number.isFinite(ms) && ms >= 0 && process.env.MODEL_OCI_PROGRESS_MS !== '' ? ms : 2000;
}

function parseAnnotations(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UserError(`--annotation ${JSON.stringify(value)}: expected KEY=VALUE`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

function parseEncoding(encoding: string, compression: string): LayerEncoding {
  if (encoding !== 'tar' && encoding !== 'raw')
    throw new UserError(`--encoding must be tar or raw, not ${JSON.stringify(encoding)}`);
  if (compression !== 'zstd' && compression !== 'none') {
    throw new UserError(`--compression must be zstd or none, not ${JSON.stringify(compression)}`);
  }
  if (encoding === 'raw') return 'raw';
  return compression === 'zstd' ? 'tar+zstd' : 'tar';
}

function parseInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text))
    throw new UserError(`${flag} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

export async function modelBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseBuildArgs(argv);
  if (positionals.length !== 1)
    throw new UserError('expected exactly one model directory (model-oci model build <dir> --name <name>)');
  if (!values.name) throw new UserError('--name is required');
  const ref = parseTargetRef(values.to);
  const registry = await registryOptions(values, io);
  if (ref.kind !== 'registry' && values['mount-from'].length > 0)
    throw new UserError('--mount-from needs a registry target (--to REGISTRY/REPO:TAG)');
  const opened = await openTarget(ref, { registry });
  const target = values['dry-run'] ? new DryRunTarget(opened) : opened;
  try {
    return await build(target, ref, values, positionals[0]!, io, signal);
  } finally {
    await target.close?.();
  }
}

function parseBuildArgs(argv: readonly string[]) {
  return parseArgs({
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
      concurrency: { type: 'string' },
      'digest-cache': { type: 'string' },
      'no-digest-cache': { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
      'mount-from': { type: 'string', multiple: true, default: [] },
    },
  });
}

type BuildValues = ReturnType<typeof parseBuildArgs>['values'];

async function build(
  target: Target,
  ref: TargetRef,
  values: BuildValues,
  source: string,
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const level = parseInteger('--level', values.level);
  const concurrency = parseInteger('--concurrency', values.concurrency);
  let frameSize: number | undefined;
  if (values['frame-size'] !== undefined) {
    try {
      frameSize = parseSize(values['frame-size']);
    } catch (err) {
      throw new UserError(`--frame-size: ${err instanceof Error ? err.message : err}`);
    }
  }
  const result = await buildModel({
    source,
    name: values.name!,
    target,
    tag: targetTag(ref) ?? 'latest',
    extraTags: values.tag,
    encoding: parseEncoding(values.encoding, values.compression),
    ...(level !== undefined ? { level } : {}),
    ...(frameSize !== undefined ? { frameSize } : {}),
    concurrency: concurrency ?? (ref.kind === 'registry' ? 4 : 2),
    ...(target instanceof RegistryTarget
      ? {
          reuseFrom: values['mount-from'].map((repo) => target.sibling(repo, '--mount-from')),
        }
      : {}),
    include: values.include,
    exclude: values.exclude,
    annotations: parseAnnotations(values.annotation),
    ...(values.runtime !== undefined ? { runtime: values.runtime } : {}),
    force: values.force,
    verify: values.verify,
    digestCache: values['no-digest-cache'] ? false : values['digest-cache'],
    signal,
    ...(values.quiet
      ? {}
      : { onEvent: progressPrinter((line) => io.stderr(`${line}\n`), progressInterval()) }),
  });
  io.stdout(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatBuildReport(result));
  return 0;
}
