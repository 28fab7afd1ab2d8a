/**
 * The registry client against a real registry (CNCF Distribution) behind the fault proxy: resets mid-upload
 * (with and without a body-buffering front end), size caps, rate limits, 5xx bursts, truncated downloads,
 * declined mounts, storage redirects, stalls, and the single-PUT strategy — each through the library API.
 */
import { createHash, randomBytes, randomFillSync, randomInt } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { copyBlob } from '../../src/content/copy.ts';
import { WriteLostError } from '../../src/content/errors.ts';
import type { BlobWriter } from '../../src/content/target.ts';
import { buildModel } from '../../src/model/build.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { sha256Digest } from '../../src/oci/digest.ts';
import { OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { RegistryError, UploadSessionLostError } from '../../src/registry/errors.ts';
import { openRegistryTarget, type RegistryOptions } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import {
  type FaultProxy,
  isBlobGet,
  isManifestPut,
  isMountPost,
  isPatch,
  isPut,
  type ProxyLogEntry,
  type ProxyRequest,
  startFaultProxy,
  stripMount,
} from '../helpers/fault-proxy.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;
const BLOB = 'application/octet-stream';

const isBlobHead = (req: ProxyRequest) =>
  req.method === 'HEAD' && /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/.test(req.url.split('?')[0]!);
const isManifestGet = (req: ProxyRequest) =>
  req.method === 'GET' && /^\/v2\/.+\/manifests\/[^/]+$/.test(req.url.split('?')[0]!);
const isUploadStatus = (req: ProxyRequest) => req.method === 'GET' && req.url.includes('/blobs/uploads/');
/** A request matcher applied to log entries. */
const logged =
  (match: (req: ProxyRequest) => boolean) =>
  (e: ProxyLogEntry): boolean =>
    match({ method: e.method, url: e.url, headers: e.requestHeaders });

let registry: TestRegistry;
let proxy: FaultProxy;

beforeAll(async () => {
  registry = await startRegistry({ auth: 'none' });
});
afterAll(async () => {
  await registry?.stop();
});
beforeEach(async () => {
  proxy = await startFaultProxy({ upstream: registry.url });
});
afterEach(async () => {
  await proxy.stop();
});

/** A push target on the proxy, closed when the test ends. */
async function open(
  repository: string,
  options: Partial<RegistryOptions> = {},
  via: FaultProxy = proxy,
): Promise<RegistryTarget> {
  const target = await openRegistryTarget(parseReference(`${via.host}/${repository}:1`), 'push', {
    env: { PATH: process.env.PATH },
    homeDir: await tempDir(),
    retry: { baseDelayMs: 20, maxDelayMs: 500 },
    ...options,
  });
  onTestFinished(() => target.close());
  return target;
}

/**
 * Writes `size` random bytes in 1 MiB pieces from one reused buffer (the writer copies what it takes
 * before write resolves) and returns their descriptor, hashed on the way.
 */
async function writeRandom(writer: BlobWriter, size: number): Promise<Descriptor> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(MiB);
  for (let at = 0; at < size; at += buffer.length) {
    const piece = buffer.subarray(0, Math.min(buffer.length, size - at));
    randomFillSync(piece);
    hash.update(piece);
    await writer.write(piece);
  }
  return { mediaType: BLOB, digest: `sha256:${hash.digest('hex')}`, size };
}

/** Reads a blob through fetchBlob (which verifies it) and hashes it once more here. */
async function fetchedDigest(target: RegistryTarget, desc: Descriptor): Promise<string> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await target.fetchBlob(desc)) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  expect(size).toBe(desc.size);
  return `sha256:${hash.digest('hex')}`;
}

function blobOf(bytes: Uint8Array): Descriptor {
  return { mediaType: BLOB, digest: sha256Digest(bytes), size: bytes.byteLength };
}

