import * as core from '@actions/core';
import { runBaseBuild } from '../commands/base-build.ts';
import { baseBuildConfig } from '../config/base-build.ts';
import { actionEdge, coreInputs, type InputReader, rawBaseInputs } from './inputs.ts';
import { registryHooks } from './registry-hooks.ts';
import { baseSummary } from './summary.ts';

/** `command: base`'s inputs → its config (the same config the CLI builds from its flags). */
export function baseConfigFromInputs(read: InputReader, env: NodeJS.ProcessEnv) {
  return baseBuildConfig(rawBaseInputs(read, env), actionEdge(env));
}

/**
 * `command: base` — builds the runtime base image when its inputs or its FROM images changed (or
 * with force), pushes it with zstd layers, and records it in the compatibility index.
 */
export async function runBaseCommand(signal: AbortSignal): Promise<void> {
  const config = await baseConfigFromInputs(coreInputs, process.env);
  // One log group at a time: the build, then the record step (onRecording switches).
  core.startGroup(`Base image ${config.image}`);
  const { result, indexed } = await runBaseBuild(
    config,
    {
      ...registryHooks(),
      onLog: (line) => core.info(line),
      onRecording: (index) => {
        core.endGroup();
        core.startGroup(`Record in the compatibility index ${index}`);
      },
    },
    signal,
  ).finally(() => core.endGroup());

  if (result.status === 'skipped') core.notice(`${config.image}: skipped, ${result.reason}`);
  else core.info(`pushed ${result.ref}`);
  core.setOutput('digest', result.digest);
  core.setOutput('ref', result.ref);
  core.setOutput('input-digest', result.inputDigest);
  core.setOutput('skipped', String(result.status === 'skipped'));
  core.setOutput('upstream', JSON.stringify(result.upstream));
  core.setOutput('runtime-version', result.runtime ? `${result.runtime.name} ${result.runtime.version}` : '');
  core.setOutput('metadata', JSON.stringify(result));
  if (indexed) core.setOutput('index-digest', indexed.index.digest);
  await core.summary.addRaw(baseSummary(result, indexed)).write();
}
