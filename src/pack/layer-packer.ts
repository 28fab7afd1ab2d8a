import type { BlobWriter } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import { throwIfAborted, UserError } from '../util/errors.ts';
import type { HashWorker } from '../util/hash-worker.ts';
import type { FramePool } from './frame-pool.ts';
import { checkPromised, type SourceReader } from './source-reader.ts';
import { type Frame, TarFramer } from './tar-framer.ts';
import { END_OF_ARCHIVE, encodeFileHeader, paddingFor, type TarFileMeta } from './tar-header.ts';
import type { FrameCompressor } from './zstd.ts';

/** One file to pack, as the source scan saw it. */
export interface PackInput extends TarFileMeta {
  open(): Promise<SourceReader>;
  /** Content digest when already known (digest cache); it is then not computed again. */
  knownDigest?: Digest;
  /**
   * The digest the source promises (the Hub's sha256): computed anyway and checked before the
   * layer is committed, so bytes that differ never become a blob.
   */
  expectDigest?: Digest;
  /**
   * A hash (in the context's hasher) that also gets this file's bytes: the whole file's sha256
   * over the part layers of one file, packed one after the other.
   */
  chainHash?: number;
}

export interface PackedFile {
  path: string;
  size: number;
  digest: Digest;
}

export interface PackedBlob {
  /** Digest and size of the blob as stored (compressed, for tar+zstd). */
  digest: Digest;
  size: number;
  /** Digest and size of the uncompressed content: the tar stream, or the file for raw blobs. */
  diffId: Digest;
  uncompressedSize: number;
  stored: boolean;
  files: PackedFile[];
}

export type TarCompression = { kind: 'zstd'; level: number; compressor: FrameCompressor } | { kind: 'none' };

/** What every layer of one build shares: the memory bound, the hash thread, the tar mtime. */
export interface PackContext {
  pool: FramePool;
  hasher: HashWorker;
  /** Seconds since the epoch, written into every tar entry. */
  mtime: number;
  signal?: AbortSignal;
  /** Called with the number of source bytes just read. */
  onProgress?: (bytes: number) => void;
}

function shrank(file: PackInput): UserError {
  return new UserError(`${file.path} changed while it was being packed; run again when it is stable`);
}

/**
 * Pushes frames through hashing (worker thread), compression (threadpool) and the writer (in
 * order). Each frame returns to the pool once written, which is what bounds memory.
 */
class FramePipeline {
  private written: Promise<void> = Promise.resolve();
  private readonly inflight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly tarHashId: number | undefined;
  readonly contentHashIds: (number | undefined)[];

  private readonly files: readonly PackInput[];
  private readonly compression: TarCompression;
  private readonly out: BlobWriter;
  private readonly ctx: PackContext;

  constructor(files: readonly PackInput[], compression: TarCompression, out: BlobWriter, ctx: PackContext) {
    this.files = files;
    this.compression = compression;
    this.out = out;
    this.ctx = ctx;
    // Plain tar: the blob is the tar, so the writer's own digest is the diffID; no second hash.
    this.tarHashId = compression.kind === 'zstd' ? ctx.hasher.create() : undefined;
    this.contentHashIds = files.map((f) =>
      f.knownDigest && !f.expectDigest ? undefined : ctx.hasher.create(),
    );
  }

  readonly emit = async (frame: Frame): Promise<void> => {
    this.throwIfFailed();
    const view = frame.buffer.subarray(0, frame.length);
    const hashing: Promise<void>[] = [];
    if (this.tarHashId !== undefined) hashing.push(this.ctx.hasher.update(this.tarHashId, [view]));
    for (const segment of frame.segments) {
      const bytes = frame.buffer.subarray(segment.start, segment.end);
      const id = this.contentHashIds[segment.file];
      if (id !== undefined) hashing.push(this.ctx.hasher.update(id, [bytes]));
      const chain = this.files[segment.file]!.chainHash;
      if (chain !== undefined) hashing.push(this.ctx.hasher.update(chain, [bytes]));
    }
    const compression = this.compression;
    const output =
      compression.kind === 'zstd'
        ? compression.compressor.compress(view, compression.level)
        : Promise.resolve(view);
    output.catch(() => {}); // observed below, in order
    this.written = this.written.then(async () => {
      if (!this.failure) await this.out.write(await output);
    });
    const settled = Promise.all([this.written, ...hashing])
      .then(
        () => {},
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => {
        this.ctx.pool.release(frame.buffer);
        this.inflight.delete(settled);
      });
    this.inflight.add(settled);
  };

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight);
    this.throwIfFailed();
  }

  async diffId(committed: { digest: Digest; size: number }): Promise<{ digest: Digest; size: number }> {
    return this.tarHashId === undefined ? committed : this.ctx.hasher.digest(this.tarHashId);
  }

  async contentDigest(index: number): Promise<Digest> {
    const id = this.contentHashIds[index];
    return id === undefined ? this.files[index]!.knownDigest! : (await this.ctx.hasher.digest(id)).digest;
  }
}

