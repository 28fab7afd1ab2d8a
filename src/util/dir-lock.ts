import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errnoCode, throwIfAborted } from './errors.ts';

export interface HeldLock {
  release(): Promise<void>;
}

export interface LongLockOptions {
  /** How often the holder touches the lock file to show it is alive. */
  heartbeatMs?: number;
  /** A lock not touched for this long belongs to a holder that is gone (another host included). */
  staleMs?: number;
  /** Called once if the lock is busy, before waiting. */
  onWait?: (holder: string) => void;
  signal?: AbortSignal | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return errnoCode(err) === 'ESRCH';
  }
}

/**
 * A lock held for minutes (a pull into a directory): a lock file created with O_EXCL that its
 * holder touches every `heartbeatMs`. A waiter takes it over when the holder is a process of this
 * host that no longer runs (a pull killed a moment ago resumes at once) and the file has not been
 * touched for three heartbeats, or when nobody touched it for `staleMs` (a holder on another host
 * or in another PID namespace that went away).
 */
export async function acquireLongLock(lockPath: string, options: LongLockOptions = {}): Promise<HeldLock> {
  const heartbeatMs = options.heartbeatMs ?? 1_000;
  const staleMs = options.staleMs ?? 20_000;
  let told = false;
  for (;;) {
    throwIfAborted(options.signal);
    try {
      const handle = await open(lockPath, 'wx', 0o644);
      try {
        await handle.writeFile(`${process.pid}@${hostname()}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const holder = (await readFile(lockPath, 'utf8').catch(() => '')).trim();
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    const [pid, host] = holder.split('@');
    const deadHere = host === hostname() && Number(pid) > 0 && processGone(Number(pid));
    if (age > staleMs || (deadHere && age > 3 * heartbeatMs)) {
      await unlink(lockPath).catch(() => {});
      continue;
    }
    if (!told) {
      options.onWait?.(holder || 'another process');
      told = true;
    }
    await sleep(Math.min(heartbeatMs, 500));
  }
  const beat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => {});
  }, heartbeatMs);
  beat.unref();
  return {
    async release() {
      clearInterval(beat);
      await unlink(lockPath).catch(() => {});
    },
  };
}
