import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sha256Digest } from '../../src/oci/digest.ts';
import { jsonResult, runCli } from '../helpers/cli.ts';
import { type FaultProxy, type ProxyLogEntry, startFaultProxy } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { skopeo, skopeoJson } from '../helpers/tools.ts';

let registry: TestRegistry;
let proxy: FaultProxy;
let home: string;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
  home = await import('node:fs/promises').then((fs) => fs.mkdtemp('/tmp/model-oci-home-'));
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

/** The CLI as a user runs it, with no docker config or token of the machine in reach. */
const push = (dir: string, ref: string, ...extra: string[]) =>
  runCli(['model', 'build', dir, '--name', 'sample-llm', '--to', ref, '--json', '--quiet', ...extra], {
    env: { HOME: home, DOCKER_CONFIG: home, GITHUB_TOKEN: '', DOCKER_AUTH_CONFIG: '' },
  });

/** Requests seen by the proxy while `run` ran. */
async function traffic<T>(run: () => Promise<T>): Promise<{ result: T; log: ProxyLogEntry[] }> {
  await proxy.idle();
  const start = proxy.log.length;
  const result = await run();
  await proxy.idle();
  return { result, log: proxy.log.slice(start) };
}

const blobUploads = (log: ProxyLogEntry[]) =>
  log.filter((e) => /\/blobs\/uploads\//.test(e.url) && ['POST', 'PATCH', 'PUT'].includes(e.method));

describe('pushing a model to a registry', () => {
  test('the artifact lands as built, skopeo copies it back with every digest matching', async () => {
    const { dir } = await sampleModel({ seed: 11 });
    const ref = `${proxy.host}/org/llm:1.0`;
    const { result, log } = await traffic(() => push(dir, ref));
    const built = jsonResult(result);
    expect(built.status).toBe('built');
    expect(built.layers.every((l) => l.status === 'new')).toBe(true);
    // Layers were uploaded in parallel: several sessions were open before the first one finished.
    const firstFinish = log.findIndex((e) => e.method === 'PUT' && e.url.includes('/blobs/uploads/'));
    const opened = log.slice(0, firstFinish).filter((e) => e.method === 'POST').length;
    expect(opened).toBeGreaterThan(1);
    // Config and manifest go last: no manifest is written before every blob landed.
    const manifestPuts = log.flatMap((e, i) =>
      e.method === 'PUT' && e.url.includes('/manifests/') ? [i] : [],
    );
    const blobPuts = log.flatMap((e, i) => (e.method === 'PUT' && e.url.includes('/blobs/') ? [i] : []));
    expect(manifestPuts.length).toBe(2); // the tag and the weights tag
    expect(Math.min(...manifestPuts)).toBeGreaterThan(Math.max(...blobPuts));

    const raw = skopeoJson('inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/org/llm:1.0`);
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(built.layers.map((l) => l.digest));
    const layout = path.join(await tempDir(), 'copy');
    skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/org/llm:1.0`, `oci:${layout}:x`);
    // The copy holds the manifest byte for byte: its digest is the one the push reported.
    expect(sha256Digest(skopeo('inspect', '--raw', `oci:${layout}:x`))).toBe(built.digest);
    // The weights tag points at the same manifest.
    const byWeights = skopeo(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/org/llm:${built.tags.at(-1)}`,
    );
    expect(JSON.parse(byWeights)).toEqual(raw);

    // Reading it back with --from: the same digests, the files of every layer.
    const env = { HOME: home, DOCKER_CONFIG: home, GITHUB_TOKEN: '' };
    const inspected = await runCli(['model', 'inspect', '--from', ref, '--json'], { env });
    expect(inspected.code).toBe(0);
    const summary = JSON.parse(inspected.stdout);
    expect(summary.digest).toBe(built.digest);
    expect(summary.weightsDigest).toBe(built.weightsDigest);
    expect(summary.layers.map((l: { digest: string }) => l.digest)).toEqual(
      built.layers.map((l) => l.digest),
    );
    const missing = await runCli(['model', 'inspect', '--from', `${proxy.host}/org/none:1`], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([
      `model-oci: error: ${proxy.host}/org/none:1: nothing there`,
    ]);
  });

  test('an unchanged model pushed again uploads no blob and reports skipped, warm or cold cache', async () => {
    const { dir } = await sampleModel({ seed: 12 });
    const ref = `${proxy.host}/org/again:1.0`;
    const first = jsonResult(await push(dir, ref));
    for (const extra of [[], ['--no-digest-cache']]) {
      const { result, log } = await traffic(() => push(dir, ref, ...extra));
      const again = jsonResult(result);
      expect(again.status).toBe('skipped');
      expect(again.digest).toBe(first.digest);
      expect(blobUploads(log)).toEqual([]);
      expect(log.filter((e) => !['GET', 'HEAD'].includes(e.method))).toEqual([]);
    }
    // A new tag for the same weights: one manifest PUT, still no blob.
    const { result, log } = await traffic(() => push(dir, `${proxy.host}/org/again:2.0`));
    expect(jsonResult(result).status).toBe('skipped');
    expect(blobUploads(log)).toEqual([]);
    expect(log.filter((e) => e.method === 'PUT').map((e) => e.url)).toEqual(['/v2/org/again/manifests/2.0']);
  });

  test('one shard changed: only its layer is uploaded', async () => {
    const { dir, shards } = await sampleModel({ seed: 13 });
    const ref = `${proxy.host}/org/shard:1.0`;
    jsonResult(await push(dir, ref));
    const { writeShard } = await import('../../scripts/sample-model.ts');
    await writeShard(path.join(dir, shards[1]!), 1, 1, 99);
    const { result, log } = await traffic(() => push(dir, ref));
    const rebuilt = jsonResult(result);
    const fresh = rebuilt.layers.filter((l) => l.status === 'new');
    expect(fresh.map((l) => l.title)).toEqual([`${shards[1]}.tar.zst`]);
    const sent = blobUploads(log).reduce((s, e) => s + e.bytesForwarded, 0);
    const layer = rebuilt.layers.find((l) => l.status === 'new') as unknown as { size: number };
    // The new layer, the config and nothing else.
    expect(sent).toBeGreaterThanOrEqual(layer.size);
    expect(sent).toBeLessThan(layer.size + 64 * 1024);
  });

  test('the same model pushed to a second repository mounts its blobs instead of uploading them', async () => {
    const { dir } = await sampleModel({ seed: 14 });
    const first = jsonResult(await push(dir, `${proxy.host}/org/source:1.0`));
    const { result, log } = await traffic(() =>
      push(dir, `${proxy.host}/team/copy:1.0`, '--mount-from', 'org/source'),
    );
    const second = jsonResult(result);
    expect(second.status).toBe('built');
    expect(second.digest).toBe(first.digest);
    expect(second.layers.every((l) => l.status === 'mounted')).toBe(true);
    const mounts = log.filter((e) => e.method === 'POST' && e.url.includes('mount='));
    expect(mounts.map((e) => e.status)).toEqual(second.layers.map(() => 201));
    expect(log.filter((e) => e.method === 'PATCH')).toEqual([]);
    const raw = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/team/copy:1.0`,
    );
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(first.layers.map((l) => l.digest));
  });
});

describe('temporary space', () => {
  test('a single-PUT push spools under --temp-dir when the system temp dir is not writable', async () => {
    const { dir } = await sampleModel({ seed: 14, shards: 2 });
    const { chmod } = await import('node:fs/promises');
    const unwritable = await tempDir();
    await chmod(unwritable, 0o555);
    const spool = await tempDir();
    // As an unprivileged user whose TMPDIR cannot be written to.
    const spooled = (...extra: string[]) =>
      runCli(
        [
          'model',
          'build',
          dir,
          '--name',
          'spooled',
          '--to',
          `${proxy.host}/org/spooled:1`,
          '--upload',
          'single',
          '--quiet',
          ...extra,
        ],
        { env: { HOME: home, DOCKER_CONFIG: home, TMPDIR: unwritable }, withoutFileOverride: true },
      );
    const withoutTempDir = await spooled();
    expect(withoutTempDir.code).toBe(1);
    expect(withoutTempDir.stderr.trim()).toMatch(
      new RegExp(
        `^model-oci: error: cannot spool a layer for its single-PUT upload in ${unwritable} \\(EACCES\\)`,
      ),
    );
    const pushed = await spooled('--temp-dir', spool, '--json');
    const built = jsonResult(pushed);
    expect(built.status).toBe('built');
    const manifest = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/org/spooled:1`,
    );
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(
      built.layers.map((l) => l.digest),
    );
  });

  test('--temp-dir that does not exist is refused before anything is packed', async () => {
    const { dir } = await sampleModel({ seed: 15, shards: 1 });
    const missing = path.join(await tempDir(), 'nope');
    const run = await push(dir, `${proxy.host}/org/spooled:2`, '--temp-dir', missing);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(`model-oci: error: --temp-dir ${missing} does not exist`);
  });
});
