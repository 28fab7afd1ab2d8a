import type { BuildResult } from '../model/build-types.ts';
import { formatBytes } from '../util/format.ts';

const STATUS_WORDS: Record<string, string> = {
  new: 'uploaded',
  existing: 'already there',
  reused: 'reused',
  mounted: 'mounted',
};

const escapeCell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The job summary (Markdown for GITHUB_STEP_SUMMARY): what happened and why, the artifact by
 * digest, a row per layer, totals and throughput.
 */
export function summaryMarkdown(result: BuildResult, ref: string, dryRun: boolean): string {
  const lines: string[] = [];
  const verb = result.status === 'skipped' ? 'skipped' : dryRun ? 'dry run' : 'built';
  lines.push(`### model-oci: ${escapeCell(result.name)} ${verb}`, '');
  if (result.status === 'skipped') {
    lines.push(`Nothing was built: ${escapeCell(result.reason ?? 'these weights are already there')}.`, '');
  } else if (dryRun) {
    lines.push('Dry run: the layers were packed and hashed; nothing was pushed.', '');
  }
  lines.push(
    '| | |',
    '|---|---|',
    `| artifact | \`${escapeCell(ref)}\` |`,
    `| weights digest | \`${result.weightsDigest}\` (${result.encoding}) |`,
    `| tags | ${result.tags.map((t) => `\`${escapeCell(t)}\``).join(', ')} |`,
    '',
  );
  const layerStatus = (status: string) =>
    result.status === 'skipped'
      ? 'skipped'
      : dryRun && status === 'new'
        ? 'would upload'
        : (STATUS_WORDS[status] ?? status);
  lines.push('| file | size | compressed | ratio | status |', '|---|---:|---:|---:|---|');
  for (const layer of result.layers) {
    const ratio = layer.uncompressedSize > 0 ? (layer.size / layer.uncompressedSize).toFixed(2) : '';
    lines.push(
      `| ${escapeCell(layer.title)} | ${formatBytes(layer.uncompressedSize)} | ${formatBytes(layer.size)} | ${ratio} | ${layerStatus(layer.status)} |`,
    );
  }
  const total = result.layers.reduce((s, l) => s + l.uncompressedSize, 0);
  const stored = result.layers.reduce((s, l) => s + l.size, 0);
  const seconds = result.durationMs / 1000;
  const rate =
    seconds > 0 && result.bytesRead > 0 ? `, ${(result.bytesRead / 1e6 / seconds).toFixed(0)} MB/s` : '';
  lines.push(
    `| **total** (${result.layers.length} layers) | ${formatBytes(total)} | ${formatBytes(stored)} | ${total > 0 ? (stored / total).toFixed(2) : ''} | |`,
    '',
    `Read ${formatBytes(result.bytesRead)}, ${dryRun ? 'would upload' : 'uploaded'} ${formatBytes(result.bytesWritten)} in ${seconds.toFixed(1)} s${rate}.`,
    '',
  );
  return lines.join('\n');
}
