import { Agent, type Dispatcher, request } from 'undici';
import type { Digest } from '../oci/digest.ts';
import { errorMessage, UserError } from '../util/errors.ts';
import {
  Backoff,
  DEFAULT_RETRY,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
} from '../util/retry.ts';

/** What the Hub says is wrong with a request a user made (gated repo, no such revision): one line. */
export class HubError extends UserError {
  override readonly name: string = 'HubError';
}

/** A file of a repository revision as the tree listing gives it. */
export interface HubFileEntry {
  path: string;
  size: number;
  /** The git blob id. */
  oid: string;
  /** For files in LFS (or Xet): the sha256 of the content, which the Hub publishes. */
  sha256?: Digest;
}

export interface HubClientOptions {
  /** https://huggingface.co, or HF_ENDPOINT. */
  endpoint: string;
  token?: string | undefined;
  /** How the user gives the token, for messages (`HF_TOKEN`, `the hf-token input`). */
  tokenHint: string;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A URL for messages: no query (signed CDN URLs carry credentials there), no user info. */
function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/**
 * The Hub's HTTP API, as much of it as a build needs: a revision's commit, the recursive file
 * listing (page by page), small files, and ranges of large files. The token goes to the Hub's own
 * host only — never to the CDN host a download redirects to, and never into a message. 429 and
 * 5xx are retried with backoff, honouring Retry-After; dropped connections are retried.
 *
 * Our own client rather than @huggingface/hub: two GET endpoints and a ranged download are a page
 * of code on the undici transport the registry client uses, while that package (12 MB installed
 * with the Xet chunker it depends on) talks through global fetch with no retry, no Retry-After
 * and redirects that we cannot keep the token away from.
 */
export class HubClient {
  readonly endpoint: URL;
  private readonly token: string | undefined;
  private readonly tokenHint: string;
  private readonly retry: RetryPolicy;
  private readonly userAgent: string;
  private readonly dispatcher = new Agent({ keepAliveTimeout: 4_000, connect: { timeout: 30_000 } });

