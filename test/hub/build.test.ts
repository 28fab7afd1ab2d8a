// `model build hf://…` against the local Hub server and a real registry (CNCF Distribution).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CliRun, jsonResult, runCli } from '../helpers/cli.ts';
import { type HubFile, type HubServer, startHubServer } from '../helpers/hub-server.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { smallTempDir, tempDir } from '../helpers/tmp.ts';

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
async function manifest(
  repo: string,
  reference: string,
): Promise<{ status: number; body?: { annotations: Record<string, string> } }> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  return res.ok
    ? { status: res.status, body: (await res.json()) as { annotations: Record<string, string> } }
    : { status: res.status };
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

    const annotations = (await manifest('hub/same', 'main')).body!.annotations;
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

  test('a tag per revision: the new revision reuses layers packed under the old tag, downloading only what changed', async () => {
    const files = modelFiles();
    const first = hub.setRepo('org/revs', ['v1'], { files: asHubFiles(files) });
    const one = json(
      await build('hf://org/revs@v1', ['--name', 'revs', '--to', `${registry.host}/hub/revs:v1`]),
    );
    expect(one.hub?.commit).toBe(first.sha);
    const changed = { ...files, 'model-00002-of-00002.safetensors': randomBytes(3 * 1024 * 1024) };
    hub.setRepo('org/revs', ['v2'], { files: asHubFiles(changed) });
    const before = hub.lfsBytes();
    const two = json(
      await build('hf://org/revs@v2', ['--name', 'revs', '--to', `${registry.host}/hub/revs:v2`]),
    );
    expect(two.status).toBe('built');
    expect(hub.lfsBytes() - before).toBe(3 * 1024 * 1024);
    const status = Object.fromEntries(two.layers.map((l) => [l.files[0]!.path, l.status]));
    expect(status['model-00001-of-00002.safetensors']).toBe('reused');
    expect(status['model-00002-of-00002.safetensors']).toBe('new');
    const layerOf = (r: BuildJson, file: string) => r.layers.find((l) => l.files[0]!.path === file)!.digest;
    expect(layerOf(two, 'model-00001-of-00002.safetensors')).toBe(
      layerOf(one, 'model-00001-of-00002.safetensors'),
    );
    // The old tag still names the old artifact.
    expect((await manifest('hub/revs', 'v1')).body!.annotations['org.opencontainers.image.revision']).toBe(
      first.sha,
    );

    // The same content under another path is another layer (the tar names the file): packed, not reused.
    const moved = { ...files };
    moved['weights/model-00001-of-00002.safetensors'] = moved['model-00001-of-00002.safetensors']!;
    delete moved['model-00001-of-00002.safetensors'];
    hub.setRepo('org/revs', ['v3'], { files: asHubFiles(moved) });
    const three = json(
      await build('hf://org/revs@v3', ['--name', 'revs', '--to', `${registry.host}/hub/revs:v3`]),
    );
    const status3 = Object.fromEntries(three.layers.map((l) => [l.files[0]!.path, l.status]));
    expect(status3['weights/model-00001-of-00002.safetensors']).toBe('new');
    expect(status3['model-00002-of-00002.safetensors']).toBe('reused');
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

  test('a transfer reset mid-file resumes from the byte it reached; the layer is the one a clean download makes', async () => {
    const files = modelFiles();
    hub.setRepo('org/reset', ['main'], { files: asHubFiles(files) });
    const clean = json(
      await build('hf://org/reset', ['--name', 'reset', '--to', `${registry.host}/hub/reset-clean:main`]),
    );
    hub.resetCdnAfter(700_000, 3);
    const before = hub.lfsBytes();
    const from = hub.log.length;
    const resumed = json(
      await build('hf://org/reset', ['--name', 'reset', '--to', `${registry.host}/hub/reset:main`]),
    );
    expect(resumed.digest).toBe(clean.digest);
    // Resumed, not restarted: little more than the two shards came over the wire.
    expect(hub.lfsBytes() - before).toBeLessThan(2 * 3 * 1024 * 1024 + 3 * 700_000);
    // Requests after a reset start where the bytes received ended (what was sent, less what the
    // reset dropped on the way).
    const cdn = hub.log.slice(from).filter((e) => e.host === 'cdn');
    expect(cdn.filter((e) => /^bytes=[1-9]\d*-/.test(e.range ?? '')).length).toBeGreaterThanOrEqual(2);
    // The artifact verifies: pulled back (blob, diffID and every file's sha256 checked), the same bytes.
    const out = path.join(await tempDir(), 'pulled');
    const pulled = await runCli(['model', 'pull', `${registry.host}/hub/reset:main`, '--to', out, '--json']);
    expect(pulled.code, pulled.stderr).toBe(0);
    for (const [name, content] of Object.entries(files))
      if (name !== '.gitattributes')
        expect((await readFile(path.join(out, name))).equals(content), name).toBe(true);
  });

  test('bytes that differ from the sha256 the Hub lists: a one-line error, nothing tagged', async () => {
    hub.setRepo('org/liar', ['main'], { files: asHubFiles(modelFiles()) });
    hub.lie('model-00002-of-00002.safetensors');
    const run = await build('hf://org/liar', ['--name', 'liar', '--to', `${registry.host}/hub/liar:main`]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /model-00002-of-00002\.safetensors: its bytes hash to sha256:\w+, not the sha256:\w+ its source lists/,
    );
    expect((await manifest('hub/liar', 'main')).status).toBe(404);
    const tags = await fetch(`${registry.url}/v2/hub/liar/tags/list`).then((r) =>
      r.ok ? r.json() : { tags: [] },
    );
    expect((tags as { tags: string[] | null }).tags ?? []).toEqual([]);
  });

  test('a gated repository: without a token the error names HF_TOKEN; with one it builds, and the token goes to the Hub only', async () => {
    hub.setRepo('org/gated', ['main'], { files: asHubFiles(modelFiles(200_000)), gated: true });
    const refused = await build('hf://org/gated', [
      '--name',
      'gated',
      '--to',
      `${registry.host}/hub/gated:main`,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/gated or private: set HF_TOKEN to a token that has access/);

    const wrong = await build(
      'hf://org/gated',
      ['--name', 'gated', '--to', `${registry.host}/hub/gated:main`],
      {
        HF_TOKEN: 'hf_not_the_token',
      },
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/refused the token \(HF_TOKEN\)/);
    expect(wrong.stderr).not.toContain('hf_not_the_token');

    const from = hub.log.length;
    const built = await build(
      'hf://org/gated',
      ['--name', 'gated', '--to', `${registry.host}/hub/gated:main`],
      {
        HF_TOKEN: hub.token,
      },
    );
    expect(json(built).status).toBe('built');
    const served = hub.log.slice(from);
    expect(served.some((e) => e.host === 'cdn')).toBe(true);
    expect(served.filter((e) => e.host === 'cdn').every((e) => !e.authorization)).toBe(true);
    expect(served.filter((e) => e.host === 'hub').every((e) => e.authorization)).toBe(true);
    expect(built.stdout + built.stderr).not.toContain(hub.token);
  });

  test('bad sources: one line each, exit 2 for usage', async () => {
    const to = ['--name', 'bad', '--to', `${registry.host}/hub/bad:main`];
    const noRepo = await build('hf://org/does-not-exist', to);
    expect(noRepo.code).toBe(1);
    expect(noRepo.stderr.trim().split('\n')).toHaveLength(1);
    expect(noRepo.stderr).toMatch(/org\/does-not-exist/);
    const malformed = await build('hf://just-a-name', to);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/hf:\/\/ORG\/NAME/);
    hub.setRepo('org/empty-after-globs', ['main'], { files: asHubFiles(modelFiles(100_000)) });
    const nothing = await build('hf://org/empty-after-globs', [...to, '--include', '*.gguf']);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/no files to package after include\/exclude/);
  });

  test('a model larger than the temp space: streamed with no file staged; a single-PUT registry spools one layer at a time', async () => {
    const MiB = 1024 * 1024;
    const files = { ...modelFiles(3 * MiB), 'model-00003-of-00003.safetensors': randomBytes(3 * MiB) };
    hub.setRepo('org/big', ['main'], { files: asHubFiles(files) });
    const temp = await smallTempDir(4 * MiB); // the model is 9 MiB
    const env = { TMPDIR: temp.dir };
    const streamed = json(
      await build('hf://org/big', ['--name', 'big', '--to', `${registry.host}/hub/big:streamed`], env),
    );
    expect(streamed.status).toBe('built');
    expect(temp.peak()).toBe(0);

    const spooled = json(
      await build(
        'hf://org/big',
        [
          '--name',
          'big',
          '--to',
          `${registry.host}/hub/big-single:main`,
          '--upload',
          'single',
          '--concurrency',
          '1',
        ],
        env,
      ),
    );
    expect(spooled.digest).toBe(streamed.digest);
    expect(temp.peak()).toBeGreaterThan(3 * MiB); // a layer went through it…
    expect(temp.peak()).toBeLessThan(4 * MiB); // …one at a time

    if (!temp.capped) return; // without a tmpfs nothing can run out of space
    // A layer larger than the temp space cannot be spooled: one line that says where and why.
    hub.setRepo('org/bigger', ['main'], {
      files: asHubFiles({ ...files, 'model-00003-of-00003.safetensors': randomBytes(5 * MiB) }),
    });
    const full = await build(
      'hf://org/bigger',
      [
        '--name',
        'bigger',
        '--to',
        `${registry.host}/hub/bigger:main`,
        '--upload',
        'single',
        '--concurrency',
        '1',
      ],
      env,
    );
    expect(full.code).toBe(1);
    expect(full.stderr.trim().split('\n')).toHaveLength(1);
    expect(full.stderr).toContain(temp.dir);
    expect((await manifest('hub/bigger', 'main')).status).toBe(404);
  });

  test('into an OCI layout (the embedded default kind of target): built, skipped, and reused across tags', async () => {
    const files = modelFiles(1024 * 1024);
    hub.setRepo('org/layout', ['v1'], { files: asHubFiles(files) });
    const layout = path.join(await tempDir(), 'layout');
    const one = json(
      await build('hf://org/layout@v1', ['--name', 'layout', '--to', `oci-layout:${layout}:v1`]),
    );
    expect(one.status).toBe('built');
    const again = json(
      await build('hf://org/layout@v1', ['--name', 'layout', '--to', `oci-layout:${layout}:v1`]),
    );
    expect(again.status).toBe('skipped');
    hub.setRepo('org/layout', ['v2'], {
      files: asHubFiles({ ...files, 'model-00001-of-00002.safetensors': randomBytes(1024 * 1024) }),
    });
    const before = hub.lfsBytes();
    const two = json(
      await build('hf://org/layout@v2', ['--name', 'layout', '--to', `oci-layout:${layout}:v2`]),
    );
    expect(hub.lfsBytes() - before).toBe(1024 * 1024);
    expect(two.layers.filter((l) => l.status === 'reused').map((l) => l.files[0]!.path)).toContain(
      'model-00002-of-00002.safetensors',
    );
  });

  test('a file over the layer limit streams from the Hub as part layers: same artifact as the local split build; bytes that lie are caught whole', async () => {
    const files = modelFiles(3 * 1024 * 1024);
    const { sha } = hub.setRepo('org/split', ['main'], { files: asHubFiles(files) });
    const limit = ['--max-layer-size', '1MiB'];
    const layout = path.join(await tempDir(), 'layout');
    const fromHub = json(
      await build('hf://org/split', ['--name', 'split', '--to', `oci-layout:${layout}:hub`, ...limit]),
    );
    expect(fromHub.layers.filter((l) => l.title.includes('.part-'))).toHaveLength(8);
    const dir = await modelFromFiles(files);
    const local = json(
      await build(dir, [
        '--name',
        'split',
        '--to',
        `oci-layout:${layout}:local`,
        ...limit,
        '--annotation',
        `org.opencontainers.image.source=${hub.url}/org/split`,
        '--annotation',
        `org.opencontainers.image.revision=${sha}`,
      ]),
    );
    expect(local.digest).toBe(fromHub.digest);
    const before = hub.lfsBytes();
    const again = json(
      await build('hf://org/split', ['--name', 'split', '--to', `oci-layout:${layout}:hub`, ...limit]),
    );
    expect(again.status).toBe('skipped');
    expect(hub.lfsBytes()).toBe(before);

    // Each part is hashed as it streams; the whole file's sha256 (over all its parts) is checked
    // against the Hub's before the manifest is written.
    hub.setRepo('org/split-liar', ['main'], { files: asHubFiles(modelFiles(3 * 1024 * 1024)) });
    hub.lie('model-00001-of-00002.safetensors');
    const lied = await build('hf://org/split-liar', [
      '--name',
      'split',
      '--to',
      `oci-layout:${layout}:liar`,
      ...limit,
    ]);
    expect(lied.code).toBe(1);
    expect(lied.stderr.trim().split('\n')).toHaveLength(1);
    expect(lied.stderr).toMatch(
      /model-00001-of-00002\.safetensors: its bytes hash to sha256:\w+, not the sha256:\w+ its source lists/,
    );
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).not.toContain(
      'liar',
    );
  });
});
