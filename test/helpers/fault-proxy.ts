/**
 * A fault-injecting HTTP reverse proxy for tests: it sits in front of a real registry (CNCF Distribution)
 * and reproduces what hosted registries and flaky networks do — rate limits, resets mid-upload, truncated
 * downloads, body-size caps, slow links — while passing everything else through faithfully.
 *
 *   const proxy = await startFaultProxy({ upstream: registry.url });
 *   const limited = { kind: 'respond', status: 429, headers: { 'retry-after': '1' } } as const;
 *   proxy.addRule({ match: isPatch, fault: limited, times: 1 });
 *   // … push to proxy.host …
 *   expect(proxy.log.filter((e) => e.status === 429)).toHaveLength(1);
 *   await proxy.stop();
 *
 * Pass-through rules: bodies stream both ways (never buffered whole), the client's Host header is kept so
 * the registry's absolute Location URLs point back at the proxy, and every end-to-end header (Authorization
 * too) is forwarded. Only hop-by-hop headers (Connection, Keep-Alive, …) stay on their own hop.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** A request as rules see it. Header names are lower case; repeated headers are joined with ', '. */
export interface ProxyRequest {
  method: string;
  /** Path and query, as on the request line (`/v2/org/model/blobs/uploads/?mount=…&from=…`). */
  url: string;
  headers: Record<string, string>;
  /** True for requests to the storage listener (a presigned URL a 'redirect-to-storage' handed out). */
  storage?: boolean;
}

/** How a canned answer is sent (faults 'respond' and 'cap-body'). */
export interface CannedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /**
   * False (default): read and discard the whole request body first, then answer and keep the connection
   * usable, like a server that consumes what it rejects. True: answer at once with `Connection: close` and
   * close the connection, like a front end that refuses early (the client may then see a reset while still
   * sending).
   */
  close?: boolean;
}

export type Fault =
  /** Answer without forwarding (429 + Retry-After, 503, 416 …). */
  | ({ kind: 'respond' } & CannedAnswer)
  /**
   * Forward, but once `afterBytes` bytes of the request body have gone upstream, reset the client
   * connection (RST) and drop the upstream request: a connection lost mid-upload. A body no longer than
   * `afterBytes` passes intact.
   *
   * `buffered: true` is a front end that buffers request bodies before it forwards them (nginx's
   * proxy_request_buffering, as hosted registries have): nothing goes upstream while the body arrives, and
   * once more than `afterBytes` bytes of it came in, the client connection is reset — the registry never
   * hears of the request (bytesForwarded 0), so an upload session goes on where it stood. A body no longer
   * than `afterBytes` is forwarded whole once complete.
   */
  | { kind: 'reset-request'; afterBytes: number; buffered?: boolean }
  /**
   * Forward; pass the response headers and `afterBytes` bytes of the response body, then close the client
   * connection. A body no longer than `afterBytes` passes intact.
   */
  | { kind: 'truncate-response'; afterBytes: number }
  /**
   * Forward the whole request; the registry handles it, but its answer is lost: once the response
   * arrives the client connection is reset. A connection that died after the request went through —
   * the client cannot tell whether it did.
   */
  | { kind: 'drop-response' }
  /** Change the request before it is forwarded (mutate the argument), e.g. with `stripMount`. */
  | { kind: 'rewrite'; rewrite(req: ProxyRequest): void }
  /** Forward, and add these headers to the response (e.g. `OCI-Chunk-Min-Length`, which Distribution never sends). */
  | { kind: 'add-response-headers'; headers: Record<string, string> }
  /**
   * A request whose body is over `maxBytes` (by Content-Length, or counted when chunked) gets the canned
   * answer without being forwarded; a smaller one is forwarded. A chunked body is held back (at most
   * `maxBytes`) until its size is known, so the registry never sees part of a rejected body.
   */
  | ({ kind: 'cap-body'; maxBytes: number } & CannedAnswer)
  /** Forward after a pause (to trip client timeouts). */
  | { kind: 'delay'; ms: number }
  /**
   * Answer 307 with a presigned-looking URL on the proxy's storage listener (another origin, so no
   * Authorization goes there), as registries on object storage do for blob GETs. The URL stops
   * working (403, as S3 answers an expired signature) `expiresAfterMs` after it was handed out, or
   * after `uses` requests; requests to it pass through the rules (with `storage: true`), then go
   * upstream as the original request.
   */
  | { kind: 'redirect-to-storage'; expiresAfterMs?: number; uses?: number };

