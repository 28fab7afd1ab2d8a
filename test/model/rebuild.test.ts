import { execFileSync, spawn } from 'node:child_process';
import { readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ANNOTATION } from '../../src/oci/media-types.ts';
import { jsonResult, repoRoot, runCli } from '../helpers/cli.ts';
import { modelFromFiles, sampleModel } from '../helpers/model.ts';
import { tempDir } from '../helpers/tmp.ts';
import { layoutConfig, layoutManifest } from '../helpers/tools.ts';
import { snapshotTree } from '../helpers/tree.ts';

const build = (dir: string, to: string, ...extra: string[]) =>
  runCli(['model', 'build', dir, '--name', 'sample-llm', '--to', to, '--json', ...extra]);
const totalSize = async (dir: string) => {
  let sum = 0;
  for (const name of await readdir(dir)) sum += (await stat(path.join(dir, name))).size;
  return sum;
};

describe('digest cache', () => {
  test('an unchanged model is recognised without reading its files; --verify reads them all', async () => {
    const { dir } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const cache = path.join(await tempDir(), 'digests.json');
    const first = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--digest-cache', cache));
    expect(first.bytesRead).toBe(await totalSize(dir));
    const cached = JSON.parse(await readFile(cache, 'utf8'));
    expect(Object.keys(cached.files).sort()).toEqual((await readdir(dir)).sort());

    const warm = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--digest-cache', cache));
    expect(warm.status).toBe('skipped');
    expect(warm.bytesRead).toBe(0);

    const cold = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--no-digest-cache'));
    expect(cold.status).toBe('skipped');
    expect(cold.bytesRead).toBe(await totalSize(dir));

    const verified = jsonResult(
      await build(dir, `oci-layout:${layout}:v1`, '--digest-cache', cache, '--verify'),
    );
    expect(verified.status).toBe('skipped');
    expect(verified.bytesRead).toBe(await totalSize(dir));
  });

  test('a file rewritten with the same size and mtime is still noticed (ctime and inode are in the key)', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': 'AAAA', 'config.json': '{}' });
    const layout = path.join(await tempDir(), 'layout');
    const first = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    const file = path.join(dir, 'model.safetensors');
    const { mtime } = await stat(file);
    await writeFile(file, 'BBBB');
    const { utimes } = await import('node:fs/promises');
    await utimes(file, mtime, mtime);
    const second = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    expect(second.status).toBe('built');
    expect(second.weightsDigest).not.toBe(first.weightsDigest);
  });
});

describe('skip and reuse', () => {
  test('a new tag for weights that are already there tags the existing artifact', async () => {
    const { dir } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const first = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    const blobsBefore = await snapshotTree(path.join(layout, 'blobs'));
    // Cold cache and no artifact under v2: the files are packed, then found to be there already.
    const second = jsonResult(
      await build(dir, `oci-layout:${layout}:v2`, '--no-digest-cache', '--tag', 'stable'),
    );
    expect(second.status).toBe('skipped');
    expect(second.digest).toBe(first.digest);
    expect(await snapshotTree(path.join(layout, 'blobs'))).toEqual(blobsBefore);
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
    const tagged = Object.fromEntries(
      index.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [
        m.annotations[ANNOTATION.refName],
        m.digest,
      ]),
    );
    expect(tagged).toMatchObject({ v1: first.digest, v2: first.digest, stable: first.digest });
  });

  test('--force builds again and re-packs every layer', async () => {
    const { dir } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const first = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    const forced = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--force'));
    expect(forced.status).toBe('built');
    expect(forced.digest).toBe(first.digest);
    expect(forced.layers.every((l) => l.status === 'existing')).toBe(true);
  });

  test('a different level changes the bytes but not the weights digest, and still skips', async () => {
    const { dir } = await sampleModel();
    const tmp = await tempDir();
    const l3 = jsonResult(await build(dir, `oci-layout:${tmp}/a:v1`));
    const l9 = jsonResult(await build(dir, `oci-layout:${tmp}/b:v1`, '--level', '9'));
    expect(l9.weightsDigest).toBe(l3.weightsDigest);
    // bf16 noise barely compresses at any level; the JSON config layer shows the level.
    expect(l9.layers[0]!.digest).not.toBe(l3.layers[0]!.digest);
    expect(jsonResult(await build(dir, `oci-layout:${tmp}/a:v1`, '--level', '9')).status).toBe('skipped');
  });

  test('a changed encoding is a different artifact', async () => {
    const { dir } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const zstd = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    const raw = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--encoding', 'raw'));
    expect(raw.status).toBe('built');
    expect(raw.weightsDigest).toBe(zstd.weightsDigest);
    expect(raw.tags).toContain(`weights-${zstd.weightsDigest.slice(7)}.raw`);
  });

  test('two builds writing into one layout at the same time both land', async () => {
    const a = await sampleModel({ seed: 1 });
    const b = await sampleModel({ seed: 2 });
    const layout = path.join(await tempDir(), 'layout');
    const [ra, rb] = await Promise.all([
      build(a.dir, `oci-layout:${layout}:a`),
      build(b.dir, `oci-layout:${layout}:b`),
    ]);
    const [ja, jb] = [jsonResult(ra), jsonResult(rb)];
    expect(layoutManifest(layout, 'a').annotations[ANNOTATION.weightsDigest]).toBe(ja.weightsDigest);
    expect(layoutManifest(layout, 'b').annotations[ANNOTATION.weightsDigest]).toBe(jb.weightsDigest);
  });
});

