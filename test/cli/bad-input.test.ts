import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliRun, jsonResult, runCli } from '../helpers/cli.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { tempDir } from '../helpers/tmp.ts';
import { snapshotTree } from '../helpers/tree.ts';

const MODEL = { 'model.safetensors': 'weights', 'config.json': '{}', 'README.md': '# m' };

/** A layout that already holds an artifact, to prove a failed run leaves it exactly as it was. */
async function existingLayout(): Promise<string> {
  const dir = await modelFromFiles({ 'model.safetensors': 'older weights' });
  const layout = path.join(await tempDir(), 'layout');
  jsonResult(
    await runCli(['model', 'build', dir, '--name', 'older', '--to', `oci-layout:${layout}:old`, '--json']),
  );
  return layout;
}

function expectOneLineError(run: CliRun, message: string | RegExp, code = 1): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^model-oci: error: /);
  if (typeof message === 'string') expect(lines[0]).toContain(message);
  else expect(lines[0]).toMatch(message);
}

async function expectRefused(
  args: (layout: string) => string[],
  message: string | RegExp,
  options: { code?: number; withoutFileOverride?: boolean } = {},
): Promise<void> {
  const layout = await existingLayout();
  const before = await snapshotTree(layout);
  const run = await runCli(args(layout), options.withoutFileOverride ? { withoutFileOverride: true } : {});
  expectOneLineError(run, message, options.code);
  expect(await snapshotTree(layout)).toEqual(before);
}

