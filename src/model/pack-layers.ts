import { availableParallelism } from 'node:os';
import type { Target } from '../content/target.ts';
import { writeWithRetries } from '../content/write-retries.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import { FramePool } from '../pack/frame-pool.ts';
import { type PackContext, type PackInput, packRawBlob, packTarLayer } from '../pack/layer-packer.ts';
import { checkPromised } from '../pack/source-reader.ts';
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
  /** One layer: packed, retried when the target loses its upload, its file digests recorded. */
  const packOne = async (
    layer: PlannedLayer,
    signal: AbortSignal,
    chain?: { id: number },
  ): Promise<PackedRecord> => {
    const inputs = (chainHash?: number): PackInput[] =>
      layer.files.map((f) => {
        const known = digests.get(f.path);
        return {
          ...f,
          ...(known ? { knownDigest: known } : {}),
          ...(f.digest ? { expectDigest: f.digest } : {}),
          ...(chainHash !== undefined ? { chainHash } : {}),
        };
      });
    // Each attempt feeds a fork of the chain; the one that succeeds becomes the chain.
    let attempt: number | undefined;
    const attemptInputs = async () => {
      if (!chain) return inputs();
      if (attempt !== undefined) await hasher.drop(attempt);
      attempt = await hasher.fork(chain.id);
      return inputs(attempt);
    };
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
      async (writer) => {
        const files = await attemptInputs();
        return encoding === 'raw'
          ? packRawBlob(files[0]!, writer, { ...ctx, signal })
          : packTarLayer(files, compression, writer, { ...ctx, signal });
      },
    );
    if (chain && attempt !== undefined) {
      await hasher.drop(chain.id);
      chain.id = attempt;
    }
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
  };

  /**
   * The part layers of one file, one after the other. When all of them are packed, the whole
   * file's sha256 is computed over them in the same read (a chained hash), and checked against the
   * digest its source promised (the Hub's) before the manifest can name it.
   */
  const packParts = async (parts: readonly PlannedLayer[], signal: AbortSignal): Promise<PackedRecord[]> => {
    const whole = parts[0]!.whole!;
    const chain = parts.length === parts[0]!.part!.count ? { id: hasher.create() } : undefined;
    const records: PackedRecord[] = [];
    for (const part of parts) records.push(await packOne(part, signal, chain));
    if (chain !== undefined) {
      const { digest } = await hasher.digest(chain.id);
      checkPromised(whole.path, digest, whole.digest);
      if (!digests.has(whole.path) && whole.statKey) cache?.record(whole.path, whole.statKey, digest);
      digests.set(whole.path, digest);
    } else if (!digests.has(whole.path)) {
      throw new Error(`${whole.path}: some parts were reused, yet the file's digest is not known`);
    }
    return records;
  };

  // Jobs: a layer, or all the part layers of one file (consecutive in the plan).
  const jobs: PlannedLayer[][] = [];
  for (const layer of layers) {
    const last = jobs.at(-1);
    if (layer.whole && last?.[0]?.whole === layer.whole) last.push(layer);
    else jobs.push([layer]);
  }
  try {
    const packed = await mapConcurrent(
      jobs,
      options.concurrency,
      (job, _i, signal) =>
        job[0]!.whole ? packParts(job, signal) : packOne(job[0]!, signal).then((r) => [r]),
      options.signal,
    );
    return packed.flat();
  } finally {
    await hasher.close();
  }
}
