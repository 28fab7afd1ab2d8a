import * as core from '@actions/core';
import { runPull } from '../commands/pull.ts';
import { pullConfig } from '../config/pull.ts';
import { formatBytes } from '../util/format.ts';
import { actionEdge, coreInputs, rawPullInputs } from './inputs.ts';
import { registryHooks } from './registry-hooks.ts';
import { pullSummary } from './summary.ts';

/**
 * `command: pull` — a model artifact (or its image form) unpacked into `path`, verified; for jobs
 * that stage models (evaluation runs). Only what the directory does not hold yet is fetched.
 */
export async function runPullCommand(signal: AbortSignal): Promise<void> {
  const config = await pullConfig(rawPullInputs(coreInputs, process.env), actionEdge(process.env));
  let last = 0;
  const result = await runPull(config, registryHooks(), signal, (event) => {
    if (event.type === 'warning') core.warning(event.message);
    else if (event.type === 'phase') core.info(event.message);
    else if (performance.now() - last >= config.progressMs) {
      last = performance.now();
      core.info(`pulling ${formatBytes(event.done)} / ${formatBytes(event.total)}`);
    }
  });
  core.info(
    `pulled ${result.reference} into ${result.dir}: ${result.files.length} files, fetched ${formatBytes(result.fetchedBytes)}`,
  );
  core.setOutput('digest', result.manifest.digest);
  core.setOutput('ref', result.reference);
  core.setOutput('weights-digest', result.weightsDigest ?? '');
  core.setOutput('bytes-fetched', String(result.fetchedBytes));
  core.setOutput('metadata', JSON.stringify(result));
  await core.summary.addRaw(pullSummary(result)).write();
}