describe('encodings', () => {
  test('raw: one plain blob per file, titled with its path, so `oras pull` gives the files', async () => {
    const { dir } = await sampleModel({ shards: 2 });
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(await build(dir, `oci-layout:${layout}:raw`, '--encoding', 'raw'));
    const manifest = layoutManifest(layout, 'raw');
    const names = (await readdir(dir)).sort();
    expect(
      manifest.layers
        .map((l: { annotations: Record<string, string> }) => l.annotations[ANNOTATION.title])
        .sort(),
    ).toEqual(names);
    for (const layer of manifest.layers) {
      expect(layer.mediaType).toMatch(/^application\/vnd\.cncf\.model\.[a-z.]+\.v1\.raw$/);
      const content = await readFile(path.join(layout, 'blobs', 'sha256', layer.digest.slice(7)));
      expect(content.equals(await readFile(path.join(dir, layer.annotations[ANNOTATION.title])))).toBe(true);
    }
    const config = layoutConfig(layout, 'raw');
    expect(config.modelfs.diffIds).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
    expect(result.layers.find((l) => l.title.endsWith('.safetensors'))?.mediaType).toBe(
      'application/vnd.cncf.model.weight.v1.raw',
    );
  });

  test('compression none: plain tar layers with .tar media types', async () => {
    const { dir } = await sampleModel({ shards: 1 });
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(await build(dir, `oci-layout:${layout}:plain`, '--compression', 'none'));
    for (const layer of result.layers) {
      expect(layer.mediaType).toMatch(/\.v1\.tar$/);
      const listing = execFileSync(
        'tar',
        ['-tf', path.join(layout, 'blobs', 'sha256', layer.digest.slice(7))],
        { encoding: 'utf8' },
      );
      expect(listing.trim().split('\n')).toEqual(layer.files.map((f) => f.path));
    }
  });

  test('include and exclude choose the files; .git is never packaged', async () => {
    const dir = await modelFromFiles({
      'model.safetensors': 'w',
      'config.json': '{}',
      'notes/draft.md': 'x',
      'docs/guide.md': 'y',
      '.git/config': '[core]',
      'train.py': 'print()',
    });
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(
      await build(dir, `oci-layout:${layout}:v1`, '--exclude', 'notes/**', '--exclude', '*.py'),
    );
    const files = result.layers.flatMap((l) => l.files.map((f) => f.path)).sort();
    expect(files).toEqual(['config.json', 'docs/guide.md', 'model.safetensors']);
    const only = jsonResult(await build(dir, `oci-layout:${layout}:v2`, '--include', '*.md'));
    expect(only.layers.flatMap((l) => l.files.map((f) => f.path)).sort()).toEqual([
      'docs/guide.md',
      'notes/draft.md',
    ]);
  });
  test('symlinks that stay inside the model directory are followed; a link back up is not a loop', async () => {
    const dir = await modelFromFiles({ 'blobs/abc': 'weights bytes', 'config.json': '{}' });
    await symlink('blobs/abc', path.join(dir, 'model.safetensors'));
    await symlink('..', path.join(dir, 'blobs', 'up'));
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    const files = result.layers.flatMap((l) => l.files.map((f) => f.path)).sort();
    expect(files).toEqual(['blobs/abc', 'config.json', 'model.safetensors']);
    const weight = result.layers.find((l) => l.files[0]?.path === 'model.safetensors')!;
    const tar = execFileSync('zstd', ['-dc', path.join(layout, 'blobs', 'sha256', weight.digest.slice(7))]);
    expect(execFileSync('tar', ['-xOf', '-'], { input: tar }).toString()).toBe('weights bytes');
  });
});

