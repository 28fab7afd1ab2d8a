import { openTarget } from '../content/open-target.ts';
import { parseTargetRef } from '../content/target-ref.ts';
import { loadPreviousArtifact } from '../model/previous.ts';
import { UsageError, UserError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { parseFlags } from './args.ts';
import type { CliIo } from './io.ts';
import { REGISTRY_FLAGS, REGISTRY_HELP, registryOptions } from './registry-flags.ts';

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
  const ref = parseTargetRef(values.from);
  const reference =
    ref.kind === 'registry'
      ? (ref.reference.digest ?? ref.reference.tag ?? 'latest')
      : (ref.digest ?? ref.tag ?? 'latest');
  const target = await openTarget(ref, {
    access: 'pull',
    registry: await registryOptions(values, io),
  });
  try {
    const artifact = await loadPreviousArtifact(target, reference, signal);
    if (!artifact) {
      const found = await target.resolve(reference, signal);
      throw new UserError(
        found
          ? `${values.from} is not a model artifact built by model-oci (${found.mediaType} ${found.digest})`
          : `${values.from}: nothing there`,
      );
    }
    const summary = {
      reference: values.from,
      digest: artifact.descriptor.digest,
      weightsDigest: artifact.weightsDigest,
      encoding: artifact.encoding,
      annotations: artifact.manifest.annotations ?? {},
      layers: artifact.layers.map((l) => ({
        mediaType: l.descriptor.mediaType,
        digest: l.descriptor.digest,
        size: l.descriptor.size,
        diffId: l.diffId,
        files: l.files,
      })),
    };
    if (values.json) {
      io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      const lines = [
        `${values.from}`,
        `  digest   ${summary.digest}`,
        `  weights  ${summary.weightsDigest} (${summary.encoding})`,
        ...summary.layers.map(
          (l) =>
            `  ${formatBytes(l.size).padStart(10)}  ${l.mediaType}  ${l.files.map((f) => f.path).join(', ')}`,
        ),
      ];
      io.stdout(`${lines.join('\n')}\n`);
    }
    return 0;
  } finally {
    await target.close?.();
  }
}
