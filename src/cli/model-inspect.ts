import { runInspect } from '../commands/inspect.ts';
import { inspectConfig } from '../config/index-commands.ts';
import { UsageError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { parseFlags } from './args.ts';
import { cliEdge } from './edge.ts';
import type { CliIo } from './io.ts';
import { credentialNote, REGISTRY_FLAGS, REGISTRY_HELP, rawRegistry } from './registry-flags.ts';

export const MODEL_INSPECT_HELP = `Usage: model-oci model inspect --from <ref> [--json]

Reads a model artifact — from a registry (REGISTRY/REPO:TAG or @sha256:…) or a layout
(oci-layout:PATH:TAG) — and shows its digest, weights digest and layers with their files.
Only reads; the manifest and config are verified against their digests.

Options:
  --from REF             the artifact to read (required)
  --json                 print it as JSON on stdout
  --quiet                no note on stderr of where credentials came from
${REGISTRY_HELP}`;

export async function modelInspectCommand(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseFlags('model inspect', {
    args: [...argv],
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      ...REGISTRY_FLAGS,
    },
  });
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; use --from REF`);
  if (!values.from) throw new UsageError('--from is required (the artifact to read)');
  const { raw, passwordFrom } = await rawRegistry(values, process.env);
  const config = await inspectConfig(
    { ...raw, from: values.from },
    cliEdge(process.env, { password: passwordFrom }),
  );
  const summary = await runInspect(config, credentialNote(values, io), signal);
  if (values.json) {
    io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `${summary.reference}`,
    `  digest   ${summary.digest}`,
    `  weights  ${summary.weightsDigest} (${summary.encoding})`,
    ...summary.layers.map(
      (l) =>
        `  ${formatBytes(l.size).padStart(10)}  ${l.mediaType}  ${l.part ? `${l.part.path} part ${l.part.index} of ${l.part.count} (bytes ${l.part.offset}–${l.part.offset + l.part.size})` : l.files.map((f) => f.path).join(', ')}`,
    ),
  ];
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}
