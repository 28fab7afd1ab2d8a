// The compatibility index speaks only Target: the same flow — record a model artifact and base
// images, bring the index up to date, resolve — against a real registry and against OCI layouts in
// this process (where records are copies, a layout having no cross-repository mounts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { resolveModel } from '../../src/compat/resolve.ts';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { canListTags, type Target } from '../../src/content/target.ts';
import { buildModel } from '../../src/model/build.ts';
import { parseImageIndex } from '../../src/oci/manifest.ts';
import { runCli } from '../helpers/cli.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { validateIndex } from '../helpers/schemas.ts';
import { openRepo, pushBase } from './kit.ts';

let registry: TestRegistry;
let home: string;
const opened: Target[] = [];
beforeAll(async () => {
  registry = await startRegistry();
  home = await mkdtemp(path.join(tmpdir(), 'model-oci-any-'));
});
afterAll(async () => {
  for (const t of opened) await t.close?.();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

interface Storage {
  name: string;
  /** A fresh repository (registry) or layout of this storage; the same `name` gives the same one. */
  open(name: string): Promise<Target>;
  /** How the CLI names the catalog's index. */
  indexRef(name: string): string;
  /** How blobs reach the catalog: mounted (registry) or copied (layout). */
  arrival: 'mounted' | 'copied';
}

let run = 0;
const storages: Storage[] = [
  {
    name: 'a registry',
    async open(name) {
      const target = await openRepo(registry.host, `any/r${run}/${name}`, home);
      opened.push(target);
      return target;
    },
    indexRef: (name) => `${registry.host}/any/r${run}/${name}:index`,
    arrival: 'mounted',
  },
  {
    name: 'OCI layouts',
    open: async (name) => OciLayoutTarget.open(path.join(home, `r${run}`, name)),
    indexRef: (name) => `oci-layout:${path.join(home, `r${run}`, name)}:index`,
    arrival: 'copied',
  },
];

describe.each(storages)('the compatibility index on $name', (storage) => {
  test('record, update, resolve; records are idempotent; an incompatible base is listed but not paired', async () => {
    run++;
    const models = await storage.open('phi');
    const bases = await storage.open('vllm');
    const catalog = await storage.open('catalog');
    const { dir } = await sampleModel({ shards: 1, weightBytes: 2 * 1024 * 1024, seed: 70 + run });
    const built = await buildModel({
      source: dir,
      name: 'phi-any',
      target: models,
      tag: '1',
      digestCache: false,
      runtime: 'vllm >=0.8 <0.9',
      createdAt: '2025-02-01T00:00:00Z',
    });
    const old = await pushBase(bases, '0.8.4', {
      runtime: 'vllm',
      version: '0.8.4',
      created: '2025-01-01T00:00:00Z',
    });
    const newer = await pushBase(bases, '0.8.5', {
      runtime: 'vllm',
      version: '0.8.5',
      created: '2025-01-02T00:00:00Z',
    });
    const other = await pushBase(bases, '0.9.0', { runtime: 'vllm', version: '0.9.0' });

    const m = await recordArtifact(catalog, models, '1');
    expect(m).toMatchObject({ kind: 'model', written: true, digest: built.digest });
    expect(m.blobs[storage.arrival]).toBe(built.layers.length + 1);
    for (const tag of ['0.8.4', '0.8.5', '0.9.0']) await recordArtifact(catalog, bases, tag);
    expect((await recordArtifact(catalog, models, '1')).written).toBe(false);

    const updated = await updateIndex(catalog, 'index');
    expect(updated).toMatchObject({ models: 1, bases: 3, pairs: 2, written: true, skipped: [] });
    expect(canListTags(catalog) && (await catalog.listTags()).sort()).toEqual(
      [
        m.tag,
        `base-${old.digest.slice(7, 19)}`,
        `base-${newer.digest.slice(7, 19)}`,
        `base-${other.digest.slice(7, 19)}`,
        'index',
      ].sort(),
    );
    const again = await updateIndex(catalog, 'index');
    expect(again).toMatchObject({ written: false, digest: updated.digest });

    const found = await resolveModel(catalog, 'index', { model: 'phi-any' });
    expect(found.model).toMatchObject({
      digest: built.digest,
      ref: `${catalog.displayName}@${built.digest}`,
    });
    expect(found.base).toMatchObject({ digest: newer.digest, runtime: 'vllm', version: '0.8.5' });
    expect(found.index).toBe(updated.digest);
    await expect(resolveModel(catalog, 'index', { model: 'phi-any', runtime: 'vllm >=0.9' })).rejects.toThrow(
      /no base image in .* is compatible with model "phi-any"/,
    );

    // The index is an OCI image index as the schema says, readable where it lives.
    const indexDesc = await catalog.resolve('index');
    expect(indexDesc?.digest).toBe(updated.digest);
    const bytes = await catalog.fetchManifest(indexDesc!);
    expect(validateIndex(JSON.parse(Buffer.from(bytes).toString()))).toEqual([]);

    // The CLI resolves through the same door, from the index's reference alone.
    const cli = await runCli(
      ['resolve', '--index', storage.indexRef('catalog'), '--model', 'phi-any', '--json', '--quiet'],
      {
        env: { HOME: home, DOCKER_CONFIG: home, GITHUB_TOKEN: '' },
      },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).base.digest).toBe(newer.digest);
  });
});

describe('a layout catalog on disk', () => {
  test('its index.json lists the records and the index under their tags', async () => {
    run++;
    const root = path.join(home, 'on-disk');
    const catalog = await OciLayoutTarget.open(root);
    const bases = await OciLayoutTarget.open(path.join(home, 'on-disk-bases'));
    const base = await pushBase(bases, 'v', { runtime: 'sglang', version: '0.4.6' });
    await recordArtifact(catalog, bases, 'v');
    const updated = await updateIndex(catalog, 'idx');
    const index = parseImageIndex(await readFile(path.join(root, 'index.json')), 'index.json');
    const tags = new Map(
      index.manifests.map((d) => [d.annotations?.['org.opencontainers.image.ref.name'], d.digest]),
    );
    expect(tags.get(`base-${base.digest.slice(7, 19)}`)).toBe(base.digest);
    expect(tags.get('idx')).toBe(updated.digest);
  });
});
