import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import { openRepo, pushBase } from '../compat/kit.ts';
import { isolatedBuildah } from '../helpers/buildah.ts';
import { repoRoot } from '../helpers/cli.ts';
import { startHubServer } from '../helpers/hub-server.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { skopeoJson } from '../helpers/tools.ts';

// These tests run the committed bundle, dist/index.js, the way the Actions runner does: `node` on the
// entry, inputs as INPUT_* variables, outputs and the job summary written to the files the runner
// names in GITHUB_OUTPUT and GITHUB_STEP_SUMMARY.

const distDir = path.join(repoRoot, 'dist');

interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Parses the runner's output file format (`name<<DELIMITER`, lines, `DELIMITER`). */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]!);
    outputs[m[1]!] = value.join('\n');
  }
  return outputs;
}

async function runAction(
  inputs: Record<string, string>,
  options: { entry?: string; env?: NodeJS.ProcessEnv; withoutFileOverride?: boolean } = {},
): Promise<ActionRun> {
  const dir = await tempDir('model-oci-action-');
  const outputFile = path.join(dir, 'output');
  const summaryFile = path.join(dir, 'summary');
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    RUNNER_TEMP: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    ...options.env,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  const entry = options.entry ?? path.join(distDir, 'index.js');
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      // As root, drop the capabilities that bypass file permissions when a test needs them to bite.
      const [command, args] =
        options.withoutFileOverride && process.getuid?.() === 0
          ? ['setpriv', ['--bounding-set=-dac_override,-dac_read_search', process.execPath, entry]]
          : [process.execPath, [entry]];
      const child = spawn(command, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
    },
  );
  return {
    code,
    stdout,
    stderr,
    outputs: parseOutputs(await readFile(outputFile, 'utf8')),
    summary: await readFile(summaryFile, 'utf8'),
  };
}

/** `::error title=…::message` lines: the failure annotations. */
const failureLines = (run: ActionRun) =>
  run.stdout
    .split('\n')
    .filter((l) => /^::error( [^:]*)?::/.test(l))
    .map((l) => l.replace(/^::error( [^:]*)?::/, '::error::'));

