// What a rebuild of unchanged weights does when only the metadata changed (a runtime requirement, a
// name, an annotation): a new manifest over the same layers, then skipped; layer titles that no two
// layers share; and Hugging Face cache snapshots, whose files are symlinks into the cache's blobs/.
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ANNOTATION } from '../../src/oci/media-types.ts';
import { jsonResult, runCli } from '../helpers/cli.ts';
import { type FaultProxy, type ProxyLogEntry, startFaultProxy } from '../helpers/fault-proxy.ts';
import { modelFromFiles, sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { layoutConfig, layoutManifest, skopeoJson } from '../helpers/tools.ts';

const build = (dir: string, to: string, ...extra: string[]) =>
  runCli(['model', 'build', dir, '--to', to, '--json', ...extra]);

/** Request body bytes the proxy passed to blob upload endpoints (POST/PATCH/PUT under /blobs/uploads/). */
const blobUploadBytes = (log: readonly ProxyLogEntry[]) =>
  log.filter((e) => e.url.includes('/blobs/uploads/')).reduce((n, e) => n + e.bytesForwarded, 0);

describe('same weights, other metadata', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  test('a new runtime, annotation or name writes a manifest over the same layers (0 layer bytes), then skips', async () => {
    const { dir } = await sampleModel({ seed: 41 });
    const to = `${proxy.host}/models/meta:1`;
    const first = jsonResult(await build(dir, to, '--name', 'meta-llm'));
    expect(first.status).toBe('built');

    // An existing model adopts a runtime requirement: no force needed, nothing but a manifest moves.
    proxy.log.length = 0;
    const withRuntime = jsonResult(
      await build(dir, to, '--name', 'meta-llm', '--runtime', 'vllm >=0.8 <0.9'),
    );
    await proxy.idle();
    expect(withRuntime.status).toBe('built');
    expect(withRuntime.digest).not.toBe(first.digest);
    expect(withRuntime.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
    expect(withRuntime.layers.every((l) => l.status === 'reused')).toBe(true);
    expect(withRuntime.bytesRead).toBe(0);
    expect(blobUploadBytes(proxy.log)).toBe(0); // the config is unchanged: no blob at all
    expect(withRuntime.reason).toMatch(/with another runtime: a new manifest reuses its layers/);
    const manifest = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/models/meta:1`,
    );
    expect(manifest.annotations[ANNOTATION.runtimeRequires]).toBe('vllm >=0.8 <0.9');

    const again = jsonResult(await build(dir, to, '--name', 'meta-llm', '--runtime', 'vllm >=0.8 <0.9'));
    expect(again.status).toBe('skipped');
    expect(again.digest).toBe(withRuntime.digest);

    // An annotation: the same.
    proxy.log.length = 0;
    const annotated = jsonResult(
      await build(dir, to, '--name', 'meta-llm', '--runtime', 'vllm >=0.8 <0.9', '--annotation', 'team=nlp'),
    );
    await proxy.idle();
    expect(annotated.status).toBe('built');
    expect(annotated.reason).toMatch(/annotation team/);
    expect(blobUploadBytes(proxy.log)).toBe(0);

    // Another name: the config names the model, so the config is the one blob that travels.
    const renamedArgs = ['--name', 'meta-llm-v2', '--runtime', 'vllm >=0.8 <0.9', '--annotation', 'team=nlp'];
    proxy.log.length = 0;
    const renamed = jsonResult(await build(dir, to, ...renamedArgs));
    await proxy.idle();
    expect(renamed.status).toBe('built');
    expect(renamed.layers.every((l) => l.status === 'reused')).toBe(true);
    const pushed = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/models/meta:1`,
    );
    expect(blobUploadBytes(proxy.log)).toBe(pushed.config.size);
    expect(jsonResult(await build(dir, to, ...renamedArgs)).status).toBe('skipped');
  });

  test('a new created date alone is not a change: the artifact is kept, not re-dated', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': 'weights', 'config.json': '{}' });
    const layout = path.join(await tempDir(), 'layout');
    const first = jsonResult(
      await runCli(['model', 'build', dir, '--name', 'dated', '--to', `oci-layout:${layout}:v1`, '--json'], {
        env: { SOURCE_DATE_EPOCH: '1700000000' },
      }),
    );
    const later = jsonResult(
      await runCli(['model', 'build', dir, '--name', 'dated', '--to', `oci-layout:${layout}:v1`, '--json'], {
        env: { SOURCE_DATE_EPOCH: '1800000000' },
      }),
    );
    expect(later.status).toBe('skipped');
    expect(later.digest).toBe(first.digest);
    expect(later.created).toBe('2023-11-14T22:13:20Z');
  });
});

