// Files larger than a registry takes in one layer: part layers, against a real registry behind the
// fault proxy imposing a scaled-down layer limit (64 MiB) and upload time limit, reassembled by pull.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { jsonResult, runCli } from '../helpers/cli.ts';
import {
  type FaultProxy,
  isBlobGet,
  isPatch,
  isUploadPost,
  startFaultProxy,
} from '../helpers/fault-proxy.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;
const LIMIT = 64 * MiB;

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
});

async function limitedProxy(
  limits: { maxBlobBytes?: number; uploadTimeLimitMs?: number },
  bytesPerSecond?: number,
) {
  const proxy = await startFaultProxy({
    upstream: registry.url,
    registryLimits: limits,
    ...(bytesPerSecond ? { bytesPerSecond } : {}),
  });
  onTestFinished(() => proxy.stop());
  return proxy;
}

const build = (dir: string, to: string, ...flags: string[]) =>
  runCli(['model', 'build', dir, '--name', 'big', '--to', to, '--json', ...flags]);

interface Built {
  status: string;
  weightsDigest: string;
  layers: Array<{
    title: string;
    digest: string;
    status: string;
    size: number;
    files: Array<{ path: string }>;
  }>;
}
const built = (run: Awaited<ReturnType<typeof runCli>>) => jsonResult(run) as unknown as Built;

/** A compressible "file": text-like bytes zstd shrinks well, still different everywhere. */
function compressible(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 64)
    out.write(`row ${i.toString(16).padStart(12, '0')} of weights, ok\n`, i, 'latin1');
  return out;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const uploadedBytes = (proxy: FaultProxy, from = 0) =>
  proxy.log
    .slice(from)
    .filter((e) => isPatch({ ...e, headers: e.requestHeaders }) || e.method === 'PUT')
    .reduce((n, e) => n + e.bytesForwarded, 0);

