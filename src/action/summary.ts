import type { BaseBuildResult } from '../base/build-base.ts';
import type { PullOutcome } from '../commands/pull.ts';
import type { UpdateResult } from '../compat/index-update.ts';
import type { RecordResult } from '../compat/record.ts';
import type { Resolved } from '../compat/resolve.ts';
import { type BuildResult, layerLabel } from '../model/build-types.ts';
import { formatBytes } from '../util/format.ts';

// The job summary (Markdown for GITHUB_STEP_SUMMARY) of each command, success or failure. Pure
// functions of the results, so tests render them without a runner. Facts are a list (a table needs
// a header row, and GitHub draws an empty one as a grey bar); layers and FROM images are tables.

const STATUS_WORDS: Record<string, string> = {
  new: 'uploaded',
  existing: 'already there',
  reused: 'reused',
  mounted: 'mounted',
};

const escapeCell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;
const fact = (name: string, value: string) => `- **${name}**: ${value}`;

/** What recording in the compatibility index left, for the summaries of model, base and index. */
export interface IndexOutcome {
  /** REGISTRY/CATALOG:TAG */
  where: string;
  index: Pick<UpdateResult, 'digest' | 'models' | 'bases' | 'pairs'>;
  recorded?: Pick<RecordResult, 'kind' | 'tag' | 'digest' | 'written'>;
}

function indexFacts(outcome: IndexOutcome | undefined): string[] {
  if (!outcome) return [];
  const { index, recorded } = outcome;
  const lines = [
    fact(
      'compatibility index',
      `${code(outcome.where)} → ${code(index.digest)} (${index.models} model artifacts, ${index.bases} base images, ${index.pairs} compatible pairs)`,
    ),
  ];
  if (recorded)
    lines.push(fact('recorded', `${code(recorded.tag)}${recorded.written ? '' : ' (already there)'}`));
  return lines;
}

/** A grouped layer's files, a few by name: enough to see what "doc (5 files)" holds. */
function fileList(files: readonly { path: string }[]): string {
  if (files.length === 1) return '';
  const names = files.slice(0, 4).map((f) => f.path);
  return `: ${names.join(', ')}${files.length > names.length ? ', …' : ''}`;
}

