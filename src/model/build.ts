import { availableParallelism } from 'node:os';
import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import {
  ANNOTATION,
  type LayerEncoding,
  type LayerKind,
  modelLayerMediaType,
  parseModelLayerMediaType,
} from '../oci/media-types.ts';
import { checkTag } from '../oci/reference.ts';
import { hashFiles } from '../pack/file-hasher.ts';
import { FramePool } from '../pack/frame-pool.ts';
import { HashWorker } from '../pack/hash-worker.ts';
import {
  type PackContext,
  type PackedBlob,
  type PackInput,
  packRawBlob,
  packTarLayer,
} from '../pack/layer-packer.ts';
import { END_OF_ARCHIVE, entrySize, reproducibleMtime, type TarFileMeta } from '../pack/tar-header.ts';
import { loadCompressor, MAX_LEVEL, MIN_LEVEL } from '../pack/zstd.ts';
import { UserError } from '../util/errors.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { buildArtifact, type LayerRecord, layerDescriptor, layerTitle } from './artifact.ts';
import { cacheFileFor, DigestCache } from './digest-cache.ts';
import { modelFacts } from './facts.ts';
import { type PlannedLayer, planLayers } from './layers.ts';
import { checkModelName } from './name.ts';
import { loadPreviousArtifact, type PreviousArtifact, type PreviousLayer } from './previous.ts';
import { checkUnchanged, scanModelDir } from './source.ts';
import { type DigestedFile, weightsDigest, weightsTag } from './weights-digest.ts';

export type BuildPhase = 'scan' | 'hash' | 'pack' | 'record';

export type BuildEvent =
  | { type: 'phase'; phase: BuildPhase; message: string }
  | { type: 'progress'; phase: 'hash' | 'pack'; done: number; total: number };

export interface BuildOptions {
  /** The model directory. */
  source: string;
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
  /** The digest cache file; undefined for the per-directory default, false for none. */
  digestCache?: string | false;
  /** Layers packed at once; frames in flight are bounded separately. */
  concurrency?: number;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export type LayerStatus = 'new' | 'existing' | 'reused';

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

export interface BuildResult {
  status: 'built' | 'skipped';
  /** Why nothing was built, when skipped. */
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
  durationMs: number;
}

export const DEFAULT_LEVEL = 3;
/** Measured best of 4–32 MiB on 2 cores (docs/benchmarks.md): fastest, least memory, same ratio. */
export const DEFAULT_FRAME_SIZE = 4 * 1024 * 1024;

function checkOptions(options: BuildOptions): void {
  checkModelName(options.name);
  for (const tag of [options.tag, ...(options.extraTags ?? [])]) {
    try {
      checkTag(tag);
    } catch (err) {
      throw new UserError(err instanceof Error ? err.message : String(err));
    }
  }
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
    throw new UserError(`compression level ${level} is out of range (${MIN_LEVEL}–${MAX_LEVEL})`);
  }
  const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
  if (!Number.isInteger(frameSize) || frameSize < 64 * 1024 || frameSize > 256 * 1024 * 1024) {
    throw new UserError(`frame size ${frameSize} is out of range (64 KiB–256 MiB)`);
  }
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UserError(`concurrency must be a whole number ≥ 1`);
}

function sameFiles(a: readonly DigestedFile[], b: readonly DigestedFile[]): boolean {
  return (
    a.length === b.length &&
    a.every((f, i) => f.path === b[i]!.path && f.size === b[i]!.size && f.digest === b[i]!.digest)
  );
}

