import { DryRunTarget } from '../content/dry-run-target.ts';
import { openTarget } from '../content/open-target.ts';
import type { Target } from '../content/target.ts';
import { parseTargetRef, type TargetRef, targetTag } from '../content/target-ref.ts';
import { buildModel, DEFAULT_FRAME_SIZE, DEFAULT_LEVEL } from '../model/build.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { RegistryTarget } from '../registry/registry-target.ts';
import { UsageError } from '../util/errors.ts';
import { parseSize } from '../util/format.ts';
import { parseFlags } from './args.ts';
import type { CliIo } from './io.ts';
import { progressInterval, progressPrinter } from './progress.ts';
import {
  OUTPUT_HELP,
  REGISTRY_FLAGS,
  REGISTRY_HELP,
  registryOptions,
  UPLOAD_FLAGS,
  UPLOAD_HELP,
} from './registry-flags.ts';
import { formatBuildReport } from './report.ts';

export const DEFAULT_TARGET = 'oci-layout:./oci-layout';

export const MODEL_BUILD_HELP = `Usage: model-oci model build <dir> --name <name> [options]

Packs a model directory into a ModelPack OCI artifact. When an artifact with the same weights,
encoding and metadata (name, annotations, runtime) is already in the target, nothing is written:
the run reports "skipped". Same weights with other metadata get a new manifest that reuses every layer.

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
  --mount-from REPO      a repository of the same registry whose blobs may be mounted (repeatable)
${OUTPUT_HELP}
${REGISTRY_HELP}
${UPLOAD_HELP}`;

/** KEY=VALUE flags → a record; a usage error naming the flag for anything else. */
export function parseKeyValues(flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${JSON.stringify(value)}: expected KEY=VALUE`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

function parseEncoding(encoding: string, compression: string): LayerEncoding {
  if (encoding !== 'tar' && encoding !== 'raw')
    throw new UsageError(`--encoding must be tar or raw, not ${JSON.stringify(encoding)}`);
  if (compression !== 'zstd' && compression !== 'none') {
    throw new UsageError(`--compression must be zstd or none, not ${JSON.stringify(compression)}`);
  }
  if (encoding === 'raw') return 'raw';
  return compression === 'zstd' ? 'tar+zstd' : 'tar';
}

export function parseInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text))
    throw new UsageError(`${flag} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

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
      concurrency: { type: 'string' },
      'digest-cache': { type: 'string' },
      'no-digest-cache': { type: 'boolean', default: false },
      verify: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
      ...UPLOAD_FLAGS,
      'mount-from': { type: 'string', multiple: true, default: [] },
    },
  });
}

export async function modelBuildCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseBuildArgs(argv);
  if (positionals.length !== 1)
    throw new UsageError(
      `expected exactly one model directory, got ${positionals.length} (model-oci model build <dir> --name <name>)`,
    );
  if (!values.name) throw new UsageError('--name is required');
  const ref = parseTargetRef(values.to);
  const registry = await registryOptions(values, io);
  if (ref.kind !== 'registry' && values['mount-from'].length > 0)
    throw new UsageError('--mount-from needs a registry target (--to REGISTRY/REPO:TAG)');
  const opened = await openTarget(ref, { registry });
  // Mount sources are siblings of the real target; a dry run reads them just as a real run would.
  const reuseFrom =
    opened instanceof RegistryTarget
      ? values['mount-from'].map((repo) => opened.sibling(repo, '--mount-from'))
      : [];
  const target = values['dry-run'] ? new DryRunTarget(opened) : opened;
  try {
    return await build(target, ref, reuseFrom, values, positionals[0]!, io, signal);
  } finally {
    await target.close?.();
  }
}

type BuildValues = ReturnType<typeof parseBuildArgs>['values'];

async function build(
  target: Target,
  ref: TargetRef,
  reuseFrom: Target[],
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
      throw new UsageError(`--frame-size: ${err instanceof Error ? err.message : err}`);
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
    reuseFrom,
    include: values.include,
    exclude: values.exclude,
    annotations: parseKeyValues('--annotation', values.annotation),
    ...(values.runtime !== undefined ? { runtime: values.runtime } : {}),
    force: values.force,
    verify: values.verify,
    digestCache: values['no-digest-cache'] ? false : values['digest-cache'],
    signal,
    onEvent: progressPrinter(
      (line) => io.stderr(`${line}\n`),
      values.quiet ? Number.POSITIVE_INFINITY : progressInterval(),
    ),
  });
  io.stdout(
    values.json
      ? `${JSON.stringify(result, null, 2)}\n`
      : formatBuildReport(result, { dryRun: values['dry-run'] }),
  );
  return 0;
}
