import { type BuildResult, layerLabel } from '../model/build.ts';
import { formatBytes, formatDuration, formatRate } from '../util/format.ts';

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) =>
    r
      .map((cell, col) =>
        col === 0 || col === r.length - 1 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!),
      )
      .join('  ')
      .trimEnd(),
  );
}

/** The human summary: what was built or why nothing was, then one row per layer. */
export function formatBuildReport(result: BuildResult, options: { dryRun?: boolean } = {}): string {
  const lines: string[] = [];
  const dry = options.dryRun === true;
  if (result.status === 'skipped') {
    lines.push(`skipped ${result.name}: ${result.reason}`);
  } else {
    lines.push(`${dry ? 'would build' : 'built'} ${result.name} → ${result.target}`);
    if (result.reason) lines.push(`  (${result.reason})`);
  }
  lines.push(`  digest   ${result.digest}`);
  lines.push(`  weights  ${result.weightsDigest} (${result.encoding})`);
  lines.push(`  tags     ${result.tags.join(', ')}`);
  if (result.image)
    lines.push(
      `  image    ${result.image.digest} (${result.image.tags.join(', ')}; ${result.image.platforms.join(', ')}` +
        `${result.image.written ? '' : '; already there'})`,
    );
  if (result.runtime) lines.push(`  runtime  ${result.runtime}`);
  if (result.created) lines.push(`  created  ${result.created}`);
  const total = result.layers.reduce((s, l) => s + l.uncompressedSize, 0);
  const stored = result.layers.reduce((s, l) => s + l.size, 0);
  const counts = ['new', 'existing', 'reused', 'mounted']
    .map((status) => [status, result.layers.filter((l) => l.status === status).length] as const)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  lines.push(
    `  layers   ${result.layers.length} (${counts}), ${formatBytes(total)} → ${formatBytes(stored)}; ` +
      `read ${formatBytes(result.bytesRead)}, ${dry ? 'would upload' : 'wrote'} ${formatBytes(result.bytesWritten)} in ${formatDuration(result.durationMs)}` +
      (result.bytesRead > 0 ? ` (${formatRate(result.bytesRead, result.durationMs)})` : ''),
  );
  lines.push('');
  const rows = [['FILE', 'SIZE', 'STORED', 'RATIO', 'STATUS']];
  for (const layer of result.layers) {
    const ratio = layer.uncompressedSize > 0 ? (layer.size / layer.uncompressedSize).toFixed(2) : '-';
    rows.push([
      layerLabel(layer),
      formatBytes(layer.uncompressedSize),
      formatBytes(layer.size),
      ratio,
      dry && layer.status === 'new' ? 'would upload' : layer.status,
    ]);
  }
  lines.push(...table(rows).map((r) => `  ${r}`));
  return `${lines.join('\n')}\n`;
}
