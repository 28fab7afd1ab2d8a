import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { resolveModel } from '../../src/compat/resolve.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import { UserError } from '../../src/util/errors.ts';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { openRepo, type Pushed, pushBase, pushTinyModel } from './kit.ts';

let registry: TestRegistry;
let proxy: FaultProxy;
let home: string;
let catalog: RegistryTarget;
const at: Record<string, Pushed> = {};
const weights: Record<string, string> = {};

const REQUIRES = 'io.model-oci.runtime.requires';
const CREATED = 'org.opencontainers.image.created';

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'compat-home-'));
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
  catalog = await openRepo(proxy.host, 'org/cat', home);
  const models = catalog.withRepository('org/models');
  const bases = catalog.withRepository('org/bases');
  at.phiOld = await pushTinyModel(models, 'phi-old', 'phi', {
    [REQUIRES]: 'vllm >=0.8 <0.9',
    [CREATED]: '2025-01-01T00:00:00Z',
  });
  at.phiNew = await pushTinyModel(models, 'phi-new', 'phi', {
    [REQUIRES]: 'vllm >=0.9',
    [CREATED]: '2025-03-01T00:00:00Z',
  });
  at.llama = await pushTinyModel(models, 'llama', 'llama', { [REQUIRES]: 'sglang >=0.4' });
  at.dupA = await pushTinyModel(models, 'dup-a', 'dup', { [REQUIRES]: 'vllm >=0.8' });
  at.dupB = await pushTinyModel(models, 'dup-b', 'dup', { [REQUIRES]: 'vllm >=0.8' });
  at.v085jan = await pushBase(bases, 'v085jan', {
    runtime: 'vllm',
    version: '0.8.5',
    created: '2025-01-10T00:00:00Z',
  });
  at.v085feb = await pushBase(bases, 'v085feb', {
    runtime: 'vllm',
    version: '0.8.5',
    created: '2025-02-10T00:00:00Z',
  });
  at.v082 = await pushBase(bases, 'v082', {
    runtime: 'vllm',
    version: '0.8.2',
    created: '2025-03-10T00:00:00Z',
  });
  at.v091 = await pushBase(bases, 'v091', {
    runtime: 'vllm',
    version: '0.9.1',
    created: '2025-01-05T00:00:00Z',
  });
  for (const tag of ['phi-old', 'phi-new', 'llama', 'dup-a', 'dup-b'])
    await recordArtifact(catalog, models, tag);
  for (const tag of ['v085jan', 'v085feb', 'v082', 'v091']) await recordArtifact(catalog, bases, tag);
  await updateIndex(catalog, 'index');
  for (const name of ['phiOld', 'phiNew']) {
    const bytes = await catalog.fetchManifest((await catalog.resolve(at[name]!.digest))!);
    weights[name] = JSON.parse(new TextDecoder().decode(bytes)).annotations['io.model-oci.weights.digest'];
  }
});
afterAll(async () => {
  await catalog?.close();
  await proxy?.stop();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

const failure = async (p: Promise<unknown>): Promise<Error> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  expect((e as Error).message).not.toContain('\n');
  return e as Error;
};

describe('resolve: which artifact and which base, from one read of the index', () => {
  test('the newest model artifact and its newest compatible base, with one GET', async () => {
    await resolveModel(catalog, 'index', { model: 'phi' }); // the client's first request probes the scheme
    await proxy.idle();
    const start = proxy.log.length;
    const found = await resolveModel(catalog, 'index', { model: 'phi' });
    await proxy.idle();
    expect(proxy.log.slice(start).map((e) => `${e.method} ${e.url}`)).toEqual([
      'GET /v2/org/cat/manifests/index',
    ]);
    expect(found.model).toMatchObject({
      digest: at.phiNew!.digest,
      ref: `${proxy.host}/org/cat@${at.phiNew!.digest}`,
      name: 'phi',
      requires: 'vllm >=0.9',
    });
    expect(found.base).toEqual({
      digest: at.v091!.digest,
      ref: `${proxy.host}/org/cat@${at.v091!.digest}`,
      runtime: 'vllm',
      version: '0.9.1',
      created: '2025-01-05T00:00:00Z',
    });
  });

  test('a runtime constraint picks the newest artifact that has a base meeting it; equal versions go by created', async () => {
    const found = await resolveModel(catalog, 'index', { model: 'phi', runtime: 'vllm <0.9' });
    expect(found.model.digest).toBe(at.phiOld!.digest);
    expect(found.base.digest).toBe(at.v085feb!.digest);
    const older = await resolveModel(catalog, 'index', { model: 'phi', runtime: 'vllm >=0.8.2 <0.8.5' });
    expect(older.base).toMatchObject({ digest: at.v082!.digest, version: '0.8.2' });
  });

  test('by weights digest, and with a preferred base', async () => {
    const byWeights = await resolveModel(catalog, 'index', { model: 'phi', weightsDigest: weights.phiOld! });
    expect(byWeights.model.digest).toBe(at.phiOld!.digest);
    expect(byWeights.base.digest).toBe(at.v085feb!.digest);
    const preferred = await resolveModel(catalog, 'index', {
      model: 'phi',
      weightsDigest: weights.phiOld!,
      base: at.v085jan!.digest,
    });
    expect(preferred.base.digest).toBe(at.v085jan!.digest);
    const notThere = await failure(
      resolveModel(catalog, 'index', { model: 'phi', weightsDigest: `sha256:${'0'.repeat(64)}` }),
    );
    expect(notThere.message).toMatch(
      /model "phi" has no artifact with weights sha256:0+ in .*; its weights: sha256:/,
    );
  });

  test('no compatible base: says what the model requires and what the bases provide', async () => {
    const e = await failure(resolveModel(catalog, 'index', { model: 'phi', runtime: 'vllm >=1.0' }));
    expect(e.message).toBe(
      `no base image in ${proxy.host}/org/cat:index is compatible with model "phi" (requires "vllm >=0.9" or "vllm >=0.8 <0.9") ` +
        'and matches "vllm >=1.0"; the bases provide vllm 0.9.1, vllm 0.8.5, vllm 0.8.2',
    );
    const llama = await failure(resolveModel(catalog, 'index', { model: 'llama' }));
    expect(llama.message).toMatch(
      /compatible with model "llama" \(requires "sglang >=0.4"\); the bases provide vllm 0.9.1/,
    );
  });

  test('an unknown model lists the names the index has; other mistakes are one clear line', async () => {
    const e = await failure(resolveModel(catalog, 'index', { model: 'gpt' }));
    expect(e.message).toBe(`model "gpt" is not in ${proxy.host}/org/cat:index; it has dup, llama, phi`);
    expect((await failure(resolveModel(catalog, 'index', { model: 'dup' }))).message).toMatch(
      /model "dup" has 2 artifacts .* that carry no created date .*SOURCE_DATE_EPOCH/,
    );
    expect((await failure(resolveModel(catalog, 'nothing', { model: 'phi' }))).message).toBe(
      `there is no compatibility index at ${proxy.host}/org/cat:nothing`,
    );
    expect(
      (await failure(resolveModel(catalog, 'index', { model: 'phi', runtime: 'vllm about 1' }))).message,
    ).toMatch(/"vllm about 1" is not a runtime constraint/);
    const models = catalog.withRepository('org/models');
    expect((await failure(resolveModel(models, 'phi-old', { model: 'phi' }))).message).toMatch(
      /is not a compatibility index/,
    );
  });
});
