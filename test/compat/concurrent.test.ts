import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { clientOf, type RegistryTarget } from '../../src/registry/registry-target.ts';
import { listTags } from '../../src/registry/tags.ts';
import { type FaultProxy, isManifestPut, startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { validateIndex } from '../helpers/schemas.ts';
import { openRepo } from './kit.ts';

const WRITERS = 16;
const writer = path.join(path.dirname(fileURLToPath(import.meta.url)), 'writer.ts');

let registry: TestRegistry;
let proxy: FaultProxy;
let home: string;
let catalog: RegistryTarget;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'compat-home-'));
  registry = await startRegistry();
  // Writers go through a proxy that holds back every other index PUT for a while, so stale indexes
  // (built from an older listing) land after fresher ones: the race the verification is there for.
  proxy = await startFaultProxy({ upstream: registry.url });
  let puts = 0;
  proxy.addRule({
    match: (req) => isManifestPut(req) && req.url.endsWith('/manifests/index') && puts++ % 2 === 0,
    fault: { kind: 'delay', ms: 400 },
  });
  catalog = await openRepo(registry.host, 'org/catalog', home);
});
afterAll(async () => {
  await catalog?.close();
  await proxy?.stop();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

function run(n: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, proxy.host, 'org/catalog', 'index', String(n), home], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test(`${WRITERS} writer processes record and update at once: every record ends up in the index`, async () => {
  const runs = await Promise.all(Array.from({ length: WRITERS }, (_, n) => run(n)));
  for (const r of runs) expect(r.stderr).toBe('');
  for (const r of runs) expect(r.code).toBe(0);
  const results = runs.map((r) => JSON.parse(r.stdout));
  const digests = results.map((r) => r.recorded.digest as string);
  expect(new Set(digests).size).toBe(WRITERS);

  // Five tags a page: the Link header is followed.
  const tags = await listTags(clientOf(catalog), 'org/catalog', catalog.displayName, undefined, 5);
  const records = tags.filter((t) => /^(model|base)-/.test(t));
  expect(records).toHaveLength(WRITERS);
  const index = JSON.parse(new TextDecoder().decode((await catalog.fetchReference('index'))!.bytes));
  expect(validateIndex(index)).toEqual([]);
  expect(index.manifests.map((m: { digest: string }) => m.digest).sort()).toEqual([...digests].sort());
  expect(index.annotations).toMatchObject({
    'io.model-oci.catalog.models': String(WRITERS / 2),
    'io.model-oci.catalog.bases': String(WRITERS / 2),
    'io.model-oci.catalog.pairs': String((WRITERS / 2) ** 2),
  });
  // Some writer saw more than one round: the race was real (reported, not asserted).
  const rounds = results.map((r) => r.updated.rounds as number);
  console.log(`rounds per writer: ${rounds.join(' ')}`);
}, 180_000);
