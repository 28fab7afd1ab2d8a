import type { Digest } from '../oci/digest.ts';
import { RegistryError } from './errors.ts';
import { type HttpClient, header, type RequestBody } from './http-client.ts';

/**
 * One upload session on a registry (`POST /v2/<name>/blobs/uploads/`): where to send the next
 * request and what the registry says it holds. Registries hand out a new Location after every
 * request (CNCF Distribution signs the offset into it), so it is always the latest one we use.
 */
export class UploadSession {
  location: URL;
  /** OCI-Chunk-Min-Length: PATCH bodies other than the last must be at least this long. */
  readonly minChunk: number;
  private readonly client: HttpClient;
  private readonly scopes: readonly string[];

  constructor(client: HttpClient, scopes: readonly string[], location: URL, minChunk: number) {
    this.client = client;
    this.scopes = scopes;
    this.location = location;
    this.minChunk = minChunk;
  }

  /** Starts a session; with `mount`, asks to mount the blob instead (201 → undefined: mounted). */
  static async start(
    client: HttpClient,
    repository: string,
    scopes: readonly string[],
    signal: AbortSignal | undefined,
    mount?: { digest: Digest; from: string },
  ): Promise<UploadSession | undefined> {
    const query = mount
      ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}`
      : '';
    const res = await client.send({
      method: 'POST',
      url: `/v2/${repository}/blobs/uploads/${query}`,
      headers: { 'content-length': '0' },
      scopes,
      expect: mount ? [201, 202] : [202],
      signal,
    });
    await res.body.dump();
    if (res.status === 201) return undefined;
    const location = header(res.headers, 'location');
    if (!location) {
      throw new RegistryError(`POST ${res.url.pathname}: the registry started an upload without a Location`, {
        method: 'POST',
        url: res.url,
        status: res.status,
      });
    }
    const minChunk = Number(header(res.headers, 'oci-chunk-min-length') ?? 0);
    return new UploadSession(
      client,
      scopes,
      new URL(location, res.url),
      Number.isFinite(minChunk) && minChunk > 0 ? minChunk : 0,
    );
  }

  /** Takes the Location a response hands back, if any. */
  follow(res: { headers: Parameters<typeof header>[0]; url: URL }): void {
    const location = header(res.headers, 'location');
    if (location) this.location = new URL(location, res.url);
  }

  /** Asks the registry how many bytes of this upload it holds (GET, `Range: 0-<last>`). */
  async received(signal?: AbortSignal): Promise<number> {
    const res = await this.client.send({
      method: 'GET',
      url: this.location,
      scopes: this.scopes,
      expect: [204, 200, 202],
      signal,
    });
    await res.body.dump();
    this.follow(res);
    return parseRangeEnd(header(res.headers, 'range'));
  }

  /** Sends `bytes` as the part of the blob that starts at `offset`; returns what the registry then holds. */
  async patch(bytes: Uint8Array, offset: number, signal?: AbortSignal): Promise<number> {
    const res = await this.client.send({
      method: 'PATCH',
      url: this.location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${offset}-${offset + bytes.byteLength - 1}`,
        'content-length': String(bytes.byteLength),
      },
      body: bytes,
      scopes: this.scopes,
      expect: [202, 204],
      retry: false, // the caller asks where the upload stands and resends only what is missing
      signal,
    });
    await res.body.dump();
    this.follow(res);
    const range = header(res.headers, 'range');
    if (range === undefined) return offset + bytes.byteLength;
    // `0-0` after taking a body cannot mean empty: it is the one byte of a one-byte upload (read as
    // empty, it would be sent again — and appended, as Distribution ignores Content-Range).
    return Math.max(parseRangeEnd(range), bytes.byteLength > 0 ? 1 : 0);
  }

  /** Completes the upload under `digest`, sending `body` (length `size`) as its last part, if any. */
  async finish(digest: Digest, signal?: AbortSignal, body?: { data: RequestBody; size: number }) {
    const url = new URL(this.location);
    url.searchParams.set('digest', digest);
    const res = await this.client.send({
      method: 'PUT',
      url,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(body?.size ?? 0),
      },
      ...(body ? { body: body.data } : {}),
      scopes: this.scopes,
      // The spec says 201; registries in the wild also answer 200, 202 and 204.
      expect: [201, 200, 202, 204],
      retry: false,
      signal,
    });
    await res.body.dump();
    const stored = header(res.headers, 'docker-content-digest');
    if (stored && stored !== digest) {
      throw new RegistryError(`PUT ${res.url.pathname}: the registry stored ${stored}, not ${digest}`, {
        method: 'PUT',
        url: res.url,
        status: res.status,
      });
    }
  }

  /** Drops the session so the registry frees what it holds; failures do not matter here. */
  async cancel(): Promise<void> {
    try {
      const res = await this.client.send({
        method: 'DELETE',
        url: this.location,
        scopes: this.scopes,
        expect: [204, 200, 202, 404],
        retry: false,
      });
      await res.body.dump();
    } catch {
      // best effort: the registry expires abandoned sessions anyway
    }
  }
}

/**
 * `0-<last>` → bytes held (`last + 1`); a missing header means none. CNCF Distribution answers
 * `0-0` for an empty upload as well as for one byte; we read it as empty (after a PATCH that took a
 * body, `patch` reads it as one byte; a status GET that meets it holds at most one byte, which an
 * upload of MiB chunks never meets).
 */
export function parseRangeEnd(range: string | undefined): number {
  if (!range) return 0;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
  if (!m) throw new Error(`unexpected Range header ${JSON.stringify(range)} on an upload`);
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}
