import { DigestMismatchError } from '../content/errors.ts';
import type { BlobWriter, CommittedBlob } from '../content/target.ts';
import { type Digest, Sha256Counter } from '../oci/digest.ts';
import { errorMessage } from '../util/errors.ts';
import { Backoff, isRetryableNetworkError, isRetryableStatus } from '../util/retry.ts';
import {
  gaveUp,
  isUploadSessionGone,
  RegistryAuthError,
  RegistryError,
  redactUrl,
  retryAfterOf,
  UploadSessionLostError,
} from './errors.ts';
import type { HttpClient } from './http-client.ts';
import { MIN_CHUNK_SIZE, type UploadPolicy } from './upload-policy.ts';
import type { UploadSession } from './upload-session.ts';

/**
 * A blob written in PATCH chunks as it is produced, so packing and uploading overlap: one chunk
 * travels while the next one fills. A chunk stays in memory until the registry confirms it, so
 * after a dropped connection, a timeout or a 5xx we ask the upload URL how much it holds and send
 * only the rest — never bytes the registry already has. A registry that refuses a chunk as too large
 * (416 with nothing taken, as ghcr.io does over 4 MiB) gets smaller pieces from then on. When the
 * upload URL answers 404 instead (CNCF Distribution drops a session whose PATCH broke off mid-body,
 * keeping the part it got), the writer fails with UploadSessionLostError: only a new session, fed
 * from the blob's first byte, can work then.
 */
export class ChunkedUpload implements BlobWriter {
  private readonly hash = new Sha256Counter();
  private filling: Buffer;
  private spare: Buffer | undefined;
  private filled = 0;
  /** Bytes the registry has confirmed. */
  private confirmed = 0;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;
  private done = false;
  private pieceLimit: number;
  private readonly session: UploadSession;
  private readonly client: HttpClient;
  private readonly exists: (digest: Digest) => Promise<boolean>;
  private readonly signal: AbortSignal | undefined;
  private readonly started = performance.now();
  private readonly sessionLimitMs: number | undefined;