export interface FaultRule {
  match(req: ProxyRequest): boolean;
  fault: Fault;
  /** How many requests the rule applies to; unlimited when absent. */
  times?: number;
}

/** What addRule returns: how often the rule applied so far, and a way to retire it early. */
export interface RuleHandle {
  readonly hits: number;
  remove(): void;
}

export interface ProxyLogEntry {
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  /** Request body bytes read from the client. */
  bytesReceived: number;
  /** Request body bytes sent upstream. */
  bytesForwarded: number;
  /** Response body bytes sent to the client. */
  bytesSent: number;
  /** The status the client was sent (absent when the connection died first). */
  status?: number;
  responseHeaders?: Record<string, string>;
  /** The kind of the rule that applied, if any ('cap-body' also when the body was small enough to pass). */
  fault?: Fault['kind'];
  /** True for requests to the storage listener. */
  storage?: boolean;
  /** The request as forwarded, when a 'rewrite' changed it. */
  rewrittenTo?: ProxyRequest;
  /** Why the exchange broke, when it broke for a reason other than an injected fault. */
  error?: string;
}

export interface FaultProxyOptions {
  /** The registry's origin, e.g. 'http://127.0.0.1:5000'. */
  upstream: string;
  /**
   * Throttle each direction to this rate (shared by all connections, like one link), e.g. 125_000_000 for
   * 1 Gbit/s. Unthrottled when absent.
   */
  bytesPerSecond?: number;
  /**
   * Throttle each client connection on its own to this rate (on top of the shared one): what one
   * connection to object storage gets, e.g. 40_000_000. Unthrottled when absent.
   */
  perConnectionBytesPerSecond?: number;
  /** Port to listen on (loopback); a free one when absent. */
  port?: number;
  /**
   * What hosted registries impose, scaled down: a blob larger than `maxBlobBytes` is refused
   * (413 SIZE_INVALID, as soon as a PATCH's Content-Range or a PUT's length goes past it), and an
   * upload session is cut off `uploadTimeLimitMs` after its first PATCH or PUT (ghcr.io: 10
   * minutes): a request still running then is reset, a later one answered 404 BLOB_UPLOAD_UNKNOWN.
   */
  registryLimits?: { maxBlobBytes?: number; uploadTimeLimitMs?: number };
}

export interface FaultProxy {
  /** '127.0.0.1:PORT' — the registry host to hand to the code under test. */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** Rules are consulted in order for every request; the first that matches (with `times` left) applies. */
  addRule(rule: FaultRule): RuleHandle;
  clearRules(): void;
  /** Changes the throttle for bytes not yet passed; undefined lifts it. */
  setBytesPerSecond(bytesPerSecond: number | undefined): void;
  /** Changes the per-connection throttle for connections and bytes from now on; undefined lifts it. */
  setPerConnectionBytesPerSecond(bytesPerSecond: number | undefined): void;
  /** 'http://127.0.0.1:PORT' of the storage listener that 'redirect-to-storage' points at. */
  storageUrl: string;
  /** Every request seen, in order of arrival; entries fill in as exchanges progress. */
  log: ProxyLogEntry[];
  /** Resolves once no request is in flight (so log entries are final). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

// Hop-by-hop headers describe one connection, not the message (RFC 9110 §7.6.1); Transfer-Encoding and
// Content-Length stay so each hop frames the body as the client did.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

// Node frames a body-less request of other methods as chunked unless told its length.
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

// A link at rest may send this many milliseconds' worth at once. Timers fire late on a busy event loop (tests
// run the client, the proxy and often the registry side by side); without this slack every late wake-up would
// be lost for good and the link would run well below its rate.
const BURST_MS = 25;

/** A shared pace for one direction of the link: each chunk reserves its transmission time in turn. */
class Pace {
  readonly #msPerByte: number;
  #next = 0;

