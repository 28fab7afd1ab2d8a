// The image form: containerd 1.6 pulls and unpacks it into the model's files; it shares every
// layer blob with the ModelPack artifact (no second upload); skip and the compatibility index cover it.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { openRepo, pushBase } from '../compat/kit.ts';
import { runCli } from '../helpers/cli.ts';
import { chainId, startContainerd, type TestContainerd } from '../helpers/containerd.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { validateIndex, validateManifest, validateModelConfig } from '../helpers/schemas.ts';
import { tempDir } from '../helpers/tmp.ts';
import { build, filesOf, pull } from './helpers.ts';

let registry: TestRegistry;
let containerd: TestContainerd;
let home: string;
beforeAll(async () => {
  registry = await startRegistry();
  containerd = await startContainerd();
  home = await mkdtemp(path.join(tmpdir(), 'model-oci-image-'));
});
afterAll(async () => {
  await containerd?.stop();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

async function model(seed: number) {
  const { dir } = await sampleModel({ shards: 2, weightBytes: 6 * 1024 * 1024, seed });
  await writeFile(path.join(dir, 'serve.sh'), '#!/bin/sh\nexec vllm serve .\n');
  await chmod(path.join(dir, 'serve.sh'), 0o755);
  return dir;
}

/** The fields of manifests, indexes and configs these tests look at. */
interface Doc {
  manifests: { digest: string; platform: { os: string; architecture: string } }[];
  layers: { digest: string; mediaType: string }[];
  config: { digest: string };
  modelfs: { diffIds: string[] };
  rootfs: { diff_ids: string[] };
}

/** A manifest, index or blob straight from the registry, as JSON. */
async function get(repo: string, kind: 'manifests' | 'blobs', reference: string): Promise<Doc> {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
  const res = await fetch(`${registry.url}/v2/${repo}/${kind}/${reference}`, { headers: { accept } });
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

describe('the image form', () => {
  test('containerd 1.6 pulls and unpacks it into the model files; the ModelPack manifest still validates; no blob went up twice', async () => {
    const dir = await model(1);
    const proxy = await startFaultProxy({ upstream: registry.url });
    let built: Awaited<ReturnType<typeof build>>;
    let uploads: (string | null)[];
    try {
      built = await build([dir, '--name', 'imaged', '--to', `${proxy.host}/image/imaged:1`, '--image-form']);
      await proxy.idle();
      // Every blob upload ends in a PUT naming its digest: each digest goes up once at most.
      uploads = proxy.log
        .filter((e) => e.method === 'PUT' && e.url.includes('/blobs/uploads/') && e.status === 201)
        .map((e) => new URLSearchParams(e.url.split('?')[1]).get('digest'));
      expect(uploads.length).toBe(new Set(uploads).size);
    } finally {
      await proxy.stop();
    }
    const result = JSON.parse(built.run.stdout) as {
      image: { digest: string; tags: string[]; platforms: string[]; written: boolean };
    };
    expect(result.image).toMatchObject({
      tags: ['1-image'],
      platforms: ['linux/amd64', 'linux/arm64'],
      written: true,
    });

    // Both forms as the specs say; the image's layers are the artifact's blobs, its diff_ids the same.
    const artifact = await get('image/imaged', 'manifests', '1');
    expect(validateManifest(artifact)).toEqual([]);
    const modelConfig = await get('image/imaged', 'blobs', artifact.config.digest);
    expect(validateModelConfig(modelConfig)).toEqual([]);
    const index = await get('image/imaged', 'manifests', '1-image');
    expect(validateIndex(index)).toEqual([]);
    expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
    ]);
    // What went up: the layers and the model config once each, then one small config per platform.
    expect(uploads.length).toBe(artifact.layers.length + 1 + 2);
    for (const entry of index.manifests) {
      const image = await get('image/imaged', 'manifests', entry.digest);
      expect(validateManifest(image)).toEqual([]);
      expect(image.layers.map((l) => l.digest)).toEqual(artifact.layers.map((l) => l.digest));
      expect(new Set(image.layers.map((l) => l.mediaType))).toEqual(
        new Set(['application/vnd.oci.image.layer.v1.tar+zstd']),
      );
      const config = await get('image/imaged', 'blobs', image.config.digest);
      expect(config).toMatchObject({ os: 'linux', architecture: entry.platform.architecture });
      expect(config.rootfs.diff_ids).toEqual(modelConfig.modelfs.diffIds);
    }

    // containerd pulls it and unpacks every layer; the top snapshot holds the model, byte for byte.
    await containerd.ctr(
      'images',
      'pull',
      '--plain-http',
      '--snapshotter',
      'native',
      `${registry.host}/image/imaged:1-image`,
    );
    const unpacked = await containerd.viewDir(chainId(modelConfig.modelfs.diffIds));
    expect(await filesOf(unpacked)).toEqual(await filesOf(dir));

    // The image form is also what `model pull` reads.
    const out = path.join(await tempDir(), 'out');
    await pull([`${registry.host}/image/imaged:1-image`, '--to', out]);
    expect(await filesOf(out)).toEqual(await filesOf(dir));
  });

  test('a rebuild of an unchanged model writes neither form; raw layers have no image form', async () => {
    const dir = await model(2);
    await build([dir, '--name', 'again', '--to', `${registry.host}/image/again:1`, '--image-form']);
    const proxy = await startFaultProxy({ upstream: registry.url });
    try {
      const again = await build([
        dir,
        '--name',
        'again',
        '--to',
        `${proxy.host}/image/again:1`,
        '--image-form',
      ]);
      const result = JSON.parse(again.run.stdout) as { status: string; image: { written: boolean } };
      expect(result).toMatchObject({ status: 'skipped', image: { written: false } });
      await proxy.idle();
      expect(proxy.log.filter((e) => e.method !== 'GET' && e.method !== 'HEAD')).toEqual([]);
    } finally {
      await proxy.stop();
    }
    const raw = await runCli([
      'model',
      'build',
      dir,
      '--name',
      'raw',
      '--to',
      `${registry.host}/image/raw:1`,
      '--encoding',
      'raw',
      '--image-form',
    ]);
    expect(raw.code).toBe(2);
    expect(raw.stderr).toMatch(/--image-form needs tar layers/);
  });

  test('the compatibility index records it next to its model; resolve names it and pull --index reads the model', async () => {
    const dir = await model(3);
    const catalog = `${registry.host}/image/catalog`;
    const base = await pushBase(await openRepo(registry.host, 'image/vllm', home), '0.8.5', {
      runtime: 'vllm',
      version: '0.8.5',
    });
    await recordArtifact(
      await openRepo(registry.host, 'image/catalog', home),
      await openRepo(registry.host, 'image/vllm', home),
      '0.8.5',
    );
    await updateIndex(await openRepo(registry.host, 'image/catalog', home), 'index');
    const built = await build([
      dir,
      '--name',
      'indexed',
      '--to',
      `${registry.host}/image/indexed:1`,
      '--image-form',
      '--runtime',
      'vllm >=0.8 <0.9',
      '--index',
      `${catalog}:index`,
    ]);
    const result = JSON.parse(built.run.stdout) as {
      image: { digest: string };
      index: { recorded: { image: { tag: string } } };
    };
    expect(result.index.recorded.image.tag).toMatch(/^model-[0-9a-f]{12}-image$/);

    const resolved = await runCli(['resolve', '--index', `${catalog}:index`, '--model', 'indexed', '--json']);
    expect(resolved.code).toBe(0);
    const found = JSON.parse(resolved.stdout) as {
      model: { digest: string; image: { digest: string; ref: string } };
      base: { digest: string };
    };
    expect(found.model.digest).toBe(built.digest);
    expect(found.model.image).toEqual({
      digest: result.image.digest,
      ref: `${catalog}@${result.image.digest}`,
    });
    expect(found.base.digest).toBe(base.digest);

    // Kubernetes would name found.model.image.ref in an image volume; containerd pulls it from the catalog.
    await containerd.ctr('images', 'pull', '--plain-http', '--snapshotter', 'native', found.model.image.ref);

    const out = path.join(await tempDir(), 'out');
    const pulled = await pull(['--index', `${catalog}:index`, '--model', 'indexed', '--to', out]);
    expect(pulled.resolved?.model.digest).toBe(built.digest);
    expect(await filesOf(out)).toEqual(await filesOf(dir));
  });
});
