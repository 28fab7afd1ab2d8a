import { mkdtemp, rm } from 'node:fs/promises';
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
