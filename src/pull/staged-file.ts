import { type FileHandle, open, unlink } from 'node:fs/promises';
import type { Digest } from '../oci/digest.ts';
import { SequentialFileWriter } from '../util/direct-file.ts';
import type { HashPool, OffThreadHash } from '../util/off-thread-hash.ts';

export interface StagedFileOptions {
  /** Where the file's sha256 is computed. */
  hashes: HashPool;
  direct?: boolean;
}

/** A point in the file where the caller wants the digest of everything before it (a resume checkpoint). */
interface Mark {
  at: number;
  reached: (prefixDigest: Digest) => Promise<void> | void;
}

/**
 * A file being written in pull's state folder, at increasing offsets, hashed as it is written.
 * It becomes part of the model only once the caller has checked everything (its digest here, the
 * layer's blob digest and diffID) and renames it into place. Written with O_DIRECT where the
 * filesystem allows (util/direct-file.ts): on the machines measured, page-cache writes of a
 * model cost more CPU than decompressing it.
 */
export class StagedFile {
  readonly tempPath: string;
  private readonly writer: SequentialFileWriter;
  private readonly hash: OffThreadHash;
  private marks: Mark[] = [];
  private closed = false;
  /** A range of a file other writers share: discarding it leaves the file. */
  private shared = false;
  /** Bytes in the file so far. */
  written: number;

  private constructor(tempPath: string, writer: SequentialFileWriter, hash: OffThreadHash, written: number) {
    this.tempPath = tempPath;
    this.writer = writer;
    this.hash = hash;
    this.written = written;
  }

  /** A new, empty file (an old one of that name is replaced). */
  static async create(tempPath: string, options: StagedFileOptions): Promise<StagedFile> {
    await unlink(tempPath).catch(() => {});
    const writer = await SequentialFileWriter.create(tempPath, options);
    return new StagedFile(tempPath, writer, options.hashes.stream(), 0);
  }

  /** Writes into `[offset, …)` of a file the parts of one model file share (their assembly). */
  static async region(path: string, offset: number, options: StagedFileOptions): Promise<StagedFile> {
    const file = new StagedFile(
      path,
      await SequentialFileWriter.region(path, offset),
      options.hashes.stream(),
      0,
    );
    file.shared = true;
    return file;
  }

  /**
   * The first `prefix` bytes of an earlier attempt, re-read and hashed; undefined when they are not
   * all there or do not hash to `prefixDigest` (the file is then started over). `alsoHash` is fed
   * the same bytes (the layer's diffID continues over them too).
   */
  static async resume(
    tempPath: string,
    prefix: number,
    prefixDigest: Digest,
    alsoHash: OffThreadHash | undefined,
    options: StagedFileOptions,
  ): Promise<StagedFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(tempPath, 'r+');
    } catch {
      return undefined;
    }
    const hash = options.hashes.stream();
    const buf = Buffer.allocUnsafe(4 << 20);
    let at = 0;
    while (at < prefix) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, prefix - at), at);
      if (bytesRead === 0) break;
      const piece = buf.subarray(0, bytesRead);
      await hash.update(piece);
      await alsoHash?.update(piece);
      at += bytesRead;
    }
    await handle.close();
    if (at !== prefix || (await hash.peek()) !== prefixDigest) return undefined;
    return new StagedFile(
      tempPath,
      await SequentialFileWriter.append(tempPath, prefix, options),
      hash,
      prefix,
    );
  }

  /**
   * Calls `reached` with the digest of bytes [0, at) once they are written (and synced to disk); a
   * mark at the current end is taken at the next write (the caller often learns of a frame start
   * just as the bytes before it were written).
   */
  markAt(at: number, reached: Mark['reached']): void {
    if (at < this.written || at === 0) return;
    this.marks.push({ at, reached });
  }

  private async reach(mark: Mark): Promise<void> {
    await this.writer.checkpoint();
    await mark.reached(await this.hash.peek());
  }

  async write(chunk: Uint8Array): Promise<void> {
    while (this.marks[0] && this.marks[0].at <= this.written) {
      const mark = this.marks.shift()!;
      if (mark.at === this.written) await this.reach(mark);
    }
    let rest = chunk;
    while (rest.byteLength > 0) {
      const mark = this.marks[0];
      const take =
        mark && mark.at < this.written + rest.byteLength ? mark.at - this.written : rest.byteLength;
      const piece = rest.subarray(0, take);
      rest = rest.subarray(take);
      if (piece.byteLength > 0) {
        await this.hash.update(piece);
        await this.writer.write(piece);
        this.written += piece.byteLength;
      }
      if (mark && this.written === mark.at) {
        this.marks.shift();
        await this.reach(mark);
      }
    }
  }

  /** Flushes and closes; the digest and size of what was written. */
  async finish(): Promise<{ digest: Digest; size: number }> {
    await this.writer.finish();
    await this.close();
    return { digest: await this.hash.digest(), size: this.written };
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writer.close().catch(() => {});
  }

  /** Closes without keeping the bytes. */
  async discard(): Promise<void> {
    await this.close();
    if (!this.shared) await unlink(this.tempPath).catch(() => {});
  }

  /** Closes and keeps the bytes for a later attempt to resume (a checkpoint says how many count). */
  async keep(): Promise<void> {
    await this.close();
  }
}