  constructor(bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) throw new Error(`bytesPerSecond must be positive, got ${bytesPerSecond}`);
    this.#msPerByte = 1000 / bytesPerSecond;
  }

  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.#next = Math.max(this.#next, now - BURST_MS) + bytes * this.#msPerByte;
    const wait = this.#next - now;
    if (wait >= 2) await sleep(wait);
  }
}

function headerRecord(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

function withoutHopByHop(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Writes with backpressure; rejects when the stream dies rather than await a 'drain' that never comes. */
function write(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed) return Promise.reject(new Error('stream closed'));
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new Error('stream closed'));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

/** Writes and waits until the bytes reached the socket, so tearing down right after does not lose them. */
function writeFlushed(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** One request/response pair in flight. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  entry: ProxyLogEntry;
  /** Resolves when the response is done or the client connection closed, whichever comes first. */
  closed: Promise<void>;
  /** True once `closed` resolved; checked before work that only makes sense with the client still there. */
  gone: boolean;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:')
    throw new Error(`fault proxy forwards to plain http only: ${options.upstream}`);
  const agent = new http.Agent({ keepAlive: true });
  const rules: { rule: FaultRule; left: number; hits: number }[] = [];
  const log: ProxyLogEntry[] = [];
  let upPace: Pace | undefined;
  let downPace: Pace | undefined;
  const setBytesPerSecond = (bps: number | undefined) => {
    upPace = bps === undefined ? undefined : new Pace(bps);
    downPace = bps === undefined ? undefined : new Pace(bps);
  };
  setBytesPerSecond(options.bytesPerSecond);
  let perConnection = options.perConnectionBytesPerSecond;
  const connectionPaces = new WeakMap<object, { up: Pace; down: Pace; rate: number }>();
  /** The per-connection pace of a request's socket, made on first use (with the rate of that time). */
  const paceOf = (socket: object, direction: 'up' | 'down'): Pace | undefined => {
    if (perConnection === undefined) return undefined;
    let paces = connectionPaces.get(socket);
    if (!paces || paces.rate !== perConnection) {
      paces = { up: new Pace(perConnection), down: new Pace(perConnection), rate: perConnection };
      connectionPaces.set(socket, paces);
    }
    return paces[direction];
  };
  /** Presigned storage URLs handed out: id → when it stops working and how many uses are left. */
  const grants = new Map<string, { expiresAt: number; usesLeft: number; path: string }>();
  let grantCount = 0;

  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  const pickRule = (req: ProxyRequest): FaultRule | undefined => {
    for (const slot of rules) {
      if (slot.left <= 0 || !slot.rule.match(req)) continue;
      // Storage serves what it was sent to; it does not redirect again.
      if (req.storage && slot.rule.fault.kind === 'redirect-to-storage') continue;
      slot.left--;
      slot.hits++;
      return slot.rule;
    }
    return undefined;
  };

  const onRequest =
    (storage: boolean) =>
    (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const info: ProxyRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: headerRecord(req.rawHeaders),
        ...(storage ? { storage: true } : {}),
      };
      const entry: ProxyLogEntry = {
        method: info.method,
        url: info.url,
        requestHeaders: { ...info.headers },
        bytesReceived: 0,
        bytesForwarded: 0,
        bytesSent: 0,
        ...(storage ? { storage: true } : {}),
      };
      log.push(entry);
      // Listening from the start: a 'close' that happened while a fault held the request must not be missed.
      const ex: Exchange = { req, res, entry, gone: false, closed: Promise.resolve() };
      ex.closed = new Promise((resolve) =>
        res.once('close', () => {
          ex.gone = true;
          resolve();
        }),
      );
      inFlight++;
      handle(ex, info)
        .catch((err: unknown) => {
          entry.error ??= errorText(err);
          res.destroy();
        })
        .finally(() => {
          if (--inFlight > 0) return;
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        });
    };
  // Slow throttled uploads must not be cut off by Node's own request timeout.
  const server = http.createServer({ requestTimeout: 0 }, onRequest(false));
  const storageServer = http.createServer({ requestTimeout: 0 }, onRequest(true));

  /** The request body from the client, paced and counted. */
  async function* clientBody({ req, entry }: Exchange): AsyncGenerator<Buffer> {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      await upPace?.take(chunk.length);
      await paceOf(req.socket, 'up')?.take(chunk.length);
      entry.bytesReceived += chunk.length;
      yield chunk;
    }
  }

  async function answer(ex: Exchange, canned: CannedAnswer, body?: AsyncIterator<Buffer>): Promise<void> {
    const { req, res, entry } = ex;
    if (!canned.close) {
      // Read what the client sends before answering, so the connection stays in step and usable.
      const rest = body ?? clientBody(ex);
      for (let next = await rest.next(); !next.done; next = await rest.next()) {
        // discarded
      }
    }
    if (ex.gone) {
      entry.error ??= 'client went away before the answer';
      return;
    }
    const payload = Buffer.from(canned.body ?? '');
    const headers: Record<string, string> = { 'content-length': String(payload.length), ...canned.headers };
    // Node's server closes the connection after the response when it carries Connection: close.
    if (canned.close) headers.connection = 'close';
    entry.status = canned.status;
    entry.responseHeaders = { ...headers };
    res.writeHead(canned.status, headers);
    res.end(payload);
    entry.bytesSent = req.method === 'HEAD' ? 0 : payload.length;
    await ex.closed;
  }

  /** A storage request: its grant checked (403 when expired or used up), then as the original request. */
  function redeem(ex: Exchange, info: ProxyRequest): ProxyRequest | undefined {
    const id = pathOf(info.url).split('/')[1] ?? '';
    const grant = grants.get(id);
    if (!grant || grant.usesLeft <= 0 || performance.now() > grant.expiresAt) {
      void answer(ex, {
        status: 403,
        headers: { 'content-type': 'application/xml' },
        body: '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
      });
      return undefined;
    }
    grant.usesLeft--;
    return { ...info, url: grant.path };
  }

  /** Upload session id → when its first PATCH or PUT came (for the time limit). */
  const sessionStarts = new Map<string, number>();

  /** The registry limits for an upload request: an answer when it is refused, else undefined (and a timer). */
  function limitUpload(ex: Exchange, info: ProxyRequest): CannedAnswer | undefined {
    const limits = options.registryLimits;
    const m = /\/blobs\/uploads\/([^/?]+)/.exec(pathOf(info.url));
    if (!limits || !m || (info.method !== 'PATCH' && info.method !== 'PUT')) return undefined;
    const max = limits.maxBlobBytes;
    const range = /^(\d+)-(\d+)$/.exec(info.headers['content-range'] ?? '');
    const end = range ? Number(range[2]) + 1 : Number(info.headers['content-length'] ?? 0);
    if (max !== undefined && end > max)
      return {
        status: 413,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          errors: [{ code: 'SIZE_INVALID', message: `blob over the ${max}-byte limit` }],
        }),
      };
    const limit = limits.uploadTimeLimitMs;
    if (limit === undefined) return undefined;
    const id = m[1]!;
    const started = sessionStarts.get(id) ?? performance.now();
    sessionStarts.set(id, started);
    const left = started + limit - performance.now();
    if (left <= 0)
      return {
        status: 404,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'upload expired' }] }),
      };
    const timer = setTimeout(() => {
      ex.entry.error ??= 'cut off: the upload time limit passed';
      ex.req.socket.destroy();
    }, left);
    void ex.closed.then(() => clearTimeout(timer));
    return undefined;
  }

  async function handle(ex: Exchange, incoming: ProxyRequest): Promise<void> {
    let info = incoming;
    if (info.storage) {
      const original = redeem(ex, info);
      if (!original) return ex.closed;
      info = original;
    }
    const refused = limitUpload(ex, info);
    if (refused) return answer(ex, refused);
    const fault = pickRule({ ...info, headers: { ...info.headers } })?.fault;
    if (fault) ex.entry.fault = fault.kind;
    switch (fault?.kind) {
      case undefined:
        return forward(ex, info, {});
      case 'respond':
        return answer(ex, fault);
      case 'reset-request':
        return fault.buffered
          ? resetBuffered(ex, info, fault.afterBytes)
          : forward(ex, info, { resetAfter: fault.afterBytes });
      case 'truncate-response':
        return forward(ex, info, { truncateAfter: fault.afterBytes });
      case 'drop-response':
        return forward(ex, info, { dropResponse: true });
      case 'rewrite': {
        const target: ProxyRequest = { ...info, headers: { ...info.headers } };
        fault.rewrite(target);
        ex.entry.rewrittenTo = target;
        return forward(ex, target, {});
      }
      case 'add-response-headers':
        return forward(ex, info, { addHeaders: fault.headers });
      case 'cap-body':
        return capBody(ex, info, fault);
      case 'redirect-to-storage': {
        const id = `g${++grantCount}`;
        grants.set(id, {
          expiresAt: performance.now() + (fault.expiresAfterMs ?? 10 * 60_000),
          usesLeft: fault.uses ?? Number.POSITIVE_INFINITY,
          path: info.url,
        });
        const location = `${storageUrl}/${id}${pathOf(info.url)}?X-Amz-Signature=${id}`;
        return answer(ex, { status: 307, headers: { location } });
      }
      case 'delay': {
        // Cut short when the client leaves, so no timer outlives the exchange (forward then notes the why).
        const cancel = new AbortController();
        void ex.closed.then(() => cancel.abort());
        await sleep(fault.ms, undefined, { signal: cancel.signal }).catch(() => {});
        return forward(ex, info, {});
      }
    }
  }

  async function capBody(
    ex: Exchange,
    info: ProxyRequest,
    fault: Extract<Fault, { kind: 'cap-body' }>,
  ): Promise<void> {
    const declared = info.headers['content-length'];
    if (declared !== undefined) {
      return Number(declared) > fault.maxBytes ? answer(ex, fault) : forward(ex, info, {});
    }
    // Chunked (or close-delimited): count before forwarding anything, holding back at most maxBytes.
    const held: Buffer[] = [];
    let total = 0;
    const body = clientBody(ex);
    for (let next = await body.next(); !next.done; next = await body.next()) {
      total += next.value.length;
      if (total > fault.maxBytes) return answer(ex, fault, body);
      held.push(next.value);
    }
    return forward(ex, info, { body: held });
  }

  /** The buffered 'reset-request': read the body without forwarding; reset past `afterBytes`. */
  async function resetBuffered(ex: Exchange, info: ProxyRequest, afterBytes: number): Promise<void> {
    const held: Buffer[] = [];
    let total = 0;
    for await (const chunk of clientBody(ex)) {
      if (total + chunk.length > afterBytes) {
        ex.req.socket.resetAndDestroy(); // RST with nothing sent upstream
        await ex.closed;
        return;
      }
      total += chunk.length;
      held.push(chunk);
    }
    if (!ex.req.complete) throw new Error('client closed before the request body was complete');
    return forward(ex, info, { body: held });
  }

  async function forward(
    ex: Exchange,
    target: ProxyRequest,
    opts: {
      body?: Iterable<Buffer>;
      resetAfter?: number;
      truncateAfter?: number;
      dropResponse?: boolean;
      addHeaders?: Record<string, string>;
    },
  ): Promise<void> {
    const { req, res, entry } = ex;
    if (ex.gone) {
      // The client left while a fault held the request (a delay, a held-back body): nothing to forward for.
      entry.error ??= 'client went away before the request was forwarded';
      return;
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(target.headers)) {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    }
    if (
      headers['content-length'] === undefined &&
      headers['transfer-encoding'] === undefined &&
      !BODYLESS_BY_DEFAULT.has(target.method)
    ) {
      headers['content-length'] = '0'; // the client sent no body; keep Node from inventing a chunked one
    }
    const upReq = http.request({
      protocol: 'http:',
      hostname: upstream.hostname,
      port: upstream.port,
      method: target.method,
      path: target.url,
      headers, // includes the client's Host, so Location URLs name the proxy
      agent,
    });
    // Set once we tear things down on purpose: the errors that follow are expected, not worth reporting.
    let tornDown = false;
    void ex.closed.then(() => {
      if (res.writableFinished) return;
      if (!tornDown) entry.error ??= 'client went away before the response was complete';
      tornDown = true;
      upReq.destroy();
    });

    upReq.on('error', (err) => {
      if (tornDown) return;
      entry.error ??= `upstream: ${err.message}`;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // What a gateway in front of a dead registry answers.
      const body = `fault-proxy: upstream failed: ${err.message}\n`;
      entry.status = 502;
      res.writeHead(502, {
        'content-type': 'text/plain',
        'content-length': String(Buffer.byteLength(body)),
        connection: 'close',
      });
      res.end(body);
    });

    upReq.on('response', (upRes) => {
      void relayResponse(upRes);
    });

    async function relayResponse(upRes: http.IncomingMessage): Promise<void> {
      const status = upRes.statusCode ?? 502;
      if (opts.dropResponse) {
        // The registry did the work; its answer never reaches the client.
        tornDown = true;
        entry.responseHeaders = headerRecord(upRes.rawHeaders);
        for await (const _ of upRes as AsyncIterable<Buffer>);
        req.socket.resetAndDestroy();
        return;
      }
      entry.status = status;
      entry.responseHeaders = headerRecord(upRes.rawHeaders);
      const cutAt = opts.truncateAfter;
      try {
        const added = Object.entries(opts.addHeaders ?? {}).flat();
        res.writeHead(status, upRes.statusMessage, [...withoutHopByHop(upRes.rawHeaders), ...added]);
        if (added.length > 0) entry.responseHeaders = headerRecord([...upRes.rawHeaders, ...added]);
        for await (const chunk of upRes as AsyncIterable<Buffer>) {
          if (cutAt !== undefined && entry.bytesSent + chunk.length > cutAt) {
            const piece = chunk.subarray(0, cutAt - entry.bytesSent);
            await downPace?.take(piece.length);
            await paceOf(req.socket, 'down')?.take(piece.length);
            res.flushHeaders(); // so the headers go out even when no body byte does
            if (piece.length > 0) await writeFlushed(res, piece);
            entry.bytesSent += piece.length;
            tornDown = true;
            upRes.destroy();
            // A FIN after the partial body: the connection closes before Content-Length is met.
            res.socket?.destroySoon();
            return;
          }
          await downPace?.take(chunk.length);
          await paceOf(req.socket, 'down')?.take(chunk.length);
          await write(res, chunk);
          entry.bytesSent += chunk.length;
        }
        res.end();
      } catch (err) {
        if (!tornDown) entry.error ??= `relaying response: ${errorText(err)}`;
        tornDown = true;
        upRes.destroy();
        res.destroy();
      }
    }

    const resetAt = opts.resetAfter;
    // After the upstream failed or answered early, keep swallowing the client's body so the answer still
    // reaches it (destroying the request mid-read would tear down the connection under the response).
    let upstreamGone = false;
    try {
      for await (const chunk of opts.body ?? clientBody(ex)) {
        if (upstreamGone) continue;
        if (resetAt !== undefined && entry.bytesForwarded + chunk.length > resetAt) {
          const piece = chunk.subarray(0, resetAt - entry.bytesForwarded);
          if (piece.length > 0) await writeFlushed(upReq, piece);
          else upReq.flushHeaders();
          entry.bytesForwarded += piece.length;
          tornDown = true;
          req.socket.resetAndDestroy(); // RST: the client sees ECONNRESET, as when a link drops
          upReq.destroy();
          return;
        }
        try {
          await write(upReq, chunk);
          entry.bytesForwarded += chunk.length;
        } catch {
          upstreamGone = true;
        }
      }
      if (!req.complete) throw new Error('client closed before the request body was complete');
      if (!upstreamGone) upReq.end();
    } catch (err) {
      if (!tornDown) entry.error ??= `client: ${errorText(err)}`;
      tornDown = true;
      upReq.destroy();
      res.destroy();
    }
    await ex.closed;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    storageServer.once('error', reject);
    storageServer.listen(0, '127.0.0.1', () => resolve());
  });
  const storageUrl = `http://127.0.0.1:${(storageServer.address() as AddressInfo).port}`;

  return {
    host,
    url: `http://${host}`,
    log,
    addRule(rule) {
      const slot = { rule, left: rule.times ?? Number.POSITIVE_INFINITY, hits: 0 };
      rules.push(slot);
      return {
        get hits() {
          return slot.hits;
        },
        remove() {
          const at = rules.indexOf(slot);
          if (at >= 0) rules.splice(at, 1);
        },
      };
    },
    clearRules() {
      rules.length = 0;
    },
    setBytesPerSecond,
    setPerConnectionBytesPerSecond(bps) {
      perConnection = bps;
    },
    storageUrl,
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      const closed = Promise.all(
        [server, storageServer].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
      server.closeAllConnections();
      storageServer.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

// ---- Matchers for rules ----

const pathOf = (url: string) => url.split('?', 1)[0]!;
const queryOf = (url: string) =>
  new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');

export const isPatch = (req: ProxyRequest) => req.method === 'PATCH';
export const isPost = (req: ProxyRequest) => req.method === 'POST';
export const isPut = (req: ProxyRequest) => req.method === 'PUT';

/** GET of a blob by digest (not of an upload session). */
export const isBlobGet = (req: ProxyRequest) =>
  req.method === 'GET' && /^\/v2\/.+\/blobs\/(?!uploads\/)[^/]+$/.test(pathOf(req.url));

/** POST that starts an upload session (with or without a mount). */
export const isUploadPost = (req: ProxyRequest) =>
  req.method === 'POST' && /^\/v2\/.+\/blobs\/uploads\/?$/.test(pathOf(req.url));

/** POST asking to mount a blob from another repository (`?mount=<digest>&from=<repo>`). */
export const isMountPost = (req: ProxyRequest) => isUploadPost(req) && queryOf(req.url).has('mount');

export const isManifestPut = (req: ProxyRequest) =>
  req.method === 'PUT' && /^\/v2\/.+\/manifests\/[^/]+$/.test(pathOf(req.url));

/**
 * A 'rewrite' that drops `mount` and `from` from the query, so the registry opens an upload session (202)
 * instead of mounting (201) — what registries that refuse cross-repository mounts answer.
 */
export function stripMount(req: ProxyRequest): void {
  const at = req.url.indexOf('?');
  if (at < 0) return;
  // Filter the raw pairs rather than re-serialise, so the other parameters keep their exact encoding.
  const kept = req.url
    .slice(at + 1)
    .split('&')
    .filter((pair) => !['mount', 'from'].includes(pair.split('=', 1)[0]!));
  req.url = req.url.slice(0, at) + (kept.length > 0 ? `?${kept.join('&')}` : '');
}
