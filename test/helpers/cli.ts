import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repoRoot, 'src', 'cli', 'bin.ts');

// Digest caches of test runs stay out of the user's ~/.cache (keyed by model path, so tests do not collide).
const cacheHome = mkdtempSync(path.join(tmpdir(), 'model-oci-cache-'));
process.on('exit', () => rmSync(cacheHome, { recursive: true, force: true }));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run without the root capabilities that bypass file permissions (so chmod 000 bites). */
  withoutFileOverride?: boolean;
  /** Written to the CLI's standard input (e.g. for --password-stdin); otherwise stdin is empty. */
  input?: string;
}

/** Runs the real CLI (src/cli/bin.ts) in a child process, the way a user does. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  let command = process.execPath;
  let argv = [bin, ...args];
  if (options.withoutFileOverride && process.getuid?.() === 0) {
    argv = ['--bounding-set=-dac_override,-dac_read_search', command, ...argv];
    command = 'setpriv';
  }
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, MODEL_OCI_DEBUG: '', XDG_CACHE_HOME: cacheHome, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // A CLI that exits without reading its input must not fail the run with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parses `--json` output of a build. */
export function jsonResult(run: CliRun): Record<string, unknown> & {
  status: string;
  digest: string;
  weightsDigest: string;
  tags: string[];
  layers: Array<{
    title: string;
    digest: string;
    status: string;
    mediaType: string;
    files: Array<{ path: string }>;
  }>;
} {
  if (run.code !== 0) throw new Error(`CLI failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}