describe('layer titles', () => {
  test('a file named like a group layer gets its own title; no two layers share one', async () => {
    const big = Buffer.alloc(11 * 1024 * 1024, 7);
    const dir = await modelFromFiles({
      'README.md': '# m',
      'config.json': '{}',
      doc: big,
      'weight.config': big,
      'model.safetensors': 'w',
    });
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--name', 'titles'));
    const titles = result.layers.map((l) => l.title);
    expect(new Set(titles).size).toBe(titles.length);
    expect(titles).toEqual([
      'weight.config-files.tar.zst',
      'doc.tar.zst',
      'model.safetensors.tar.zst',
      'weight.config.tar.zst',
      'doc-files.tar.zst',
    ]);
    const manifest = layoutManifest(layout, 'v1');
    const written = manifest.layers.map(
      (l: { annotations: Record<string, string> }) => l.annotations[ANNOTATION.title],
    );
    expect(written).toEqual(titles);
  });
});

/** A Hugging Face cache (hub/models--ORG--NAME) holding one snapshot of `files`, as `hf download` leaves it. */
async function hubCacheSnapshot(files: Record<string, string>): Promise<{ repo: string; snapshot: string }> {
  const repo = path.join(await tempDir(), 'hub', 'models--acme--tiny');
  const snapshot = path.join(repo, 'snapshots', '0123456789abcdef0123456789abcdef01234567');
  await mkdir(path.join(repo, 'blobs'), { recursive: true });
  let n = 0;
  for (const [rel, content] of Object.entries(files)) {
    const blob = path.join(repo, 'blobs', `blob${n++}`);
    await writeFile(blob, content);
    const link = path.join(snapshot, rel);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.relative(path.dirname(link), blob), link);
  }
  return { repo, snapshot };
}

describe('Hugging Face cache snapshots', () => {
  const FILES = {
    'config.json': '{"architectures":["TinyForCausalLM"],"torch_dtype":"bfloat16"}',
    'model.safetensors': 'the weights',
    'tokenizer/tokenizer.json': '{}',
    'README.md': '# tiny',
  };

  test('a snapshot folder builds, with the weights digest of a plain copy of it', async () => {
    const { snapshot } = await hubCacheSnapshot(FILES);
    const copy = path.join(await tempDir(), 'copy');
    await cp(snapshot, copy, { recursive: true, dereference: true });
    const layout = path.join(await tempDir(), 'layout');
    const fromCache = jsonResult(await build(snapshot, `oci-layout:${layout}:cache`, '--name', 'tiny'));
    const fromCopy = jsonResult(await build(copy, `oci-layout:${layout}:copy`, '--name', 'tiny'));
    expect(fromCache.weightsDigest).toBe(fromCopy.weightsDigest);
    expect(fromCache.layers.flatMap((l) => l.files.map((f) => f.path)).sort()).toEqual(
      Object.keys(FILES).sort(),
    );
    expect(layoutConfig(layout, 'cache').config.architecture).toBe('TinyForCausalLM');
  });

  test('a link out of the cache repository folder is still refused, naming both', async () => {
    const { repo, snapshot } = await hubCacheSnapshot(FILES);
    const secret = path.join(path.dirname(path.dirname(repo)), 'secret.txt');
    await writeFile(secret, 'do not publish');
    await symlink(secret, path.join(snapshot, 'notes.txt'));
    const run = await build(snapshot, `oci-layout:${await tempDir()}/l:v1`, '--name', 'tiny');
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(
      /^model-oci: error: notes\.txt in .* is a symlink to .*secret\.txt, outside the model directory and its Hugging Face cache folder .*models--acme--tiny$/,
    );
  });

  test('another repository of the same cache is outside too', async () => {
    const { repo, snapshot } = await hubCacheSnapshot(FILES);
    const other = path.join(path.dirname(repo), 'models--acme--other', 'blobs');
    await mkdir(other, { recursive: true });
    await writeFile(path.join(other, 'b'), 'other model');
    await symlink(path.join(other, 'b'), path.join(snapshot, 'extra.bin'));
    const run = await build(snapshot, `oci-layout:${await tempDir()}/l:v1`, '--name', 'tiny');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/extra\.bin in .* is a symlink to .*models--acme--other\/blobs\/b, outside/);
  });
});
