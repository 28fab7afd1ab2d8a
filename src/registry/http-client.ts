import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import {
  Backoff,
  DEFAULT_RETRY,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
} from '../util/retry.ts';
import type { Authenticator, TokenTransport } from './auth.ts';
import { parseChallenges } from './challenge.ts';
import { isListed, isLoopback, isNotTlsError, schemePolicy } from './endpoint.ts';
import { describeFailure, gaveUpError, RegistryError, redactUrl } from './errors.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body that can be sent again: bytes in memory, or a function that opens the stream anew. */
export type RequestBody = Uint8Array | (() => Readable | AsyncIterable<Uint8Array>);

export interface RegistryRequest {
  method: HttpMethod;
  /** A path on the registry (`/v2/…`) or an absolute URL the registry handed out (an upload Location). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes the request needs, e.g. `repository:org/model:pull,push`. */
  scopes: readonly string[];
  /** Statuses handed back to the caller; any other is retried when it may pass later, or thrown. */
  expect: readonly number[];
  /** False for requests whose repetition the caller must steer itself (upload chunks). */
  retry?: boolean;
  signal?: AbortSignal | undefined;
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects; relative Locations resolve against it. */
  url: URL;
  body: Dispatcher.ResponseData['body'];
}

export interface Timeouts {
  connectMs: number;
  /** Until the response headers arrive once the request is sent (a final PUT of a big blob takes a while). */
  headersMs: number;
  /** Longest silence while a response body streams. */
  bodyMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, headersMs: 300_000, bodyMs: 120_000 };

/**
 * How the caller's user sets what an error suggests: the CLI says `--ca-file FILE`, the Action
 * `the ca-file input`. `HOST` in `plainHttp` is replaced by the host in question.
 */
export interface OptionHints {
  caFile: string;
  plainHttp: string;
}

const NEUTRAL_HINTS: OptionHints = {
  caFile: 'the CA file option',
  plainHttp: 'the plain-HTTP option for HOST',
};

export interface HttpClientOptions {
  /** Hosts allowed to fall back to plain HTTP (loopback always is). */
  plainHttp?: readonly string[];
  /** How errors name the options that fix them. */
  hints?: OptionHints;
  /** Extra trusted CA certificates (PEM), on top of Node's bundled roots. */
  ca?: readonly string[];
  retry?: Partial<RetryPolicy>;
  timeouts?: Partial<Timeouts>;
  userAgent?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Times one request may go back for new authorization before we call it refused. */
const MAX_AUTH_ROUNDS = 2;

/**
 * HTTP to one registry host: picks https (or plain http where allowed and the server does not
 * speak TLS), adds authorization, follows redirects without ever carrying `Authorization` to another
 * host, retries what may pass later (408, 429, 5xx, dropped connections) with backoff, and turns
 * the rest into RegistryErrors that name method, status, registry error code and a redacted URL.
 */
export class HttpClient {
  readonly host: string;
  readonly retry: RetryPolicy;
  readonly timeouts: Timeouts;
  readonly hints: OptionHints;
  private readonly dispatcher: Agent;
  private readonly userAgent: string;
  private readonly plainHttp: readonly string[];
  private origin: Promise<string> | undefined;
  private auth: Authenticator | undefined;

  constructor(host: string, options: HttpClientOptions = {}) {
    this.host = host;
    this.plainHttp = options.plainHttp ?? [];
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.hints = options.hints ?? NEUTRAL_HINTS;
    this.userAgent = options.userAgent ?? 'model-oci';
    this.dispatcher = new Agent({
      connect: {
        timeout: this.timeouts.connectMs,
        ...(options.ca?.length ? { ca: [...rootCertificates, ...options.ca] } : {}),
      },
      keepAliveTimeout: 4_000,
    });
  }

  setAuthenticator(auth: Authenticator): void {
    this.auth = auth;
  }

  /** `https://host` or, for loopback and listed hosts that do not speak TLS, `http://host`. */
  baseUrl(signal?: AbortSignal): Promise<string> {
    // An aborted probe decides nothing: the next request probes again.
    this.origin ??= this.pickOrigin(signal).catch((err: unknown) => {
      this.origin = undefined;
      throw err;
    });
    return this.origin;
  }

