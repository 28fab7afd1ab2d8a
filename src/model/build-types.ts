import type { Target } from '../content/target.ts';
import type { Platform } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding, LayerKind } from '../oci/media-types.ts';
import type { FrameCompressor } from '../pack/zstd.ts';
import type { CacheMatch } from './digest-cache.ts';
import type { PublishedImageForm } from './image-form.ts';
import type { LayerLimit } from './parts.ts';
import type { SourceFile } from './source.ts';
import type { DigestedFile } from './weights-digest.ts';

export type BuildPhase = 'scan' | 'hash' | 'pack' | 'record';

export type BuildEvent =
  | { type: 'phase'; phase: BuildPhase; message: string }
  | { type: 'progress'; phase: 'hash' | 'pack'; done: number; total: number }
  /** Something the user should hear although the build goes on (e.g. why every layer is re-packed). */
  | { type: 'warning'; message: string };

/** Files listed by a source other than a local directory (a Hugging Face revision). */
export interface PreparedSource {
  /** How messages name it (`hf://org/model@<commit>`). */
  description: string;
  files: SourceFile[];
}

export interface BuildOptions {
  /** The model directory, or the files of another source. */
  source: string | PreparedSource;
  name: string;
  target: Target;
  /** The tag this build is for; the previous artifact under it is where layers are reused from. */
  tag: string;
  extraTags?: readonly string[];
  encoding?: LayerEncoding;
  /** zstd level for tar+zstd (1–22, default 3). */
  level?: number;
  /** Uncompressed bytes per zstd frame. */
  frameSize?: number;
  include?: readonly string[];
  exclude?: readonly string[];
  annotations?: Readonly<Record<string, string>>;
  /** Build even if an artifact with these weights exists, and re-pack every layer. */
  force?: boolean;
  /** Ignore the digest cache and hash every file again (the cache is then refreshed). */
  verify?: boolean;
  /**
   * The digest cache: `{ file }` a given file, `{ dir }` one file per model directory under it,
   * false or absent none.
   */
  digestCache?: false | { file: string } | { dir: string };
  /** How cache entries are matched to files (default strict; see CacheMatch). */
  digestCacheMatch?: CacheMatch;
  /** Seconds since the epoch written into every tar entry (SOURCE_DATE_EPOCH at the config edge; default 0). */
  mtime?: number;
  /** Compresses tar+zstd frames; chooseCompressor() when absent. */
  compressor?: FrameCompressor;
  /**
   * Other repositories of the same registry to reuse layers from when the target has no earlier
   * artifact of this model: their blobs are mounted, not uploaded.
   */
  reuseFrom?: readonly Target[];
  /**
   * The artifact's `org.opencontainers.image.created` (RFC 3339), or none — a build stamps no clock
   * time of its own, so it stays reproducible (the config edge derives it from SOURCE_DATE_EPOCH).
   */
  createdAt?: string;
  /** The runtime the model needs, `<name> <semver range>` (e.g. `vllm >=0.8 <0.9`); recorded on the manifest. */
  runtime?: string;
  /** Layers packed at once; frames in flight are bounded separately. */
  concurrency?: number;
  /**
   * Also publish the image form (the same layer blobs as a plain OCI image per platform, under an
   * index tagged `<tag>-image`): what containerd and Kubernetes image volumes load. Tar encodings only.
   */
  imageForm?: { platforms: readonly Platform[] };
  /**
   * The most bytes one layer may have in the target (a registry's limit): a file whose layer could
   * exceed it becomes part layers (model/parts.ts).
   */
  layerLimit?: LayerLimit;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

/**
 * new: packed and stored; existing: packed, but the target already had the blob; reused: taken
 * from the previous artifact without packing; mounted: taken from another repository of the
 * registry (`reuseFrom`) without sending its bytes.
 */
export type LayerStatus = 'new' | 'existing' | 'reused' | 'mounted';

export interface LayerReport {
  title: string;
  kind: LayerKind;
  mediaType: string;
  digest: Digest;
  size: number;
  uncompressedSize: number;
  status: LayerStatus;
  files: DigestedFile[];
}

/** How reports name a layer: its one file's path, or its kind and how many files it holds. */
export function layerLabel(layer: Pick<LayerReport, 'kind' | 'files'>): string {
  if (layer.files.length === 1) return layer.files[0]!.path;
  return `${layer.kind} (${layer.files.length} files)`;
}

export interface BuildResult {
  status: 'built' | 'skipped';
  /** Why nothing was built, when skipped; why a manifest was written for weights already there. */
  reason?: string;
  name: string;
  target: string;
  digest: Digest;
  manifestSize: number;
  weightsDigest: Digest;
  encoding: LayerEncoding;
  tags: string[];
  layers: LayerReport[];
  /** Source bytes read (hashing and packing). */
  bytesRead: number;
  /** Blob bytes newly stored in the target. */
  bytesWritten: number;
  /** Whole milliseconds. */
  durationMs: number;
  /** The artifact's `org.opencontainers.image.created`, when it has one. */
  created?: string;
  /** The runtime requirement recorded on the artifact (`io.model-oci.runtime.requires`). */
  runtime?: string;
  /** The image form, when asked for: its index digest, tags and platforms. */
  image?: PublishedImageForm;
}

export const DEFAULT_LEVEL = 3;
/** Measured best of 4–32 MiB on 2 cores (docs/benchmarks.md): fastest, least memory, same ratio. */
export const DEFAULT_FRAME_SIZE = 4 * 1024 * 1024;

/** Turns byte counts from the hasher or packer into progress events. */
export class Progress {
  done = 0;
  private readonly total: number;
  private readonly phase: 'hash' | 'pack';
  private readonly onEvent: ((event: BuildEvent) => void) | undefined;
  constructor(phase: 'hash' | 'pack', total: number, onEvent?: (event: BuildEvent) => void) {
    this.phase = phase;
    this.total = total;
    this.onEvent = onEvent;
  }
  readonly add = (bytes: number): void => {
    this.done += bytes;
    this.onEvent?.({ type: 'progress', phase: this.phase, done: this.done, total: this.total });
  };
}