describe('the bundled action (dist/index.js) against a real registry', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('first run builds and pushes, the second reports skipped; outputs and summary say so', async () => {
    const { dir } = await sampleModel({ seed: 31 });
    const inputs = {
      path: dir,
      name: 'tiny-llm',
      target: `${registry.host}/models/tiny-llm:1.0`,
      tags: 'stable',
    };
    const first = await runAction(inputs);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const out = first.outputs;
    expect(out.skipped).toBe('false');
    expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.ref).toBe(`${registry.host}/models/tiny-llm@${out.digest}`);
    expect(out['weights-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Number(out['bytes-uploaded'])).toBeGreaterThan(4 * 4 * 1024 * 1024 * 0.7);
    expect(out['layers-reused']).toBe('0');
    const metadata = JSON.parse(out.metadata!);
    expect(metadata).toMatchObject({ status: 'built', digest: out.digest, ref: out.ref, dryRun: false });
    expect(metadata.tags).toEqual(expect.arrayContaining(['1.0', 'stable']));
    expect(metadata.layers).toHaveLength(6);
    // Grouped log sections, and the registry really has it under both tags.
    expect(first.stdout).toContain('::group::Build tiny-llm');
    for (const tag of ['1.0', 'stable']) {
      const manifest = skopeoJson(
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${registry.host}/models/tiny-llm:${tag}`,
      );
      expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(
        metadata.layers.map((l: { digest: string }) => l.digest),
      );
    }
    expect(first.summary).toContain('### model-oci model: tiny-llm built');
    expect(first.summary).toContain('| model-00001-of-00004.safetensors | 4.0 MiB |');
    expect(first.summary).toMatch(/\| uploaded \|/);
    expect(first.summary).toContain(out.ref!);

    const second = await runAction(inputs);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.outputs.skipped).toBe('true');
    expect(second.outputs.digest).toBe(out.digest);
    expect(second.outputs['bytes-uploaded']).toBe('0');
    expect(second.outputs['weights-digest']).toBe(out['weights-digest']);
    expect(second.summary).toContain('### model-oci model: tiny-llm skipped');
    expect(second.summary).toContain(
      `Nothing was built: these weights and this metadata are already in ${registry.host}/models/tiny-llm as ${out.digest!.slice(0, 19)}…`,
    );
    expect(second.summary).toMatch(/\| skipped \|/);
    expect(second.stdout).toMatch(/::notice::tiny-llm: skipped/);
  });

  test('path: hf://… with hf-token builds a gated Hub repository, masks the token, and skips the second run', async () => {
    const hub = await startHubServer();
    try {
      const shard = randomBytes(2 * 1024 * 1024);
      const { sha } = hub.setRepo('org/gated-action', ['main'], {
        gated: true,
        lastModified: '2026-11-01T10:00:00.000Z',
        files: [
          { path: 'config.json', content: Buffer.from('{"model_type":"llama"}') },
          { path: 'model.safetensors', content: shard },
        ],
      });
      const inputs = {
        path: 'hf://org/gated-action',
        name: 'gated-action',
        target: `${registry.host}/models/gated-action:main`,
        'hf-token': hub.token,
      };
      const env = { HF_ENDPOINT: hub.url };
      const first = await runAction(inputs, { env });
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(first.outputs.skipped).toBe('false');
      expect(first.outputs['hub-commit']).toBe(sha);
      expect(first.stdout).toContain(`::add-mask::${hub.token}`);
      expect(first.stdout).toContain(
        `from hf://org/gated-action at commit ${sha}: 2.0 MiB of LFS files downloaded`,
      );
      const metadata = JSON.parse(first.outputs.metadata!);
      expect(metadata.hub).toEqual({ commit: sha, downloaded: shard.length });
      expect(metadata.created).toBe('2026-11-01T10:00:00Z');
      const shown = first.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n');
      expect(shown + first.stderr + first.summary + JSON.stringify(first.outputs)).not.toContain(hub.token);

      const before = hub.lfsBytes();
      const second = await runAction(inputs, { env });
      expect(second.code, second.stdout + second.stderr).toBe(0);
      expect(second.outputs.skipped).toBe('true');
      expect(second.outputs.digest).toBe(first.outputs.digest);
      expect(hub.lfsBytes()).toBe(before);

      const refused = await runAction({ ...inputs, 'hf-token': '' }, { env });
      expect(refused.code).toBe(1);
      expect(failureLines(refused)).toEqual([
        expect.stringMatching(/gated or private: set input hf-token or HF_TOKEN to a token that has access/),
      ]);
    } finally {
      await hub.stop();
    }
  });

  test('a cache service that does not answer costs a warning, never the build', async () => {
    const { dir } = await sampleModel({ seed: 36 });
    // Both generations of the Actions cache service, pointed at a port where nothing listens.
    for (const env of [
      { ACTIONS_CACHE_URL: 'http://127.0.0.1:9/', ACTIONS_RUNTIME_TOKEN: 'token' },
      {
        ACTIONS_CACHE_SERVICE_V2: 'true',
        ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/',
        ACTIONS_RUNTIME_TOKEN: 'token',
      },
    ]) {
      const run = await runAction(
        { path: dir, name: 'cached', target: `${registry.host}/models/cached:1.0` },
        { env: { ...env, GITHUB_RUN_ID: '1', GITHUB_RUN_ATTEMPT: '1' } },
      );
      expect(run.code, run.stdout + run.stderr).toBe(0);
      // @actions/cache reports the failure as a warning itself and carries on.
      expect(run.stdout).toMatch(/::warning::(digest cache: restore failed|Failed to restore)/);
      expect(run.stdout).toMatch(/::warning::(digest cache: save failed|Failed to save)/);
      expect(failureLines(run)).toEqual([]);
      expect(run.outputs.digest).toMatch(/^sha256:/);
    }
  });

  test('a single-PUT upload spools under RUNNER_TEMP, not the system temp dir', async () => {
    const { dir } = await sampleModel({ seed: 34, shards: 2 });
    const unwritable = await tempDir();
    await chmod(unwritable, 0o555);
    const run = await runAction(
      {
        path: dir,
        name: 'spooled',
        target: `${registry.host}/models/spooled:1`,
        upload: 'single',
        cache: 'false',
      },
      { env: { TMPDIR: unwritable }, withoutFileOverride: true },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.skipped).toBe('false');
  });

  test('a dry run packs and reports but pushes nothing', async () => {
    const { dir } = await sampleModel({ seed: 32 });
    const run = await runAction({
      path: dir,
      name: 'dry',
      target: `${registry.host}/models/dry:1.0`,
      'dry-run': 'true',
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.skipped).toBe('false');
    expect(run.outputs['bytes-uploaded']).toBe('0');
    expect(run.summary).toContain('Dry run');
    expect(run.summary).toMatch(/\| would upload \|/);
    const target = await openRegistryTarget(parseReference(`${registry.host}/models/dry`), 'pull', {
      env: { PATH: process.env.PATH },
      homeDir: await tempDir(),
    });
    try {
      expect(await target.resolve('1.0')).toBeUndefined();
      const metadata = JSON.parse(run.outputs.metadata!);
      for (const layer of metadata.layers) expect(await target.hasBlob(layer.digest)).toBe(false);
    } finally {
      await target.close();
    }
  });

  test('bad inputs fail with one ::error:: line before anything is pushed', async () => {
    const { dir } = await sampleModel({ seed: 33 });
    // The annotation's title names the command and the reference it worked on.
    const titled = await runAction({ path: dir, name: 'x', target: `${registry.host}/m/x:1`, force: 'yes' });
    expect(titled.stdout).toContain(
      `::error title=model-oci model%3A ${registry.host.replace(':', '%3A')}/m/x%3A1::`,
    );
    // The job summary says it too.
    expect(titled.summary).toBe(
      `### model-oci model: failed\n\n- **on**: \`${registry.host}/m/x:1\`\n- **error**: input force must be true or false, not "yes"\n`,
    );
    for (const [inputs, message] of [
      [
        { path: dir, name: 'x', target: `${registry.host}/m/x:1`, 'compression-level': '99' },
        /compression-level must be a whole number from 1 to 22/,
      ],
      [
        { path: dir, name: 'x', target: `${registry.host}/m/x:1`, force: 'yes' },
        /input force must be true or false/,
      ],
      [{ name: 'x', target: `${registry.host}/m/x:1` }, /input path is required/],
      [{ path: dir, name: 'x', target: `${registry.host}/m/X:1` }, /must be lowercase/],
      [{ path: dir, name: 'x', command: 'deploy' }, /input command "deploy" is not known/],
      [
        { path: dir, name: 'x', target: `${registry.host}/m/x:1`, index: `${registry.host}/m/catalog:index` },
        /input index needs input runtime/,
      ],
    ] as const) {
      const run = await runAction(inputs);
      expect(run.code).toBe(1);
      const errors = failureLines(run);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
    }
  });
});

describe('the index and resolve commands of the bundle', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('model with runtime and index records itself; index records a base; resolve answers', async () => {
    const { dir } = await sampleModel({ seed: 37 });
    const index = `${registry.host}/models/catalog:index`;
    // The workflow's checkout: its commit time becomes the artifact's created date.
    const workspace = await tempDir('model-oci-workspace-');
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', workspace, ...args], {
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@example.com',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@example.com',
          GIT_COMMITTER_DATE: '2025-01-02T03:04:05Z',
          GIT_AUTHOR_DATE: '2025-01-02T03:04:05Z',
        },
      });
    git('init', '-q');
    git('commit', '-q', '--allow-empty', '-m', 'x');
    const modelInputs = { path: dir, name: 'served', target: `${registry.host}/models/served:1` };
    const env = { GITHUB_WORKSPACE: workspace };
    // The model existed before the matrix adopted the index: adopting it needs no force.
    const before = await runAction(modelInputs, { env });
    expect(before.code, before.stdout + before.stderr).toBe(0);
    const model = await runAction({ ...modelInputs, runtime: 'vllm >=0.8 <0.9', index }, { env });
    expect(model.code, model.stdout + model.stderr).toBe(0);
    expect(model.outputs.skipped).toBe('false');
    expect(model.outputs['layers-reused']).toBe('6');
    expect(Number(model.outputs['bytes-uploaded'])).toBeLessThan(8192); // the manifest, nothing else
    expect(model.summary).toContain('- **runtime requirement**: `vllm >=0.8 <0.9`');
    expect(model.summary).toContain('- **created**: 2025-01-02T03:04:05Z');
    expect(model.summary).toContain(`- **compatibility index**: \`${registry.host}/models/catalog:index\``);
    const manifest = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/models/served:1`,
    );
    expect(manifest.annotations['org.opencontainers.image.created']).toBe('2025-01-02T03:04:05Z');
    expect(manifest.annotations['io.model-oci.runtime.requires']).toBe('vllm >=0.8 <0.9');
    expect(model.outputs['index-digest']).toMatch(/^sha256:/);
    expect(model.stdout).toContain('::group::Record in the compatibility index');

    const home = await tempDir();
    const bases = await openRepo(registry.host, 'runtimes/vllm', home);
    try {
      const base = await pushBase(bases, '0.8.5', { runtime: 'vllm', version: '0.8.5' });
      const recorded = await runAction({
        command: 'index',
        index,
        target: `${registry.host}/runtimes/vllm:0.8.5`,
      });
      expect(recorded.code, recorded.stdout + recorded.stderr).toBe(0);

      const resolved = await runAction({ command: 'resolve', index, name: 'served' });
      expect(resolved.code, resolved.stdout + resolved.stderr).toBe(0);
      expect(resolved.outputs['model-digest']).toBe(model.outputs.digest);
      expect(resolved.outputs['base-digest']).toBe(base.digest);
      expect(resolved.outputs['base-ref']).toBe(`${registry.host}/models/catalog@${base.digest}`);
      expect(resolved.outputs['runtime-version']).toBe('vllm 0.8.5');

      const none = await runAction({ command: 'resolve', index, name: 'served', runtime: 'vllm >=0.9' });
      expect(none.code).toBe(1);
      expect(failureLines(none)).toHaveLength(1);
      // Titled with what resolve worked on (the index and the model), not the target input's default.
      const escaped = (text: string) => text.replaceAll(':', '%3A');
      expect(none.stdout).toContain(
        `::error title=${escaped(`model-oci resolve: ${index} → served`)}::no base image in`,
      );
      expect(none.summary).toContain('### model-oci resolve: failed');
      expect(none.summary).toContain(`- **on**: \`${index} → served\``);
      expect(none.summary).toMatch(/- \*\*error\*\*: no base image in .* is compatible with model "served"/);
    } finally {
      await bases.close();
    }
  });
});

