import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { buildModel } from '../../src/model/build.ts';
import type { Digest } from '../../src/oci/digest.ts';
import { describeJson, encodeJson } from '../../src/oci/manifest.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import { UserError } from '../../src/util/errors.ts';
import { type FaultProxy, isMountPost, startFaultProxy, stripMount } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { validateIndex } from '../helpers/schemas.ts';
import { skopeoJson } from '../helpers/tools.ts';
import { openRepo, pushBase, pushTinyModel } from './kit.ts';

let registry: TestRegistry;
let proxy: FaultProxy;
let home: string;
const opened: RegistryTarget[] = [];

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'compat-home-'));
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
});
afterAll(async () => {
  for (const t of opened) await t.close();
  await proxy?.stop();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

async function open(repository: string): Promise<RegistryTarget> {
  const target = await openRepo(proxy.host, repository, home);
  opened.push(target);
  return target;
}

type Entry = {
  digest: string;
  mediaType: string;
  artifactType?: string;
  annotations: Record<string, string>;
};
type Index = { manifests: Entry[]; annotations: Record<string, string>; artifactType?: string };

// skopeo runs synchronously, so it talks to the registry itself: the proxy lives in this process.
const inspect = (repo: string, tag: string): Index =>
  skopeoJson('inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${repo}:${tag}`);
const compatibleOf = (index: Index, digest: string) =>
  JSON.parse(index.manifests.find((m) => m.digest === digest)!.annotations['io.model-oci.compatible-bases']!);

/** Blob uploads in the proxy log since `start`: PATCHes, upload PUTs and upload POSTs that are not mounts. */
function uploadsSince(start: number) {
  return proxy.log
    .slice(start)
    .filter(
      (e) =>
        e.method === 'PATCH' ||
        (e.method === 'PUT' && e.url.includes('/blobs/uploads/')) ||
        (e.method === 'POST' && !isMountPost({ method: e.method, url: e.url, headers: e.requestHeaders })),
    );
}

describe('the compatibility index on a real registry', () => {
  const state: { model?: Digest; weights?: string[]; base1?: Digest; base2?: Digest; base3?: Digest } = {};

  test('a built model artifact and a base image are recorded (blobs mounted) and paired in the index', async () => {
    const { dir } = await sampleModel({ shards: 2, weightBytes: 2 * 4 * 1024 * 1024 });
    const modelRepo = await open('org/phi');
    const built = await buildModel({
      source: dir,
      name: 'phi-mini',
      target: modelRepo,
      tag: '1',
      digestCache: false,
      annotations: { 'io.model-oci.runtime.requires': 'vllm >=0.8 <0.9' },
    });
    state.model = built.digest;
    state.weights = built.layers.filter((l) => l.kind === 'weight').map((l) => l.digest);
    expect(state.weights.length).toBe(2);
    const baseRepo = await open('org/vllm');
    state.base1 = (
      await pushBase(baseRepo, '0.8.5', {
        runtime: 'vllm',
        version: '0.8.5',
        created: '2025-01-10T00:00:00Z',
      })
    ).digest;

    const catalog = await open('org/catalog');
    const start = proxy.log.length;
    const m = await recordArtifact(catalog, modelRepo, '1');
    expect(m).toMatchObject({
      kind: 'model',
      tag: `model-${built.digest.slice(7, 19)}`,
      digest: built.digest,
    });
    expect(m.blobs).toEqual({ present: 0, mounted: built.layers.length + 1, copied: 0 });
    const b = await recordArtifact(catalog, baseRepo, '0.8.5');
    expect(b).toMatchObject({ kind: 'base', tag: `base-${state.base1.slice(7, 19)}`, written: true });
    await proxy.idle();
    expect(uploadsSince(start)).toEqual([]);
    // Recording again writes nothing.
    expect((await recordArtifact(catalog, modelRepo, '1')).written).toBe(false);

    const result = await updateIndex(catalog, 'index');
    expect(result).toMatchObject({ models: 1, bases: 1, pairs: 1, rounds: 1, written: true, skipped: [] });

    const index = inspect('org/catalog', 'index');
    expect(validateIndex(index)).toEqual([]);
    expect(index.artifactType).toBe('application/vnd.model-oci.catalog.v1+json');
    expect(index.annotations).toEqual({
      'io.model-oci.catalog.schema': '1',
      'io.model-oci.catalog.models': '1',
      'io.model-oci.catalog.bases': '1',
      'io.model-oci.catalog.pairs': '1',
    });
    const [model, base] = index.manifests;
    expect(model).toMatchObject({
      digest: built.digest,
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
      annotations: {
        'io.model-oci.catalog.kind': 'model',
        'io.model-oci.catalog.record': m.tag,
        'org.opencontainers.image.title': 'phi-mini',
        'io.model-oci.weights.digest': built.weightsDigest,
        'io.model-oci.runtime.requires': 'vllm >=0.8 <0.9',
      },
    });
    expect(compatibleOf(index, built.digest)).toEqual([
      { digest: state.base1, runtime: 'vllm', version: '0.8.5' },
    ]);
    expect(base).toMatchObject({
      digest: state.base1,
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: {
        'io.model-oci.catalog.kind': 'base',
        'io.model-oci.runtime.name': 'vllm',
        'io.model-oci.runtime.version': '0.8.5',
        'org.opencontainers.image.created': '2025-01-10T00:00:00Z',
      },
    });
    // The records are real manifests in the catalog repository, as the index requires.
    expect(inspect('org/catalog', m.tag)).toMatchObject({
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
    });
  });

  test('a rebuilt base joins the model’s compatible bases, newest first, and no weight layer is uploaded', async () => {
    const catalog = await open('org/catalog');
    const baseRepo = await open('org/vllm');
    state.base2 = (
      await pushBase(baseRepo, '0.8.5-r2', {
        runtime: 'vllm',
        version: '0.8.5',
        created: '2025-02-10T00:00:00Z',
      })
    ).digest;
    const start = proxy.log.length;
    await recordArtifact(catalog, baseRepo, '0.8.5-r2');
    const result = await updateIndex(catalog, 'index');
    await proxy.idle();
    expect(result).toMatchObject({ models: 1, bases: 2, pairs: 2 });
    const log = proxy.log.slice(start);
    expect(uploadsSince(start)).toEqual([]);
    for (const weight of state.weights!)
      expect(log.filter((e) => e.url.includes(weight)).filter((e) => e.method !== 'HEAD')).toEqual([]);
    // The model's record was not read again: the index already says what it declares.
    expect(log.filter((e) => e.method === 'GET' && e.url.includes(state.model!))).toEqual([]);
    expect(
      compatibleOf(inspect('org/catalog', 'index'), state.model!).map((b: { digest: string }) => b.digest),
    ).toEqual([state.base2, state.base1]);
  });

  test('an incompatible base is listed but not paired; a base declaring its runtime in labels is read', async () => {
    const catalog = await open('org/catalog');
    const baseRepo = await open('org/vllm');
    state.base3 = (
      await pushBase(baseRepo, '0.9.1', {
        runtime: 'vllm',
        version: '0.9.1',
        created: '2025-03-01T00:00:00Z',
      })
    ).digest;
    const sglang = await open('org/sglang');
    const labelled = await pushBase(sglang, '0.4.6', {
      runtime: 'sglang',
      version: '0.4.6.post1',
      asLabels: true,
    });
    await recordArtifact(catalog, baseRepo, '0.9.1');
    await recordArtifact(catalog, sglang, '0.4.6');
    const result = await updateIndex(catalog, 'index');
    expect(result).toMatchObject({ models: 1, bases: 4, pairs: 2 });
    const index = inspect('org/catalog', 'index');
    expect(compatibleOf(index, state.model!).map((b: { digest: string }) => b.digest)).toEqual([
      state.base2,
      state.base1,
    ]);
    // Bases in the index: highest version first.
    expect(index.manifests.slice(1).map((e) => e.annotations['io.model-oci.runtime.version'])).toEqual([
      '0.9.1',
      '0.8.5',
      '0.8.5',
      '0.4.6.post1',
    ]);
    expect(
      index.manifests.find((e) => e.digest === labelled.digest)?.annotations['io.model-oci.runtime.name'],
    ).toBe('sglang');
  });

  test('updates with no new record give byte-identical indexes, also when every record is read again', async () => {
    const catalog = await open('org/catalog');
    const before = await catalog.fetchReference('index');
    const again = await updateIndex(catalog, 'index');
    expect(again).toMatchObject({ written: false, rounds: 1, digest: before!.descriptor.digest });
    const reread = await updateIndex(catalog, 'index', { reread: true });
    expect(reread).toMatchObject({ written: false, digest: before!.descriptor.digest });
    const after = await catalog.fetchReference('index');
    expect(Buffer.from(after!.bytes).equals(Buffer.from(before!.bytes))).toBe(true);
  });

  test('a registry that declines mounts (202) gets the blobs copied; the record still lands', async () => {
    const catalog = await open('org/catalog2');
    const models = await open('org/tiny');
    await pushTinyModel(models, 't', 'tiny', { 'io.model-oci.runtime.requires': 'vllm >=0.8' });
    const rule = proxy.addRule({ match: isMountPost, fault: { kind: 'rewrite', rewrite: stripMount } });
    try {
      const r = await recordArtifact(catalog, models, 't');
      expect(r.blobs).toEqual({ present: 0, mounted: 0, copied: 2 });
    } finally {
      rule.remove();
    }
    expect(await updateIndex(catalog, 'index')).toMatchObject({ models: 1, bases: 0, pairs: 0 });
  });

  test('what cannot be recorded is refused with one clear line before anything is written', async () => {
    const catalog = await open('org/catalog3');
    const repo = await open('org/misc');
    await pushTinyModel(repo, 'norequire', 'x', {});
    await pushBase(repo, 'plain', {});
    await pushTinyModel(repo, 'badrange', 'x', { 'io.model-oci.runtime.requires': 'vllm about 0.8' });
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    const e1 = await failure(recordArtifact(catalog, repo, 'norequire'));
    expect(e1).toBeInstanceOf(UserError);
    expect(e1?.message).toMatch(/model artifact without io\.model-oci\.runtime\.requires/);
    expect((await failure(recordArtifact(catalog, repo, 'plain')))?.message).toMatch(
      /neither a model artifact nor a base image.*io\.model-oci\.runtime\.name/,
    );
    expect((await failure(recordArtifact(catalog, repo, 'badrange')))?.message).toMatch(
      /is not "<runtime> <semver range>"/,
    );
    expect((await failure(recordArtifact(catalog, repo, 'missing')))?.message).toMatch(
      /org\/misc:missing does not exist/,
    );
    const other = await openRepo(registry.host, 'org/misc', home);
    opened.push(other);
    expect((await failure(recordArtifact(catalog, other, 'plain')))?.message).toMatch(
      /must be on the same registry/,
    );
    expect((await failure(updateIndex(catalog, 'model-index')))?.message).toMatch(/cannot be the index tag/);
    expect(await catalog.resolve('index')).toBeUndefined();
  });

  test('a multi-platform base (an index) is recorded with its platform manifests', async () => {
    const catalog = await open('org/catalog5');
    const repo = await open('org/multi');
    const amd = await pushBase(repo, 'amd64', { runtime: 'vllm', version: '0.8.4' });
    const arm = await pushBase(repo, 'arm64', { runtime: 'vllm', version: '0.8.4' });
    const children = [amd, arm].map((p, i) => ({
      mediaType: OCI_MANIFEST,
      digest: p.digest,
      size: p.size,
      platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' },
    }));
    const bytes = encodeJson({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children,
      annotations: { 'io.model-oci.runtime.name': 'vllm', 'io.model-oci.runtime.version': '0.8.4' },
    });
    const desc = describeJson(OCI_INDEX, bytes);
    await repo.putManifest(desc, bytes, ['0.8.4']);
    const r = await recordArtifact(catalog, repo, '0.8.4');
    expect(r).toMatchObject({ kind: 'base', digest: desc.digest, blobs: { mounted: 4 } });
    expect(await catalog.resolve(amd.digest)).toMatchObject({ digest: amd.digest });
    await updateIndex(catalog, 'index');
    expect(inspect('org/catalog5', 'index').manifests).toEqual([
      {
        mediaType: OCI_INDEX,
        digest: desc.digest,
        size: desc.size,
        annotations: {
          'io.model-oci.catalog.kind': 'base',
          'io.model-oci.catalog.record': r.tag,
          'io.model-oci.runtime.name': 'vllm',
          'io.model-oci.runtime.version': '0.8.4',
        },
      },
    ]);
  });

  test('a record tag changed by hand is left out and reported, not fatal', async () => {
    const catalog = await open('org/catalog4');
    const repo = await open('org/hand');
    const base = await pushBase(repo, 'b', { runtime: 'vllm', version: '0.8.1' });
    await recordArtifact(catalog, repo, 'b');
    await pushBase(catalog, 'model-0123456789ab', { runtime: 'vllm', version: '0.8.2' });
    const result = await updateIndex(catalog, 'index');
    expect(result).toMatchObject({ models: 0, bases: 1, skipped: [{ tag: 'model-0123456789ab' }] });
    expect(inspect('org/catalog4', 'index').manifests.map((e) => e.digest)).toEqual([base.digest]);
  });
});