describe('bad input: a one-line error, and an existing layout left exactly as it was', () => {
  let model: string;
  beforeAll(async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'model-oci-test-'));
    model = path.join(root, 'model');
    await mkdir(model, { recursive: true });
    for (const [name, content] of Object.entries(MODEL)) await writeFile(path.join(model, name), content);
    return () => rm(root, { recursive: true, force: true });
  });

  test('missing model directory', async () => {
    await expectRefused(
      (l) => ['model', 'build', '/nonexistent/model', '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'model directory /nonexistent/model does not exist',
    );
  });

  test('model path that is a file', async () => {
    await expectRefused(
      (l) => ['model', 'build', path.join(model, 'config.json'), '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'is not a directory',
    );
  });

  test('empty model directory', async () => {
    const empty = path.join(await tempDir(), 'empty');
    await mkdir(empty);
    await expectRefused(
      (l) => ['model', 'build', empty, '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'has no files to package',
    );
  });

  test('include patterns that match nothing', async () => {
    await expectRefused(
      (l) => ['model', 'build', model, '--name', 'm', '--include', '*.gguf', '--to', `oci-layout:${l}:v1`],
      'has no files to package after include/exclude',
    );
  });

  test('a symlink that leaves the model directory', async () => {
    const dir = await modelFromFiles(MODEL);
    await symlink('/etc/hostname', path.join(dir, 'escape.json'));
    await expectRefused(
      (l) => ['model', 'build', dir, '--name', 'm', '--to', `oci-layout:${l}:v1`],
      /escape\.json in .* is a symlink to \/etc\/hostname, outside the model directory/,
    );
  });

  test('a broken symlink', async () => {
    const dir = await modelFromFiles(MODEL);
    await symlink('missing.bin', path.join(dir, 'dangling.bin'));
    await expectRefused(
      (l) => ['model', 'build', dir, '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'dangling.bin in',
    );
  });

  test('a FIFO', async () => {
    const dir = await modelFromFiles(MODEL);
    execFileSync('mkfifo', [path.join(dir, 'pipe.bin')]);
    await expectRefused(
      (l) => ['model', 'build', dir, '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'pipe.bin in',
    );
    await expectRefused(
      (l) => ['model', 'build', dir, '--name', 'm', '--to', `oci-layout:${l}:v1`],
      'is a FIFO; only regular files can be packaged',
    );
  });

  test('an unreadable file', async () => {
    const dir = await modelFromFiles(MODEL);
    await chmod(path.join(dir, 'config.json'), 0o000);
    await expectRefused(
      (l) => ['model', 'build', dir, '--name', 'm', '--to', `oci-layout:${l}:v1`, '--no-digest-cache'],
      /config\.json in .* is not readable \(EACCES\)/,
      { withoutFileOverride: true },
    );
  });

  test.each([
    ['-bad', 'invalid model name "-bad"'],
    ['has space', 'invalid model name "has space"'],
    ['x'.repeat(129), 'invalid model name'],
  ])('invalid name %j', async (name, message) => {
    await expectRefused(
      (l) => ['model', 'build', model, `--name=${name}`, '--to', `oci-layout:${l}:v1`],
      message,
      { code: 2 },
    );
  });

  test('invalid tag in the target', async () => {
    await expectRefused(
      (l) => ['model', 'build', model, '--name', 'm', '--to', `oci-layout:${l}:-v1`],
      'invalid tag "-v1"',
      { code: 2 },
    );
  });

  test('invalid extra tag', async () => {
    await expectRefused(
      (l) => ['model', 'build', model, '--name', 'm', '--to', `oci-layout:${l}:v1`, '--tag', 'a/b'],
      'invalid tag "a/b"',
      { code: 2 },
    );
  });

  test('invalid registry reference', async () => {
    await expectRefused(
      () => ['model', 'build', model, '--name', 'm', '--to', 'ghcr.io/Acme/model:v1'],
      'invalid reference "ghcr.io/Acme/model:v1": repository name "Acme/model" must be lowercase',
      { code: 2 },
    );
  });

  test('invalid digest in the target', async () => {
    await expectRefused(
      (l) => ['model', 'build', model, '--name', 'm', '--to', `oci-layout:${l}@sha256:123`],
      'a sha256 digest has 64 lowercase hex digits',
      { code: 2 },
    );
  });

  test('a layout path that is a regular file', async () => {
    const file = path.join(await tempDir(), 'layout');
    await writeFile(file, 'not a layout');
    const before = await snapshotTree(file);
    const run = await runCli(['model', 'build', model, '--name', 'm', '--to', `oci-layout:${file}:v1`]);
    expectOneLineError(run, `${file} is not a directory, so it cannot be an OCI layout`);
    expect(await snapshotTree(file)).toEqual(before);
  });

  test('a folder that is not a layout and not empty', async () => {
    const folder = await modelFromFiles({ 'notes.txt': 'mine' });
    const before = await snapshotTree(folder);
    const run = await runCli(['model', 'build', model, '--name', 'm', '--to', `oci-layout:${folder}:v1`]);
    expectOneLineError(run, 'is not an OCI layout (no oci-layout file) and not empty');
    expect(await snapshotTree(folder)).toEqual(before);
  });

  test.each([
    ['{"schemaVersion": 2, "manifests": [', /index\.json is corrupt: index\.json is not valid JSON/],
    [
      '{"schemaVersion": 2, "manifests": [{"mediaType": "x/y", "size": 1}]}',
      /index\.json is corrupt: index\.json\.manifests\[0\]\.digest: expected a string, found nothing/,
    ],
    ['[]', /index\.json is corrupt: index\.json: expected an object, found an array/],
  ])('a layout with a corrupt index.json (%#)', async (content, message) => {
    const layout = await existingLayout();
    await writeFile(path.join(layout, 'index.json'), content);
    const before = await snapshotTree(layout);
    const run = await runCli(['model', 'build', model, '--name', 'm', '--to', `oci-layout:${layout}:v1`]);
    expectOneLineError(run, message);
    expect(await snapshotTree(layout)).toEqual(before);
  });

  test.each([
    [['--level', '0'], '--level must be a whole number from 1 to 22, not "0"'],
    [['--level', 'high'], '--level must be a whole number from 1 to 22, not "high"'],
    [['--frame-size', '1k'], '--frame-size must be from 64KiB to 256MiB, not "1k"'],
    [['--frame-size', 'big'], '--frame-size: "big" is not a size'],
    [['--encoding', 'zip'], '--encoding must be tar or raw'],
    [['--compression', 'gzip'], '--compression must be zstd or none'],
    [['--annotation', 'novalue'], '--annotation: "novalue" is not KEY=VALUE'],
  ])('bad option %j', async (extra, message) => {
    await expectRefused(
      (l) => ['model', 'build', model, '--name', 'm', '--to', `oci-layout:${l}:v1`, ...extra],
      message,
      { code: 2 },
    );
  });

  test('usage errors exit with 2', async () => {
    expectOneLineError(
      await runCli(['model', 'build', model, '--name', 'm', '--bogus']),
      'unknown option --bogus for "model build"; see "model-oci model build --help"',
      2,
    );
    expectOneLineError(
      await runCli(['model', 'build', '--name', 'm']),
      'expected exactly one model directory',
      2,
    );
    expectOneLineError(
      await runCli(['model', 'ship']),
      'unknown command "model ship"; "model-oci model" has build, inspect',
      2,
    );
  });
});