/** `model`: what happened and why, the artifact by digest, its metadata, a row per layer, totals. */
export function modelSummary(
  result: BuildResult,
  ref: string,
  dryRun: boolean,
  index?: IndexOutcome,
): string {
  const verb = result.status === 'skipped' ? 'skipped' : dryRun ? 'dry run' : 'built';
  const lines = [`### model-oci model: ${escapeCell(result.name)} ${verb}`, ''];
  if (result.status === 'skipped')
    lines.push(`Nothing was built: ${result.reason ?? 'these weights are already there'}.`, '');
  else if (dryRun) lines.push('Dry run: the layers were packed and hashed; nothing was pushed.', '');
  else if (result.reason) lines.push(`${result.reason[0]!.toUpperCase()}${result.reason.slice(1)}.`, '');
  lines.push(
    fact('artifact', code(ref)),
    fact('weights digest', `${code(result.weightsDigest)} (${result.encoding})`),
    fact('tags', result.tags.map(code).join(', ')),
    ...(result.image
      ? [
          fact(
            'image form',
            `${code(result.image.digest)} (${result.image.tags.map(code).join(', ')}; ${result.image.platforms.join(', ')})`,
          ),
        ]
      : []),
    ...(result.runtime ? [fact('runtime requirement', code(result.runtime))] : []),
    ...(result.created ? [fact('created', result.created)] : []),
    ...indexFacts(index),
    '',
  );
  const layerStatus = (status: string) =>
    result.status === 'skipped'
      ? 'skipped'
      : dryRun && status === 'new'
        ? 'would upload'
        : (STATUS_WORDS[status] ?? status);
  lines.push('| File | Size | Compressed | Ratio | Status |', '|---|---:|---:|---:|---|');
  for (const layer of result.layers) {
    const ratio = layer.uncompressedSize > 0 ? (layer.size / layer.uncompressedSize).toFixed(2) : '';
    lines.push(
      `| ${escapeCell(layerLabel(layer) + fileList(layer.files))} | ${formatBytes(layer.uncompressedSize)} | ${formatBytes(layer.size)} | ${ratio} | ${layerStatus(layer.status)} |`,
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
    `Read ${formatBytes(result.bytesRead)}, ${dryRun ? 'would upload' : 'uploaded'} ${formatBytes(dryRun ? 0 : result.bytesWritten)} in ${seconds.toFixed(1)} s${rate}.`,
    '',
  );
  return lines.join('\n');
}

/** `base`: built or skipped and why, the image, its input digest and runtime, the FROM images. */
export function baseSummary(result: BaseBuildResult, index?: IndexOutcome): string {
  const lines = [`### model-oci base: ${escapeCell(result.image)} ${result.status}`, ''];
  lines.push(`${result.status === 'skipped' ? 'Nothing was built' : 'Built'}: ${result.reason ?? ''}.`, '');
  lines.push(
    fact('image', code(result.ref)),
    fact('input digest', code(result.inputDigest)),
    fact(
      'runtime',
      result.runtime ? code(`${result.runtime.name} ${result.runtime.version}`) : '(not declared)',
    ),
    fact('builder', result.builder),
    fact('tags', result.tags.map(code).join(', ')),
    ...indexFacts(index),
    '',
  );
  if (result.upstream.length > 0) {
    lines.push('| FROM image | Digest |', '|---|---|');
    for (const u of result.upstream) lines.push(`| ${code(u.image)} | ${code(u.digest)} |`);
    lines.push('');
  } else {
    lines.push('No FROM image: built `FROM scratch`.', '');
  }
  return lines.join('\n');
}

/** `index`: what was recorded (or that the index was brought up to date) and where it stands. */
export function indexSummary(outcome: IndexOutcome, skipped: UpdateResult['skipped'] = []): string {
  const lines = [`### model-oci index: ${escapeCell(outcome.where)}`, '', ...indexFacts(outcome), ''];
  if (skipped.length > 0) {
    lines.push('| Left out | Why |', '|---|---|');
    for (const s of skipped) lines.push(`| ${code(s.tag)} | ${escapeCell(s.reason)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

/** `resolve`: the model artifact and the base image chosen, and the index that answered. */
export function resolveSummary(found: Resolved, where: string): string {
  return [
    `### model-oci resolve: ${escapeCell(found.model.name)}`,
    '',
    fact('model artifact', code(found.model.ref)),
    ...(found.model.image ? [fact('model image form', code(found.model.image.ref))] : []),
    fact('runtime requirement', code(found.model.requires)),
    ...(found.model.created ? [fact('model created', found.model.created)] : []),
    fact('base image', code(found.base.ref)),
    fact('base runtime', code(`${found.base.runtime} ${found.base.version}`)),
    fact('index', `${code(where)} at ${code(found.index)}`),
    '',
  ].join('\n');
}

/** Any command that failed: what it worked on and the one-line reason. */
export function failureSummary(command: string, subject: string, message: string): string {
  return [
    `### model-oci ${command}: failed`,
    '',
    ...(subject ? [fact('on', code(subject))] : []),
    fact('error', escapeCell(message)),
    '',
  ].join('\n');
}

/** `pull`: what was pulled where, and how much had to be fetched. */
export function pullSummary(result: PullOutcome): string {
  const bytes = result.files.reduce((sum, f) => sum + f.size, 0);
  const count = (state: string) => result.layers.filter((l) => l.state === state).length;
  return [
    `### model-oci pull: ${escapeCell(result.reference)}`,
    '',
    fact('directory', code(result.dir)),
    ...(result.weightsDigest ? [fact('weights digest', code(result.weightsDigest))] : []),
    ...(result.resolved
      ? [
          fact(
            'resolved through',
            `${code(result.resolved.model.name)}, base ${code(result.resolved.base.ref)}`,
          ),
        ]
      : []),
    fact('files', `${result.files.length} (${formatBytes(bytes)})`),
    fact(
      'layers',
      `${result.layers.length}: ${count('pulled')} pulled, ${count('resumed')} resumed, ${count('present')} already there, ${count('excluded')} excluded`,
    ),
    fact('fetched', `${formatBytes(result.fetchedBytes)} in ${(result.durationMs / 1000).toFixed(1)} s`),
    '',
  ].join('\n');
}
