import { open, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errnoCode, throwIfAborted } from '../../util/errors.ts';

export interface LockOptions {
  /** A lock file older than this is taken to belong to a process that died while holding it. */
  staleMs?: number;
  /** Give up after waiting this long for another writer. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Cross-process exclusive lock: a lock file created with O_EXCL. Held only for the few
 * milliseconds of a read-modify-write of index.json, so a lock that has existed for `staleMs`
 * belongs to a crashed writer and is broken.
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const staleMs = options.staleMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const started = Date.now();
  let delay = 5;
  for (;;) {
    throwIfAborted(options.signal);
    try {
      const handle = await open(lockPath, 'wx', 0o644);
      try {
        await handle.writeFile(`${process.pid}@${hostname()} ${new Date().toISOString()}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > staleMs) {
      await unlink(lockPath).catch(() => {});
      continue;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${lockPath}; remove it if no other writer is running`,
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 200);
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => {});
  }
}
