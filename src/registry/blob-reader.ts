import { RangeUnsupportedError } from '../content/errors.ts';
import { verifiedStream } from '../content/verified-stream.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { Backoff, isRetryableNetworkError } from '../util/retry.ts';
import { RegistryError, redactUrl } from './errors.ts';
import { describeNetworkError, type HttpClient, header } from './http-client.ts';

export interface BlobLocation {
  client: HttpClient;
  /** `/v2/<name>/blobs/<digest>` */
  path: string;
  scopes: readonly string[];
  notFound: () => Error;
}

/**
 * A storage backend the registry redirected to refused a URL it handed out a moment ago: a
 * presigned URL that expired (GHCR's live about ten minutes, S3's as configured) between the
 * redirect and its use, or while a long part was resumed. Asking the registry again gives a fresh
 * one, so this is retried like a dropped connection.
 */
function isExpiredRedirect(err: unknown, registryOrigin: string): boolean {
  if (!(err instanceof RegistryError) || (err.status !== 401 && err.status !== 403)) return false;
  try {
    return new URL(err.url).origin !== registryOrigin;
  } catch {
    return false;
  }
}

/**
 * The bytes `[start, end)` of a blob, unverified, surviving dropped, truncated or reset transfers:
 * each failure asks again with `Range: bytes=N-` for what is still missing (with a fresh retry
 * budget whenever the transfer got further than the last time), and every request starts at the
 * registry, so redirects are followed per request and an expired presigned URL is replaced. A
 * server that ignores Range answers 200: tolerated when the whole blob was asked for (the part we
 * have is skipped), RangeUnsupportedError otherwise.
 */
export async function fetchRangeResuming(
  at: BlobLocation,
  desc: Descriptor,
  start: number,
  end: number,
  signal: AbortSignal | undefined,
): Promise<AsyncIterable<Uint8Array>> {
  const { client } = at;
  // `bytes=17-16` is no range at all (a 416): nothing to ask for.
  if (start === end && desc.size > 0) return (async function* () {})();
  const wholeBlob = start === 0 && end === desc.size;
  const open = async (from: number) => {
    const ranged = from > 0 || !wholeBlob;
    const res = await client.send({
      method: 'GET',
      url: at.path,
      headers: ranged ? { range: `bytes=${from}-${end - 1}` } : {},
      scopes: at.scopes,
      expect: ranged ? [200, 206, 404] : [200, 404],
      signal,
    });
    if (res.status === 404) {
      await res.body.dump();
      throw at.notFound();
    }
    if (res.status === 200 && ranged && !wholeBlob) {
      res.body.destroy();
      throw new RangeUnsupportedError(`GET ${res.url.pathname}: the registry ignores Range requests`);
    }
    if (res.status === 206 && !header(res.headers, 'content-range')?.startsWith(`bytes ${from}-`)) {
      res.body.destroy();
      throw new RegistryError(`GET ${res.url.pathname}: the registry answered another range than asked`, {
        method: 'GET',
        url: res.url,
        status: 206,
      });
    }
    return { body: res.body, skip: res.status === 200 ? from : 0 };
  };
  const retryOpen = async (from: number, backoff: Backoff) => {
    const origin = await client.baseUrl(signal);
    for (;;) {
      try {
        return await open(from);
      } catch (err) {
        if (signal?.aborted || !isExpiredRedirect(err, origin)) throw err;
        if (!(await backoff.next(undefined, signal))) throw err;
      }
    }
  };
  let backoff = new Backoff(client.retry);
  const first = await retryOpen(start, backoff);
  const wanted = end - start;
  async function* bytes(): AsyncGenerator<Uint8Array> {
    let received = 0;
    let current = first;
    /** Where the last failure left off: a transfer that got further since earns a fresh retry budget. */
    let failedAt = -1;
    for (;;) {
      try {
        for await (const chunk of current.body as AsyncIterable<Buffer>) {
          let piece: Uint8Array = chunk;
          if (current.skip > 0) {
            const drop = Math.min(current.skip, piece.byteLength);
            current.skip -= drop;
            piece = piece.subarray(drop);
            if (piece.byteLength === 0) continue;
          }
          if (received + piece.byteLength > wanted) piece = piece.subarray(0, wanted - received);
          received += piece.byteLength;
          if (piece.byteLength > 0) yield piece;
          if (received === wanted) {
            current.body.destroy();
            return;
          }
        }
        if (received === wanted) return;
        throw Object.assign(new Error(`the transfer ended after ${received} of ${wanted} bytes`), {
          code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
        });
      } catch (err) {
        if (signal?.aborted || !isRetryableNetworkError(err)) throw err;
        if (received > failedAt && failedAt >= 0) backoff = new Backoff(client.retry);
        failedAt = received;
        if (!(await backoff.next(undefined, signal))) {
          const url = `${await client.baseUrl()}${at.path}`;
          throw new RegistryError(
            `GET ${redactUrl(url)}: the transfer broke off after ${start + received} of ${desc.size} bytes: ` +
              `${describeNetworkError(err, client.hints, client.host)} (gave up after ${backoff.attempts - 1} attempts)`,
            { method: 'GET', url, cause: err },
          );
        }
        current = await retryOpen(start + received, backoff);
      }
    }
  }
  return bytes();
}

/** A whole blob, resuming as fetchRangeResuming does, verified against the descriptor as it streams. */
export async function fetchBlobResuming(
  at: BlobLocation,
  desc: Descriptor,
  signal: AbortSignal | undefined,
): Promise<AsyncIterable<Uint8Array>> {
  const bytes = await fetchRangeResuming(at, desc, 0, desc.size, signal);
  return verifiedStream(desc, bytes, `${at.client.host}${at.path}`);
}