/**
 * Image IDs in the machine's default buildah storage, as the action reaches it on a machine without a
 * storage.conf (vfs; src/base/builders.ts).
 */
function defaultBuildahImages(): string[] {
  const out = execFileSync('buildah', ['--storage-driver', 'vfs', 'images', '-q', '--no-trunc'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  return out.split('\n').filter(Boolean).sort();
}

describe('the base command of the bundle (buildah)', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('builds and pushes the base with zstd layers, then skips it; outputs and summary say so', async () => {
    const work = await tempDir('model-oci-base-action-');
    isolatedBuildah(work).pushBusybox(`${registry.host}/upstream/os:1`, 'os-1');
    const context = path.join(work, 'ctx');
    await mkdir(context);
    await writeFile(
      path.join(context, 'Dockerfile'),
      `FROM ${registry.host}/upstream/os:1\nCOPY app.txt /app.txt\n`,
    );
    await writeFile(path.join(context, 'app.txt'), 'runtime\n');
    const image = `${registry.host}/runtimes/vllm:0.8.5`;
    const inputs = { command: 'base', context, target: image, runtime: 'vllm 0.8.5', builder: 'buildah' };
    // buildah's storage for this run lives in the test's temp dir, as containers-storage.conf(5) allows:
    // the machine's default storage must not gain images from a test.
    const storageConf = path.join(work, 'storage.conf');
    await writeFile(
      storageConf,
      `[storage]\ndriver = "vfs"\ngraphroot = "${work}/storage"\nrunroot = "${work}/run"\n`,
    );
    const env = { CONTAINERS_STORAGE_CONF: storageConf };
    const imagesBefore = defaultBuildahImages();
    const first = await runAction(inputs, { env });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.outputs.skipped).toBe('false');
    expect(first.outputs['input-digest']).toMatch(/^sha256:/);
    expect(JSON.parse(first.outputs.upstream!)[0].image).toBe(`${registry.host}/upstream/os:1`);
    expect(first.outputs['runtime-version']).toBe('vllm 0.8.5');
    const manifest = skopeoJson(
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/runtimes/vllm:0.8.5`,
    );
    for (const layer of manifest.layers)
      expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(first.summary).toContain(`### model-oci base: ${image} built`);

    const second = await runAction(inputs, { env });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.outputs.skipped).toBe('true');
    expect(second.outputs.digest).toBe(first.outputs.digest);
    expect(second.summary).toContain(`### model-oci base: ${image} skipped`);
    expect(defaultBuildahImages()).toEqual(imagesBefore);
  });
});

