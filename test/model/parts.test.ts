// Part layers with everything else a build does: dry run, digest cache, inspect, the compatibility
// index, the image form's refusal — on OCI layouts (the limit given with --max-layer-size).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { validateManifest } from '../helpers/schemas.ts';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Layer {
  title: string;
  status: string;
  size: number;
  files: { path: string; size: number; digest: string }[];
}
const json = (run: { code: number | null; stdout: string; stderr: string }) => {
  if (run.code !== 0) throw new Error(`failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown> & {
    status: string;
    digest: string;
    weightsDigest: string;
    bytesRead: number;
    layers: Layer[];
  };
};

describe('a split model through the rest of the tool', () => {
  test('dry run writes nothing; the build splits; a rebuild reads nothing (digest cache) and skips; inspect names the parts; the index records it; pull reassembles', async () => {
    const weights = randomBytes(3 * MiB);
    const dir = await modelFromFiles({
      'config.json': '{"model_type":"llama"}',
      'model.safetensors': weights,
    });
    const work = await tempDir();
    const layout = path.join(work, 'layout');
    const to = `oci-layout:${layout}:v1`;
    const flags = ['--name', 'split', '--to', to, '--max-layer-size', '1MiB', '--json'];

    const dry = json(await runCli(['model', 'build', dir, ...flags, '--dry-run']));
    expect(dry.layers.filter((l) => l.title.includes('.part-'))).toHaveLength(4);
    expect(existsSync(layout)).toBe(false);

    const built = json(
      await runCli([
        'model',
        'build',
        dir,
        ...flags,
        '--runtime',
        'vllm >=0.8 <0.9',
        '--index',
        `oci-layout:${path.join(work, 'catalog')}:index`,
      ]),
    );
    expect(built.layers.map((l) => l.title)).toEqual([
      'weight.config.tar.zst',
      'model.safetensors.part-00001-of-00004.tar.zst',
      'model.safetensors.part-00002-of-00004.tar.zst',
      'model.safetensors.part-00003-of-00004.tar.zst',
      'model.safetensors.part-00004-of-00004.tar.zst',
    ]);
    expect(built.weightsDigest).toBe(dry.weightsDigest);
    expect(built.index).toBeDefined();
    // The manifest with its part annotations is still a valid OCI manifest and ModelPack artifact.
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
    const manifestDigest = index.manifests.find(
      (m: { annotations?: Record<string, string> }) =>
        m.annotations?.['org.opencontainers.image.ref.name'] === 'v1',
    ).digest as string;
    const manifest = JSON.parse(
      await readFile(path.join(layout, 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8'),
    );
    expect(validateManifest(manifest)).toEqual([]);
    const part = JSON.parse(manifest.layers[4].annotations['io.model-oci.part']);
    expect(part).toEqual({
      path: 'model.safetensors',
      index: 4,
      count: 4,
      offset: part.offset,
      size: 3 * MiB - part.offset,
      fileSize: 3 * MiB,
      fileDigest: `sha256:${sha256(weights)}`,
    });

    const again = json(await runCli(['model', 'build', dir, ...flags, '--runtime', 'vllm >=0.8 <0.9']));
    expect(again.status).toBe('skipped');
    expect(again.bytesRead).toBe(0);

    const inspected = await runCli(['model', 'inspect', '--from', to]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stdout).toMatch(/model\.safetensors part 2 of 4 \(bytes \d+–\d+\)/);

    const out = path.join(work, 'pulled');
    const pulled = await runCli(['model', 'pull', to, '--to', out, '--json']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(sha256(await readFile(path.join(out, 'model.safetensors')))).toBe(sha256(weights));
    expect(JSON.parse(pulled.stdout).weightsDigest).toBe(built.weightsDigest);
    // include/exclude choose by the whole file's name, not the parts'.
    const only = path.join(work, 'only');
    const chosen = await runCli(['model', 'pull', to, '--to', only, '--include', '*.safetensors', '--json']);
    expect(chosen.code, chosen.stderr).toBe(0);
    expect(JSON.parse(chosen.stdout).files.map((f: { path: string }) => f.path)).toEqual([
      'model.safetensors',
    ]);
    expect(sha256(await readFile(path.join(only, 'model.safetensors')))).toBe(sha256(weights));
    const none = await runCli([
      'model',
      'pull',
      to,
      '--to',
      path.join(work, 'none'),
      '--exclude',
      '*.safetensors',
      '--json',
    ]);
    expect(none.code, none.stderr).toBe(0);
    expect(JSON.parse(none.stdout).files.map((f: { path: string }) => f.path)).toEqual(['config.json']);
  });

  test('the image form refuses a split model before anything is written, pointing to model pull', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': randomBytes(3 * MiB) });
    const layout = path.join(await tempDir(), 'layout');
    const run = await runCli([
      'model',
      'build',
      dir,
      '--name',
      'split',
      '--to',
      `oci-layout:${layout}:v1`,
      '--max-layer-size',
      '1MiB',
      '--image-form',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/split into 4 part layers .*model pull/);
    expect(existsSync(layout)).toBe(false);
  });

  test('bad limits are usage errors', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': randomBytes(1024) });
    for (const [flag, value, message] of [
      ['--max-layer-size', 'lots', /--max-layer-size/],
      ['--upload-time-limit', '0', /--upload-time-limit must be a whole number/],
    ] as const) {
      const run = await runCli([
        'model',
        'build',
        dir,
        '--name',
        'x',
        '--to',
        'oci-layout:/nonexistent/x',
        flag,
        value,
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });
});
