import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BlobWriter, CommittedBlob } from '../content/target.ts';
import { type Digest, Sha256Counter } from '../oci/digest.ts';
import { RegistryAuthError, RegistryError } from './errors.ts';
import type { HttpClient } from './http-client.ts';
import { Backoff, isRetryableNetworkError, isRetryableStatus } from './retry.ts';
import type { UploadSession } from './upload-session.ts';

/**
 * For registries that take a blob only in one PUT (no chunked PATCH): the PUT needs the digest in
 * its URL, which a blob being packed has only at the end, so the bytes go to a temp file first and
 * travel in one request at commit. A failed PUT left nothing behind at the registry, so a retry
 * sends the file again in a new session.
 */
export class SpooledUpload implements BlobWriter {
  private readonly hash = new Sha256Counter();
  private done = false;
  private readonly dir: string;
  private readonly file: FileHandle;
  private readonly client: HttpClient;
  private readonly startSession: () => Promise<UploadSession>;
  private readonly exists: (digest: Digest) => Promise<boolean>;
  private readonly signal: AbortSignal | undefined;

  private constructor(
    dir: string,
    file: FileHandle,
    client: HttpClient,
    startSession: () => Promise<UploadSession>,
    exists: (digest: Digest) => Promise<boolean>,
    signal?: AbortSignal,
  ) {
    this.dir = dir;
    this.file = file;
    this.client = client;
    this.startSession = startSession;
    this.exists = exists;
    this.signal = signal;
  }

  static async create(
    client: HttpClient,
    startSession: () => Promise<UploadSession>,
    exists: (digest: Digest) => Promise<boolean>,
    options: { spoolDir?: string | undefined; signal?: AbortSignal | undefined },
  ): Promise<SpooledUpload> {
    const dir = await mkdtemp(path.join(options.spoolDir ?? tmpdir(), 'model-oci-spool-'));
    const file = await open(path.join(dir, 'blob'), 'w+');
    return new SpooledUpload(dir, file, client, startSession, exists, options.signal);
  }

  private get filePath(): string {
    return path.join(this.dir, 'blob');
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      const { bytesWritten } = await this.file.write(chunk, at, chunk.byteLength - at);
      at += bytesWritten;
    }
  }

  async commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob> {
    try {
      await this.file.close();
      const digest = this.hash.digest();
      const size = this.hash.size;
      if (expected && (digest !== expected.digest || size !== expected.size)) {
        throw new Error(
          `blob verification failed: got ${digest} (${size} bytes), expected ${expected.digest} (${expected.size} bytes)`,
        );
      }
      if (await this.exists(digest)) return { digest, size, stored: false };
      await this.upload(digest, size);
      return { digest, size, stored: true };
    } finally {
      await this.abort();
    }
  }

  private async upload(digest: Digest, size: number): Promise<void> {
    const backoff = new Backoff(this.client.retry);
    for (;;) {
      const session = await this.startSession();
      try {
        await session.finish(digest, this.signal, {
          data: () => createReadStream(this.filePath, { highWaterMark: 1024 * 1024 }),
          size,
        });
        return;
      } catch (err) {
        await session.cancel();
        if (this.signal?.aborted || err instanceof RegistryAuthError) throw err;
        const status = err instanceof RegistryError ? err.status : undefined;
        const retryable = status === undefined ? isRetryableNetworkError(err) : isRetryableStatus(status);
        if (!retryable) throw err;
        if (await this.exists(digest).catch(() => false)) return;
        if (!(await backoff.next(undefined, this.signal))) throw err;
      }
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.file.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}
