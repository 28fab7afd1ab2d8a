import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildBase } from '../../src/base/build-base.ts';
import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { resolveModel } from '../../src/compat/resolve.ts';
import { buildModel } from '../../src/model/build.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import { baseBuildEnvironment, isolatedBuildah } from '../helpers/buildah.ts';
import { runCli } from '../helpers/cli.ts';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { skopeoJson } from '../helpers/tools.ts';

// The whole loop with the real tools: a model artifact needing vllm >=0.8 <0.9, a base image built
// by buildah providing vllm 0.8.5, both recorded in the index; then the upstream image gets a
// "security fix", the base is rebuilt, and the model's entry gains the new base — with no weight
// byte uploaded (the proxy counts every request).

let registry: TestRegistry;
let proxy: FaultProxy;
let work: string;
let storage: { root: string; runroot: string; storageDriver: string };
const opened: RegistryTarget[] = [];

let pushUpstream: (patch: string) => void;

async function open(repository: string): Promise<RegistryTarget> {
  const target = await openRegistryTarget(parseReference(`${proxy.host}/${repository}`), 'push', {
    env: { PATH: process.env.PATH },
    homeDir: work,
  });
  opened.push(target);
  return target;
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
  work = await mkdtemp(path.join(tmpdir(), 'model-oci-rebuild-'));
  const buildah = isolatedBuildah(work);
  storage = buildah.storage;
  pushUpstream = (patch) => buildah.pushBusybox(`${registry.host}/upstream/os:stable`, patch);
  pushUpstream('1');
}, 120_000);

afterAll(async () => {
  for (const t of opened) await t.close();
  await proxy?.stop();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('security rebuild of a base image', () => {
  test('extends every matching model to the new base without moving a weight byte', async () => {
    const catalog = await open('models/catalog');
    const models = await open('models/tiny');

    const { dir } = await sampleModel({ seed: 51 });
    const model = await buildModel({
      source: dir,
      name: 'tiny',
      target: models,
      tag: '1.0',
      runtime: 'vllm >=0.8 <0.9',
      digestCache: false,
    });
    await recordArtifact(catalog, models, model.digest);

    const context = path.join(work, 'runtime');
    await mkdir(context, { recursive: true });
    await writeFile(
      path.join(context, 'Dockerfile'),
      `FROM ${proxy.host}/upstream/os:stable\nRUN echo vllm 0.8.5 > /opt-runtime\n`,
    );
    const image = `${proxy.host}/runtimes/vllm:0.8.5`;
    const base = (force = false) =>
      buildBase({
        context,
        image,
        builder: 'buildah',
        buildah: storage,
        runtime: { name: 'vllm', version: '0.8.5' },
        force,
        ...baseBuildEnvironment(image, work),
      });
    const bases = await open('runtimes/vllm');
    const first = await base();
    expect(first.status).toBe('built');
    await recordArtifact(catalog, bases, first.digest);
    // A base for another runtime line is never paired with this model.
    const index1 = await updateIndex(catalog, 'index');
    expect(index1).toMatchObject({ models: 1, bases: 1, pairs: 1 });
    const before = await resolveModel(catalog, 'index', { model: 'tiny' });
    expect(before.base.digest).toBe(first.digest);
    expect(before.model.digest).toBe(model.digest);

    // Nothing changed: the scheduled run is a no-op.
    expect((await base()).status).toBe('skipped');

    // The upstream OS image gets a fix under the same tag; the scheduled run rebuilds and records.
    pushUpstream('2');
    await proxy.idle();
    const start = proxy.log.length;
    const rebuilt = await base();
    expect(rebuilt.status).toBe('built');
    expect(rebuilt.digest).not.toBe(first.digest);
    expect(rebuilt.reason).toMatch(/upstream .* changed/);
    await recordArtifact(catalog, bases, rebuilt.digest);
    const index2 = await updateIndex(catalog, 'index');
    expect(index2).toMatchObject({ models: 1, bases: 2, pairs: 2 });
    await proxy.idle();

    // Not one weight blob went up: every blob upload of the rebuild names a base layer or config.
    const weightDigests = new Set(model.layers.map((l) => l.digest));
    const uploads = proxy.log.slice(start).filter((e) => /\/blobs\/uploads\//.test(e.url));
    const finished = uploads
      .filter((e) => e.method === 'PUT')
      .map((e) => new URL(e.url, 'http://x').searchParams.get('digest'));
    expect(finished.length).toBeGreaterThan(0);
    for (const digest of finished) expect(weightDigests.has(digest as never)).toBe(false);
    const sent = uploads.reduce((n, e) => n + e.bytesForwarded, 0);
    const weightBytes = model.layers.filter((l) => l.kind === 'weight').reduce((n, l) => n + l.size, 0);
    expect(sent).toBeLessThan(weightBytes / 4);
    // The model's entry in the index names both bases, newest first; resolve picks the new one.
    const raw = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/models/catalog:index`,
    );
    const entry = raw.manifests.find((m: { digest: string }) => m.digest === model.digest);
    const compatible = JSON.parse(entry.annotations['io.model-oci.compatible-bases']) as { digest: string }[];
    expect(compatible.map((b) => b.digest).sort()).toEqual([first.digest, rebuilt.digest].sort());
    const after = await resolveModel(catalog, 'index', { model: 'tiny' });
    expect(after.base.digest).toBe(rebuilt.digest);
    expect(after.model.digest).toBe(model.digest);

    // The CLI answers the same from one read, and says clearly when nothing is compatible.
    const env = { HOME: work, DOCKER_CONFIG: work, GITHUB_TOKEN: '' };
    const cli = await runCli(
      ['resolve', '--index', `${registry.host}/models/catalog:index`, '--model', 'tiny', '--json'],
      { env },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).base.digest).toBe(rebuilt.digest);
    const none = await runCli(
      [
        'resolve',
        '--index',
        `${registry.host}/models/catalog:index`,
        '--model',
        'tiny',
        '--runtime',
        'vllm >=0.9',
      ],
      { env },
    );
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/vllm/);

    // The CLI's writers say what they recorded and where the index stands, in lines for a person.
    const index = `${registry.host}/models/catalog:index`;
    const where = `${registry.host}/models/catalog`;
    const counts = `${index} is ${index2.digest}: 1 model artifact, 2 base images, 2 compatible pairs`;
    const baseCli = await runCli(
      [
        'base',
        'build',
        context,
        '--image',
        `${registry.host}/runtimes/vllm:0.8.5`,
        '--runtime',
        'vllm 0.8.5',
        '--index',
        index,
        '--quiet',
      ],
      { env },
    );
    expect(baseCli.code, baseCli.stderr).toBe(0);
    expect(baseCli.stdout).toMatch(/^skipped .*: .* already holds an image built from these inputs\n/);
    expect(baseCli.stdout).toContain(
      `base image ${rebuilt.digest} was already recorded as ${where}:base-${rebuilt.digest.slice(7, 19)}\nindex ${counts}\n`,
    );
    const recordCli = await runCli(
      ['index', 'record', '--index', index, '--from', `${registry.host}/models/tiny:1.0`, '--quiet'],
      { env },
    );
    expect(recordCli.stdout).toBe(
      `model artifact ${model.digest} was already recorded as ${where}:model-${model.digest.slice(7, 19)}\nindex ${counts}\n`,
    );
    const updateCli = await runCli(['index', 'update', '--index', index, '--quiet'], { env });
    expect(updateCli.stdout).toBe(`index ${counts}\n`);
  });
});