describe('part layers for files over a registry layer limit', () => {
  for (const [variant, content] of [
    ['incompressible', () => randomBytes(300 * MiB)],
    ['compressible', () => compressible(300 * MiB)],
  ] as const) {
    test(`a 300 MiB ${variant} file: pushed as parts under the limit, same weights digest as unsplit, pulled back byte for byte, rebuilt as skipped`, async () => {
      const bytes = content();
      const dir = await modelFromFiles({ 'config.json': '{"model_type":"llama"}', 'model.gguf': bytes });
      const whole = built(await build(dir, `${registry.host}/parts/whole-${variant}:1`));
      expect(whole.layers.some((l) => l.size > LIMIT)).toBe(variant === 'incompressible');

      const proxy = await limitedProxy({ maxBlobBytes: LIMIT });
      const to = `${proxy.host}/parts/split-${variant}:1`;
      const split = built(await build(dir, to, '--max-layer-size', '64MiB'));
      const parts = split.layers.filter((l) => l.title.startsWith('model.gguf.part-'));
      expect(parts.map((l) => l.title)).toEqual(
        parts.map(
          (_, i) =>
            `model.gguf.part-${String(i + 1).padStart(5, '0')}-of-${String(parts.length).padStart(5, '0')}.tar.zst`,
        ),
      );
      expect(parts.length).toBe(5); // 300 MiB in parts sized for incompressible data under 64 MiB
      for (const p of split.layers) expect(p.size).toBeLessThan(LIMIT);
      expect(proxy.log.filter((e) => e.status === 413)).toEqual([]);
      expect(split.weightsDigest).toBe(whole.weightsDigest);

      const out = path.join(await tempDir(), 'pulled');
      const pulled = await runCli([
        'model',
        'pull',
        `${registry.host}/parts/split-${variant}:1`,
        '--to',
        out,
        '--json',
      ]);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(sha256(await readFile(path.join(out, 'model.gguf')))).toBe(sha256(bytes));
      expect(JSON.parse(pulled.stdout).files.map((f: { path: string }) => f.path)).toEqual([
        'config.json',
        'model.gguf',
      ]);

      const again = jsonResult(await build(dir, to, '--max-layer-size', '64MiB'));
      expect(again.status).toBe('skipped');
    });
  }

  test('changing the last MiB re-uploads only the last part; a re-pull fetches only that part', async () => {
    const bytes = randomBytes(300 * MiB);
    const dir = await modelFromFiles({ 'config.json': '{"model_type":"llama"}', 'model.gguf': bytes });
    const proxy = await limitedProxy({ maxBlobBytes: LIMIT });
    const to = `${proxy.host}/parts/change:1`;
    const first = built(await build(dir, to, '--max-layer-size', '64MiB'));
    const out = path.join(await tempDir(), 'pulled');
    expect((await runCli(['model', 'pull', to, '--to', out])).code).toBe(0);

    const handle = await open(path.join(dir, 'model.gguf'), 'r+');
    await handle.write(randomBytes(MiB), 0, MiB, 300 * MiB - MiB);
    await handle.close();
    const from = proxy.log.length;
    const second = built(await build(dir, to, '--max-layer-size', '64MiB'));
    expect(second.weightsDigest).not.toBe(first.weightsDigest);
    const statuses = second.layers.map((l) => `${l.title} ${l.status}`);
    expect(statuses).toEqual([
      'weight.config.tar.zst reused',
      'model.gguf.part-00001-of-00005.tar.zst reused',
      'model.gguf.part-00002-of-00005.tar.zst reused',
      'model.gguf.part-00003-of-00005.tar.zst reused',
      'model.gguf.part-00004-of-00005.tar.zst reused',
      'model.gguf.part-00005-of-00005.tar.zst new',
    ]);
    const last = second.layers.at(-1)!;
    expect(uploadedBytes(proxy, from)).toBeLessThan(last.size + MiB);

    const pullFrom = proxy.log.length;
    const repull = await runCli(['model', 'pull', to, '--to', out, '--json']);
    expect(repull.code, repull.stderr).toBe(0);
    // The old copy in the directory still holds parts 1–4: only the last part's blob is fetched.
    const blobGets = proxy.log.slice(pullFrom).filter((e) => isBlobGet({ ...e, headers: e.requestHeaders }));
    const layerDigests = new Set(second.layers.map((l) => l.digest));
    const fetched = blobGets
      .map((e) => e.url.split('?')[0]!.split('/').at(-1)!)
      .filter((d) => layerDigests.has(d));
    expect(new Set(fetched)).toEqual(new Set([last.digest]));
    expect(sha256(await readFile(path.join(out, 'model.gguf')))).toBe(
      sha256(await readFile(path.join(dir, 'model.gguf'))),
    );
  });

  test('a pull that breaks off resumes by part: finished parts are not fetched again', async () => {
    const bytes = randomBytes(200 * MiB);
    const dir = await modelFromFiles({ 'model.gguf': bytes });
    const pushed = built(await build(dir, `${registry.host}/parts/resume:1`, '--max-layer-size', '64MiB'));
    const last = pushed.layers.at(-1)!;
    const proxy = await limitedProxy({});
    proxy.addRule({
      match: (req) => isBlobGet(req) && req.url.includes(last.digest),
      fault: { kind: 'respond', status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' },
    });
    const out = path.join(await tempDir(), 'pulled');
    const broken = await runCli(['model', 'pull', `${proxy.host}/parts/resume:1`, '--to', out, '--json']);
    expect(broken.code).not.toBe(0);
    const resumed = await runCli(['model', 'pull', `${registry.host}/parts/resume:1`, '--to', out, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const result = JSON.parse(resumed.stdout) as {
      layers: { state: string; fetched: number }[];
      fetchedBytes: number;
    };
    expect(result.layers.filter((l) => l.state === 'resumed').length).toBeGreaterThan(0);
    expect(result.fetchedBytes).toBeLessThan(pushed.layers.reduce((n, l) => n + l.size, 0));
    expect(sha256(await readFile(path.join(out, 'model.gguf')))).toBe(sha256(bytes));
  });

  test('a limit too small for even a part fails before anything is packed or sent, naming the limit', async () => {
    const dir = await modelFromFiles({ 'model.gguf': randomBytes(2 * MiB) });
    const proxy = await limitedProxy({ maxBlobBytes: 1024 });
    const run = await build(dir, `${proxy.host}/parts/tiny:1`, '--max-layer-size', '1KiB');
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/model\.gguf .*cannot be split to fit the layer limit of .*--max-layer-size/);
    expect(proxy.log.filter((e) => isUploadPost({ ...e, headers: e.requestHeaders }))).toEqual([]);
  });

  test('without the limit declared the registry refuses the layer (what the proxy enforces)', async () => {
    const dir = await modelFromFiles({ 'model.gguf': randomBytes(80 * MiB) });
    const proxy = await limitedProxy({ maxBlobBytes: LIMIT });
    const run = await build(dir, `${proxy.host}/parts/refused:1`);
    expect(run.code).toBe(1);
    expect(proxy.log.some((e) => e.status === 413)).toBe(true);
  });

  test('an upload time limit: parts sized to finish in time at 12.5 MB/s all land within it', async () => {
    // 20 MB/s link, 2 s per upload session: the 48 MiB layer whole would need 2.5 s and be cut
    // off; parts of at most 2 s × 0.8 × 12.5 MB/s = 20 MB take 1 s each.
    const dir = await modelFromFiles({ 'model.gguf': randomBytes(48 * MiB) });
    const proxy = await limitedProxy({ uploadTimeLimitMs: 2000 }, 20_000_000);
    const split = built(await build(dir, `${proxy.host}/parts/timed:1`, '--upload-time-limit', '2'));
    const parts = split.layers.filter((l) => l.title.includes('.part-'));
    expect(parts.length).toBe(3);
    for (const p of parts) expect(p.size).toBeLessThanOrEqual(20_000_000);
    expect(proxy.log.filter((e) => e.error?.startsWith('cut off'))).toEqual([]);
  });
});
