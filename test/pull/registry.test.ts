// model pull against a real registry (CNCF Distribution), directly and through the fault proxy.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { type FaultProxy, isBlobGet, startFaultProxy } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { build, expectSameFiles, pull } from './helpers.ts';

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
});

async function proxied(): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ upstream: registry.url });
  onTestFinished(() => proxy.stop());
  return proxy;
}

/** A sample model with an executable script too (its mode must survive). */
async function model(seed: number, weightBytes = 3 * 1024 * 1024) {
  const { dir } = await sampleModel({ shards: 2, weightBytes, seed });
  await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\necho serve\n');
  await chmod(path.join(dir, 'run.sh'), 0o755);
  return dir;
}

const blobGets = (proxy: FaultProxy) =>
  proxy.log.filter((e) => isBlobGet({ ...e, headers: e.requestHeaders }) && !e.storage);

describe('model pull from a registry', () => {
  test('every encoding round-trips build → push → pull to the same files; building them again gives the same weights digest', async () => {
    const dir = await model(1);
    const work = await tempDir();
    for (const [tag, flags] of [
      ['zstd', []],
      ['tar', ['--compression', 'none']],
      ['raw', ['--encoding', 'raw']],
    ] as const) {
      const built = await build([
        dir,
        '--name',
        'roundtrip',
        '--to',
        `${registry.host}/pull/roundtrip:${tag}`,
        ...flags,
      ]);
      const out = path.join(work, tag);
      // Small parts, so the shards come over several ranged requests.
      const result = await pull([
        `${registry.host}/pull/roundtrip:${tag}`,
        '--to',
        out,
        '--part-size',
        '1MiB',
      ]);
      expect(result.weightsDigest).toBe(built.weightsDigest);
      expect(result.layers.every((l) => l.state === 'pulled')).toBe(true);
      await expectSameFiles(out, dir);
      const again = await build([
        out,
        '--name',
        'roundtrip',
        '--to',
        `oci-layout:${path.join(work, 'layout')}:${tag}`,
        ...flags,
      ]);
      expect(again.weightsDigest).toBe(built.weightsDigest);
    }
  });

  test('resets mid-blob and expiring storage redirects: every part resumes by range, the result verifies', async () => {
    const dir = await model(2, 6 * 1024 * 1024);
    await build([dir, '--name', 'faults', '--to', `${registry.host}/pull/faults:1`]);
    const proxy = await proxied();
    // Blobs live on "object storage": the registry redirects, the first two URLs have already
    // expired when used, and three ranged transfers from storage break off after 300 kB.
    proxy.addRule({ match: isBlobGet, fault: { kind: 'redirect-to-storage', expiresAfterMs: 0 }, times: 2 });
    proxy.addRule({ match: isBlobGet, fault: { kind: 'redirect-to-storage', expiresAfterMs: 60_000 } });
    proxy.addRule({
      match: (req) => Boolean(req.storage && req.headers.range),
      fault: { kind: 'truncate-response', afterBytes: 300_000 },
      times: 3,
    });
    const out = path.join(await tempDir(), 'out');
    const result = await pull([`${proxy.host}/pull/faults:1`, '--to', out, '--part-size', '2MiB']);
    await expectSameFiles(out, dir);
    await proxy.idle();
    const storage = proxy.log.filter((e) => e.storage);
    expect(storage.filter((e) => e.status === 403)).toHaveLength(2);
    expect(storage.filter((e) => e.fault === 'truncate-response')).toHaveLength(3);
    // What broke off was asked for again from where it stopped, not from the start of its part.
    const ranges = storage.map((e) => e.requestHeaders.range);
    for (const cut of storage.filter((e) => e.fault === 'truncate-response')) {
      const [from, to] = /^bytes=(\d+)-(\d+)$/.exec(cut.requestHeaders.range ?? 'bytes=0-')?.slice(1) ?? [
        '0',
        '',
      ];
      const again = `bytes=${Number(from) + cut.bytesSent}-${to}`;
      expect(ranges.some((r) => r?.startsWith(again))).toBe(true);
    }
    expect(storage.filter((e) => e.requestHeaders.authorization)).toEqual([]);
    expect(result.fetchedBytes).toBeGreaterThanOrEqual(result.layers.reduce((s, l) => s + l.size, 0));
  });

  test('a re-pull into a directory that holds the model transfers no blob bytes', async () => {
    const dir = await model(3);
    await build([dir, '--name', 'again', '--to', `${registry.host}/pull/again:1`]);
    const proxy = await proxied();
    const out = path.join(await tempDir(), 'out');
    await pull([`${proxy.host}/pull/again:1`, '--to', out]);
    await proxy.idle();
    expect(blobGets(proxy).length).toBeGreaterThan(0);
    proxy.log.length = 0;

    const second = await pull([`${proxy.host}/pull/again:1`, '--to', out]);
    await proxy.idle();
    expect(second.fetchedBytes).toBe(0);
    expect(second.layers.every((l) => l.state === 'present')).toBe(true);
    expect(blobGets(proxy)).toEqual([]);
    expect(proxy.log.filter((e) => e.storage)).toEqual([]);
    // --verify hashes the files instead of trusting their recorded state, and still fetches nothing.
    const verified = await pull([`${proxy.host}/pull/again:1`, '--to', out, '--verify']);
    expect(verified.fetchedBytes).toBe(0);
    expect(blobGets(proxy)).toEqual([]);
  });

  test('a file changed in the directory is fetched again; files the model does not hold are left alone', async () => {
    const dir = await model(4);
    await build([dir, '--name', 'changed', '--to', `${registry.host}/pull/changed:1`]);
    const out = path.join(await tempDir(), 'out');
    await pull([`${registry.host}/pull/changed:1`, '--to', out]);
    await writeFile(path.join(out, 'README.md'), 'edited by hand\n');
    await writeFile(path.join(out, 'notes.txt'), 'mine\n');
    const second = await pull([`${registry.host}/pull/changed:1`, '--to', out]);
    expect(second.layers.filter((l) => l.state === 'pulled').map((l) => l.name)).toEqual(['doc.tar.zst']);
    expect(await readFile(path.join(out, 'notes.txt'), 'utf8')).toBe('mine\n');
    await rm(path.join(out, 'notes.txt'));
    await expectSameFiles(out, dir);
  });

  test('--include pulls one shard without fetching the other layers', async () => {
    const dir = await model(5);
    await build([dir, '--name', 'subset', '--to', `${registry.host}/pull/subset:1`]);
    const proxy = await proxied();
    const out = path.join(await tempDir(), 'out');
    const result = await pull([
      `${proxy.host}/pull/subset:1`,
      '--to',
      out,
      '--include',
      '*00002-of-00002.safetensors',
    ]);
    await proxy.idle();
    const pulled = result.layers.filter((l) => l.state === 'pulled');
    expect(pulled.map((l) => l.name)).toEqual(['model-00002-of-00002.safetensors.tar.zst']);
    expect(result.layers.filter((l) => l.state === 'excluded')).toHaveLength(result.layers.length - 1);
    const layerDigests = new Set(result.layers.map((l) => l.digest));
    const fetched = blobGets(proxy).map((e) => e.url.split('/').at(-1)!);
    expect(new Set(fetched.filter((d) => layerDigests.has(d)))).toEqual(new Set([pulled[0]!.digest]));
    expect(result.files.map((f) => f.path)).toEqual(['model-00002-of-00002.safetensors']);
  });

  test('two pulls into one directory at once: the second waits, then finds the files there', async () => {
    const dir = await model(6, 8 * 1024 * 1024);
    await build([dir, '--name', 'together', '--to', `${registry.host}/pull/together:1`]);
    const proxy = await proxied();
    proxy.setBytesPerSecond(40_000_000);
    const out = path.join(await tempDir(), 'out');
    const args = ['model', 'pull', `${proxy.host}/pull/together:1`, '--to', out, '--json'];
    const runs = await Promise.all([
      runCli(args, { env: { MODEL_OCI_PROGRESS_MS: '0' } }),
      runCli(args, { env: { MODEL_OCI_PROGRESS_MS: '0' } }),
    ]);
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    const results = runs.map((r) => JSON.parse(r.stdout) as { fetchedBytes: number });
    expect(results.filter((r) => r.fetchedBytes === 0)).toHaveLength(1);
    expect(runs.filter((r) => r.stderr.includes('waiting for another pull'))).toHaveLength(1);
    await expectSameFiles(out, dir);
  });
});
