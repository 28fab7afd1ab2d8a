// The CLI's messages and exit codes, each as a user meets it: one line on stderr, nothing on stdout
// for errors, exit 2 for a wrong command line and 1 for a request that failed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openRepo, pushTinyModel } from '../compat/kit.ts';
import { type CliRun, jsonResult, repoRoot, runCli } from '../helpers/cli.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

function expectError(run: CliRun, code: number, line: string | RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  if (typeof line === 'string') expect(lines[0]).toBe(`model-oci: error: ${line}`);
  else expect(lines[0]).toMatch(line);
}

let model: string;
beforeAll(async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'model-oci-messages-'));
  model = path.join(root, 'model');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(model);
  await writeFile(path.join(model, 'model.safetensors'), 'weights');
  await writeFile(path.join(model, 'config.json'), '{}');
  return () => rm(root, { recursive: true, force: true });
});

describe('usage errors: exit 2, one line', () => {
  test('an unknown flag names the command, suggests the nearest flag and points to --help', async () => {
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--forse']),
      2,
      'unknown option --forse for "model build" (did you mean --force?); see "model-oci model build --help"',
    );
  });

  test('a flag without its value', async () => {
    expectError(
      await runCli(['model', 'build', model, '--name']),
      2,
      '--name needs a value; see "model-oci model build --help"',
    );
  });

  test('--name is required; --level 99 is out of range', async () => {
    expectError(await runCli(['model', 'build', model]), 2, '--name is required');
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--level', '99']),
      2,
      '--level must be a whole number from 1 to 22, not "99"',
    );
  });

  test('a registry reference written as a URL points to the right spelling and to --plain-http', async () => {
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--to', 'http://registry.lan:5000/org/m:1']),
      2,
      'invalid reference "http://registry.lan:5000/org/m:1": a registry reference has no scheme, write "registry.lan:5000/org/m:1" and allow plain HTTP with --plain-http registry.lan:5000',
    );
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--to', 'https://localhost:5000/m:1']),
      2,
      'invalid reference "https://localhost:5000/m:1": a registry reference has no scheme, write "localhost:5000/m:1"',
    );
  });

  test('--password-stdin with nothing on standard input', async () => {
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--username', 'u', '--password-stdin'], {
        input: '',
      }),
      2,
      '--password-stdin read an empty password from standard input',
    );
    expectError(
      await runCli(['model', 'build', model, '--name', 'm', '--username', 'u']),
      2,
      '--username needs a password: pipe it to --password-stdin, or set MODEL_OCI_PASSWORD',
    );
  });

  test('unknown commands', async () => {
    expectError(await runCli(['modle']), 2, 'unknown command "modle"; see "model-oci --help"');
    expectError(
      await runCli(['index', 'show']),
      2,
      'unknown command "index show"; "model-oci index" has record, update',
    );
  });
});

