import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { writeShard } from '../../scripts/sample-model.ts';
import { ANNOTATION, MODEL_ARTIFACT_TYPE, MODEL_CONFIG } from '../../src/oci/media-types.ts';
import { jsonResult, repoRoot, runCli } from '../helpers/cli.ts';
import { sampleModel } from '../helpers/model.ts';
import {
  validateIndex,
  validateLayoutMarker,
  validateManifest,
  validateModelConfig,
} from '../helpers/schemas.ts';
import { tempDir } from '../helpers/tmp.ts';
import { layoutConfig, layoutManifest, skopeo } from '../helpers/tools.ts';
import { snapshotTree } from '../helpers/tree.ts';

const build = (dir: string, to: string, ...extra: string[]) =>
  runCli(['model', 'build', dir, '--name', 'sample-llm', '--to', to, '--json', ...extra]);

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8'));
const blob = (layout: string, digest: string) =>
  path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));

describe('model build into an OCI layout', () => {
  test('two builds of the same directory into two layouts give byte-identical manifests and layers', async () => {
    const { dir } = await sampleModel();
    const tmp = await tempDir();
    const a = jsonResult(await build(dir, `oci-layout:${tmp}/a:v1`));
    const b = jsonResult(await build(dir, `oci-layout:${tmp}/b:v1`, '--no-digest-cache'));
    expect(a.status).toBe('built');
    expect(b.digest).toBe(a.digest);
    expect(b.layers.map((l) => l.digest)).toEqual(a.layers.map((l) => l.digest));
    const manifestA = await readFile(blob(`${tmp}/a`, a.digest));
    const manifestB = await readFile(blob(`${tmp}/b`, b.digest));
    expect(manifestB.equals(manifestA)).toBe(true);
    for (const layer of a.layers) {
      expect(
        (await readFile(blob(`${tmp}/b`, layer.digest))).equals(
          await readFile(blob(`${tmp}/a`, layer.digest)),
        ),
      ).toBe(true);
    }
  });

  test('the layout is a valid OCI layout of a valid ModelPack artifact, readable by zstd, GNU tar and skopeo', async () => {
    const { dir, shards } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const result = jsonResult(await build(dir, `oci-layout:${layout}:v1`));

    expect(validateLayoutMarker(await readJson(path.join(layout, 'oci-layout')))).toEqual([]);
    const index = await readJson(path.join(layout, 'index.json'));
    expect(validateIndex(index)).toEqual([]);
    const manifest = await readJson(blob(layout, result.digest));
    expect(validateManifest(manifest)).toEqual([]);
    expect(manifest.artifactType).toBe(MODEL_ARTIFACT_TYPE);
    expect(manifest.config.mediaType).toBe(MODEL_CONFIG);
    expect(manifest.annotations[ANNOTATION.weightsDigest]).toBe(result.weightsDigest);
    const config = await readJson(blob(layout, manifest.config.digest));
    expect(validateModelConfig(config)).toEqual([]);
    expect(config.config).toEqual({
      format: 'safetensors',
      architecture: 'LlamaForCausalLM',
      precision: 'bfloat16',
    });

    // One layer per shard, the small files grouped by kind.
    const weightLayers = manifest.layers.filter(
      (l: { mediaType: string }) => l.mediaType === 'application/vnd.cncf.model.weight.v1.tar+zstd',
    );
    expect(
      weightLayers.map(
        (l: { annotations: Record<string, string> }) => l.annotations[ANNOTATION.modelFilepath],
      ),
    ).toEqual(shards);
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toContain(
      'application/vnd.cncf.model.weight.config.v1.tar+zstd',
    );
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toContain(
      'application/vnd.cncf.model.doc.v1.tar+zstd',
    );

    const extracted = path.join(await tempDir(), 'extracted');
    await mkdir(extracted);
    for (const [i, layer] of manifest.layers.entries()) {
      for (const key of [ANNOTATION.title, ANNOTATION.modelFilepath, ANNOTATION.modelFileMetadata]) {
        expect(layer.annotations[key], `layer ${i} ${key}`).toBeTruthy();
      }
      const metadata = JSON.parse(layer.annotations[ANNOTATION.modelFileMetadata]);
      expect(metadata).toMatchObject({ uid: 0, gid: 0, mtime: '1970-01-01T00:00:00Z' });
      // zstd -d gives the uncompressed layer, whose sha256 is the config's diffID.
      const tar = execFileSync('zstd', ['-d', '-c', blob(layout, layer.digest)], { maxBuffer: 256 << 20 });
      expect(`sha256:${execFileSync('sha256sum', { input: tar }).toString().slice(0, 64)}`).toBe(
        config.modelfs.diffIds[i],
      );
      execFileSync('tar', ['-x', '-C', extracted], { input: tar });
    }
    const original = (await readdir(dir)).sort();
    expect((await readdir(extracted)).sort()).toEqual(original);
    for (const name of original) {
      expect(
        (await readFile(path.join(extracted, name))).equals(await readFile(path.join(dir, name))),
        name,
      ).toBe(true);
    }

    expect(layoutManifest(layout, 'v1')).toEqual(manifest);
    expect(layoutConfig(layout, 'v1')).toEqual(config);
    const copy = path.join(await tempDir(), 'copy');
    skopeo('copy', '--quiet', `oci:${layout}:v1`, `oci:${copy}:copied`);
    expect(layoutManifest(copy, 'copied')).toEqual(manifest);
  });

  test('an unchanged model is skipped without writing; one changed shard re-packs only that layer', async () => {
    const { dir, shards } = await sampleModel();
    const layout = path.join(await tempDir(), 'layout');
    const first = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    expect(first.layers.every((l) => l.status === 'new')).toBe(true);

    const before = await snapshotTree(layout);
    const again = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    expect(again.status).toBe('skipped');
    expect(again.digest).toBe(first.digest);
    expect(again.bytesWritten).toBe(0);
    expect(await snapshotTree(layout)).toEqual(before);

    // Rewrite the last shard (one tensor, same name and size) with other values, then build again.
    const last = shards[shards.length - 1]!;
    await writeShard(path.join(dir, last), shards.length - 1, 1, 99);
    const changed = jsonResult(await build(dir, `oci-layout:${layout}:v1`));
    expect(changed.status).toBe('built');
    expect(changed.weightsDigest).not.toBe(first.weightsDigest);
    const fresh = changed.layers.filter((l) => l.status !== 'reused');
    expect(fresh.map((l) => l.files.map((f) => f.path))).toEqual([[last]]);
    for (const layer of changed.layers.filter((l) => l.status === 'reused')) {
      expect(first.layers.map((l) => l.digest)).toContain(layer.digest);
    }
    const newBlobs = (await readdir(path.join(layout, 'blobs', 'sha256'))).filter(
      (name) => !Object.keys(before).includes(`blobs/sha256/${name}`),
    );
    // The new shard layer, the new config and the new manifest: nothing else was written.
    expect(newBlobs.sort()).toEqual(
      [
        fresh[0]!.digest,
        changed.digest,
        JSON.parse(await readFile(blob(layout, changed.digest), 'utf8')).config.digest,
      ]
        .map((d) => d.slice(7))
        .sort(),
    );
  });

  test('the weights digest is what the shell recipe in docs/artifact-format.md computes', async () => {
    const { dir } = await sampleModel({ shards: 2 });
    const result = jsonResult(await build(dir, `oci-layout:${await tempDir()}/layout:v1`));
    const doc = await readFile(path.join(repoRoot, 'docs', 'artifact-format.md'), 'utf8');
    const recipe = /```sh\n(find \. -type f[\s\S]*?)```/.exec(doc)?.[1];
    expect(recipe).toBeDefined();
    const printed = execFileSync('bash', ['-c', recipe!], { cwd: dir, encoding: 'utf8' });
    expect(`sha256:${printed.slice(0, 64)}`).toBe(result.weightsDigest);
  });
});
