const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** MB/s (decimal, as disk and network tools print it). */
export function formatRate(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Parses sizes such as 8MiB, 512k, 1G, 1048576 (binary multiples). */
export function parseSize(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)$/i.exec(text.trim());
  if (!m) throw new Error(`${JSON.stringify(text)} is not a size (examples: 8MiB, 512KiB, 1G)`);
  const power = ['', 'k', 'm', 'g', 't'].indexOf((m[2] ?? '').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}