/** Pushes a config and one small layer, and returns an OCI manifest for them (not pushed). */
async function smallImage(target: RegistryTarget): Promise<{ desc: Descriptor; bytes: Uint8Array }> {
  const config = Buffer.from('{}');
  const configDesc = { ...blobOf(config), mediaType: 'application/vnd.oci.image.config.v1+json' };
  const layer = randomBytes(2000);
  const layerDesc = { ...blobOf(layer), mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  await target.putBlob(configDesc, config);
  await target.putBlob(layerDesc, layer);
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [layerDesc] }),
  );
  return { desc: { mediaType: OCI_MANIFEST, digest: sha256Digest(bytes), size: bytes.byteLength }, bytes };
}

async function failureOf(work: Promise<unknown>): Promise<Error> {
  return work.then(
    () => expect.fail('expected a failure'),
    (err: unknown) => err as Error,
  );
}

const sumForwarded = (entries: readonly { bytesForwarded: number }[]) =>
  entries.reduce((n, e) => n + e.bytesForwarded, 0);

// ---- 1: a reset behind a buffering front end, at a random offset of a big blob ----

const CHUNK = 16 * MiB;
const BIG = 256 * MiB;
// FAULTS_RESET_AT=<byte> repeats a run; the offset is in the test's name.
const RESET_AT = process.env.FAULTS_RESET_AT ? Number(process.env.FAULTS_RESET_AT) : randomInt(0, BIG);
const RESET_PATCH = Math.floor(RESET_AT / CHUNK);
const RESET_AFTER = RESET_AT % CHUNK;

describe('chunked upload through a front end that buffers request bodies', () => {
  it(`a 256 MiB blob lands whole, no byte sent twice, when the PATCH holding byte ${RESET_AT} is reset ` +
    `(PATCH #${RESET_PATCH} after ${RESET_AFTER} bytes; repeat with FAULTS_RESET_AT=${RESET_AT})`, {
    timeout: 300_000,
  }, async () => {
    let patches = 0;
    const rule = proxy.addRule({
      match: (req) => isPatch(req) && patches++ === RESET_PATCH,
      fault: { kind: 'reset-request', afterBytes: RESET_AFTER, buffered: true },
      times: 1,
    });
    const target = await open('org/m', { upload: { chunkSize: CHUNK } });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, BIG);
    expect(await writer.commit()).toEqual({ digest: desc.digest, size: BIG, stored: true });
    expect(rule.hits).toBe(1);

    expect(await target.hasBlob(desc.digest)).toBe(true);
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);

    await proxy.idle();
    const log = proxy.log;
    const held = RESET_PATCH * CHUNK; // N: what the registry holds when the reset PATCH starts
    const cut = log.findIndex((e) => e.fault === 'reset-request');
    expect(log[cut]).toMatchObject({
      method: 'PATCH',
      bytesForwarded: 0,
      requestHeaders: { 'content-range': `${held}-${held + CHUNK - 1}` },
    });
    expect(log[cut]!.bytesReceived).toBeGreaterThanOrEqual(RESET_AFTER);
    expect(log[cut]!.status).toBeUndefined();

    const after = log.slice(cut + 1);
    const status = after.find(logged(isUploadStatus));
    expect(status?.status).toBe(204);
    // Distribution says 0-0 for an empty upload.
    expect(status?.responseHeaders?.range).toBe(held === 0 ? '0-0' : `0-${held - 1}`);
    const resent = after.find((e) => e.method === 'PATCH');
    expect(resent?.requestHeaders['content-range']).toBe(`${held}-${held + CHUNK - 1}`);
    expect(resent?.status).toBe(202);
    expect(after.indexOf(status!)).toBeLessThan(after.indexOf(resent!));

    // Every byte the registry got, it got once.
    const uploads = log.filter((e) => e.method === 'PATCH' || e.method === 'PUT');
    expect(sumForwarded(uploads)).toBe(BIG);
    expect(uploads.filter((e) => e.method === 'PATCH' && e.status === 202)).toHaveLength(BIG / CHUNK);
  });
});

// ---- the other faults ----