describe('credentials as docker/login-action leaves them', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  /** ~/.docker/config.json as `docker login` (which docker/login-action runs) writes it. */
  async function loginHome(username: string, password: string): Promise<string> {
    const home = await tempDir('model-oci-home-');
    await mkdir(path.join(home, '.docker'), { recursive: true });
    const auth = Buffer.from(`${username}:${password}`).toString('base64');
    await writeFile(
      path.join(home, '.docker', 'config.json'),
      JSON.stringify({ auths: { [registry.host]: { auth } } }, null, '\t'),
    );
    return home;
  }

  test('used with no credential inputs; a wrong password fails clearly without the secret', async () => {
    const { dir } = await sampleModel({ seed: 34 });
    const inputs = { path: dir, name: 'private', target: `${registry.host}/team/private:1` };
    const good = await runAction(inputs, {
      env: { HOME: await loginHome(registry.username, registry.password) },
    });
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain(`using basic auth for user "${registry.username}"`);
    expect(good.outputs.skipped).toBe('false');

    const wrong = 'not-the-password-9f3k';
    const bad = await runAction(inputs, { env: { HOME: await loginHome(registry.username, wrong) } });
    expect(bad.code).toBe(1);
    const errors = failureLines(bad);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`refused user "${registry.username}"`));
    // `::add-mask::` lines are how the runner learns what to mask; it never prints them.
    const shown = bad.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    const everything = shown + bad.stderr + bad.summary + JSON.stringify(bad.outputs);
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`${registry.username}:${wrong}`).toString('base64'));
    // The runner masks what the action registered as secret.
    expect(bad.stdout).toContain(`::add-mask::${wrong}`);
  });
});

