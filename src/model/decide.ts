import type { Target } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import { ANNOTATION, type LayerEncoding } from '../oci/media-types.ts';
import { type ArtifactInput, buildArtifact } from './artifact.ts';
import { DamagedArtifactError, loadPreviousArtifact, type PreviousArtifact } from './previous.ts';
import { weightsTag } from './weights-digest.ts';

/** What an artifact would say about itself besides its layers: name, facts, annotations, dates. */
export type ArtifactMetadata = Omit<ArtifactInput, 'layers' | 'diffIds' | 'weightsDigest' | 'encoding'>;

/** What an artifact already in the target means for this build. */
export type Decision =
  /** Same weights, encoding and metadata: nothing to write. */
  | { kind: 'skip'; existing: PreviousArtifact }
  /** Same weights and encoding, other metadata: a new manifest that takes over every layer. */
  | { kind: 'relabel'; existing: PreviousArtifact; changed: string[] }
  | { kind: 'build' };

/** `sha256:0123456789ab…`: enough of a digest for a message line; full digests are in the result. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon + 13)}…`;
}

/**
 * The artifact with these weights and this encoding in the target: `own` (the one at the target
 * tag) when it has them, else the one at the weights tag. One that fails verification is reported
 * through `warn` and treated as absent — the build then writes a good one.
 */
export async function existingWithWeights(
  target: Target,
  weights: Digest,
  encoding: LayerEncoding,
  own: PreviousArtifact | undefined,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<PreviousArtifact | undefined> {
  const matches = (a: PreviousArtifact | undefined) =>
    a?.weightsDigest === weights && a.encoding === encoding;
  if (matches(own)) return own;
  try {
    const found = await loadPreviousArtifact(target, weightsTag(weights, encoding), signal);
    return matches(found) ? found : undefined;
  } catch (err) {
    if (!(err instanceof DamagedArtifactError)) throw err;
    warn(`${err.message}; a new artifact is written`);
    return undefined;
  }
}

/**
 * Skip only when the existing artifact is byte for byte what this build would write from its layers
 * — same name, facts, annotations and runtime — apart from the created date: re-dating an unchanged
 * artifact (a new commit of the workflow repository, say) would make every run a "new" model.
 */
export function decide(existing: PreviousArtifact | undefined, wanted: ArtifactMetadata): Decision {
  if (!existing) return { kind: 'build' };
  const created = existing.manifest.annotations?.[ANNOTATION.created];
  const { createdAt: _ignored, ...rest } = wanted;
  const rebuilt = buildArtifact({
    ...rest,
    ...(created ? { createdAt: created } : {}),
    weightsDigest: existing.weightsDigest as Digest,
    encoding: existing.encoding as LayerEncoding,
    layers: existing.layers.map((l) => l.descriptor),
    diffIds: existing.layers.map((l) => l.diffId),
  });
  if (rebuilt.manifest.descriptor.digest === existing.descriptor.digest) return { kind: 'skip', existing };
  return { kind: 'relabel', existing, changed: differences(existing, rebuilt.manifest.value) };
}

/** Which parts of the metadata differ, in words for the report ("name", "annotation foo", …). */
function differences(
  existing: PreviousArtifact,
  wanted: ReturnType<typeof buildArtifact>['manifest']['value'],
) {
  const before = existing.manifest.annotations ?? {};
  const after = wanted.annotations ?? {};
  const changed: string[] = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const key of keys) {
    if (key === ANNOTATION.created || before[key] === after[key]) continue;
    if (key === ANNOTATION.title) changed.push('name');
    else if (key === ANNOTATION.runtimeRequires) changed.push('runtime');
    else changed.push(`annotation ${key}`);
  }
  const titles = (layers: readonly { annotations?: Record<string, string> }[]) =>
    layers.map((l) => l.annotations?.[ANNOTATION.title]).join('\n');
  if (titles(existing.manifest.layers) !== titles(wanted.layers)) changed.push('layer titles');
  if (changed.length === 0) changed.push('model config');
  return changed;
}
