import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import {
  ANNOTATION,
  type LayerEncoding,
  modelLayerMediaType,
  parseModelLayerMediaType,
} from '../oci/media-types.ts';
import { END_OF_ARCHIVE, entrySize, type TarFileMeta } from '../pack/tar-header.ts';
import type { LayerReport } from './build-types.ts';
import type { PlannedLayer } from './layers.ts';
import { encodePart, type PartInfo } from './parts.ts';
import type { PreviousArtifact, PreviousLayer } from './previous.ts';
import type { DigestedFile } from './weights-digest.ts';

function sameFiles(a: readonly DigestedFile[], b: readonly DigestedFile[]): boolean {
  return (
    a.length === b.length &&
    a.every((f, i) => f.path === b[i]!.path && f.size === b[i]!.size && f.digest === b[i]!.digest)
  );
}

/** Where a planned layer can come from without packing: the same files in the same kind of layer. */
export function findReusable(
  layer: PlannedLayer,
  digests: Map<string, Digest>,
  encoding: LayerEncoding,
  previous?: PreviousArtifact,
) {
  if (!previous || previous.encoding !== encoding) return undefined;
  const wanted = layer.files.map((f) => ({ path: f.path, size: f.size, digest: digests.get(f.path) }));
  if (wanted.some((f) => f.digest === undefined)) return undefined;
  const mediaType = modelLayerMediaType(layer.kind, encoding);
  return previous.layers.find(
    (p) => p.descriptor.mediaType === mediaType && sameFiles(p.files, wanted as DigestedFile[]),
  );
}

/** Size of the tar a layer's files make, for reports on reused layers (no need to read them). */
export function tarSize(files: readonly TarFileMeta[], mtime: number): number {
  return files.reduce((sum, f) => sum + entrySize(f, mtime), END_OF_ARCHIVE);
}

/** The parts of a layer record that come from the plan. */
export function recordBase(layer: PlannedLayer, encoding: LayerEncoding, files: DigestedFile[]) {
  return {
    kind: layer.kind,
    encoding,
    grouped: layer.grouped,
    untested: layer.untested,
    files,
    executable: layer.files.length === 1 && layer.files[0]!.executable,
    ...(layer.part ? { part: { ...layer.part } } : {}),
  };
}

/** A report row for a layer taken over from an existing artifact. */
export function reportReused(layer: PreviousLayer, encoding: LayerEncoding, mtime: number): LayerReport {
  const parsed = parseModelLayerMediaType(layer.descriptor.mediaType);
  return {
    title: layer.descriptor.annotations?.[ANNOTATION.title] ?? layer.descriptor.digest,
    kind: parsed?.kind ?? 'weight',
    mediaType: layer.descriptor.mediaType,
    digest: layer.descriptor.digest,
    size: layer.descriptor.size,
    uncompressedSize:
      encoding === 'raw'
        ? layer.descriptor.size
        : tarSize(
            layer.files.map((f) => ({ ...f, executable: false })),
            mtime,
          ),
    status: 'reused',
    files: layer.files,
  };
}

/**
 * Part digests an earlier artifact vouches for: where it holds a file of the same whole digest
 * split into parts of the same names and sizes, those parts are the same bytes (the whole file is
 * the same, and a part's name and size fix its range). So an unchanged split file — a Hub file
 * known by its sha256 — finds its part layers without reading a byte.
 */
export function learnPartDigests(
  artifact: PreviousArtifact | undefined,
  planned: readonly PlannedLayer[],
  digests: Map<string, Digest>,
): void {
  if (!artifact) return;
  for (const layer of planned) {
    const part = layer.part;
    const file = layer.files[0];
    const whole = part && digests.get(part.path);
    if (!part || !file || !whole || digests.has(file.path)) continue;
    const match = artifact.layers.find(
      (p) =>
        p.part?.path === part.path &&
        p.part.fileDigest === whole &&
        p.files.length === 1 &&
        p.files[0]!.path === file.path &&
        p.files[0]!.size === file.size,
    );
    if (match) digests.set(file.path, match.files[0]!.digest);
  }
}

/** A reused part layer's descriptor, its part annotation rewritten for this artifact (the whole file may differ). */
export function withPart(descriptor: Descriptor, part: PartInfo | undefined): Descriptor {
  if (!part) return descriptor;
  return { ...descriptor, annotations: { ...descriptor.annotations, [ANNOTATION.part]: encodePart(part) } };
}
