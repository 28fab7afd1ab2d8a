import { randomBytes } from 'node:crypto';
import { mkdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Digest, Sha256Counter } from '../../oci/digest.ts';
import { SequentialFileWriter } from '../../util/direct-file.ts';
import { errnoCode } from '../../util/errors.ts';
import { fsyncDir } from '../../util/fs-atomic.ts';
import { DigestMismatchError } from '../errors.ts';
import type { BlobWriter, CommittedBlob } from '../target.ts';

/**
 * Writes a blob to a temp file in the layout's ingest folder, hashing as it goes; commit checks the
 * digest, fsyncs, and renames into blobs/sha256 — so a blob file is either complete or absent.
 */
export class BlobFileWriter implements BlobWriter {
  private readonly hash = new Sha256Counter();
  private done = false;

  private readonly file: SequentialFileWriter;
  private readonly tempPath: string;
  private readonly blobPath: (digest: Digest) => string;

  private constructor(file: SequentialFileWriter, tempPath: string, blobPath: (digest: Digest) => string) {
    this.file = file;
    this.tempPath = tempPath;
    this.blobPath = blobPath;
  }

  static async open(
    ingestDir: string,
    blobPath: (digest: Digest) => string,
    directIo = true,
  ): Promise<BlobFileWriter> {
    const tempPath = path.join(ingestDir, `${process.pid}-${randomBytes(8).toString('hex')}.partial`);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(ingestDir, { recursive: true });
        return new BlobFileWriter(
          await SequentialFileWriter.create(tempPath, { direct: directIo }),
          tempPath,
          blobPath,
        );
      } catch (err) {
        // Another writer removed the empty folder while we made or used it: make it again.
        if (errnoCode(err) !== 'ENOENT' || attempt >= 10) throw err;
      }
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    await this.file.write(chunk);
  }

  async commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob> {
    const digest = this.hash.digest();
    const size = this.hash.size;
    if (expected && (digest !== expected.digest || size !== expected.size)) {
      await this.abort();
      throw new DigestMismatchError(
        `blob verification failed: got ${digest} (${size} bytes), expected ${expected.digest} (${expected.size} bytes)`,
      );
    }
    const target = this.blobPath(digest);
    const exists = await stat(target).then(
      (s) => s.size === size,
      (err: unknown) => {
        if (errnoCode(err) === 'ENOENT') return false;
        throw err;
      },
    );
    if (exists) {
      await this.abort();
      return { digest, size, stored: false };
    }
    await this.file.finish();
    await this.file.close();
    this.done = true;
    await rename(this.tempPath, target);
    await fsyncDir(path.dirname(target));
    await this.removeIngestDirIfEmpty();
    return { digest, size, stored: true };
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.file.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
    await this.removeIngestDirIfEmpty();
  }

  /** Leaves the layout as tidy as the spec's: the ingest folder goes once no writer uses it. */
  private async removeIngestDirIfEmpty(): Promise<void> {
    await rmdir(path.dirname(this.tempPath)).catch(() => {}); // ENOTEMPTY while another writer is busy
  }
}
