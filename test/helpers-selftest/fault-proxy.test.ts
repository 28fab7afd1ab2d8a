import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type FaultProxy,
  isBlobGet,
  isMountPost,
  isPatch,
  isUploadPost,
  startFaultProxy,
  stripMount,
} from '../helpers/fault-proxy.ts';

// A tiny launcher for a real Distribution registry: the fuller one is another helper, which this self-test
// must not depend on.
interface Registry {
  url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'fault-proxy-registry-'));
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let tries = 0; ; tries++) {
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200) return { url, stop };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || tries > 100) {
      await stop();
      throw new Error(`registry did not come up: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const digestOf = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let registry: Registry;
let proxy: FaultProxy;
let agent: Agent;

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
});
beforeEach(async () => {
  proxy = await startFaultProxy({ upstream: registry.url });
  agent = new Agent();
});
afterEach(async () => {
  await agent.close();
  await proxy.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function call(
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  opts: { headers?: Record<string, string>; body?: Buffer | Readable } = {},
): Promise<Answer> {
  const res = await request(new URL(url, proxy.url), {
    method,
    headers: opts.headers,
    body: opts.body,
    dispatcher: agent,
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = String(v);
  return { status: res.statusCode, headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

const octets = (extra: Record<string, string> = {}) => ({
  'content-type': 'application/octet-stream',
  ...extra,
});

/** Starts an upload session on the proxy; returns its Location. */
async function startUpload(repo: string): Promise<string> {
  const res = await call('POST', `/v2/${repo}/blobs/uploads/`);
  expect(res.status).toBe(202);
  return res.headers.location!;
}

/** Pushes a blob through the proxy the plain way: POST, one PATCH, PUT. */
async function pushBlob(repo: string, data: Buffer): Promise<string> {
  const digest = digestOf(data);
  const patched = await call('PATCH', await startUpload(repo), { headers: octets(), body: data });
  expect(patched.status).toBe(202);
  const put = await call('PUT', `${patched.headers.location}&digest=${digest}`);
  expect(put.status).toBe(201);
  return digest;
}

/** A body undici sends chunked (no Content-Length), in 64 KiB pieces. */
const chunked = (data: Buffer) =>
  Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += 65536) yield data.subarray(at, at + 65536);
    })(),
  );

describe('fault proxy in front of Distribution', () => {
  it('passes a plain blob push through, with Locations that point back at the proxy', async () => {
    const data = randomBytes(300_000);
    const digest = digestOf(data);
    const post = await call('POST', '/v2/selftest/plain/blobs/uploads/');
    expect(post.status).toBe(202);
    expect(new URL(post.headers.location!).host).toBe(proxy.host);

    const patch = await call('PATCH', post.headers.location!, { headers: octets(), body: data });
    expect(patch.status).toBe(202);
    expect(patch.headers.range).toBe(`0-${data.length - 1}`);
    expect(new URL(patch.headers.location!).host).toBe(proxy.host);

    const put = await call('PUT', `${patch.headers.location}&digest=${digest}`);
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`${proxy.url}/v2/selftest/plain/blobs/${digest}`);

    const got = await call('GET', `/v2/selftest/plain/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);

    await proxy.idle();
    expect(proxy.log.map((e) => [e.method, e.status])).toEqual([
      ['POST', 202],
      ['PATCH', 202],
      ['PUT', 201],
      ['GET', 200],
    ]);
    expect(proxy.log[1]).toMatchObject({ bytesReceived: data.length, bytesForwarded: data.length });
    expect(proxy.log[3]).toMatchObject({ bytesSent: data.length });
    expect(proxy.log.every((e) => e.fault === undefined && e.error === undefined)).toBe(true);
  });

  it('forwards chunked uploads as chunked', async () => {
    const data = randomBytes(500_000);
    const patch = await call('PATCH', await startUpload('selftest/chunked'), {
      headers: octets(),
      body: chunked(data),
    });
    expect(patch.status).toBe(202);
    expect(patch.headers.range).toBe(`0-${data.length - 1}`);
    await proxy.idle();
    expect(proxy.log[1]!.requestHeaders['transfer-encoding']).toBe('chunked');
    expect(proxy.log[1]!.bytesForwarded).toBe(data.length);
  });

  it("'respond' answers 429 with Retry-After once, without forwarding, and the retry passes", async () => {
    const rule = proxy.addRule({
      match: isPatch,
      fault: { kind: 'respond', status: 429, headers: { 'retry-after': '3' }, body: 'slow down' },
      times: 1,
    });
    const data = randomBytes(200_000);
    const location = await startUpload('selftest/respond');

    const refused = await call('PATCH', location, { headers: octets(), body: data });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('3');
    expect(refused.body.toString()).toBe('slow down');

    // Same session, same Location: the registry never saw the refused bytes.
    const retried = await call('PATCH', location, { headers: octets(), body: data });
    expect(retried.status).toBe(202);
    expect(retried.headers.range).toBe(`0-${data.length - 1}`);
    expect(rule.hits).toBe(1);

    await proxy.idle();
    expect(proxy.log[1]).toMatchObject({
      fault: 'respond',
      status: 429,
      bytesReceived: data.length,
      bytesForwarded: 0,
    });
  });

  it("'cap-body' answers 416 for a 5 MiB PATCH and passes a 4 MiB one (sized or chunked)", async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'cap-body', maxBytes: 4 * 1024 * 1024, status: 416 } });
    const big = randomBytes(5 * 1024 * 1024);
    const fits = big.subarray(0, 4 * 1024 * 1024);
    const location = await startUpload('selftest/cap');

    expect((await call('PATCH', location, { headers: octets(), body: big })).status).toBe(416);
    expect((await call('PATCH', location, { headers: octets(), body: chunked(big) })).status).toBe(416);
    const ok = await call('PATCH', location, { headers: octets(), body: fits });
    expect(ok.status).toBe(202);
    expect(ok.headers.range).toBe(`0-${fits.length - 1}`);
    const okChunked = await call('PATCH', ok.headers.location!, { headers: octets(), body: chunked(fits) });
    expect(okChunked.status).toBe(202);
    expect(okChunked.headers.range).toBe(`0-${2 * fits.length - 1}`);

    await proxy.idle();
    expect(proxy.log.slice(1).map((e) => [e.status, e.bytesForwarded])).toEqual([
      [416, 0],
      [416, 0],
      [202, fits.length],
      [202, fits.length],
    ]);
  });

  it("'reset-request' resets the client mid-upload after exactly afterBytes went upstream", async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'reset-request', afterBytes: 256 * 1024 }, times: 1 });
    const location = await startUpload('selftest/reset');
    const data = randomBytes(4 * 1024 * 1024);

    const failure: Error & { code?: string } = await call('PATCH', location, {
      headers: octets(),
      body: data,
    }).then(
      (res) => new Error(`expected a socket error, got ${res.status}`),
      (err: unknown) => err as Error & { code?: string },
    );
    expect(`${failure.message} ${failure.code}`).toMatch(/ECONNRESET|other side closed|UND_ERR_SOCKET|EPIPE/);

    await proxy.idle();
    expect(proxy.log[1]).toMatchObject({ fault: 'reset-request', bytesForwarded: 256 * 1024 });
    expect(proxy.log[1]!.status).toBeUndefined();
    // The proxy itself is fine afterwards.
    expect((await call('POST', '/v2/selftest/reset/blobs/uploads/')).status).toBe(202);
  });

  it("'reset-request' unbuffered leaves the registry with part of the body and the session dead", async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'reset-request', afterBytes: 256 * 1024 }, times: 1 });
    const location = await startUpload('selftest/reset-dead');
    await call('PATCH', location, { headers: octets(), body: randomBytes(1024 * 1024) }).then(
      () => expect.fail('expected a socket error'),
      () => {},
    );
    // Distribution holds the 256 KiB the PATCH got across, where the Location's signed state says 0.
    await proxy.idle();
    await new Promise((resolve) => setTimeout(resolve, 100)); // the registry notices the cut on its own time
    const status = await call('GET', location);
    expect(status.status).toBe(404);
    expect(status.body.toString()).toMatch(/BLOB_UPLOAD_INVALID|BLOB_UPLOAD_UNKNOWN/);
  });

  it("'drop-response' lets the registry take the PATCH but loses its answer; the stale session is dead", async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'drop-response' }, times: 1 });
    const data = randomBytes(300_000);
    const location = await startUpload('selftest/dropped');
    await call('PATCH', location, { headers: octets(), body: data }).then(
      () => expect.fail('expected a socket error'),
      () => {},
    );
    await proxy.idle();
    expect(proxy.log[1]).toMatchObject({ fault: 'drop-response', bytesForwarded: data.length });
    expect(proxy.log[1]!.status).toBeUndefined();
    // The registry holds the chunk, but the Location we still have says 0: Distribution cancels.
    const status = await call('GET', location);
    expect(status.status).toBe(404);
  });

  it("'reset-request' buffered resets after afterBytes arrived, forwards nothing, and the session goes on", async () => {
    const rule = proxy.addRule({
      match: isPatch,
      fault: { kind: 'reset-request', afterBytes: 256 * 1024, buffered: true },
      times: 1,
    });
    const location = await startUpload('selftest/reset-buffered');
    const first = randomBytes(1024 * 1024);
    const failure: Error & { code?: string } = await call('PATCH', location, {
      headers: octets(),
      body: first,
    }).then(
      (res) => new Error(`expected a socket error, got ${res.status}`),
      (err: unknown) => err as Error & { code?: string },
    );
    expect(`${failure.message} ${failure.code}`).toMatch(/ECONNRESET|other side closed|UND_ERR_SOCKET|EPIPE/);
    expect(rule.hits).toBe(1);
    await proxy.idle();
    const cut = proxy.log[1]!;
    expect(cut).toMatchObject({ method: 'PATCH', fault: 'reset-request', bytesForwarded: 0 });
    expect(cut.bytesReceived).toBeGreaterThan(256 * 1024);
    expect(cut.status).toBeUndefined();

    // The registry never heard of the PATCH: the same Location still works and holds nothing.
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-0');
    const retried = await call('PATCH', location, { headers: octets(), body: first });
    expect(retried.status).toBe(202);
    expect(retried.headers.range).toBe(`0-${first.length - 1}`);
  });

  it("'reset-request' buffered forwards a body no longer than afterBytes whole", async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'reset-request', afterBytes: 300_000, buffered: true } });
    const data = randomBytes(300_000);
    const location = await startUpload('selftest/reset-buffered-small');
    const sized = await call('PATCH', location, { headers: octets(), body: data });
    expect(sized.status).toBe(202);
    expect(sized.headers.range).toBe(`0-${data.length - 1}`);
    const viaChunked = await call('PATCH', sized.headers.location!, {
      headers: octets(),
      body: chunked(data),
    });
    expect(viaChunked.status).toBe(202);
    expect(viaChunked.headers.range).toBe(`0-${2 * data.length - 1}`);
    await proxy.idle();
    expect(proxy.log.slice(1).map((e) => [e.fault, e.bytesForwarded])).toEqual([
      ['reset-request', data.length],
      ['reset-request', data.length],
    ]);
  });

  it("'truncate-response' gives a blob GET fewer bytes than its Content-Length", async () => {
    const data = randomBytes(1024 * 1024);
    const digest = await pushBlob('selftest/truncate', data);
    proxy.addRule({ match: isBlobGet, fault: { kind: 'truncate-response', afterBytes: 100_000 }, times: 1 });

    const res = await request(`${proxy.url}/v2/selftest/truncate/blobs/${digest}`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    expect(Number(res.headers['content-length'])).toBe(data.length);
    let received = 0;
    const failure = await (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length;
    })().then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(received).toBe(100_000);

    await proxy.idle();
    expect(proxy.log.at(-1)).toMatchObject({ fault: 'truncate-response', status: 200, bytesSent: 100_000 });
    // The next GET is whole again.
    expect((await call('GET', `/v2/selftest/truncate/blobs/${digest}`)).body.equals(data)).toBe(true);
  });

  it("'rewrite' with stripMount turns a mount into an upload session (202 + Location)", async () => {
    const digest = await pushBlob('selftest/mount-src', randomBytes(10_000));
    const mountUrl = `/v2/selftest/mount-dst/blobs/uploads/?mount=${digest}&from=selftest/mount-src`;
    // Without the rule, Distribution mounts.
    const mounted = await call('POST', mountUrl.replace('mount-dst', 'mount-dst2'));
    expect(mounted.status).toBe(201);

    proxy.addRule({ match: isMountPost, fault: { kind: 'rewrite', rewrite: stripMount } });
    const res = await call('POST', mountUrl);
    expect(res.status).toBe(202);
    expect(res.headers.location).toMatch(new RegExp(`^${proxy.url}/v2/selftest/mount-dst/blobs/uploads/`));
    await proxy.idle();
    expect(proxy.log.at(-1)).toMatchObject({
      fault: 'rewrite',
      url: mountUrl,
      rewrittenTo: { method: 'POST', url: '/v2/selftest/mount-dst/blobs/uploads/' },
    });
  });

  it("'delay' holds a request back before forwarding it", async () => {
    proxy.addRule({ match: isUploadPost, fault: { kind: 'delay', ms: 300 }, times: 1 });
    const started = performance.now();
    await startUpload('selftest/delay');
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('throttles uploads to bytesPerSecond (20 MB at 20 MB/s takes about a second)', async () => {
    proxy.setBytesPerSecond(20_000_000);
    const data = randomBytes(20_000_000);
    const location = await startUpload('selftest/throttle');
    const started = performance.now();
    const res = await call('PATCH', location, { headers: octets(), body: data });
    const seconds = (performance.now() - started) / 1000;
    expect(res.status).toBe(202);
    expect(seconds).toBeGreaterThanOrEqual(0.7);
    expect(seconds).toBeLessThan(10);
  });

  it('throttles each connection to perConnectionBytesPerSecond: two at once get twice the bytes', async () => {
    const data = randomBytes(8_000_000);
    const digest = await pushBlob('selftest/per-connection', data);
    proxy.setPerConnectionBytesPerSecond(8_000_000);
    const get = () => call('GET', `/v2/selftest/per-connection/blobs/${digest}`);
    let started = performance.now();
    expect((await get()).body.equals(data)).toBe(true);
    const one = (performance.now() - started) / 1000;
    // Both in flight at once: the agent opens a second connection.
    started = performance.now();
    const both = await Promise.all([get(), get()]);
    const two = (performance.now() - started) / 1000;
    expect(both.every((r) => r.body.equals(data))).toBe(true);
    expect(one).toBeGreaterThanOrEqual(0.7);
    expect(two).toBeLessThan(one * 1.6);
  });

  it("'redirect-to-storage' sends blob GETs to another origin whose URLs expire", async () => {
    const data = randomBytes(100_000);
    const digest = await pushBlob('selftest/storage', data);
    proxy.addRule({ match: isBlobGet, fault: { kind: 'redirect-to-storage', uses: 2 } });
    const first = await request(`${proxy.url}/v2/selftest/storage/blobs/${digest}`, {
      dispatcher: agent,
      headers: { authorization: 'Bearer secret' },
    });
    await first.body.dump();
    expect(first.statusCode).toBe(307);
    const location = String(first.headers.location);
    expect(location.startsWith(`${proxy.storageUrl}/`)).toBe(true);
    expect(proxy.storageUrl).not.toBe(proxy.url);
    // Range passes through to the registry; the URL works twice, then says it expired.
    const ranged = await request(location, { dispatcher: agent, headers: { range: 'bytes=10-19' } });
    expect(ranged.statusCode).toBe(206);
    expect(Buffer.from(await ranged.body.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
    const whole = await request(location, { dispatcher: agent });
    expect(Buffer.from(await whole.body.arrayBuffer()).equals(data)).toBe(true);
    const expired = await request(location, { dispatcher: agent });
    expect(expired.statusCode).toBe(403);
    expect(await expired.body.text()).toContain('expired');
    await proxy.idle();
    expect(proxy.log.filter((e) => e.storage).map((e) => e.status)).toEqual([206, 200, 403]);
  });
});

describe('fault proxy pass-through details', () => {
  it('keeps Host and Authorization, drops hop-by-hop headers, and relays HEAD and errors', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const echo = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(418, { 'x-upstream': 'yes', 'content-length': '5', connection: 'keep-alive' });
        res.end(req.method === 'HEAD' ? undefined : 'teapo');
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoProxy = await startFaultProxy({
      upstream: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`,
    });
    try {
      const res = await request(`${echoProxy.url}/v2/x`, {
        method: 'PUT',
        headers: { authorization: 'Bearer abc', 'x-custom': 'one' },
        body: 'hello',
        dispatcher: agent,
      });
      expect(res.statusCode).toBe(418);
      expect(res.headers['x-upstream']).toBe('yes');
      expect(await res.body.text()).toBe('teapo');
      const head = await request(`${echoProxy.url}/v2/x`, { method: 'HEAD', dispatcher: agent });
      expect(head.statusCode).toBe(418);
      expect(head.headers['content-length']).toBe('5');
      await head.body.dump();

      expect(seen[0]).toMatchObject({
        host: echoProxy.host,
        authorization: 'Bearer abc',
        'x-custom': 'one',
        'content-length': '5',
      });
      expect(seen[1]!.host).toBe(echoProxy.host);

      // A dead upstream is a 502, as from a gateway.
      await new Promise((resolve) => echo.close(resolve));
      echo.closeAllConnections();
      const dead = await request(`${echoProxy.url}/v2/`, { dispatcher: agent });
      expect(dead.statusCode).toBe(502);
      await dead.body.dump();
      await echoProxy.idle();
      expect(echoProxy.log.at(-1)!.error).toMatch(/upstream/);
    } finally {
      await echoProxy.stop();
      echo.closeAllConnections();
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});

describe('fault proxy registry limits', () => {
  /** A request to `limited` (not the shared proxy). */
  async function send(
    limited: FaultProxy,
    method: 'POST' | 'PATCH',
    url: string,
    opts: { headers?: Record<string, string>; body?: Buffer | Readable } = {},
  ): Promise<Answer> {
    const res = await request(new URL(url, limited.url), { method, ...opts, dispatcher: agent });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = String(v);
    return { status: res.statusCode, headers, body: Buffer.from(await res.body.arrayBuffer()) };
  }

  it('refuses a blob over the size limit with 413; cuts off an upload session once its time is up', async () => {
    const limited = await startFaultProxy({
      upstream: registry.url,
      registryLimits: { maxBlobBytes: 1000, uploadTimeLimitMs: 400 },
    });
    try {
      const start = async () =>
        (await send(limited, 'POST', '/v2/selftest/limits/blobs/uploads/')).headers.location!;
      const tooBig = await send(limited, 'PATCH', await start(), {
        headers: octets({ 'content-range': '0-1999' }),
        body: randomBytes(2000),
      });
      expect(tooBig.status).toBe(413);
      expect(tooBig.body.toString()).toContain('SIZE_INVALID');

      // Within the size limit: fine while the session is young, 404 once its time has passed.
      const location = await start();
      const first = await send(limited, 'PATCH', location, {
        headers: octets({ 'content-range': '0-499' }),
        body: randomBytes(500),
      });
      expect(first.status).toBe(202);
      await new Promise((r) => setTimeout(r, 500));
      const late = await send(limited, 'PATCH', first.headers.location!, {
        headers: octets({ 'content-range': '500-599' }),
        body: randomBytes(100),
      });
      expect(late.status).toBe(404);
      expect(late.body.toString()).toContain('BLOB_UPLOAD_UNKNOWN');

      // A PATCH still sending when the time is up is cut off.
      const slow = Readable.from(
        (async function* () {
          for (let i = 0; i < 8; i++) {
            yield randomBytes(100);
            await new Promise((r) => setTimeout(r, 100));
          }
        })(),
      );
      await expect(
        send(limited, 'PATCH', await start(), { headers: octets({ 'content-range': '0-799' }), body: slow }),
      ).rejects.toThrow();
      await limited.idle();
      expect(limited.log.some((e) => e.error?.startsWith('cut off'))).toBe(true);
    } finally {
      await limited.stop();
    }
  });
});
