import { execFileSync } from 'node:child_process';
import * as core from '@actions/core';
import { DryRunTarget } from '../content/dry-run-target.ts';
import { openTarget } from '../content/open-target.ts';
import type { Target } from '../content/target.ts';
import { parseTargetRef, type TargetRef, targetTag } from '../content/target-ref.ts';
import { type BuildEvent, type BuildResult, buildModel } from '../model/build.ts';
import { compressorNotice } from '../pack/zstd.ts';
import { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { recordInIndex } from './compat-steps.ts';
import { DigestCacheStore } from './digest-cache-store.ts';
import { type ModelInputs, readModelInputs } from './inputs.ts';
import { registryOptions } from './registry-options.ts';
import { type IndexOutcome, modelSummary } from './summary.ts';

/** Progress lines at most this often: Actions logs are no TTY, and a line per frame would flood them. */
const PROGRESS_EVERY_MS =
  Number(process.env.MODEL_OCI_PROGRESS_MS) >= 0 && process.env.MODEL_OCI_PROGRESS_MS
    ? Number(process.env.MODEL_OCI_PROGRESS_MS)
    : 5000;

function progressLogger(): (event: BuildEvent) => void {
  let last = 0;
  let started = performance.now();
  return (event) => {
    if (event.type === 'warning') {
      core.warning(event.message);
      return;
    }
    if (event.type === 'phase') {
      core.info(event.message);
      started = performance.now();
      last = started;
      return;
    }
    const now = performance.now();
    if (now - last < PROGRESS_EVERY_MS && event.done < event.total) return;
    last = now;
    const pct = event.total > 0 ? Math.floor((event.done / event.total) * 100) : 100;
    const rate = event.done / 1e6 / Math.max(0.001, (now - started) / 1000);
    core.info(
      `${event.phase}: ${formatBytes(event.done)} of ${formatBytes(event.total)} (${pct}%), ${rate.toFixed(0)} MB/s`,
    );
  };
}

/** `REGISTRY/REPO@sha256:…` or `oci-layout:PATH@sha256:…`: the artifact by digest. */
function refByDigest(ref: TargetRef, result: BuildResult): string {
  if (ref.kind === 'registry')
    return `${ref.reference.registry}/${ref.reference.repository}@${result.digest}`;
  return `oci-layout:${ref.path}@${result.digest}`;
}

/** Mount sources: siblings of the real target (a dry run reads them as a real run would). */
function mountSources(target: Target, inputs: ModelInputs): Target[] {
  if (inputs.mountFrom.length === 0) return [];
  if (!(target instanceof RegistryTarget)) throw new UserError('input mount-from needs a registry target');
  return inputs.mountFrom.map((text) => target.sibling(text, 'input mount-from'));
}

/** `command: model` — build the model directory into an artifact and push it, with outputs and a summary. */
export async function runModelCommand(signal: AbortSignal): Promise<void> {
  const inputs = readModelInputs();
  const ref = parseTargetRef(inputs.target, 'input plain-http: HOST');
  const store = inputs.cache ? new DigestCacheStore(inputs.name, inputs.path) : undefined;
  if (store) {
    core.startGroup('Restore the digest cache');
    await store.restore();
    core.endGroup();
  }

  core.startGroup(`Build ${inputs.name} → ${inputs.target}${inputs.dryRun ? ' (dry run)' : ''}`);
  const registry = registryOptions(inputs, inputs.upload);
  if (inputs.index && !inputs.runtime) {
    throw new UserError(
      'input index needs input runtime: the index pairs a model with bases by the runtime it needs',
    );
  }
  if (inputs.index && (ref.kind !== 'registry' || inputs.dryRun)) {
    throw new UserError(
      'input index needs a registry target and no dry run (the index lives on the registry)',
    );
  }
  const opened = await openTarget(ref, { registry });
  const target = inputs.dryRun ? new DryRunTarget(opened) : opened;
  const zstdNotice = inputs.encoding === 'tar+zstd' ? compressorNotice() : undefined;
  if (zstdNotice) core.notice(zstdNotice);
  let result: BuildResult;
  let outcome: IndexOutcome | undefined;
  try {
    result = await buildModel({
      source: inputs.path,
      name: inputs.name,
      target,
      tag: targetTag(ref) ?? 'latest',
      extraTags: inputs.tags,
      encoding: inputs.encoding,
      level: inputs.level,
      concurrency: inputs.concurrency,
      include: inputs.include,
      exclude: inputs.exclude,
      annotations: inputs.annotations,
      force: inputs.force,
      ...(inputs.runtime ? { runtime: inputs.runtime } : {}),
      ...createdFromCommit(),
      ...(store
        ? { digestCache: store.file, digestCacheMatch: 'portable' as const }
        : { digestCache: false as const }),
      reuseFrom: mountSources(opened, inputs),
      signal,
      onEvent: progressLogger(),
    });
    core.endGroup();
    if (inputs.index && opened instanceof RegistryTarget) {
      outcome = await recordInIndex(inputs.index, opened, result.digest, registry, signal);
    }
  } finally {
    await target.close?.();
  }

  const byDigest = refByDigest(ref, result);
  if (result.status === 'skipped') core.notice(`${inputs.name}: skipped, ${result.reason}`);
  else core.info(`${inputs.dryRun ? 'would push' : 'pushed'} ${byDigest}`);
  const reused = result.layers.filter((l) => l.status === 'reused' || l.status === 'mounted').length;
  const uploaded = inputs.dryRun ? 0 : result.bytesWritten;
  core.setOutput('digest', result.digest);
  core.setOutput('ref', byDigest);
  core.setOutput('weights-digest', result.weightsDigest);
  core.setOutput('skipped', String(result.status === 'skipped'));
  core.setOutput('bytes-uploaded', String(uploaded));
  core.setOutput('layers-reused', String(reused));
  core.setOutput(
    'metadata',
    JSON.stringify({
      ...result,
      ref: byDigest,
      dryRun: inputs.dryRun,
      bytesUploaded: uploaded,
      layersReused: reused,
    }),
  );
  await core.summary.addRaw(modelSummary(result, byDigest, inputs.dryRun, outcome)).write();

  if (store && !inputs.dryRun) {
    core.startGroup('Save the digest cache');
    await store.save();
    core.endGroup();
  }
}

/**
 * The artifact's created date when SOURCE_DATE_EPOCH does not give one: the time of the commit the
 * workflow checked out. It is the same for every re-run of that commit (builds stay reproducible),
 * later for later commits, and lets `resolve` tell revisions of a model apart. None outside a
 * checkout.
 */
function createdFromCommit(): { createdAt?: string } {
  const workspace = process.env.GITHUB_WORKSPACE;
  if (process.env.SOURCE_DATE_EPOCH || !workspace) return {};
  try {
    const iso = execFileSync('git', ['-C', workspace, 'log', '-1', '--format=%cI'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    }).trim();
    return iso ? { createdAt: new Date(iso).toISOString().replace('.000Z', 'Z') } : {};
  } catch {
    return {};
  }
}
