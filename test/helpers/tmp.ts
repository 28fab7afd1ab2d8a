import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';

/** A fresh temp directory (under `parent`, default the OS temp folder) removed when the current test ends. */
export async function tempDir(prefix = 'model-oci-test-', parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(parent, prefix));
  onTestFinished(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Bytes in the regular files under `dir`, now (files vanishing while it looks count as gone). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    total += await stat(path.join(e.parentPath, e.name)).then(
      (s) => s.size,
      () => 0,
    );
  }
  return total;
}

export interface SmallTempDir {
  dir: string;
  /** True when a tmpfs of that size backs it: writing more fails with ENOSPC, as on a full runner. */
  capped: boolean;
  /** The most bytes seen in it while the watch ran (sampled every few milliseconds). */
  peak(): number;
}

/**
 * A temp directory of `bytes` for a test: a tmpfs of that size where mounting one is allowed (root
 * with CAP_SYS_ADMIN, as on CI), so "larger than the temp space" really fails; in any case the
 * bytes in it are sampled, so a test can also assert how much went there.
 */
export async function smallTempDir(bytes: number): Promise<SmallTempDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'model-oci-small-tmp-'));
  const capped =
    process.getuid?.() === 0 &&
    spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' }).status ===
      0;
  let peak = 0;
  let stopped = false;
  const sample = async () => {
    while (!stopped) {
      peak = Math.max(peak, await bytesUnder(dir));
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const sampling = sample();
  onTestFinished(async () => {
    stopped = true;
    await sampling;
    if (capped) spawnSync('umount', [dir], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, capped, peak: () => peak };
}