describe('reports', () => {
  test('the human summary lists every layer; progress lines go to stderr', async () => {
    const { dir } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const run = await runCli(
      ['model', 'build', dir, '--name', 'sample-llm', '--to', `oci-layout:${layout}:v1`],
      {
        env: { MODEL_OCI_PROGRESS_MS: '0' },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^built sample-llm → oci-layout:/);
    expect(run.stdout).toMatch(/FILE +SIZE +STORED +RATIO +STATUS/);
    expect(run.stdout).toMatch(/model-00001-of-00004\.safetensors +4\.0 MiB +\d+\.\d MiB +0\.\d\d +new/);
    expect(run.stderr).toMatch(/packing [\d.]+ [KMG]iB \/ 16\.0 MiB \(\d+%\)/);
  });

  test('SOURCE_DATE_EPOCH pins createdAt and every mtime', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': 'w' });
    const layout = path.join(await tempDir(), 'layout');
    const run = await runCli(
      [
        'model',
        'build',
        dir,
        '--name',
        'm',
        '--to',
        `oci-layout:${layout}:v1`,
        '--annotation',
        'org.example.k=v',
      ],
      {
        env: { SOURCE_DATE_EPOCH: '1700000000' },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const manifest = layoutManifest(layout, 'v1');
    expect(manifest.annotations).toMatchObject({
      [ANNOTATION.created]: '2023-11-14T22:13:20Z',
      'org.example.k': 'v',
    });
    const config = layoutConfig(layout, 'v1');
    expect(config.descriptor.createdAt).toBe('2023-11-14T22:13:20Z');
  });
});

describe('interruption', () => {
  test('SIGINT while packing: exit 130, no partial blob, index.json untouched', async () => {
    const { dir } = await sampleModel({ weightBytes: 96 * 1024 * 1024, shards: 2 });
    const layout = path.join(await tempDir(), 'layout');
    jsonResult(await build(await modelFromFiles({ 'a.safetensors': 'x' }), `oci-layout:${layout}:before`));
    const indexBefore = await readFile(path.join(layout, 'index.json'));
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'src/cli/bin.ts'),
        'model',
        'build',
        dir,
        '--name',
        'm',
        '--to',
        `oci-layout:${layout}:v1`,
        '--no-digest-cache',
        '--level',
        '19',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Wait until packing has started writing, then interrupt.
    for (let i = 0; i < 200; i++) {
      const ingest = await readdir(path.join(layout, 'ingest')).catch(() => []);
      if (ingest.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('model-oci: error: interrupted by SIGINT');
    expect(await readdir(path.join(layout, 'ingest')).catch(() => [])).toEqual([]);
    expect((await readFile(path.join(layout, 'index.json'))).equals(indexBefore)).toBe(true);
  });
});

describe('dry run', () => {
  test('--dry-run reports what a build would write and writes nothing', async () => {
    const { dir } = await sampleModel({ seed: 41 });
    const layout = path.join(await tempDir(), 'layout');
    const dry = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--dry-run'));
    expect(dry.status).toBe('built');
    expect(dry.layers.every((l) => l.status === 'new')).toBe(true);
    await expect(stat(layout)).rejects.toThrow(/ENOENT/);
    const real = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    expect(real.digest).toBe(dry.digest);
    const again = jsonResult(await build(dir, `oci-layout:${layout}:v1`, '--dry-run'));
    expect(again.status).toBe('skipped');
  });
});
