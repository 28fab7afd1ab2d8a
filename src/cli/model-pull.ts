import { type PullOutcome, runPull } from '../commands/pull.ts';
import { DEFAULT_CONNECTIONS, DEFAULT_PART_SIZE, type PullConfig, pullConfig } from '../config/pull.ts';
import { UsageError } from '../util/errors.ts';
import { formatBytes, formatDuration, formatRate } from '../util/format.ts';
import { parseFlags } from './args.ts';
import { cliEdge } from './edge.ts';
import type { CliIo } from './io.ts';
import { progressPrinter } from './progress.ts';
import * as flags from './registry-flags.ts';

export const MODEL_PULL_HELP = `Usage: model-oci model pull <ref> --to <dir> [options]
       model-oci model pull --index <catalog> --model <name> [--runtime "NAME RANGE"] --to <dir>

Unpacks a model artifact (or its image form) into a directory: the files "model build" read,
byte for byte. Large blobs come over several ranged connections at once, zstd frames are
decompressed on every core, and every blob, diffID and file digest is checked before a file is
renamed into place. Files the directory already holds are not fetched again; an interrupted pull
continues where it stopped. <ref> is REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG].

Options:
  --to DIR               where the files go (required; created if missing). Pull keeps its state
                         in DIR/.cache/model-oci/, which "model build" never packages
  --index REF            resolve the artifact through this compatibility index (with --model)
  --model NAME           the model to resolve (with --index)
  --runtime "NAME RANGE" only an artifact with a base image that meets this (with --index)
  --include GLOB         pull only matching files (repeatable); other layers are not fetched
  --exclude GLOB         leave matching files out (repeatable)
  --verify               hash the files already in DIR instead of trusting their recorded state
  --platform OS/ARCH     for an image form index: the image to read (default: this machine's)
  --connections N        connections at once over all blobs (default ${DEFAULT_CONNECTIONS})
  --part-size SIZE       bytes per ranged request of a large blob (default ${DEFAULT_PART_SIZE / 1024 / 1024}MiB)
${flags.OUTPUT_HELP}
${flags.REGISTRY_HELP}`;

/** `model pull`'s flags → its config (the same config the Action builds from its inputs). */
export async function modelPullConfigFromArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ config: PullConfig; json: boolean; quiet: boolean }> {
  const { values, positionals } = parseFlags('model pull', {
    args: [...argv],
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      index: { type: 'string' },
      model: { type: 'string' },
      runtime: { type: 'string' },
      include: { type: 'string', multiple: true, default: [] },
      exclude: { type: 'string', multiple: true, default: [] },
      verify: { type: 'boolean', default: false },
      platform: { type: 'string' },
      connections: { type: 'string' },
      'part-size': { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...flags.REGISTRY_FLAGS,
    },
  });
  if (positionals.length > 1)
    throw new UsageError(
      `expected one artifact reference, got ${positionals.length}; see "model-oci model pull --help"`,
    );
  const { raw: registry, passwordFrom } = await flags.rawRegistry(values, env);
  const config = await pullConfig(
    {
      ...registry,
      from: positionals[0],
      index: values.index,
      model: values.model,
      runtime: values.runtime,
      to: values.to,
      include: values.include,
      exclude: values.exclude,
      verify: values.verify,
      platform: values.platform,
      connections: values.connections,
      partSize: values['part-size'],
    },
    cliEdge(env, { password: passwordFrom, from: 'the artifact reference' }),
  );
  return { config, json: values.json, quiet: values.quiet };
}

/** The human report of a pull. */
export function formatPullReport(result: PullOutcome): string {
  const counts = new Map<string, number>();
  for (const layer of result.layers) counts.set(layer.state, (counts.get(layer.state) ?? 0) + 1);
  const states = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  const bytes = result.files.reduce((sum, f) => sum + f.size, 0);
  const lines = [
    `pulled ${result.reference} → ${result.dir}`,
    ...(result.resolved
      ? [
          `  resolved ${result.resolved.model.name} (base ${result.resolved.base.ref}, ${result.resolved.base.runtime} ${result.resolved.base.version})`,
        ]
      : []),
    ...(result.weightsDigest ? [`  weights  ${result.weightsDigest}`] : []),
    `  layers   ${result.layers.length}: ${states}`,
    `  files    ${result.files.length}, ${formatBytes(bytes)}`,
    `  fetched  ${formatBytes(result.fetchedBytes)} in ${formatDuration(result.durationMs)}` +
      (result.fetchedBytes > 0 ? ` (${formatRate(result.fetchedBytes, result.durationMs)})` : ''),
  ];
  return `${lines.join('\n')}\n`;
}

export async function modelPullCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { config, json, quiet } = await modelPullConfigFromArgs(argv, process.env);
  const result = await runPull(
    config,
    flags.credentialNote({ quiet }, io),
    signal,
    progressPrinter((line) => io.stderr(`${line}\n`), quiet ? Number.POSITIVE_INFINITY : config.progressMs),
  );
  io.stdout(json ? `${JSON.stringify(result, null, 2)}\n` : formatPullReport(result));
  return 0;
}