/** Where a planned layer can come from without packing: the same files in the same kind of layer. */
function findReusable(
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
function tarSize(files: readonly TarFileMeta[], mtime: number): number {
  return files.reduce((sum, f) => sum + entrySize(f, mtime), END_OF_ARCHIVE);
}

class Progress {
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

/**
 * Turns a model directory into a ModelPack artifact in `target`:
 * scan → digests (cache, or hashing files the previous artifact may still hold) → skip if these
 * weights are already there → pack only layers whose files changed → config, manifest, tags.
 */
export async function buildModel(options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  checkOptions(options);
  const { target, signal } = options;
  const emit = options.onEvent ?? (() => {});
  const encoding = options.encoding ?? 'tar+zstd';
  const mtime = reproducibleMtime();
  const tags = [...new Set([options.tag, ...(options.extraTags ?? [])])];

  emit({ type: 'phase', phase: 'scan', message: `scanning ${options.source}` });
  const files = await scanModelDir(options.source, {
    ...(options.include ? { include: options.include } : {}),
    ...(options.exclude ? { exclude: options.exclude } : {}),
  });
  const root = files[0]!.absPath.slice(0, files[0]!.absPath.length - files[0]!.path.length - 1);
  const cache =
    options.digestCache === false
      ? undefined
      : await DigestCache.load(options.digestCache ?? cacheFileFor(root), root);
  const digests = new Map<string, Digest>();
  if (cache && !options.verify) {
    for (const f of files) {
      const d = cache.lookup(f.path, f.statKey);
      if (d) digests.set(f.path, d);
    }
  }
  const previous = await loadPreviousArtifact(target, options.tag, signal);

  // Files the previous artifact holds at the same size are probably unchanged: hash them first
  // (cheap), so an unchanged model is recognised without packing. Other unknown files cannot match
  // it and are hashed while they are packed, in the same single read.
  const unknown = files.filter((f) => !digests.has(f.path));
  const hashFirst = unknown.filter((f) => previous?.sizes.get(f.path) === f.size);
  let bytesRead = 0;
  if (hashFirst.length > 0) {
    const total = hashFirst.reduce((s, f) => s + f.size, 0);
    emit({
      type: 'phase',
      phase: 'hash',
      message: `hashing ${hashFirst.length} file(s) the previous artifact may hold`,
    });
    const progress = new Progress('hash', total, emit);
    const hashed = await hashFiles(
      hashFirst.map((f) => ({ ...f, checkUnchanged: (h) => checkUnchanged(f, h) })),
      availableParallelism(),
      signal,
      progress.add,
    );
    hashFirst.forEach((f, i) => {
      digests.set(f.path, hashed[i]!);
      cache?.record(f.path, f.statKey, hashed[i]!);
    });
    bytesRead += total;
  }

  const skipIfPresent = async (weights: Digest): Promise<BuildResult | undefined> => {
    if (options.force) return undefined;
    const wTag = weightsTag(weights, encoding);
    const existing =
      previous?.weightsDigest === weights && previous.encoding === encoding
        ? previous
        : await loadPreviousArtifact(target, wTag, signal);
    if (!existing || existing.weightsDigest !== weights || existing.encoding !== encoding) return undefined;
    await target.tag(existing.descriptor, tags, signal);
    await cache?.save();
    const layers: LayerReport[] = existing.layers.map((l) => reportReused(l, encoding, mtime));
    return {
      status: 'skipped',
      reason: `weights ${weights} are already in ${target.displayName} as ${existing.descriptor.digest} (tag ${wTag})`,
      name: options.name,
      target: target.displayName,
      digest: existing.descriptor.digest,
      manifestSize: existing.descriptor.size,
      weightsDigest: weights,
      encoding,
      tags,
      layers,
      bytesRead,
      bytesWritten: 0,
      durationMs: performance.now() - started,
    };
  };

  const allKnown = (): DigestedFile[] =>
    files.map((f) => ({ path: f.path, size: f.size, digest: digests.get(f.path)! }));
  if (digests.size === files.length) {
    const skipped = await skipIfPresent(weightsDigest(allKnown()));
    if (skipped) return skipped;
  }

  const planned = planLayers(files, encoding);
  const records: (LayerRecord & {
    status: LayerStatus;
    uncompressedSize: number;
    descriptor?: Descriptor;
  })[] = [];
  const toPack: { index: number; layer: PlannedLayer }[] = [];
  for (const [index, layer] of planned.entries()) {
    const reusable = options.force ? undefined : findReusable(layer, digests, encoding, previous);
    if (reusable && (await target.hasBlob(reusable.descriptor.digest, signal))) {
      records[index] = {
        ...recordBase(layer, encoding, reusable.files),
        digest: reusable.descriptor.digest,
        size: reusable.descriptor.size,
        diffId: reusable.diffId,
        status: 'reused',
        uncompressedSize: encoding === 'raw' ? reusable.descriptor.size : tarSize(layer.files, mtime),
        descriptor: reusable.descriptor,
      };
    } else {
      toPack.push({ index, layer });
    }
  }

  if (toPack.length > 0) {
    const total = toPack.reduce((s, { layer }) => s + layer.files.reduce((n, f) => n + f.size, 0), 0);
    emit({ type: 'phase', phase: 'pack', message: `packing ${toPack.length} of ${planned.length} layer(s)` });
    const progress = new Progress('pack', total, emit);
    const concurrency = options.concurrency ?? 2;
    const hasher = new HashWorker();
    const ctx: PackContext = {
      // Frames in flight: enough to keep every core compressing, plus one being filled per layer.
      pool: new FramePool(options.frameSize ?? DEFAULT_FRAME_SIZE, availableParallelism() + concurrency + 1),
      hasher,
      mtime,
      ...(signal ? { signal } : {}),
      onProgress: progress.add,
    };
    const compressor = encoding === 'tar+zstd' ? loadCompressor() : undefined;
    try {
      await mapConcurrent(
        toPack,
        concurrency,
        async ({ index, layer }, _i, layerSignal) => {
          const inputs: PackInput[] = layer.files.map((f) => {
            const known = digests.get(f.path);
            return {
              ...f,
              ...(known ? { knownDigest: known } : {}),
              checkUnchanged: (h) => checkUnchanged(f, h),
            };
          });
          const writer = await target.openBlobWriter(layerSignal);
          const layerCtx = { ...ctx, signal: layerSignal };
          const packed: PackedBlob =
            encoding === 'raw'
              ? await packRawBlob(inputs[0]!, writer, layerCtx)
              : await packTarLayer(
                  inputs,
                  compressor
                    ? { kind: 'zstd', level: options.level ?? DEFAULT_LEVEL, compressor }
                    : { kind: 'none' },
                  writer,
                  layerCtx,
                );
          for (const [i, f] of layer.files.entries()) {
            const digest = packed.files[i]!.digest;
            if (!digests.has(f.path)) cache?.record(f.path, f.statKey, digest);
            digests.set(f.path, digest);
          }
          records[index] = {
            ...recordBase(layer, encoding, packed.files),
            digest: packed.digest,
            size: packed.size,
            diffId: packed.diffId,
            status: packed.stored ? 'new' : 'existing',
            uncompressedSize: packed.uncompressedSize,
          };
        },
        signal,
      );
    } finally {
      await hasher.close();
    }
    bytesRead += total;
  }

  const weights = weightsDigest(allKnown());
  // Files hashed while packing could still make up weights that exist under another tag.
  const skipped = await skipIfPresent(weights);
  if (skipped) return { ...skipped, bytesRead };

  emit({ type: 'phase', phase: 'record', message: `writing manifest to ${target.displayName}` });
  const layerDescriptors = records.map((r) => r.descriptor ?? layerDescriptor(r, mtime));
  const artifact = buildArtifact({
    name: options.name,
    mtime,
    ...(process.env.SOURCE_DATE_EPOCH
      ? { createdAt: new Date(mtime * 1000).toISOString().replace('.000Z', 'Z') }
      : {}),
    facts: await modelFacts(files),
    encoding,
    weightsDigest: weights,
    layers: layerDescriptors,
    diffIds: records.map((r) => r.diffId),
    annotations: { ...options.annotations },
  });
  const config = await target.putBlob(artifact.config.descriptor, artifact.config.bytes, signal);
  await target.putManifest(
    artifact.manifest.descriptor,
    artifact.manifest.bytes,
    [...tags, weightsTag(weights, encoding)],
    signal,
  );
  await cache?.save();
  const layers: LayerReport[] = records.map((r, i) => ({
    title: layerTitle(r),
    kind: r.kind,
    mediaType: layerDescriptors[i]!.mediaType,
    digest: r.digest,
    size: r.size,
    uncompressedSize: r.uncompressedSize,
    status: r.status,
    files: r.files,
  }));
  const bytesWritten =
    layers.reduce((s, l) => s + (l.status === 'new' ? l.size : 0), 0) +
    (config.stored ? artifact.config.bytes.byteLength : 0) +
    artifact.manifest.bytes.byteLength;
  return {
    status: 'built',
    name: options.name,
    target: target.displayName,
    digest: artifact.manifest.descriptor.digest,
    manifestSize: artifact.manifest.descriptor.size,
    weightsDigest: weights,
    encoding,
    tags: [...tags, weightsTag(weights, encoding)],
    layers,
    bytesRead,
    bytesWritten,
    durationMs: performance.now() - started,
  };
}

function recordBase(layer: PlannedLayer, encoding: LayerEncoding, files: DigestedFile[]) {
  return {
    kind: layer.kind,
    encoding,
    grouped: layer.grouped,
    untested: layer.untested,
    files,
    executable: layer.files.length === 1 && layer.files[0]!.executable,
  };
}

function reportReused(layer: PreviousLayer, encoding: LayerEncoding, mtime: number): LayerReport {
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