describe('the node:zlib fallback when the native zstd module cannot load', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('the bundle without its .node files still builds, and the native decoder reads every layer', async () => {
    const copy = path.join(await tempDir('model-oci-dist-'), 'dist');
    await cp(distDir, copy, { recursive: true });
    const natives = (await readdir(copy)).filter((f) => f.endsWith('.node'));
    expect(natives.length).toBeGreaterThanOrEqual(2);
    for (const f of natives) await rm(path.join(copy, f));

    const { dir } = await sampleModel({ seed: 35 });
    const run = await runAction(
      { path: dir, name: 'fallback', target: `${registry.host}/models/fallback:1` },
      { entry: path.join(copy, 'index.js') },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/::notice::.*node:zlib/);
    const metadata = JSON.parse(run.outputs.metadata!);

    // Read back through the native path: the registry client, and @mongodb-js/zstd's own decoder.
    const native = createRequire(import.meta.url)('@mongodb-js/zstd/bindings') as {
      decompress(buf: Buffer): Promise<Buffer>;
    };
    const target = await openRegistryTarget(parseReference(`${registry.host}/models/fallback`), 'pull', {
      env: { PATH: process.env.PATH },
      homeDir: await tempDir(),
    });
    try {
      for (const layer of metadata.layers as {
        digest: string;
        size: number;
        mediaType: string;
        files: { path: string }[];
      }[]) {
        const chunks: Buffer[] = [];
        for await (const c of await target.fetchBlob({
          mediaType: layer.mediaType,
          digest: layer.digest as `sha256:${string}`,
          size: layer.size,
        }))
          chunks.push(Buffer.from(c));
        const tar = await native.decompress(Buffer.concat(chunks));
        for (const file of layer.files) {
          const original = await readFile(path.join(dir, file.path));
          expect(tar.includes(original.subarray(0, Math.min(original.length, 64 * 1024)))).toBe(true);
        }
      }
    } finally {
      await target.close();
    }
  });
});

describe('the pull command of the bundle', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('unpacks the model (and its image form) into path with outputs and a summary; a second run fetches nothing', async () => {
    const { dir } = await sampleModel({ seed: 41 });
    const target = `${registry.host}/action/pulled:1`;
    const built = await runAction({
      command: 'model',
      path: dir,
      name: 'pulled',
      target,
      'image-form': 'true',
      cache: 'false',
    });
    expect(built.code, built.stdout).toBe(0);
    expect(built.outputs['image-ref']).toBe(
      `${registry.host}/action/pulled@${built.outputs['image-digest']}`,
    );

    const out = path.join(await tempDir(), 'models', 'pulled');
    const first = await runAction({ command: 'pull', target, path: out });
    expect(first.code, first.stdout).toBe(0);
    expect(first.outputs.digest).toBe(built.outputs.digest);
    expect(first.outputs.ref).toBe(`${registry.host}/action/pulled@${built.outputs.digest}`);
    expect(Number(first.outputs['bytes-fetched'])).toBeGreaterThan(0);
    expect(first.summary).toContain('### model-oci pull:');
    const names = (await readdir(dir)).sort();
    expect((await readdir(out)).filter((n) => n !== '.cache').sort()).toEqual(names);

    const again = await runAction({ command: 'pull', target: `${target}-image`, path: out });
    expect(again.code, again.stdout).toBe(0);
    expect(again.outputs['bytes-fetched']).toBe('0');

    const bad = await runAction({ command: 'pull', target, path: '' });
    expect(bad.code).toBe(1);
    expect(failureLines(bad)).toEqual(['::error::input path is required']);
  });
});