  constructor(
    session: UploadSession,
    client: HttpClient,
    policy: Pick<UploadPolicy, 'chunkSize' | 'sessionLimitMs'>,
    exists: (digest: Digest) => Promise<boolean>,
    signal?: AbortSignal,
  ) {
    this.session = session;
    this.client = client;
    this.exists = exists;
    this.signal = signal;
    this.sessionLimitMs = policy.sessionLimitMs;
    const size = Math.max(policy.chunkSize, session.minChunk);
    this.pieceLimit = size;
    this.filling = Buffer.allocUnsafe(size);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.hash.update(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - at, this.filling.byteLength - this.filled);
      this.filling.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.filling.byteLength) await this.ship();
    }
  }

  /** Hands the full buffer to the wire once the previous chunk landed, and fills the other one meanwhile. */
  private async ship(): Promise<void> {
    await this.settle();
    const sending = this.filling;
    const length = this.filled;
    this.filling = this.spare ?? Buffer.allocUnsafe(sending.byteLength);
    this.spare = sending; // free again once this send settles, which the next ship waits for
    this.filled = 0;
    this.inFlight = this.send(sending.subarray(0, length), this.confirmed).catch((err: unknown) => {
      this.failure = err;
    });
  }

  private async settle(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    this.inFlight = undefined;
    if (this.failure) throw this.failure;
  }

  /** Makes the registry hold `bytes` at `offset`, resuming after failures from what it reports. */
  private async send(bytes: Uint8Array, offset: number): Promise<void> {
    const end = offset + bytes.byteLength;
    const backoff = new Backoff(this.client.retry);
    let held = offset;
    while (held < end) {
      const from = held - offset;
      const piece = bytes.subarray(from, Math.min(bytes.byteLength, from + this.pieceLimit));
      let now: number;
      try {
        now = await this.session.patch(piece, held, this.signal);
      } catch (err) {
        if (this.signal?.aborted || err instanceof RegistryAuthError) throw err;
        if (isUploadSessionGone(err)) throw this.gone(err, held);
        const status = err instanceof RegistryError ? err.status : undefined;
        const retryable =
          status === undefined ? isRetryableNetworkError(err) : status === 416 || isRetryableStatus(status);
        if (!retryable) throw err;
        if (!(await backoff.next(retryAfterOf(err), this.signal))) throw gaveUp(err, backoff.attempts - 1);
        const before = held;
        held = await this.received(held, err);
        if (held < offset || held > end) throw this.lost(held, held < offset ? offset : end);
        if (status === 416 && held === before) {
          // Nothing taken and the range was right: the body was too large for this registry.
          if (this.pieceLimit <= MIN_CHUNK_SIZE) throw err;
          this.pieceLimit = Math.max(MIN_CHUNK_SIZE, Math.floor(this.pieceLimit / 2));
        }
        continue;
      }
      if (now < offset || now > end) throw this.lost(now, now < offset ? offset : end);
      // A 2xx that took nothing: bound it, or such a registry would have us send the piece for ever.
      if (now <= held && !(await backoff.next(undefined, this.signal))) {
        throw new RegistryError(
          `PATCH ${redactUrl(this.session.location)}: the registry answers success but keeps none of the bytes from ${held} on (gave up after ${backoff.attempts - 1} attempts)`,
          { method: 'PATCH', url: this.session.location },
        );
      }
      held = now;
    }
    this.confirmed = end;
  }

  /** Where the upload stands after `failure` (a status GET); a session the registry dropped is lost. */
  private async received(at: number, failure: unknown): Promise<number> {
    try {
      return await this.session.received(this.signal);
    } catch (err) {
      if (isUploadSessionGone(err)) throw this.gone(err, at, failure);
      throw err;
    }
  }

  /** The registry answered 404 on the session: it dropped it, maybe holding part of what we sent. */
  private gone(err: RegistryError, at: number, failure?: unknown): UploadSessionLostError {
    const after = failure === undefined ? '' : ` after ${errorMessage(failure)}`;
    const answer = `${err.status ?? ''} ${err.code ?? ''}`.trim();
    return this.sessionLost(
      `upload session lost${after}: ${err.message}. The registry may hold part of the bytes sent from byte ${at} on, ` +
        'so this session cannot go on: the blob has to be uploaded again from its start in a new session',
      failure === undefined
        ? `the registry dropped the session (${answer})`
        : `${shortCause(failure)}, then the registry dropped the session (${answer})`,
      {
        method: err.method,
        url: err.url,
        ...(err.status !== undefined ? { status: err.status } : {}),
        ...(err.code !== undefined ? { code: err.code } : {}),
        cause: err,
      },
    );
  }

  private lost(held: number, expected: number): UploadSessionLostError {
    return this.sessionLost(
      `upload session lost: the registry reports ${held} bytes of the upload where ${expected} were expected; ` +
        'the blob has to be uploaded again from its start in a new session',
      `the registry reported ${held} bytes where ${expected} were expected`,
      { method: 'GET', url: this.session.location },
    );
  }

  /**
   * The error for a lost session, with a short `why` for the list a give-up message shows; a session
   * lost after (about) the registry's time limit is named as cut off, since another try of the same
   * size at the same speed would be cut off again.
   */
  private sessionLost(
    message: string,
    why: string,
    details: { method: string; url: string | URL; status?: number; code?: string; cause?: unknown },
  ): UploadSessionLostError {
    const ageMs = performance.now() - this.started;
    const limit = this.sessionLimitMs;
    const cutOff = limit !== undefined && ageMs >= limit * 0.9;
    const reason = cutOff
      ? `cut off after ${spoken(ageMs)}: the registry ends an upload session after ${spoken(limit)} (${why})`
      : why;
    return new UploadSessionLostError(cutOff ? `${message} (${reason})` : message, {
      ...details,
      why: reason,
      ageMs,
      confirmed: this.confirmed,
    });
  }

  async commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob> {
    try {
      if (this.filled > 0) await this.ship();
      await this.settle();
      const digest = this.hash.digest();
      const size = this.hash.size;
      if (expected && (digest !== expected.digest || size !== expected.size)) {
        throw new DigestMismatchError(
          `blob verification failed: got ${digest} (${size} bytes), expected ${expected.digest} (${expected.size} bytes)`,
        );
      }
      await this.finish(digest);
      this.done = true;
      return { digest, size, stored: true };
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** The final PUT; if its answer is lost, the blob may be there already — HEAD tells. */
  private async finish(digest: Digest): Promise<void> {
    const backoff = new Backoff(this.client.retry);
    for (;;) {
      try {
        await this.session.finish(digest, this.signal);
        return;
      } catch (err) {
        if (this.signal?.aborted || err instanceof RegistryAuthError) throw err;
        if (isUploadSessionGone(err)) {
          // An earlier PUT that went through but whose answer was lost closed the session too.
          if (await this.exists(digest).catch(() => false)) return;
          throw this.gone(err, this.confirmed);
        }
        const status = err instanceof RegistryError ? err.status : undefined;
        const retryable = status === undefined ? isRetryableNetworkError(err) : isRetryableStatus(status);
        if (!retryable) throw err;
        if (await this.exists(digest).catch(() => false)) return;
        if (!(await backoff.next(retryAfterOf(err), this.signal))) throw gaveUp(err, backoff.attempts - 1);
      }
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.inFlight?.catch(() => {});
    await this.session.cancel();
  }
}

/** A duration as people say it: `0.5 s`, `10.0 min`. */
function spoken(ms: number): string {
  return ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** A transport failure in a few words: `PATCH reset (ECONNRESET)`, `PATCH answered 503`. */
function shortCause(err: unknown): string {
  if (err instanceof RegistryError) {
    if (err.status !== undefined)
      return `${err.method} answered ${err.status}${err.code ? ` ${err.code}` : ''}`;
    const code = /\(([A-Z_]+)\)/.exec(err.message)?.[1];
    return `${err.method} broke off${code ? ` (${code})` : ''}`;
  }
  return errorMessage(err).split(':')[0]!;
}
