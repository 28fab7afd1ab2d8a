import type { LayerEncoding, LayerKind } from '../oci/media-types.ts';
import { classify, OWN_LAYER_THRESHOLD } from './classify.ts';
import { type LayerLimit, needsSplit, type PartInfo, partLength, partName, splitRanges } from './parts.ts';
import type { SourceFile } from './source.ts';

export interface PlannedLayer {
  kind: LayerKind;
  /** Files in archive order (sorted by path). */
  files: SourceFile[];
  /** A layer per file (weights, large files, every raw blob) or one per kind for small files. */
  grouped: boolean;
  untested: boolean;
  /** For a part layer: which bytes of which file (its one entry in `files` is that range). */
  part?: PartInfo;
  /** For a part layer: the whole file. */
  whole?: SourceFile;
}

/** How files too large for the target's layers are split (parts.ts). */
export interface SplitOptions {
  limit: LayerLimit;
  frameSize: number;
  mtime: number;
}

/** The part layers of one file, in order; each reads only its range of the file. */
function partLayers(
  file: SourceFile,
  kind: LayerKind,
  untested: boolean,
  encoding: LayerEncoding,
  split: SplitOptions,
): PlannedLayer[] {
  const length = partLength(file, split.limit, encoding, split.frameSize, split.mtime);
  const ranges = splitRanges(file.size, length);
  return ranges.map((range, i) => {
    const name = partName(file.path, i + 1, ranges.length);
    const part: SourceFile = {
      path: name,
      size: range.size,
      executable: file.executable,
      ...(file.statKey ? { statKey: file.statKey } : {}),
      open: () => file.open({ start: range.offset, end: range.offset + range.size }),
    };
    return {
      kind,
      files: [part],
      grouped: false,
      untested,
      whole: file,
      part: {
        path: file.path,
        index: i + 1,
        count: ranges.length,
        offset: range.offset,
        size: range.size,
        fileSize: file.size,
      },
    };
  });
}

/** Small files of these kinds share one layer per kind, in this order around the single-file layers. */
const GROUPS_BEFORE: readonly LayerKind[] = ['weight.config'];
const GROUPS_AFTER: readonly LayerKind[] = ['code', 'doc', 'dataset'];

/**
 * Splits the files into layers. `raw` has one blob per file. Tar encodings give every weight file
 * and every file over 10 MiB a layer of its own — so a changed shard re-packs only that shard — and
 * put the small files of each kind together: tokenizer/config first (what a loader reads first),
 * then the single-file layers by path, then code, docs and datasets. With `split`, a file whose
 * layer could exceed the target's limit becomes consecutive part layers instead (parts.ts).
 */
export function planLayers(
  files: readonly SourceFile[],
  encoding: LayerEncoding,
  split?: SplitOptions,
): PlannedLayer[] {
  const singles: PlannedLayer[] = [];
  const groups = new Map<LayerKind, PlannedLayer>();
  for (const file of files) {
    const { kind, untested } = classify(file.path);
    if (encoding === 'raw' || kind === 'weight' || file.size > OWN_LAYER_THRESHOLD) {
      // An unknown file big enough for its own layer is most likely weights in a format we do not know.
      const ownKind = untested && file.size > OWN_LAYER_THRESHOLD ? 'weight' : kind;
      if (split && needsSplit(file, split.limit, encoding, split.frameSize, split.mtime))
        singles.push(...partLayers(file, ownKind, untested, encoding, split));
      else singles.push({ kind: ownKind, files: [file], grouped: false, untested });
      continue;
    }
    let group = groups.get(kind);
    if (!group) {
      group = { kind, files: [], grouped: true, untested: false };
      groups.set(kind, group);
    }
    group.files.push(file);
    group.untested ||= untested;
  }
  const grouped = (kinds: readonly LayerKind[]): PlannedLayer[] =>
    kinds.flatMap((k) => {
      const g = groups.get(k);
      return g ? [g] : [];
    });
  return [...grouped(GROUPS_BEFORE), ...singles, ...grouped(GROUPS_AFTER)];
}
