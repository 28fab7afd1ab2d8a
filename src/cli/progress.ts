import type { BuildEvent } from '../model/build.ts';
import type { PullEvent } from '../pull/pull.ts';
import { formatBytes, formatRate } from '../util/format.ts';

export const DEFAULT_PROGRESS_MS = 2000;

const VERBS = { hash: 'hashing', pack: 'packing', pull: 'pulling', verify: 'verifying' } as const;

/** Progress lines at most every 2 s, or every MODEL_OCI_PROGRESS_MS milliseconds. */
export function progressInterval(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.MODEL_OCI_PROGRESS_MS?.trim();
  const ms = Number(text);
  return text && Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_PROGRESS_MS;
}

/**
 * Progress lines for long runs, at most one every `intervalMs`, on stderr: logs are often no TTY
 * (CI), so plain lines rather than a redrawn bar. Short runs print nothing. Warnings are always
 * printed, whatever the interval (`--quiet` passes an infinite one).
 */
export function progressPrinter(
  write: (line: string) => void,
  intervalMs = DEFAULT_PROGRESS_MS,
): (event: BuildEvent | PullEvent) => void {
  const started = performance.now();
  let lastPrint = started;
  let phaseStart = started;
  let phaseDoneAtStart = 0;
  return (event) => {
    const now = performance.now();
    if (event.type === 'warning') {
      write(`model-oci: warning: ${event.message}`);
      return;
    }
    if (event.type === 'phase') {
      phaseStart = now;
      phaseDoneAtStart = 0;
      if (now - started >= intervalMs) write(event.message);
      return;
    }
    if (now - lastPrint < intervalMs) return;
    lastPrint = now;
    const percent = event.total > 0 ? Math.floor((event.done / event.total) * 100) : 100;
    const verb = VERBS[event.phase];
    const rate = formatRate(event.done - phaseDoneAtStart, now - phaseStart);
    write(`${verb} ${formatBytes(event.done)} / ${formatBytes(event.total)} (${percent}%), ${rate}`);
  };
}
