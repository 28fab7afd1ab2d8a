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
