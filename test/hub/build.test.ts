// `model build hf://…` against the local Hub server and a real registry (CNCF Distribution).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CliRun, jsonResult, runCli } from '../helpers/cli.ts';
import { type HubFile, type HubServer, startHubServer } from '../helpers/hub-server.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';

let hub: HubServer;
let registry: TestRegistry;
beforeAll(async () => {
  [hub, registry] = await Promise.all([startHubServer(), startRegistry()]);
});
afterAll(async () => {
  await Promise.all([hub?.stop(), registry?.stop()]);
});

const EPOCH = '1700000000';

/** A Hub repository's files: config and tokenizer in git, two shards in LFS. */
function modelFiles(shardBytes = 3 * 1024 * 1024): Record<string, Buffer> {
  return {
    '.gitattributes': Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n'),
    'README.md': Buffer.from('# a test model\n'),
    'config.json': Buffer.from('{"model_type":"llama","architectures":["LlamaForCausalLM"]}'),
    'tokenizer.json': Buffer.from('{"version":"1.0"}'),
    'model-00001-of-00002.safetensors': randomBytes(shardBytes),
    'model-00002-of-00002.safetensors': randomBytes(shardBytes),
  };
}

const asHubFiles = (files: Record<string, Buffer>): HubFile[] =>
  Object.entries(files).map(([path, content]) => ({ path, content }));

/** `model build SOURCE … --json` with the Hub at HF_ENDPOINT. */
function build(source: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runCli(['model', 'build', source, '--json', ...args], {
    env: { HF_ENDPOINT: hub.url, HF_TOKEN: '', SOURCE_DATE_EPOCH: EPOCH, ...env },
  });
}

type BuildJson = ReturnType<typeof jsonResult> & { hub?: { commit: string; downloaded: number } };
const json = (run: CliRun) => jsonResult(run) as BuildJson;

/** The registry's manifest for a reference, or its status when it has none. */
async function manifest(repo: string, reference: string): Promise<{ status: number; body?: any }> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  return res.ok ? { status: res.status, body: await res.json() } : { status: res.status };
}

const shardBytes = (files: Record<string, Buffer>, ...names: string[]) =>
  names.reduce((n, name) => n + files[name]!.length, 0);

describe('model build hf://ORG/NAME', () => {
  test('same weights and manifest digest as the same files built from a directory; a second run downloads no LFS byte', async () => {
    const files = modelFiles();
    const { sha } = hub.setRepo('org/same', ['main'], {
      files: asHubFiles(files),
      lastModified: '2026-11-30T12:00:00.000Z',
    });
    const fromHub = json(
      await build('hf://org/same', ['--name', 'same', '--to', `${registry.host}/hub/same:main`]),
    );
    expect(fromHub.status).toBe('built');
    expect(fromHub.hub).toEqual({
      commit: sha,
      downloaded: shardBytes(files, ...Object.keys(files).filter((f) => f.endsWith('.safetensors'))),
    });

    const dir = await modelFromFiles(files);
    const local = json(
      await build(dir, [
        '--name',
        'same',
        '--to',
        `${registry.host}/hub/local:main`,
        '--annotation',
        `org.opencontainers.image.source=${hub.url}/org/same`,
        '--annotation',
        `org.opencontainers.image.revision=${sha}`,
      ]),
    );
    expect(local.weightsDigest).toBe(fromHub.weightsDigest);
    expect(local.digest).toBe(fromHub.digest);

    const annotations = (await manifest('hub/same', 'main')).body.annotations;
    expect(annotations['org.opencontainers.image.source']).toBe(`${hub.url}/org/same`);
    expect(annotations['org.opencontainers.image.revision']).toBe(sha);

    // Unchanged: one listing, the small files, one registry lookup — no LFS byte.
    const before = hub.lfsBytes();
    const again = json(
      await build('hf://org/same', ['--name', 'same', '--to', `${registry.host}/hub/same:main`]),
    );
    expect(again.status).toBe('skipped');
    expect(again.digest).toBe(fromHub.digest);
    expect(again.hub?.downloaded).toBe(0);
    expect(hub.lfsBytes()).toBe(before);
  });

  test('without SOURCE_DATE_EPOCH the created date is the commit date', async () => {
    hub.setRepo('org/dated', ['main'], {
      files: asHubFiles(modelFiles(100_000)),
      lastModified: '2026-10-01T08:30:00.000Z',
    });
    const built = json(
      await build('hf://org/dated', ['--name', 'dated', '--to', `${registry.host}/hub/dated:main`], {
        SOURCE_DATE_EPOCH: '',
      }),
    );
    expect(built.created).toBe('2026-10-01T08:30:00Z');
  });

  test('one changed shard on a new commit: only that shard is downloaded, packed and uploaded', async () => {
    const files = modelFiles();
    hub.setRepo('org/changed', ['main'], { files: asHubFiles(files) });
    const first = json(
      await build('hf://org/changed', ['--name', 'changed', '--to', `${registry.host}/hub/changed:main`]),
    );
    const changed = { ...files, 'model-00002-of-00002.safetensors': randomBytes(3 * 1024 * 1024) };
    const { sha } = hub.setRepo('org/changed', ['main'], { files: asHubFiles(changed) });
    const before = hub.lfsBytes();
    const second = json(
      await build('hf://org/changed', ['--name', 'changed', '--to', `${registry.host}/hub/changed:main`]),
    );
    expect(second.status).toBe('built');
    expect(second.weightsDigest).not.toBe(first.weightsDigest);
    expect(second.hub).toEqual({ commit: sha, downloaded: 3 * 1024 * 1024 });
    expect(hub.lfsBytes() - before).toBe(3 * 1024 * 1024);
    const byFile = Object.fromEntries(second.layers.map((l) => [l.files[0]!.path, l.status]));
    expect(byFile['model-00001-of-00002.safetensors']).toBe('reused');
    expect(byFile['model-00002-of-00002.safetensors']).toBe('new');
  });

  test('include/exclude apply before anything is fetched', async () => {
    const files = modelFiles(100_000);
    hub.setRepo('org/globs', ['main'], { files: asHubFiles(files) });
    const from = hub.log.length;
    const built = json(
      await build('hf://org/globs', [
        '--name',
        'globs',
        '--to',
        `${registry.host}/hub/globs:main`,
        '--exclude',
        '*.md',
        '--exclude',
        'model-00002-*',
      ]),
    );
    const paths = built.layers.flatMap((l) => l.files.map((f) => f.path));
    expect(paths).not.toContain('README.md');
    expect(paths).not.toContain('model-00002-of-00002.safetensors');
    const fetched = hub.log.slice(from).map((e) => e.url);
    expect(fetched.some((u) => u.includes('README.md') || u.includes('model-00002'))).toBe(false);
  });
});