describe('help and version', () => {
  test('--version and version print the version', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    for (const args of [['--version'], ['version'], ['-V']]) {
      const run = await runCli(args);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`model-oci ${version}\n`);
    }
  });

  test("package.json's bin runs the CLI; on a node older than 24 it says what is needed", async () => {
    const { execFileSync, spawnSync } = await import('node:child_process');
    const bin = path.join(repoRoot, 'bin', 'model-oci.js');
    expect(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' })).toMatch(
      /^model-oci \d+\.\d+\.\d+\n$/,
    );
    // Pretend to be Node 20: the check reads process.versions before anything else loads.
    const old = spawnSync(
      process.execPath,
      [
        '--import',
        'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})',
        bin,
      ],
      { encoding: 'utf8' },
    );
    expect(old.status).toBe(2);
    expect(old.stderr).toMatch(/^model-oci: error: Node\.js 24 or newer is needed/);
  });

  test('a group lists its commands: with --help on stdout (0), bare on stderr (2)', async () => {
    const help = await runCli(['model', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('model-oci model build');
    expect(help.stdout).toContain('model-oci model inspect');
    const bare = await runCli(['model']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('model-oci model build');
  });

  test('help lists --quiet; read commands do not list upload options and refuse them', async () => {
    const build = await runCli(['model', 'build', '--help']);
    expect(build.stdout).toMatch(/--quiet {2,}no progress lines/);
    expect(build.stdout).toMatch(/--upload auto\|chunked\|single/);
    expect(build.stdout).toMatch(/--temp-dir DIR/);
    for (const command of [['model', 'inspect'], ['resolve']]) {
      const run = await runCli([...command, '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('--quiet');
      expect(run.stdout).toContain('--ca-file');
      expect(run.stdout).not.toContain('--upload');
      expect(run.stdout).not.toContain('--chunk-size');
    }
    expectError(
      await runCli(['model', 'inspect', '--from', 'oci-layout:x', '--upload', 'single']),
      2,
      'unknown option --upload for "model inspect"; see "model-oci model inspect --help"',
    );
  });
});

describe('reports', () => {
  test('the skip line is short; durationMs is whole; a dry run says "would upload"', async () => {
    const layout = path.join(await tempDir(), 'layout');
    const to = `oci-layout:${layout}:v1`;
    const built = jsonResult(await runCli(['model', 'build', model, '--name', 'm', '--to', to, '--json']));
    expect(Number.isInteger(built.durationMs)).toBe(true);
    const skipped = await runCli(['model', 'build', model, '--name', 'm', '--to', to]);
    const first = skipped.stdout.split('\n')[0]!;
    expect(first).toBe(
      `skipped m: these weights and this metadata are already in oci-layout:${layout} as ${built.digest.slice(0, 19)}…`,
    );
    expect(first.length).toBeLessThan(200);

    const dir = await modelFromFiles({ 'model.safetensors': 'other weights' });
    const dry = await runCli(['model', 'build', dir, '--name', 'm', '--to', to, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would build m → oci-layout:.* \(dry run\)$/m);
    expect(dry.stdout).toMatch(/would upload [0-9.]+ (B|KiB) in/);
    expect(dry.stdout).toMatch(/model\.safetensors .* would upload$/m);
    expect(dry.stdout).not.toMatch(/\bwrote\b/);
  });

  test('MODEL_OCI_DEBUG=0 keeps stack traces off; 1 turns them on', async () => {
    const args = ['model', 'build', '/nonexistent', '--name', 'm'];
    const off = await runCli(args, { env: { MODEL_OCI_DEBUG: '0' } });
    expect(off.stderr.trimEnd().split('\n')).toHaveLength(1);
    const on = await runCli(args, { env: { MODEL_OCI_DEBUG: '1' } });
    expect(on.stderr).toMatch(/\n\s+at /);
  });
});

describe('against a registry', () => {
  let registry: TestRegistry;
  let home: string;
  beforeAll(async () => {
    registry = await startRegistry();
    home = await mkdtemp(path.join(tmpdir(), 'model-oci-home-'));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(home, { recursive: true, force: true });
  });

  test('a dry run with --mount-from reports the mounts a real run would make', async () => {
    const from = `${registry.host}/models/source:1`;
    jsonResult(await runCli(['model', 'build', model, '--name', 'm', '--to', from, '--json']));
    const dry = jsonResult(
      await runCli([
        'model',
        'build',
        model,
        '--name',
        'm',
        '--to',
        `${registry.host}/models/sibling:1`,
        '--mount-from',
        'models/source',
        '--dry-run',
        '--json',
      ]),
    );
    expect(dry.layers.map((l) => l.status)).toEqual(dry.layers.map(() => 'mounted'));
  });

  test('index record names an artifact by digest as repo@sha256:…', async () => {
    const repo = await openRepo(registry.host, 'models/norequire', home);
    const pushed = await pushTinyModel(repo, 'v1', 'tiny', {});
    await repo.close();
    const run = await runCli([
      'index',
      'record',
      '--index',
      `${registry.host}/models/catalog:index`,
      '--from',
      `${registry.host}/models/norequire@${pushed.digest}`,
    ]);
    expectError(
      run,
      1,
      `${registry.host}/models/norequire@${pushed.digest} is a model artifact without io.model-oci.runtime.requires; ` +
        'build it with the annotation io.model-oci.runtime.requires="<runtime> <semver range>" (e.g. "vllm >=0.8 <0.9")',
    );
  });
});
