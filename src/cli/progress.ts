import type { BuildEvent } from '../model/build.ts';
import { formatBytes, formatRate } from '../util/format.ts';

/**
 * Progress lines for long runs, at most one every `intervalMs`, on stderr: logs are often no TTY
 * (CI), so plain lines rather than a redrawn bar. Short runs print nothing.
 */
export function progressPrinter(
  write: (line: string) => void,
  intervalMs = 2000,
): (event: BuildEvent) => void {
  const started = performance.now();
  let lastPrint = started;
  let phaseStart = started;
  let phaseDoneAtStart = 0;
  return (event) => {
    const now = performance.now();
    if (event.type === 'phase') {
      phaseStart = now;
      phaseDoneAtStart = 0;
      if (now - started >= intervalMs) write(event.message);
      return;
    }
    if (now - lastPrint < intervalMs) return;
    lastPrint = now;
    const percent = event.total > 0 ? Math.floor((event.done / event.total) * 100) : 100;
    const verb = event.phase === 'hash' ? 'hashing' : 'packing';
    const rate = formatRate(event.done - phaseDoneAtStart, now - phaseStart);
    write(`${verb} ${formatBytes(event.done)} / ${formatBytes(event.total)} (${percent}%), ${rate}`);
  };
}
