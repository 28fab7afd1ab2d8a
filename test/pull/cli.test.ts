// model pull's bad inputs: each a one-line error and the usage exit code, before anything is written.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { snapshotTree } from '../helpers/tree.ts';

describe('model pull refuses bad input in one line', () => {
  test.each([
    [['oci-layout:/nowhere:1'], 2, /--to is required/],
    [[], 2, /the artifact to pull is required \(REF, or --index with --model\)/],
    [['ghcr.io/o/m:1', '--index', 'ghcr.io/o/c', '--model', 'm', '--to', 'x'], 2, /not both/],
    [['ghcr.io/o/m:1', '--model', 'm', '--to', 'x'], 2, /--model goes with --index/],
    [['--index', 'ghcr.io/o/c', '--to', 'x'], 2, /--model is required/],
    [['a', 'b', '--to', 'x'], 2, /expected one artifact reference, got 2/],
    [
      ['ghcr.io/o/m:1', '--to', 'x', '--connections', '0'],
      2,
      /--connections must be a whole number from 1 to 64/,
    ],
    [['ghcr.io/o/m:1', '--to', 'x', '--part-size', '1k'], 2, /--part-size must be from 1MiB to 1GiB/],
    [['ghcr.io/o/m:1', '--to', 'x', '--platform', 'amd64'], 2, /--platform must be OS\/ARCH/],
    [
      ['ghcr.io/o/m:1', '--to', 'x', '--verfy'],
      2,
      /unknown option --verfy for "model pull" \(did you mean --verify\?\)/,
    ],
    [['ghcr.io/O/m:1', '--to', 'x'], 2, /the artifact reference: .*lower/i],
  ])('%j → exit %i', async (args, code, message) => {
    const cwd = await tempDir();
    const before = await snapshotTree(cwd);
    const run = await runCli(['model', 'pull', ...args], { cwd });
    expect(run.code).toBe(code);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect(await snapshotTree(cwd)).toEqual(before);
  });

  test('an artifact that is not there, and a --to that is a file: exit 1, one line, nothing written', async () => {
    const cwd = await tempDir();
    const layout = path.join(cwd, 'layout');
    const empty = await runCli(['model', 'pull', `oci-layout:${layout}:nothing`, '--to', 'out'], { cwd });
    expect(empty.code).toBe(1);
    expect(empty.stderr.trim()).toMatch(/^model-oci: error: oci-layout:.*:nothing not found$/);
    // Reading created nothing: no layout, no destination.
    expect(Object.keys(await snapshotTree(cwd))).toEqual([]);
    await writeFile(path.join(cwd, 'file'), 'x');
    // A real artifact, so the failure is the destination's.
    const built = await runCli([
      'model',
      'build',
      path.join(cwd),
      '--name',
      'x',
      '--to',
      `oci-layout:${layout}:1`,
      '--include',
      'file',
    ]);
    expect(built.code, built.stderr).toBe(0);
    const before = await snapshotTree(path.join(cwd, 'file'));
    const onFile = await runCli(['model', 'pull', `oci-layout:${layout}:1`, '--to', 'file'], { cwd });
    expect(onFile.code).toBe(1);
    expect(onFile.stderr.trim()).toMatch(/^model-oci: error: --to \/.*\/file: not a directory$/);
    expect(await snapshotTree(path.join(cwd, 'file'))).toEqual(before);
  });
});
