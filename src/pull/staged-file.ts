import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import type { Digest } from '../oci/digest.ts';

/** A point in the file where the caller wants the digest of everything before it (a resume checkpoint). */
interface Mark {
  at: number;
  reached: (prefixDigest: Digest) => Promise<void> | void;
}

/**
 * A file being written in pull's state folder, at increasing offsets, hashed as it is written.
 * It becomes part of the model only once the caller has checked everything (its digest here, the
 * layer's blob digest and diffID) and renames it into place.
 */
export class StagedFile {
  readonly tempPath: string;
  private readonly handle: FileHandle;
  private readonly hash: Hash;
  private marks: Mark[] = [];
  /** Bytes in the file so far. */
  written: number;

  private constructor(tempPath: string, handle: FileHandle, hash: Hash, written: number) {
    this.tempPath = tempPath;
    this.handle = handle;
    this.hash = hash;
    this.written = written;
  }

  /** A new, empty file (an old one of that name is replaced). */
  static async create(tempPath: string): Promise<StagedFile> {
    const handle = await open(tempPath, 'w', 0o644);
    return new StagedFile(tempPath, handle, createHash('sha256'), 0);
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
    alsoHash?: Hash,
  ): Promise<StagedFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(tempPath, 'r+');
    } catch {
      return undefined;
    }
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(4 << 20);
    let at = 0;
    while (at < prefix) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, prefix - at), at);
      if (bytesRead === 0) break;
      const piece = buf.subarray(0, bytesRead);
      hash.update(piece);
      alsoHash?.update(piece);
      at += bytesRead;
    }
    if (at !== prefix || `sha256:${hash.copy().digest('hex')}` !== prefixDigest) {
      await handle.close();
      return undefined;
    }
    await handle.truncate(prefix);
    return new StagedFile(tempPath, handle, hash, prefix);
  }

  /** Calls `reached` with the digest of bytes [0, at) once they are written (and synced to disk). */
  markAt(at: number, reached: Mark['reached']): void {
    if (at <= this.written) return;
    this.marks.push({ at, reached });
  }

  async write(chunk: Uint8Array): Promise<void> {
    let rest = chunk;
    while (rest.byteLength > 0) {
      const mark = this.marks[0];
      const take =
        mark && mark.at < this.written + rest.byteLength ? mark.at - this.written : rest.byteLength;
      const piece = rest.subarray(0, take);
      rest = rest.subarray(take);
      if (piece.byteLength > 0) {
        this.hash.update(piece);
        let done = 0;
        while (done < piece.byteLength) {
          const { bytesWritten } = await this.handle.write(
            piece,
            done,
            piece.byteLength - done,
            this.written,
          );
          done += bytesWritten;
          this.written += bytesWritten;
        }
      }
      if (mark && this.written === mark.at) {
        this.marks.shift();
        await this.handle.datasync();
        await mark.reached(`sha256:${this.hash.copy().digest('hex')}`);
      }
    }
  }

  /** Flushes and closes; the digest and size of what was written. */
  async finish(): Promise<{ digest: Digest; size: number }> {
    await this.handle.datasync();
    await this.handle.close();
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.written };
  }

  /** Closes without keeping the bytes. */
  async discard(): Promise<void> {
    await this.handle.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }

  /** Closes and keeps the bytes for a later attempt to resume. */
  async keep(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}
