import { canListTags, type Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { errorMessage } from '../util/errors.ts';
import type { PlannedLayer } from './layers.ts';
import {
  DamagedArtifactError,
  loadPreviousArtifact,
  type PreviousArtifact,
  type PreviousLayer,
} from './previous.ts';
import { findReusable, learnPartDigests } from './reuse.ts';
import { isWeightsTag } from './weights-digest.ts';

/** Artifacts read at most, in parallel, while looking for layers under other tags. */
const PARALLEL_READS = 4;

export interface FoundElsewhere {
  layer: PreviousLayer;
  /** The artifact it was found in, for reports. */
  artifact: Descriptor;
}

/**
 * Layers for `wanted` (planned layers no artifact at the target tag could give) found in other
 * artifacts of this tool in the same repository — every one of them carries a weights tag, so
 * the tag list names them all, whatever tags a user gave them (a tag per Hub revision, say).
 *
 * A layer is taken only when that artifact's manifest (digest-checked when read) lists exactly the
 * files planned for it — path, size and sha256, written by this tool after it hashed those bytes —
 * in a layer of the same media type, and its diffID comes from that artifact's digest-checked
 * config. The caller then confirms the blob is in the repository (a HEAD) before using it. So a
 * reused layer holds the same file bytes under the same names as the one the build would pack.
 *
 * Artifacts are read only while some wanted layer is still missing. A repository whose tags
 * cannot be listed, or an artifact that does not verify, just means those layers are packed.
 */
export async function findAcrossTags(
  target: Target,
  wanted: readonly PlannedLayer[],
  digests: Map<string, Digest>,
  encoding: LayerEncoding,
  skip: ReadonlySet<Digest>,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<Map<PlannedLayer, FoundElsewhere>> {
  const found = new Map<PlannedLayer, FoundElsewhere>();
  // Only layers whose every file's digest is known before packing can be looked for — for a part
  // layer, the whole file's digest is enough (learnPartDigests).
  const open = new Set(
    wanted.filter((l) => l.files.every((f) => digests.has(f.path)) || (l.part && digests.has(l.part.path))),
  );
  if (open.size === 0 || !canListTags(target)) return found;
  let tags: string[];
  try {
    tags = (await target.listTags(signal)).filter((t) => isWeightsTag(t, encoding)).sort();
  } catch (err) {
    if (signal?.aborted) throw err;
    warn(
      `cannot list the tags of ${target.displayName} to reuse layers by content (${errorMessage(err)}); changed layers are packed`,
    );
    return found;
  }
  const take = (artifact: PreviousArtifact) => {
    if (skip.has(artifact.descriptor.digest)) return;
    learnPartDigests(artifact, [...open], digests);
    for (const layer of open) {
      const match = findReusable(layer, digests, encoding, artifact);
      if (!match) continue;
      found.set(layer, { layer: match, artifact: artifact.descriptor });
      open.delete(layer);
    }
  };
  for (let i = 0; i < tags.length && open.size > 0; i += PARALLEL_READS) {
    const batch = tags.slice(i, i + PARALLEL_READS);
    const artifacts = await Promise.all(
      batch.map((tag) =>
        loadPreviousArtifact(target, tag, signal).catch((err: unknown) => {
          if (err instanceof DamagedArtifactError) return undefined;
          throw err;
        }),
      ),
    );
    for (const artifact of artifacts) if (artifact) take(artifact);
  }
  return found;
}