  constructor(options: HubClientOptions) {
    this.endpoint = new URL(options.endpoint.replace(/\/+$/, ''));
    this.token = options.token || undefined;
    this.tokenHint = options.tokenHint;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.userAgent = options.userAgent ?? 'model-oci';
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** One attempt: follows redirects, with Authorization only on the Hub's own origin. */
  private async sendOnce(
    start: URL,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<{
    status: number;
    headers: Dispatcher.ResponseData['headers'];
    body: Dispatcher.ResponseData['body'];
    url: URL;
  }> {
    let url = start;
    for (let hops = 0; ; hops++) {
      const ours = url.origin === this.endpoint.origin;
      const res = await request(url, {
        method: 'GET',
        headers: {
          'user-agent': this.userAgent,
          ...headers,
          ...(ours && this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        dispatcher: this.dispatcher,
        signal: signal ?? null,
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump();
        if (hops >= MAX_REDIRECTS)
          throw new Error(`GET ${shown(start)}: more than ${MAX_REDIRECTS} redirects`);
        url = new URL(location, url);
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
  }

  /** A GET that is retried while it may pass later; other answers than 200/206 become errors. */
  private async get(
    url: URL,
    what: string,
    options: { headers?: Record<string, string>; signal?: AbortSignal | undefined } = {},
  ) {
    const backoff = new Backoff(this.retry);
    for (;;) {
      let retryAfter: number | undefined;
      let failure: Error;
      try {
        const res = await this.sendOnce(url, options.headers ?? {}, options.signal);
        if (res.status === 200 || res.status === 206) return res;
        const text = await res.body.text().catch(() => '');
        failure = this.failure(res.status, res.headers, text, what, res.url);
        retryAfter = parseRetryAfter(String(res.headers['retry-after'] ?? '') || undefined);
        if (!isRetryableStatus(res.status)) throw failure;
      } catch (err) {
        if (err instanceof HubError || options.signal?.aborted) throw err;
        if (!isRetryableNetworkError(err)) throw err;
        failure = new Error(`GET ${shown(url)}: ${errorMessage(err)}`, { cause: err });
      }
      if (!(await backoff.next(retryAfter, options.signal))) {
        throw new Error(`${failure.message} (gave up after ${backoff.attempts - 1} attempts)`, {
          cause: failure,
        });
      }
    }
  }

  private failure(
    status: number,
    headers: Dispatcher.ResponseData['headers'],
    text: string,
    what: string,
    url: URL,
  ): Error {
    const code = String(headers['x-error-code'] ?? '');
    if (status === 401 || status === 403) {
      return new HubError(
        this.token
          ? `${what}: the Hub refused the token (${this.tokenHint}): it has no access to this repository (gated or private)`
          : `${what} is gated or private: set ${this.tokenHint} to a token that has access (huggingface.co/settings/tokens)`,
      );
    }
    if (status === 404) {
      const which =
        code === 'RevisionNotFound'
          ? 'no such revision'
          : code === 'EntryNotFound'
            ? 'no such file'
            : 'no such repository (or it is private)';
      return new HubError(`${what}: ${which}`);
    }
    let message = text.slice(0, 200).replace(/\s+/g, ' ');
    try {
      message = String((JSON.parse(text) as { error?: unknown }).error ?? message);
    } catch {}
    return new Error(`GET ${shown(url)}: ${status}${message ? ` ${message}` : ''}`);
  }

  private apiUrl(repo: string, kind: 'revision' | 'tree', revision: string): URL {
    return new URL(
      `${this.endpoint.pathname.replace(/\/$/, '')}/api/models/${repo}/${kind}/${encodeURIComponent(revision)}`,
      this.endpoint,
    );
  }

  /** The commit a branch, tag or commit names, and its date. */
  async revision(
    repo: string,
    revision: string,
    signal?: AbortSignal,
  ): Promise<{ sha: string; lastModified?: string }> {
    const what = `hf://${repo}@${revision}`;
    const res = await this.get(this.apiUrl(repo, 'revision', revision), what, { signal });
    const info = (await res.body.json()) as { sha?: unknown; lastModified?: unknown };
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha))
      throw new Error(`${what}: the Hub's answer has no commit sha`);
    return {
      sha: info.sha,
      ...(typeof info.lastModified === 'string' ? { lastModified: info.lastModified } : {}),
    };
  }

  /** Every file of the revision (recursive listing, following `Link: rel="next"` pages). */
  async *tree(repo: string, sha: string, signal?: AbortSignal): AsyncGenerator<HubFileEntry> {
    const what = `hf://${repo}@${sha}`;
    const first = this.apiUrl(repo, 'tree', sha);
    first.searchParams.set('recursive', 'true');
    first.searchParams.set('expand', 'false');
    let next: URL | undefined = first;
    while (next) {
      const res = await this.get(next, what, { signal });
      const page = (await res.body.json()) as unknown;
      if (!Array.isArray(page)) throw new Error(`${what}: the Hub's file listing is not a list`);
      for (const item of page as Record<string, unknown>[]) {
        if (item.type !== 'file') continue;
        if (typeof item.path !== 'string' || typeof item.size !== 'number' || typeof item.oid !== 'string')
          throw new Error(`${what}: a file listing entry without path, size or oid`);
        const lfs = item.lfs as { oid?: unknown } | undefined;
        const sha256 =
          typeof lfs?.oid === 'string' && /^[0-9a-f]{64}$/.test(lfs.oid)
            ? (`sha256:${lfs.oid}` as Digest)
            : undefined;
        yield { path: item.path, size: item.size, oid: item.oid, ...(sha256 ? { sha256 } : {}) };
      }
      const link = String(res.headers.link ?? '');
      const m = /<([^>]+)>\s*;\s*rel="next"/.exec(link);
      next = m ? new URL(m[1]!, this.endpoint) : undefined;
    }
  }

  private resolveUrl(repo: string, sha: string, path: string): URL {
    return new URL(
      `${this.endpoint.pathname.replace(/\/$/, '')}/${repo}/resolve/${sha}/${encodePath(path)}`,
      this.endpoint,
    );
  }

  /** A small file, whole, in memory (at most `limit` bytes). */
  async fetchSmall(
    repo: string,
    sha: string,
    path: string,
    limit: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const what = `hf://${repo}@${sha}/${path}`;
    const res = await this.get(this.resolveUrl(repo, sha, path), what, { signal });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        res.body.destroy();
        throw new Error(`${what}: over ${limit} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }

  /**
   * Bytes `[start, end)` of a file, resumed where a transfer broke off; each request starts at
   * the Hub (its redirect to the CDN is followed anew, so a signed URL never goes stale).
   */
  async *fileRange(
    repo: string,
    sha: string,
    path: string,
    start: number,
    end: number,
    signal?: AbortSignal,
  ): AsyncGenerator<Uint8Array> {
    const what = `hf://${repo}@${sha}/${path}`;
    let at = start;
    let backoff = new Backoff(this.retry);
    let failedAt = -1;
    while (at < end) {
      try {
        const res = await this.get(this.resolveUrl(repo, sha, path), what, {
          headers: { range: `bytes=${at}-${end - 1}` },
          signal,
        });
        // A server that ignores Range sends everything from 0.
        let skip = res.status === 200 ? at : 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          let piece: Uint8Array = chunk;
          if (skip > 0) {
            const drop = Math.min(skip, piece.byteLength);
            skip -= drop;
            piece = piece.subarray(drop);
          }
          if (at + piece.byteLength > end) piece = piece.subarray(0, end - at);
          if (piece.byteLength === 0) continue;
          at += piece.byteLength;
          yield piece;
          if (at === end) {
            res.body.destroy();
            return;
          }
        }
        if (at < end)
          throw Object.assign(new Error(`the transfer ended at byte ${at} of ${end}`), {
            code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
          });
      } catch (err) {
        if (signal?.aborted || !isRetryableNetworkError(err)) throw err;
        if (at > failedAt && failedAt >= 0) backoff = new Backoff(this.retry);
        failedAt = at;
        if (!(await backoff.next(undefined, signal)))
          throw new Error(`${what}: the download broke off at byte ${at}: ${errorMessage(err)}`, {
            cause: err,
          });
      }
    }
  }
}
