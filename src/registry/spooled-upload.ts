import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DigestMismatchError } from '../content/errors.ts';
import type { BlobWriter, CommittedBlob } from '../content/target.ts';
import { type Digest, Sha256Counter } from '../oci/digest.ts';
import { errnoCode, errorMessage, UserError } from '../util/errors.ts';
import { Backoff, isRetryableNetworkError, isRetryableStatus } from '../util/retry.ts';
import { gaveUp, isUploadSessionGone, RegistryAuthError, RegistryError, retryAfterOf } from './errors.ts';
import type { HttpClient, RequestBody } from './http-client.ts';
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
    const parent = options.spoolDir ?? tmpdir();
    const dir = await mkdtemp(path.join(parent, 'model-oci-spool-')).catch((err: unknown) => {
      throw new UserError(
        `cannot spool a layer for its single-PUT upload in ${parent} (${errnoCode(err) ?? errorMessage(err)}): choose a writable temp directory with room for a layer`,
      );
    });
    const file = await open(path.join(dir, 'blob'), 'w+');
    return new SpooledUpload(dir, file, client, startSession, exists, options.signal);
  }

  private get filePath(): string {
    return path.join(this.dir, 'blob');
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    let at = 0;
    try {
      while (at < chunk.byteLength) {
        const { bytesWritten } = await this.file.write(chunk, at, chunk.byteLength - at);
        at += bytesWritten;
      }
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
      // The layer so far is of no use: free the space before saying so.
      await this.abort();
      throw new UserError(
        `no room to spool a layer for its single-PUT upload in ${path.dirname(this.dir)} (${code} after ${this.hash.size - chunk.byteLength + at} bytes): point the temp directory (RUNNER_TEMP in the Action, TMPDIR for the CLI) at a disk with room for one layer per concurrent upload, or lower the concurrency`,
      );
    }
  }

  async commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob> {
    try {
      await this.file.close();
      const digest = this.hash.digest();
      const size = this.hash.size;
      if (expected && (digest !== expected.digest || size !== expected.size)) {
        throw new DigestMismatchError(
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

  private upload(digest: Digest, size: number): Promise<void> {
    const data = () => createReadStream(this.filePath, { highWaterMark: 1024 * 1024 });
    return putWhole(this.client, this.startSession, this.exists, digest, { data, size }, this.signal);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.file.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A blob in one PUT (POST for a session, PUT with the digest and all bytes). A failed PUT may have left part
 * of the bytes in its session, so each retry starts a new one; a PUT whose answer was lost may have stored
 * the blob, so `exists` is asked before trying again.
 */
export async function putWhole(
  client: HttpClient,
  startSession: () => Promise<UploadSession>,
  exists: (digest: Digest) => Promise<boolean>,
  digest: Digest,
  body: { data: RequestBody; size: number },
  signal: AbortSignal | undefined,
): Promise<void> {
  const backoff = new Backoff(client.retry);
  for (;;) {
    const session = await startSession();
    try {
      await session.finish(digest, signal, body);
      return;
    } catch (err) {
      await session.cancel();
      if (signal?.aborted || err instanceof RegistryAuthError) throw err;
      const status = err instanceof RegistryError ? err.status : undefined;
      // Each attempt has a session of its own, so one the registry dropped is no reason to stop.
      const retryable =
        status === undefined
          ? isRetryableNetworkError(err)
          : isRetryableStatus(status) || isUploadSessionGone(err);
      if (!retryable) throw err;
      if (await exists(digest).catch(() => false)) return;
      if (!(await backoff.next(retryAfterOf(err), signal))) {
        throw gaveUp(err, backoff.attempts - 1);
      }
    }
  }
}
