// A previous artifact of ours that fails verification is not "no previous artifact": inspect says what
// is wrong with it, and a build warns why every layer is packed again and writes a good artifact.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { sha256Digest } from '../../src/oci/digest.ts';
import { OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { jsonResult, runCli } from '../helpers/cli.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { tempDir } from '../helpers/tmp.ts';
import { layoutManifest } from '../helpers/tools.ts';

const FILES = { 'model.safetensors': 'the weights', 'config.json': '{"model_type":"tiny"}' };

async function builtLayout() {
  const dir = await modelFromFiles(FILES);
  const layout = path.join(await tempDir(), 'layout');
  const to = `oci-layout:${layout}:v1`;
  const first = jsonResult(await runCli(['model', 'build', dir, '--name', 'm', '--to', to, '--json']));
  const blob = (digest: string) => path.join(layout, 'blobs', 'sha256', digest.slice(7));
  return { dir, layout, to, first, blob };
}

/** The one stderr line of a failed inspect. */
async function inspectError(to: string): Promise<string> {
  const run = await runCli(['model', 'inspect', '--from', to]);
  expect(run.code, run.stdout).toBe(1);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/**
 * A build of the same files: it warns, packs every layer again and leaves a good artifact at the tag
 * (the damaged one repaired, or the tag moved back to the good one the weights tag still names).
 */
async function rebuildWarns(p: Awaited<ReturnType<typeof builtLayout>>, warning: RegExp): Promise<void> {
  const run = await runCli([
    'model',
    'build',
    p.dir,
    '--name',
    'm',
    '--to',
    p.to,
    '--json',
    '--no-digest-cache',
  ]);
  const result = jsonResult(run);
  expect(run.stderr).toMatch(warning);
  expect(result.bytesRead).toBeGreaterThan(0);
  expect(result.digest).toBe(p.first.digest);
  const inspect = await runCli(['model', 'inspect', '--from', p.to, '--json']);
  expect(inspect.code, inspect.stderr).toBe(0);
}

describe('a damaged previous artifact', () => {
  test('a config blob whose bytes are wrong', async () => {
    const p = await builtLayout();
    const manifest = layoutManifest(p.layout, 'v1');
    const config = p.blob(manifest.config.digest);
    const bytes = await readFile(config);
    await writeFile(config, Buffer.from(bytes.toString('latin1').replace('tiny', 'tinx'), 'latin1'));
    const hashed = sha256Digest(await readFile(config));
    expect(await inspectError(p.to)).toBe(
      `model-oci: error: oci-layout:${p.layout}:v1 cannot be verified: config blob ${manifest.config.digest} does not match its digest (its bytes hash to ${hashed})`,
    );
    await rebuildWarns(
      p,
      /^model-oci: warning: oci-layout:.*:v1 cannot be verified: config blob .* every layer is packed again$/m,
    );
  });

  test('a manifest that does not match its digest', async () => {
    const p = await builtLayout();
    const file = p.blob(p.first.digest);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"m"', '"n"'));
    expect(await inspectError(p.to)).toBe(
      `model-oci: error: oci-layout:${p.layout}:v1 cannot be verified: manifest ${p.first.digest} is damaged on disk (content hashes to ${sha256Digest(await readFile(file))})`,
    );
    await rebuildWarns(
      p,
      /^model-oci: warning: oci-layout:.*:v1 cannot be verified: manifest .* is damaged on disk .*every layer is packed again$/m,
    );
  });

  test('a manifest over the 4 MiB limit', async () => {
    const p = await builtLayout();
    const manifest = layoutManifest(p.layout, 'v1');
    const huge = Buffer.from(
      JSON.stringify({
        ...manifest,
        annotations: { ...manifest.annotations, padding: 'x'.repeat(4 * 1024 * 1024) },
      }),
    );
    const digest = sha256Digest(huge);
    await writeFile(p.blob(digest), huge);
    const indexFile = path.join(p.layout, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8'));
    for (const m of index.manifests)
      if (m.annotations['org.opencontainers.image.ref.name'] === 'v1')
        Object.assign(m, { digest, size: huge.length, mediaType: OCI_MANIFEST });
    await writeFile(indexFile, JSON.stringify(index));
    expect(await inspectError(p.to)).toBe(
      `model-oci: error: oci-layout:${p.layout}:v1 cannot be verified: manifest ${digest} is ${huge.length} bytes, over the 4194304-byte manifest limit`,
    );
    await rebuildWarns(
      p,
      /^model-oci: warning: oci-layout:.*:v1 cannot be verified: manifest .* over the 4194304-byte manifest limit; its layers are not reused, every layer is packed again$/m,
    );
  });

  test('an image, or nothing, at the tag is no previous artifact and no warning', async () => {
    const p = await builtLayout();
    const other = await modelFromFiles({ 'model.safetensors': 'other weights' });
    const run = await runCli([
      'model',
      'build',
      other,
      '--name',
      'm',
      '--to',
      `oci-layout:${p.layout}:fresh`,
      '--json',
    ]);
    expect(jsonResult(run).status).toBe('built');
    expect(run.stderr).not.toContain('warning');
  });
});
