import { availableParallelism } from 'node:os';
import type { Target } from '../content/target.ts';
import { writeWithRetries } from '../content/write-retries.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { FramePool } from '../pack/frame-pool.ts';
import { type PackContext, type PackInput, packRawBlob, packTarLayer } from '../pack/layer-packer.ts';
import type { FrameCompressor } from '../pack/zstd.ts';
import { HashWorker } from '../util/hash-worker.ts';
import { mapConcurrent } from '../util/limiter.ts';
import type { LayerRecord } from './artifact.ts';
import type { LayerStatus } from './build-types.ts';
import type { DigestCache } from './digest-cache.ts';
import type { PlannedLayer } from './layers.ts';
import { recordBase } from './reuse.ts';

export interface PackedRecord extends LayerRecord {
  status: LayerStatus;
  uncompressedSize: number;
}

export interface PackLayersOptions {
  target: Target;
  encoding: LayerEncoding;
  /** Compresses tar+zstd frames (chooseCompressor). */
  compressor: FrameCompressor;
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
      ? { kind: 'zstd' as const, level: options.level, compressor: options.compressor }
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
            ...(f.digest ? { expectDigest: f.digest } : {}),
          };
        });
        const name = layer.files.length === 1 ? layer.files[0]!.path : `the ${layer.kind} layer`;
        const bytes = layer.files.reduce((n, f) => n + f.size, 0);
        const packed = await writeWithRetries(
          target,
          {
            what: name,
            kind: 'layer',
            bytes,
            signal,
            ...(options.onWarning ? { onWarning: options.onWarning } : {}),
          },
          (writer) =>
            encoding === 'raw'
              ? packRawBlob(inputs[0]!, writer, { ...ctx, signal })
              : packTarLayer(inputs, compression, writer, { ...ctx, signal }),
        );
        for (const [i, f] of layer.files.entries()) {
          const digest = packed.files[i]!.digest;
          if (!digests.has(f.path) && f.statKey) cache?.record(f.path, f.statKey, digest);
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