  private async pickOrigin(signal?: AbortSignal): Promise<string> {
    const https = `https://${this.host}`;
    if (schemePolicy(this.host, this.plainHttp) === 'https') return https;
    try {
      const res = await request(`${https}/v2/`, {
        method: 'GET',
        dispatcher: this.dispatcher,
        headers: { 'user-agent': this.userAgent },
        headersTimeout: this.timeouts.connectMs,
        signal,
      });
      await res.body.dump();
      return https;
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isNotTlsError(err)) return `http://${this.host}`;
      return https; // the real request reports whatever this was
    }
  }

  /**
   * Whether a token realm over plain HTTP may be asked for tokens (credentials travel in the clear):
   * only a host the user listed as plain HTTP, or a loopback realm of a registry that itself speaks
   * plain HTTP on this machine. A registry reached over verified TLS never gets its credentials sent
   * in clear to a realm the user did not name.
   */
  async allowsPlainHttpRealm(realm: URL): Promise<boolean> {
    if (isListed(realm.host, this.plainHttp)) return true;
    const origin = await this.baseUrl();
    return origin.startsWith('http:') && isLoopback(realm.host);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Sends a request as described in the class comment; the caller reads or dumps the body. */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const backoff = new Backoff(this.retry);
    const retry = req.retry ?? true;
    for (;;) {
      let lastError: RegistryError;
      let retryAfter: number | undefined;
      try {
        const res = await this.sendOnce(req);
        if (req.expect.includes(res.status)) return res;
        const text = await readText(res.body, 64 * 1024).catch(() => '');
        const failure = describeFailure(req.method, res.url, res.status, text);
        retryAfter = parseRetryAfter(header(res.headers, 'retry-after'));
        lastError = new RegistryError(failure.message, {
          method: req.method,
          url: res.url,
          status: res.status,
          ...(failure.code ? { code: failure.code } : {}),
          retryAfterMs: retryAfter,
        });
        if (!retry || !isRetryableStatus(res.status)) throw lastError;
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        if (req.signal?.aborted) throw err;
        lastError = await this.networkError(req, err);
        if (!retry || !isRetryableNetworkError(err)) throw lastError;
      }
      if (!(await backoff.next(retryAfter, req.signal ?? undefined))) {
        throw gaveUpError(lastError, backoff.attempts - 1);
      }
    }
  }

  private async networkError(req: RegistryRequest, err: unknown): Promise<RegistryError> {
    const url = await this.resolveUrl(req.url).catch(() => String(req.url));
    return new RegistryError(
      `${req.method} ${redactUrl(url)}: ${describeNetworkError(err, this.hints, this.host)}`,
      {
        method: req.method,
        url,
        cause: err,
      },
    );
  }

  private async resolveUrl(url: string | URL): Promise<URL> {
    return new URL(url, await this.baseUrl());
  }