describe('registry client under faults', () => {
  it('a PATCH cut mid-body that reached the registry loses the session: UploadSessionLostError, no blob', async () => {
    let patches = 0;
    proxy.addRule({
      match: (req) => isPatch(req) && patches++ === 1,
      fault: { kind: 'reset-request', afterBytes: 100_000 },
      times: 1,
    });
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const writer = await target.openBlobWriter();
    const failure = await failureOf(writeRandom(writer, 4 * MiB).then(() => writer.commit()));
    await writer.abort();

    expect(failure).toBeInstanceOf(UploadSessionLostError);
    expect(failure).toBeInstanceOf(WriteLostError);
    expect(failure.name).toBe('UploadSessionLostError');
    const lost = failure as UploadSessionLostError;
    expect(lost.answer.status).toBe(404);
    expect(lost.answer.code).toMatch(/^BLOB_UPLOAD_(INVALID|UNKNOWN)$/);
    expect(lost.answer.url).not.toContain('?');
    expect(lost.message).toMatch(
      /^upload session lost after PATCH http:\/\/127\.0\.0\.1:\d+\/v2\/org\/m\/blobs\/uploads\//,
    );
    expect(lost.message).toMatch(/from byte 1048576 on/);
    expect(lost.message).toMatch(/uploaded again from its start in a new session/);
    expect(lost.message).not.toContain('_state');

    await proxy.idle();
    const cut = proxy.log.find((e) => e.fault === 'reset-request')!;
    expect(cut.bytesForwarded).toBe(100_000);
    // Nothing was committed, and nothing was sent again into the dead session.
    expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(0);
    expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(2);
  });

  it('a registry that refuses PATCHes over 4 MiB (416) gets smaller pieces and the blob lands', async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'cap-body', maxBytes: 4 * MiB, status: 416 } });
    const target = await open('org/m', { upload: { chunkSize: 16 * MiB } });
    const writer = await target.openBlobWriter();
    const size = 20 * MiB + 12_345;
    const desc = await writeRandom(writer, size);
    expect(await writer.commit()).toEqual({ digest: desc.digest, size, stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);

    await proxy.idle();
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    const firstRefusal = patches.findIndex((e) => e.status === 416);
    expect(firstRefusal).toBe(0);
    // 16 MiB, then 8 MiB refused; 4 MiB pieces from then on.
    expect(patches.filter((e) => e.status === 416).map((e) => e.requestHeaders['content-length'])).toEqual([
      String(16 * MiB),
      String(8 * MiB),
    ]);
    const forwarded = patches.filter((e) => e.bytesForwarded > 0);
    expect(Math.max(...forwarded.map((e) => e.bytesForwarded))).toBeLessThanOrEqual(4 * MiB);
    expect(patches.slice(2).every((e) => e.status === 202)).toBe(true);
    expect(sumForwarded(patches)).toBe(size);
  });

  it('429 with Retry-After: 1 on a blob HEAD and on a manifest PUT is waited out', async () => {
    const target = await open('org/m');
    const image = await smallImage(target);
    const heads: number[] = [];
    const puts: number[] = [];
    // A spy rule: records when requests pass, applies to none.
    proxy.addRule({
      match: (req) => {
        if (isBlobHead(req)) heads.push(performance.now());
        if (isManifestPut(req)) puts.push(performance.now());
        return false;
      },
      fault: { kind: 'delay', ms: 0 },
    });
    const limited = { kind: 'respond', status: 429, headers: { 'retry-after': '1' } } as const;
    proxy.addRule({ match: isBlobHead, fault: limited, times: 1 });
    proxy.addRule({ match: isManifestPut, fault: limited, times: 1 });

    expect(await target.hasBlob(image.desc.digest)).toBe(false);
    await target.putManifest(image.desc, image.bytes, ['1']);
    expect(await target.resolve('1')).toMatchObject({ digest: image.desc.digest, size: image.desc.size });

    expect(heads).toHaveLength(2);
    expect(heads[1]! - heads[0]!).toBeGreaterThanOrEqual(950);
    expect(puts).toHaveLength(2);
    expect(puts[1]! - puts[0]!).toBeGreaterThanOrEqual(950);
    await proxy.idle();
    expect(proxy.log.filter((e) => e.status === 429)).toHaveLength(2);
  });

  it('429 with Retry-After: 2 on an upload PATCH is waited out before the upload goes on', async () => {
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const patches: number[] = [];
    proxy.addRule({
      match: (req) => {
        if (isPatch(req)) patches.push(performance.now());
        return false;
      },
      fault: { kind: 'delay', ms: 0 },
    });
    proxy.addRule({
      match: isPatch,
      fault: { kind: 'respond', status: 429, headers: { 'retry-after': '2' } },
      times: 1,
    });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 2 * MiB + 5);
    expect(await writer.commit()).toMatchObject({ digest: desc.digest, stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    // The refused PATCH, then (after the status GET) the same bytes again no sooner than 2 s later.
    expect(patches[1]! - patches[0]!).toBeGreaterThanOrEqual(1950);
  });

  it('OCI-Chunk-Min-Length from the registry makes every PATCH but the last at least that long', async () => {
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    proxy.addRule({
      match: (req) => req.method === 'POST' && req.url.includes('/blobs/uploads/'),
      fault: { kind: 'add-response-headers', headers: { 'OCI-Chunk-Min-Length': String(3 * MiB) } },
      times: 1,
    });
    const start = proxy.log.length;
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 10 * MiB);
    expect(await writer.commit()).toMatchObject({ digest: desc.digest, stored: true });
    await proxy.idle();
    const sizes = proxy.log
      .slice(start)
      .filter((e) => e.method === 'PATCH')
      .map((e) => e.bytesForwarded);
    expect(sizes).toEqual([3 * MiB, 3 * MiB, 3 * MiB, MiB]);
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
  });

  it('503 bursts on PATCH and on a manifest GET are retried through', async () => {
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const unavailable = { kind: 'respond', status: 503, body: 'busy' } as const;
    proxy.addRule({ match: isPatch, fault: unavailable, times: 3 });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 3 * MiB + 10);
    expect(await writer.commit()).toMatchObject({ digest: desc.digest, stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);

    const image = await smallImage(target);
    await target.putManifest(image.desc, image.bytes, ['1']);
    proxy.addRule({ match: isManifestGet, fault: unavailable, times: 3 });
    expect(Buffer.from(await target.fetchManifest(image.desc)).equals(image.bytes)).toBe(true);

    await proxy.idle();
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    expect(patches.filter((e) => e.status === 503)).toHaveLength(3);
    expect(sumForwarded(patches)).toBe(desc.size);
    expect(proxy.log.filter((e) => e.method === 'GET' && e.status === 503)).toHaveLength(3);
  });

  it('503s past the retry budget fail with a RegistryError naming method, status, URL and attempts', async () => {
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const image = await smallImage(target);
    await target.putManifest(image.desc, image.bytes, ['1']);
    const unavailable = { kind: 'respond', status: 503, body: 'busy' } as const;

    proxy.addRule({ match: isManifestGet, fault: unavailable });
    const getFailure = await failureOf(target.fetchManifest(image.desc));
    expect(getFailure).toBeInstanceOf(RegistryError);
    expect(getFailure).toMatchObject({
      status: 503,
      method: 'GET',
      url: `${proxy.url}/v2/org/m/manifests/${image.desc.digest}`,
    });
    expect(getFailure.message).toMatch(/^GET http:\/\/\S+\/manifests\/sha256:[0-9a-f]+: 503 \(busy\)/);
    expect(getFailure.message).toMatch(/gave up after 6 attempts/);

    proxy.clearRules();
    proxy.addRule({ match: isPatch, fault: unavailable });
    const writer = await target.openBlobWriter();
    const patchFailure = await failureOf(writeRandom(writer, 2 * MiB).then(() => writer.commit()));
    await writer.abort();
    expect(patchFailure).toBeInstanceOf(RegistryError);
    expect(patchFailure).not.toBeInstanceOf(UploadSessionLostError);
    const err = patchFailure as RegistryError;
    expect(err).toMatchObject({ status: 503, method: 'PATCH' });
    expect(err.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v2\/org\/m\/blobs\/uploads\/[0-9a-f-]+$/);
    expect(err.message).toMatch(/^PATCH http:\/\/\S+\/blobs\/uploads\/[0-9a-f-]+: 503 \(busy\)/);
    expect(err.message).toMatch(/gave up after 6 attempts/);
    expect(err.message).not.toContain('_state');

    await proxy.idle();
    expect(proxy.log.filter((e) => logged(isManifestGet)(e) && e.status === 503)).toHaveLength(6);
    expect(proxy.log.filter((e) => e.method === 'PATCH' && e.status === 503)).toHaveLength(6);
    // Giving up drops the session, so the registry frees what it held.
    const uploadId = /\/blobs\/uploads\/([0-9a-f-]+)/.exec(err.url)![1]!;
    const deletes = proxy.log.filter((e) => e.method === 'DELETE' && e.url.includes(uploadId));
    expect(deletes.map((e) => e.status)).toEqual([204]);
  });

  it('a truncated blob GET resumes with a Range request and yields the whole verified blob', async () => {
    const target = await open('org/m');
    const bytes = randomBytes(3 * MiB);
    const desc = blobOf(bytes);
    await target.putBlob(desc, bytes);
    const cutAt = MiB + 7;
    proxy.addRule({ match: isBlobGet, fault: { kind: 'truncate-response', afterBytes: cutAt }, times: 1 });

    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    await proxy.idle();
    const gets = proxy.log.filter(logged(isBlobGet));
    expect(gets.map((e) => [e.status, e.requestHeaders.range, e.bytesSent])).toEqual([
      [200, undefined, cutAt],
      [206, `bytes=${cutAt}-${bytes.length - 1}`, bytes.length - cutAt],
    ]);
  });

  it('a blob GET cut off again and again resumes as long as each attempt gets further', async () => {
    const target = await open('org/m');
    const bytes = randomBytes(MiB);
    const desc = blobOf(bytes);
    await target.putBlob(desc, bytes);
    // More cuts than the retry budget's 6 attempts, each after some progress.
    const cuts = proxy.addRule({
      match: isBlobGet,
      fault: { kind: 'truncate-response', afterBytes: 100_000 },
      times: 8,
    });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    expect(cuts.hits).toBe(8);
    await proxy.idle();
    const gets = proxy.log.filter(logged(isBlobGet));
    expect(gets.map((e) => e.requestHeaders.range)).toEqual([
      undefined,
      ...Array.from({ length: 8 }, (_, i) => `bytes=${(i + 1) * 100_000}-${MiB - 1}`),
    ]);
  });

  it('a truncated manifest GET is asked again; one that keeps breaking off fails clearly', async () => {
    const target = await open('org/m');
    const image = await smallImage(target);
    await target.putManifest(image.desc, image.bytes, ['1']);
    const truncate = { kind: 'truncate-response', afterBytes: 40 } as const;

    const once = proxy.addRule({ match: isManifestGet, fault: truncate, times: 1 });
    expect(Buffer.from(await target.fetchManifest(image.desc)).equals(image.bytes)).toBe(true);
    expect(once.hits).toBe(1);

    proxy.addRule({ match: isManifestGet, fault: truncate });
    const failure = await failureOf(target.fetchManifest(image.desc));
    expect(failure).toBeInstanceOf(RegistryError);
    expect(failure).toMatchObject({
      method: 'GET',
      url: `${proxy.url}/v2/org/m/manifests/${image.desc.digest}`,
    });
    expect(failure.message).toMatch(/manifest transfer broke off/);
    expect(failure.message).toMatch(/gave up after 6 attempts/);
    await proxy.idle();
    expect(proxy.log.filter((e) => logged(isManifestGet)(e) && e.fault === 'truncate-response')).toHaveLength(
      7,
    );
  });

  it('a mount the registry declines (202) is copied; one it grants needs no upload', async () => {
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const source = target.withRepository('org/src');
    const bytes = randomBytes(2 * MiB + 3);
    const desc = blobOf(bytes);
    await source.putBlob(desc, bytes);

    const declined = proxy.addRule({ match: isMountPost, fault: { kind: 'rewrite', rewrite: stripMount } });
    expect(await target.mountBlob(desc, source)).toBe('declined');
    expect(await copyBlob(source, target, desc, { mount: true })).toBe('copied');
    expect(declined.hits).toBe(2);
    expect(await target.hasBlob(desc.digest)).toBe(true);
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    await proxy.idle();
    expect(sumForwarded(proxy.log.filter((e) => e.method === 'PATCH'))).toBe(desc.size);

    declined.remove();
    const other = target.withRepository('org/other');
    const seen = proxy.log.length;
    expect(await copyBlob(source, other, desc, { mount: true })).toBe('mounted');
    expect(await other.hasBlob(desc.digest)).toBe(true);
    await proxy.idle();
    const since = proxy.log.slice(seen);
    expect(since.filter(logged(isMountPost)).map((e) => e.status)).toEqual([201]);
    expect(since.some((e) => e.method === 'PATCH' || e.method === 'PUT')).toBe(false);
  });

  it('a stalled HEAD times out (headersMs) and is retried until the stall ends', async () => {
    const target = await open('org/m', { timeouts: { headersMs: 300 } });
    const bytes = randomBytes(1000);
    const desc = blobOf(bytes);
    await target.putBlob(desc, bytes);
    // undici's headers timer ticks about once a second, so 300 ms fire after up to ~1.5 s; the stall is longer
    // still (and ends early anyway: the proxy stops waiting when the client leaves).
    const stall = proxy.addRule({ match: isBlobHead, fault: { kind: 'delay', ms: 5000 }, times: 2 });

    expect(await target.hasBlob(desc.digest)).toBe(true);
    expect(stall.hits).toBe(2);
    await proxy.idle();
    const heads = proxy.log.filter(logged(isBlobHead)).slice(-3);
    expect(heads.map((e) => [e.fault, e.status])).toEqual([
      ['delay', undefined],
      ['delay', undefined],
      [undefined, 200],
    ]);
  });

  it("the 'single' strategy sends a blob in one PUT, and a reset PUT goes again in a new session", async () => {
    const target = await open('org/m', { upload: { strategy: 'single' }, spoolDir: await tempDir() });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 3 * MiB + 5);
    expect(await writer.commit()).toEqual({ digest: desc.digest, size: desc.size, stored: true });
    await proxy.idle();
    expect(proxy.log.some((e) => e.method === 'PATCH')).toBe(false);
    const puts = proxy.log.filter(logged(isPut));
    expect(puts.map((e) => [e.status, e.requestHeaders['content-length'], e.bytesForwarded])).toEqual([
      [201, String(desc.size), desc.size],
    ]);

    const seen = proxy.log.length;
    proxy.addRule({ match: isPut, fault: { kind: 'reset-request', afterBytes: MiB }, times: 1 });
    const again = await target.openBlobWriter();
    const second = await writeRandom(again, 3 * MiB + 5);
    expect(await again.commit()).toEqual({ digest: second.digest, size: second.size, stored: true });
    expect(await fetchedDigest(target, second)).toBe(second.digest);
    await proxy.idle();
    const since = proxy.log.slice(seen);
    expect(since.some((e) => e.method === 'PATCH')).toBe(false);
    const posts = since.filter((e) => e.method === 'POST');
    const resent = since.filter(logged(isPut));
    expect(posts).toHaveLength(2);
    expect(resent.map((e) => [e.fault, e.status, e.bytesForwarded])).toEqual([
      ['reset-request', undefined, MiB],
      [undefined, 201, second.size],
    ]);
    // Each PUT went to its own session.
    const session = (url: string) => url.split('?')[0];
    expect(session(resent[0]!.url)).not.toBe(session(resent[1]!.url));
  });
});

