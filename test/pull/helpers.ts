// Shared by the pull tests: comparing a pulled directory with the model it came from.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { type CliRun, runCli } from '../helpers/cli.ts';

/** Every regular file under `root` (but pull's own state) → sha256 and mode, by relative path. */
export async function filesOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      const rel = path.relative(root, abs);
      if (rel === '.cache') continue;
      if (entry.isDirectory()) await walk(abs);
      else {
        const mode = ((await stat(abs)).mode & 0o777).toString(8);
        out[rel] = `${createHash('sha256')
          .update(await readFile(abs))
          .digest('hex')} ${mode}`;
      }
    }
  };
  await walk(root);
  return out;
}

/** The files of two directories are the same bytes under the same names, with the same modes. */
export async function expectSameFiles(pulled: string, model: string): Promise<void> {
  expect(await filesOf(pulled)).toEqual(await filesOf(model));
}

export interface PullJson {
  reference: string;
  dir: string;
  weightsDigest?: string;
  fetchedBytes: number;
  layers: { name: string; digest: string; size: number; state: string; fetched: number }[];
  files: { path: string; size: number; digest: string }[];
  resolved?: { model: { digest: string } };
}

/** `model-oci model pull … --json`, expected to succeed. */
export async function pull(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<PullJson> {
  const run = await runCli(['model', 'pull', ...args, '--json'], { env });
  if (run.code !== 0) throw new Error(`pull failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout) as PullJson;
}

/** `model-oci model build … --json`, expected to succeed; its weights digest. */
export async function build(
  args: readonly string[],
): Promise<{ weightsDigest: string; digest: string; run: CliRun }> {
  const run = await runCli(['model', 'build', ...args, '--json']);
  if (run.code !== 0) throw new Error(`build failed (${run.code}): ${run.stderr}`);
  const result = JSON.parse(run.stdout) as { weightsDigest: string; digest: string };
  return { ...result, run };
}
