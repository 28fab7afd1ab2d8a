import { verifiedStream } from '../content/verified-stream.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { RegistryError, redactUrl } from './errors.ts';
import { describeNetworkError, type HttpClient, header } from './http-client.ts';
import { Backoff, isRetryableNetworkError } from './retry.ts';

/**
 * A blob GET that survives a dropped or truncated transfer: it asks again with `Range: bytes=N-`
 * for what is still missing (a server that ignores Range resends it all, and the part we have is
 * skipped). The bytes are verified against the descriptor's size and digest as they pass.
 */
export async function fetchBlobResuming(
  client: HttpClient,
  path: string,
  scopes: readonly string[],
  desc: Descriptor,
  signal: AbortSignal | undefined,
  notFound: () => Error,
): Promise<AsyncIterable<Uint8Array>> {
  const open = async (from: number) => {
    const res = await client.send({
      method: 'GET',
      url: path,
      headers: from > 0 ? { range: `bytes=${from}-` } : {},
      scopes,
      expect: from > 0 ? [200, 206, 404] : [200, 404],
      signal,
    });
    if (res.status === 404) {
      await res.body.dump();
      throw notFound();
    }
    const skip = from > 0 && res.status === 200 ? from : 0;
    if (
      from > 0 &&
      res.status === 206 &&
      !header(res.headers, 'content-range')?.startsWith(`bytes ${from}-`)
    ) {
      res.body.destroy();
      throw new RegistryError(`GET ${res.url.pathname}: the registry answered another range than asked`, {
        method: 'GET',
        url: res.url,
        status: 206,
      });
    }
    return { body: res.body, skip };
  };
  const first = await open(0);
  async function* bytes(): AsyncGenerator<Uint8Array> {
    let received = 0;
    let current = first;
    let backoff = new Backoff(client.retry);
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
          received += piece.byteLength;
          yield piece;
        }
        if (received >= desc.size) return;
        throw Object.assign(new Error(`the transfer ended after ${received} of ${desc.size} bytes`), {
          code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
        });
      } catch (err) {
        if (signal?.aborted || !isRetryableNetworkError(err)) throw err;
        if (received > failedAt && failedAt >= 0) backoff = new Backoff(client.retry);
        failedAt = received;
        if (!(await backoff.next(undefined, signal))) {
          const url = `${await client.baseUrl()}${path}`;
          throw new RegistryError(
            `GET ${redactUrl(url)}: the transfer broke off after ${received} of ${desc.size} bytes: ` +
              `${describeNetworkError(err, client.hints, client.host)} (gave up after ${backoff.attempts - 1} attempts)`,
            { method: 'GET', url, cause: err },
          );
        }
        current = await open(received);
      }
    }
  }
  return verifiedStream(desc, bytes(), `${client.host}${path}`);
}
