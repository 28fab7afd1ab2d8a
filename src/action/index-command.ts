import * as core from '@actions/core';
import { runIndexRecord, runIndexUpdate, runResolve } from '../commands/index.ts';
import { indexRecordConfig, indexUpdateConfig, resolveConfig } from '../config/index-commands.ts';
import { actionEdge, coreInputs, rawIndexInputs } from './inputs.ts';
import { registryHooks } from './registry-hooks.ts';
import { indexSummary, resolveSummary } from './summary.ts';

/**
 * `command: index` — records the artifact or image named by `target` (tag or digest) in the index,
 * or, without a target, brings the index up to date with what the catalog holds.
 */
export async function runIndexCommand(signal: AbortSignal): Promise<void> {
  const raw = rawIndexInputs(coreInputs, process.env);
  const edge = actionEdge(process.env);
  if (raw.from) {
    const config = await indexRecordConfig(raw, edge);
    core.startGroup(`Record in the compatibility index ${config.index}`);
    const indexed = await runIndexRecord(config, registryHooks(), signal).finally(() => core.endGroup());
    const { recorded, index, where } = indexed;
    core.info(
      recorded.written
        ? `recorded ${recorded.kind} ${recorded.digest} as ${recorded.tag}`
        : `${recorded.kind} ${recorded.digest} was already recorded as ${recorded.tag}`,
    );
    core.info(
      `index ${where} is ${index.digest}: ${index.models} model artifact(s), ${index.bases} base image(s), ${index.pairs} compatible pair(s)`,
    );
    core.setOutput('index-digest', index.digest);
    await core.summary.addRaw(indexSummary(indexed)).write();
    return;
  }
  const { where, index } = await runIndexUpdate(await indexUpdateConfig(raw, edge), registryHooks(), signal);
  core.info(
    `index ${where} is ${index.digest}: ${index.models} model artifact(s), ${index.bases} base image(s), ${index.pairs} compatible pair(s)`,
  );
  for (const left of index.skipped) core.warning(`${where}: left out ${left.tag}: ${left.reason}`);
  core.setOutput('index-digest', index.digest);
  await core.summary.addRaw(indexSummary({ where, index }, index.skipped)).write();
}

/**
 * `command: resolve` — one read of the index: the model artifact for `name` and the newest base image
 * it is compatible with (optionally within the `runtime` constraint).
 */
export async function runResolveCommand(signal: AbortSignal): Promise<void> {
  const config = await resolveConfig(rawIndexInputs(coreInputs, process.env), actionEdge(process.env));
  const { where, found } = await runResolve(config, registryHooks(), signal);
  core.info(
    `${config.model}: artifact ${found.model.ref}, base ${found.base.ref} (${found.base.runtime} ${found.base.version})`,
  );
  core.setOutput('model-digest', found.model.digest);
  core.setOutput('model-ref', found.model.ref);
  core.setOutput('image-ref', found.model.image?.ref ?? '');
  core.setOutput('base-digest', found.base.digest);
  core.setOutput('base-ref', found.base.ref);
  core.setOutput('runtime-version', `${found.base.runtime} ${found.base.version}`);
  core.setOutput('metadata', JSON.stringify(found));
  await core.summary.addRaw(resolveSummary(found, where)).write();
}
