import { availableParallelism } from 'node:os';
import type { BlobWriter, Target } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { FramePool } from '../pack/frame-pool.ts';
import { HashWorker } from '../pack/hash-worker.ts';
import { type PackContext, type PackInput, packRawBlob, packTarLayer } from '../pack/layer-packer.ts';
import { loadCompressor } from '../pack/zstd.ts';
import { UploadSessionLostError } from '../registry/errors.ts';
import { formatBytes } from '../util/format.ts';
import { mapConcurrent } from '../util/limiter.ts';
import type { LayerRecord } from './artifact.ts';
import type { LayerStatus } from './build-types.ts';
import type { DigestCache } from './digest-cache.ts';
import type { PlannedLayer } from './layers.ts';
import { recordBase } from './reuse.ts';
import { checkUnchanged } from './source.ts';

export interface PackedRecord extends LayerRecord {
  status: LayerStatus;
  uncompressedSize: number;
}

export interface PackLayersOptions {
  target: Target;
  encoding: LayerEncoding;
  level: number;
  frameSize: number;
  /** Layers packed at once. */
  concurrency: number;
  mtime: number;
  /** Known content digests by path; filled in with the ones computed while packing. */
  digests: Map<string, Digest>;
  cache: DigestCache | undefined;
  signal?: AbortSignal;
  onProgress: (bytes: number) => void;
  /** Told when a layer is packed again because the target lost its upload. */
  onWarning?: (message: string) => void;
}

/**
 * Packs the given layers into the target, `concurrency` at a time, all sharing one frame pool (the
 * memory bound) and one hash worker. Returns a record per layer, in the order given.
 */
export async function packLayers(
  layers: readonly PlannedLayer[],
  options: PackLayersOptions,
): Promise<PackedRecord[]> {
  const { target, encoding, digests, cache } = options;
  const hasher = new HashWorker();
  const ctx: PackContext = {
    // Frames in flight: enough to keep every core compressing, plus one being filled per layer.
    pool: new FramePool(options.frameSize, availableParallelism() + options.concurrency + 1),
    hasher,
    mtime: options.mtime,
    onProgress: options.onProgress,
  };
  const compression =
    encoding === 'tar+zstd'
      ? { kind: 'zstd' as const, level: options.level, compressor: loadCompressor() }
      : { kind: 'none' as const };
  try {
    return await mapConcurrent(
      layers,
      options.concurrency,
      async (layer, _i, signal) => {
        const inputs: PackInput[] = layer.files.map((f) => {
          const known = digests.get(f.path);
          return {
            ...f,
            ...(known ? { knownDigest: known } : {}),
            checkUnchanged: (h) => checkUnchanged(f, h),
          };
        });
        const name = layer.files.length === 1 ? layer.files[0]!.path : `the ${layer.kind} layer`;
        const bytes = layer.files.reduce((n, f) => n + f.size, 0);
        const packed = await withFreshWriters(
          target,
          { what: name, bytes, ...(options.onWarning ? { onWarning: options.onWarning } : {}) },
          signal,
          (writer) =>
            encoding === 'raw'
              ? packRawBlob(inputs[0]!, writer, { ...ctx, signal })
              : packTarLayer(inputs, compression, writer, { ...ctx, signal }),
        );
        for (const [i, f] of layer.files.entries()) {
          const digest = packed.files[i]!.digest;
          if (!digests.has(f.path)) cache?.record(f.path, f.statKey, digest);
          digests.set(f.path, digest);
        }
        return {
          ...recordBase(layer, encoding, packed.files),
          digest: packed.digest,
          size: packed.size,
          diffId: packed.diffId,
          status: packed.stored ? 'new' : 'existing',
          uncompressedSize: packed.uncompressedSize,
        };
      },
      options.signal,
    );
  } finally {
    await hasher.close();
  }
}

/**
 * Runs a pack into a new blob writer, and again into another when the target lost the upload midway
 * (CNCF Distribution drops an upload session whose PATCH broke off or whose answer was lost; the
 * bytes are gone from our memory, so the layer is packed again — same files, same bytes), as often
 * as the target allows for its size (Target.writeAttempts). Running out names every loss and its cause.
 */
async function withFreshWriters<T>(
  target: Target,
  layer: { what: string; bytes: number; onWarning?: (message: string) => void },
  signal: AbortSignal | undefined,
  pack: (writer: BlobWriter) => Promise<T>,
): Promise<T> {
  const budget = target.writeAttempts?.(layer.bytes) ?? 1;
  const losses: string[] = [];
  for (;;) {
    const writer = await target.openBlobWriter(signal);
    try {
      return await pack(writer);
    } catch (err) {
      if (!(err instanceof UploadSessionLostError) || signal?.aborted) throw err;
      losses.push(`${losses.length + 1}) ${err.why} after ${formatBytes(err.confirmed)} confirmed`);
      if (losses.length >= budget) {
        throw new Error(
          `${layer.what}: the registry lost all ${budget} upload sessions a layer of ${formatBytes(layer.bytes)} may use: ${losses.join('; ')}`,
        );
      }
      layer.onWarning?.(
        `${layer.what}: upload session ${losses.length} of at most ${budget} lost (${err.why}); packing the layer again`,
      );
    }
  }
}