/**
 * Writes one deterministic tar of `files` (already in archive order) to `out`, zstd-framed or plain,
 * reading each file once: its sha256, the tar's sha256 (diffID) and the blob's sha256 (computed by
 * the writer) all come from that single pass.
 */
export async function packTarLayer(
  files: readonly PackInput[],
  compression: TarCompression,
  out: BlobWriter,
  ctx: PackContext,
): Promise<PackedBlob> {
  const pipeline = new FramePipeline(files, compression, out, ctx);
  const framer = new TarFramer(ctx.pool, pipeline.emit, ctx.signal);
  const contentDigests: Digest[] = [];
  try {
    for (const [index, file] of files.entries()) {
      await framer.writeBytes(encodeFileHeader(file, ctx.mtime));
      const reader = await file.open();
      try {
        const read = await framer.writeFile(index, reader, file.size, ctx.onProgress);
        if (read !== file.size) throw shrank(file);
        await reader.checkUnchanged();
      } finally {
        await reader.close();
      }
      await framer.writeZeros(paddingFor(file.size));
    }
    await framer.writeZeros(END_OF_ARCHIVE);
    await framer.end();
    await pipeline.drain();
    // A hash is finished once: these digests are both checked here and reported below.
    for (const [index, file] of files.entries()) {
      contentDigests[index] = await pipeline.contentDigest(index);
      checkPromised(file.path, contentDigests[index], file.expectDigest);
    }
  } catch (err) {
    framer.discard();
    await pipeline.drain().catch(() => {});
    await out.abort();
    throw err;
  }
  const committed = await out.commit();
  const diff = await pipeline.diffId(committed);
  const packed: PackedFile[] = files.map((file, index) => ({
    path: file.path,
    size: file.size,
    digest: contentDigests[index]!,
  }));
  return {
    digest: committed.digest,
    size: committed.size,
    diffId: diff.digest,
    uncompressedSize: diff.size,
    stored: committed.stored,
    files: packed,
  };
}

const RAW_READ_SIZE = 1 << 20;

/** A `raw` blob: the file's bytes, unchanged. Its digest is the file's content digest and diffID. */
export async function packRawBlob(file: PackInput, out: BlobWriter, ctx: PackContext): Promise<PackedBlob> {
  try {
    const reader = await file.open();
    try {
      let position = 0;
      while (position < file.size) {
        throwIfAborted(ctx.signal);
        const buffer = Buffer.allocUnsafe(Math.min(RAW_READ_SIZE, file.size - position));
        const { bytesRead } = await reader.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) throw shrank(file);
        if (file.chainHash !== undefined)
          await ctx.hasher.update(file.chainHash, [buffer.subarray(0, bytesRead)]);
        await out.write(buffer.subarray(0, bytesRead));
        position += bytesRead;
        ctx.onProgress?.(bytesRead);
      }
      await reader.checkUnchanged();
    } finally {
      await reader.close();
    }
  } catch (err) {
    await out.abort();
    throw err;
  }
  // The writer hashes what it stores, and for a raw blob that is the file's content digest: the
  // commit checks it against the digest known or promised (a mismatch publishes nothing).
  const expected = file.expectDigest ?? file.knownDigest;
  const committed = await out.commit(expected ? { digest: expected, size: file.size } : undefined);
  return {
    digest: committed.digest,
    size: committed.size,
    diffId: committed.digest,
    uncompressedSize: committed.size,
    stored: committed.stored,
    files: [{ path: file.path, size: file.size, digest: committed.digest }],
  };
}
