import * as core from '@actions/core';
import { refByDigest, runModelBuild } from '../commands/model-build.ts';
import { type ModelBuildConfig, modelBuildConfig } from '../config/model-build.ts';
import { isHubRef } from '../hub/hub-ref.ts';
import type { BuildEvent } from '../model/build.ts';
import { formatBytes } from '../util/format.ts';
import { DigestCacheStore } from './digest-cache-store.ts';
import { actionEdge, booleanInput, coreInputs, type InputReader, rawModelInputs } from './inputs.ts';
import { registryHooks } from './registry-hooks.ts';
import { modelSummary } from './summary.ts';

function progressLogger(everyMs: number): (event: BuildEvent) => void {
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
    if (now - last < everyMs && event.done < event.total) return;
    last = now;
    const pct = event.total > 0 ? Math.floor((event.done / event.total) * 100) : 100;
    const rate = event.done / 1e6 / Math.max(0.001, (now - started) / 1000);
    core.info(
      `${event.phase}: ${formatBytes(event.done)} of ${formatBytes(event.total)} (${pct}%), ${rate.toFixed(0)} MB/s`,
    );
  };
}

/**
 * `command: model`'s inputs → its config (the same config the CLI builds from its flags), with the
 * digest cache the Action keeps in the Actions cache: a file under RUNNER_TEMP, matched by size and
 * mtime (restored files keep their mtimes, not their inodes).
 */
export async function modelConfigFromInputs(
  read: InputReader,
  env: NodeJS.ProcessEnv,
): Promise<{ config: ModelBuildConfig; store: DigestCacheStore | undefined }> {
  const raw = rawModelInputs(read, env);
  const useCache = booleanInput(read, 'cache', true);
  // A Hugging Face source has no local files to cache digests of: the Hub lists them.
  const local = raw.path !== undefined && !isHubRef(raw.path);
  const store = useCache && raw.name && local ? new DigestCacheStore(raw.name, raw.path!, env) : undefined;
  const config = await modelBuildConfig(
    {
      ...raw,
      digestCache: { enabled: store !== undefined, ...(store ? { file: store.file, portable: true } : {}) },
    },
    actionEdge(env),
  );
  return { config, store };
}

/** `command: model` — build the model directory into an artifact and push it, with outputs and a summary. */
export async function runModelCommand(signal: AbortSignal): Promise<void> {
  const { config, store } = await modelConfigFromInputs(coreInputs, process.env);
  if (store) {
    core.startGroup('Restore the digest cache');
    await store.restore();
    core.endGroup();
  }

  // One log group at a time: the build, then the record step (onRecording switches).
  core.startGroup(`Build ${config.name} → ${config.target.text}${config.dryRun ? ' (dry run)' : ''}`);
  const { result, ref, indexed, hub } = await runModelBuild(
    config,
    {
      ...registryHooks(),
      onEvent: progressLogger(config.progressMs),
      onNotice: (message) => core.notice(message),
      onRecording: (index) => {
        core.endGroup();
        core.startGroup(`Record in the compatibility index ${index}`);
      },
    },
    signal,
  ).finally(() => core.endGroup());

  if (indexed) {
    core.info(
      indexed.recorded.written
        ? `recorded ${indexed.recorded.kind} ${indexed.recorded.digest} as ${indexed.recorded.tag}`
        : `${indexed.recorded.kind} ${indexed.recorded.digest} was already recorded as ${indexed.recorded.tag}`,
    );
    core.setOutput('index-digest', indexed.index.digest);
  }
  if (hub)
    core.info(
      `from ${config.source} at commit ${hub.commit}: ${formatBytes(hub.downloaded)} of LFS files downloaded`,
    );
  if (result.status === 'skipped') core.notice(`${config.name}: skipped, ${result.reason}`);
  else core.info(`${config.dryRun ? 'would push' : 'pushed'} ${ref}`);
  const reused = result.layers.filter((l) => l.status === 'reused' || l.status === 'mounted').length;
  const uploaded = config.dryRun ? 0 : result.bytesWritten;
  core.setOutput('digest', result.digest);
  core.setOutput('ref', ref);
  core.setOutput('weights-digest', result.weightsDigest);
  core.setOutput('image-digest', result.image?.digest ?? '');
  core.setOutput('image-ref', result.image ? refByDigest(config.target, result.image.digest) : '');
  core.setOutput('hub-commit', hub?.commit ?? '');
  core.setOutput('skipped', String(result.status === 'skipped'));
  core.setOutput('bytes-uploaded', String(uploaded));
  core.setOutput('layers-reused', String(reused));
  core.setOutput(
    'metadata',
    JSON.stringify({
      ...result,
      ref,
      dryRun: config.dryRun,
      bytesUploaded: uploaded,
      layersReused: reused,
      ...(hub ? { hub } : {}),
    }),
  );
  await core.summary.addRaw(modelSummary(result, ref, config.dryRun, indexed)).write();

  if (store && !config.dryRun) {
    core.startGroup('Save the digest cache');
    await store.save();
    core.endGroup();
  }
}