  /** One attempt: authorization rounds and redirects, no retries. */
  private async sendOnce(req: RegistryRequest): Promise<RegistryResponse> {
    const origin = await this.baseUrl(req.signal);
    let url = new URL(req.url, origin);
    let method = req.method;
    let body = req.body;
    let authRounds = 0;
    for (let hops = 0; ; ) {
      const ours = url.origin === origin;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
      // Authorization goes to the registry only, never to a storage backend it redirects to.
      const authorization = ours ? await this.auth?.header(req.scopes) : undefined;
      if (authorization) headers.authorization = authorization;
      const res = await request(url, {
        method,
        headers,
        body: openBody(body),
        dispatcher: this.dispatcher,
        signal: req.signal ?? null,
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyMs,
      });
      if (res.statusCode === 401 && ours && this.auth && !req.expect.includes(401)) {
        await res.body.dump();
        if (++authRounds > MAX_AUTH_ROUNDS) throw this.auth.refused({ method, url });
        // Every WWW-Authenticate header: servers may send one per scheme (Negotiate, then Basic).
        const challenges = parseChallenges(res.headers['www-authenticate']);
        await this.auth.onUnauthorized(challenges, req.scopes, authorization, { method, url });
        continue;
      }
      const location = header(res.headers, 'location');
      if (REDIRECTS.has(res.statusCode) && location && !req.expect.includes(res.statusCode)) {
        await res.body.dump();
        if (++hops > MAX_REDIRECTS) {
          throw new RegistryError(`${method} ${redactUrl(url)}: more than ${MAX_REDIRECTS} redirects`, {
            method,
            url,
            status: res.statusCode,
          });
        }
        url = new URL(location, url);
        if (
          res.statusCode === 303 ||
          ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')
        ) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      return { status: res.statusCode, headers: res.headers, url, body: res.body };
    }
  }

  /** How the authenticator reaches token servers: same TLS settings, plain retries, no registry auth. */
  readonly tokenTransport: TokenTransport = async ({ method, url, headers, body }) => {
    const backoff = new Backoff(this.retry);
    for (;;) {
      let retryAfter: number | undefined;
      try {
        const res = await request(url, {
          method,
          headers: { 'user-agent': this.userAgent, ...headers },
          ...(body !== undefined ? { body } : {}),
          dispatcher: this.dispatcher,
          headersTimeout: this.timeouts.headersMs,
          bodyTimeout: this.timeouts.bodyMs,
        });
        const text = await readText(res.body, 1024 * 1024);
        if (!isRetryableStatus(res.statusCode)) return { status: res.statusCode, text };
        retryAfter = parseRetryAfter(header(res.headers, 'retry-after'));
        if (!(await backoff.next(retryAfter))) return { status: res.statusCode, text };
      } catch (err) {
        const wrapped = new RegistryError(
          `${method} ${redactUrl(url)}: ${describeNetworkError(err, this.hints, url.host)}`,
          {
            method,
            url,
            cause: err,
          },
        );
        if (!isRetryableNetworkError(err) || !(await backoff.next(undefined))) throw wrapped;
      }
    }
  };
}

function openBody(body: RequestBody | undefined): Uint8Array | Readable | null {
  if (body === undefined) return null;
  if (body instanceof Uint8Array) return body;
  const opened = body();
  return opened instanceof Readable ? opened : Readable.from(opened, { objectMode: false });
}

/** One response header as a string (the first, if repeated). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a response body as text, refusing more than `limit` bytes (a registry error page is small). */
export async function readText(body: RegistryResponse['body'], limit: number): Promise<string> {
  return new TextDecoder().decode(await readBytes(body, limit));
}

/** A response body longer than the reader's limit (a manifest over 4 MiB, an error page over 64 KiB). */
export class BodyTooLargeError extends Error {
  override readonly name: string = 'BodyTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`response body exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

export async function readBytes(body: RegistryResponse['body'], limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** A network failure in words a user can act on, naming the option that fixes it as the caller spells it. */
export function describeNetworkError(
  err: unknown,
  hints: OptionHints = NEUTRAL_HINTS,
  host = 'HOST',
): string {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  const inner = (e.cause ?? err) as { code?: unknown; message?: unknown };
  const code = typeof inner.code === 'string' ? inner.code : typeof e.code === 'string' ? e.code : undefined;
  // OpenSSL's messages span lines and name its source files: keep them to one line.
  const message = (typeof inner.message === 'string' ? inner.message : String(err))
    .replace(/\s+/g, ' ')
    // Node's advice names its own flag (--use-system-ca); ours (the CA file option) follows.
    .replace(/;?\s*if the root CA is installed locally, try running Node\.js with --use-system-ca\.?/i, '')
    .trim();
  if (code === 'ECONNREFUSED') return 'connection refused (is the registry running at that address?)';
  if (code === 'ENOTFOUND') return 'host not found';
  if (isNotTlsError(err))
    return `the server answered in plain HTTP, not TLS${code ? ` (${code})` : ''}; if the registry serves plain HTTP, allow it with ${hints.plainHttp.replace('HOST', host)}`;
  // A CA cannot fix a certificate made out to another name: no CA file hint for that one.
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `TLS certificate is not for this host: ${message} (${code})`;
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code))
    return `TLS certificate not trusted: ${message} (${code}); if the registry uses a private CA, pass it with ${hints.caFile}`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timed out waiting for the response';
  if (code === 'UND_ERR_BODY_TIMEOUT') return 'timed out while the response body streamed';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'timed out connecting';
  return code ? `${message} (${code})` : message;
}
