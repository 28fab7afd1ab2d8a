// Every Target implementation through the one conformance suite (./conformance.ts).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { dryRunTarget } from '../../src/content/dry-run-target.ts';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { describeTargetConformance, type TargetUnderTest } from './conformance.ts';

let registry: TestRegistry;
let repositories = 0;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
});

async function layout(): Promise<TargetUnderTest> {
  const root = path.join(await tempDir(), 'layout');
  const target = await OciLayoutTarget.open(root);
  const leftovers = async () => (await readdir(path.join(root, 'ingest')).catch(() => [])).map(String);
  return { target, leftovers };
}

async function repository(): Promise<TargetUnderTest> {
  const home = await tempDir();
  const target = await openRegistryTarget(
    parseReference(`${registry.host}/conformance/r${repositories++}`),
    'push',
    {
      env: { PATH: process.env.PATH },
      homeDir: home,
      upload: { chunkSize: 1024 * 1024 },
    },
  );
  onTestFinished(() => target.close());
  return { target };
}

const full = { persists: true, lists: true, fetchesReferences: true, readsRanges: true };
describeTargetConformance('OCI layout', layout, full);
describeTargetConformance('registry repository', repository, full);
describeTargetConformance(
  'dry run over a layout',
  async () => ({ target: dryRunTarget((await layout()).target) }),
  {
    ...full,
    persists: false,
  },
);
describeTargetConformance(
  'dry run over a registry',
  async () => ({ target: dryRunTarget((await repository()).target) }),
  { ...full, persists: false },
);