describe('upload edge cases', () => {
  it('a one-byte blob through the chunked writer lands (Distribution answers Range 0-0 for it)', async () => {
    const target = await open('org/m');
    const writer = await target.openBlobWriter();
    const bytes = randomBytes(1);
    await writer.write(bytes);
    const desc = blobOf(bytes);
    expect(await writer.commit()).toEqual({ digest: desc.digest, size: 1, stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    await proxy.idle();
    expect(proxy.log.filter((e) => e.method === 'PATCH').map((e) => e.bytesForwarded)).toEqual([1]);
  });

  it('a PATCH reset before any body byte reached the registry resumes in the same session', async () => {
    let patches = 0;
    proxy.addRule({
      match: (req) => isPatch(req) && patches++ === 1,
      fault: { kind: 'reset-request', afterBytes: 0 },
      times: 1,
    });
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 3 * MiB);
    expect(await writer.commit()).toMatchObject({ digest: desc.digest, stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    await proxy.idle();
    expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(1);
    expect(sumForwarded(proxy.log.filter((e) => e.method === 'PATCH'))).toBe(desc.size);
  });

  it('a registry that answers PATCHes with success but keeps nothing is given up on, not fed for ever', async () => {
    let patches = 0;
    proxy.addRule({
      // From the second PATCH on: 202, and a Range still at the first chunk's end.
      match: (req) => isPatch(req) && patches++ >= 1,
      fault: { kind: 'respond', status: 202, headers: { range: `0-${MiB - 1}` } },
    });
    const target = await open('org/m', { upload: { chunkSize: MiB } });
    const writer = await target.openBlobWriter();
    const failure = await failureOf(writeRandom(writer, 3 * MiB).then(() => writer.commit()));
    await writer.abort();
    expect(failure).toBeInstanceOf(RegistryError);
    expect(failure.message).toMatch(/keeps none of the bytes from 1048576 on \(gave up after 6 attempts\)/);
    expect(patches).toBe(7);
  });

  it('putBlob sends a blob whose PUT was reset again, in a new session', async () => {
    const target = await open('org/m');
    proxy.addRule({ match: isPut, fault: { kind: 'reset-request', afterBytes: 50_000 }, times: 1 });
    const bytes = randomBytes(200_000);
    const desc = blobOf(bytes);
    expect(await target.putBlob(desc, bytes)).toEqual({ stored: true });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);
    await proxy.idle();
    expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(2);
    expect(proxy.log.filter(logged(isPut)).map((e) => [e.status, e.bytesForwarded])).toEqual([
      [undefined, 50_000],
      [201, bytes.length],
    ]);
  });

  it("the 'single' strategy starts a new session when the registry says the session is gone", async () => {
    const gone = JSON.stringify({
      errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown' }],
    });
    proxy.addRule({
      match: isPut,
      fault: { kind: 'respond', status: 404, body: gone, headers: { 'content-type': 'application/json' } },
      times: 1,
    });
    const target = await open('org/m', { upload: { strategy: 'single' }, spoolDir: await tempDir() });
    const writer = await target.openBlobWriter();
    const desc = await writeRandom(writer, 100_000);
    expect(await writer.commit()).toEqual({ digest: desc.digest, size: desc.size, stored: true });
    await proxy.idle();
    expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(2);
    expect(proxy.log.filter(logged(isPut)).map((e) => e.status)).toEqual([404, 201]);
  });
});

// ---- 7b: an upload time limit (ghcr.io ends an upload session after 10 minutes) ----

describe('a registry that ends upload sessions after a time limit', () => {
  it('names the loss a cut-off after the limit, scaled down to 0.5 s on a throttled link', async () => {
    // The session is the upload URL's path; the registry forgets it 0.5 s after its first PATCH.
    const firstSeen = new Map<string, number>();
    proxy.addRule({
      match: (req) => {
        if (!isPatch(req)) return false;
        const session = req.url.split('?')[0]!;
        const seen = firstSeen.get(session) ?? Date.now();
        firstSeen.set(session, seen);
        return Date.now() - seen > 500;
      },
      fault: {
        kind: 'respond',
        status: 404,
        headers: { 'content-type': 'application/json' },
        body: '{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}',
      },
    });
    proxy.setBytesPerSecond(2 * MiB);
    const target = await open('org/m', { upload: { chunkSize: 256 * 1024, sessionLimitMs: 500 } });
    const writer = await target.openBlobWriter();
    const failure = await failureOf(writeRandom(writer, 4 * MiB).then(() => writer.commit()));
    await writer.abort();
    expect(failure).toBeInstanceOf(UploadSessionLostError);
    const lost = failure as UploadSessionLostError;
    expect(lost.why).toMatch(
      /^cut off after \d+\.\d s: the registry ends an upload session after 0\.5 s \(the registry dropped the session \(404 BLOB_UPLOAD_UNKNOWN\)\)$/,
    );
    expect(lost.message).toContain('(cut off after');
    expect(lost.confirmed).toBeGreaterThan(0);
  });
});

describe('a registry that loses every upload session', () => {
  it('the build gives up after the sessions the layer may use, naming each loss and its cause', async () => {
    proxy.addRule({ match: isPatch, fault: { kind: 'reset-request', afterBytes: 4096 } });
    const dir = await modelFromFiles({ 'model.safetensors': randomBytes(1.5 * MiB) });
    const target = await open('org/lossy', { upload: { chunkSize: MiB } });
    const failure = await failureOf(
      buildModel({ source: dir, name: 'lossy', target, tag: '1', digestCache: false, encoding: 'raw' }),
    );
    // 1.5 MiB in 1 MiB PATCHes: two requests, so 5 + 2 × 2 sessions.
    expect(target.writeAttempts(1.5 * MiB)).toBe(9);
    const causes = [
      ...failure.message.matchAll(
        /(\d+)\) PATCH broke off \(ECONNRESET\), then the registry dropped the session \(404 BLOB_UPLOAD_INVALID\) after 0 B confirmed/g,
      ),
    ];
    expect(failure.message).toMatch(
      /^model\.safetensors: the registry lost all 9 upload sessions a layer of 1\.5 MiB may use: 1\) /,
    );
    expect(causes.map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(failure.message).not.toContain('\n');
  });
});

// ---- 8: a storage redirect, with a registry that wants credentials ----

describe('blob GET redirected to storage', () => {
  let secured: TestRegistry;
  let securedProxy: FaultProxy;
  let storage: http.Server;
  const storageRequests: http.IncomingHttpHeaders[] = [];
  let storageBody = Buffer.alloc(0);

  beforeAll(async () => {
    secured = await startRegistry({ auth: 'htpasswd' });
    securedProxy = await startFaultProxy({ upstream: secured.url });
    storage = http.createServer((req, res) => {
      storageRequests.push(req.headers);
      res.writeHead(200, { 'content-type': BLOB, 'content-length': String(storageBody.length) });
      res.end(storageBody);
    });
    await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await securedProxy?.stop();
    storage?.closeAllConnections();
    await new Promise((resolve) => storage?.close(resolve));
    await secured?.stop();
  });

  it('follows a 307 to another origin without sending it the Authorization header', async () => {
    const target = await open(
      'org/m',
      { username: secured.username, password: secured.password },
      securedProxy,
    );
    storageBody = randomBytes(MiB + 1);
    const desc = blobOf(storageBody);
    await target.putBlob(desc, storageBody);

    const { port } = storage.address() as AddressInfo;
    const signed = `http://127.0.0.1:${port}/blobs/${desc.digest}?X-Signature=abc`;
    securedProxy.addRule({
      match: isBlobGet,
      fault: { kind: 'respond', status: 307, headers: { location: signed } },
      times: 1,
    });
    expect(await fetchedDigest(target, desc)).toBe(desc.digest);

    expect(storageRequests).toHaveLength(1);
    expect(storageRequests[0]!.authorization).toBeUndefined();
    await securedProxy.idle();
    const get = securedProxy.log.find(logged(isBlobGet))!;
    expect(get.status).toBe(307);
    expect(get.requestHeaders.authorization).toMatch(/^Basic /);
    // The upload went to the registry with credentials too.
    expect(
      securedProxy.log
        .filter(logged(isPut))
        .every((e) => e.requestHeaders.authorization?.startsWith('Basic ')),
    ).toBe(true);
  });
});
