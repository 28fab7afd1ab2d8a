// The GitHub Action's entry point, bundled into dist/index.js (see scripts/build-dist.ts).
import { fileURLToPath } from 'node:url';
import * as core from '@actions/core';
import { errorMessage } from '../util/errors.ts';
import { rerunTuned } from '../util/runtime-tuning.ts';
import { runBaseCommand } from './base-command.ts';
import { runIndexCommand, runResolveCommand } from './index-command.ts';
import { runModelCommand } from './model-command.ts';
import { runPullCommand } from './pull-command.ts';
import { failureSummary } from './summary.ts';

const COMMANDS: Record<string, (signal: AbortSignal) => Promise<void>> = {
  model: runModelCommand,
  base: runBaseCommand,
  index: runIndexCommand,
  resolve: runResolveCommand,
  pull: runPullCommand,
};

/**
 * What a command works on, for failure titles: the target for model and base; the index for index
 * and resolve (with the artifact being recorded, or the model asked for). `target` has a default,
 * so it says nothing for those two unless it names a registry artifact.
 */
function subjectOf(command: string): string {
  const target = core.getInput('target').trim();
  const index = core.getInput('index').trim();
  if (command === 'resolve') return [index, core.getInput('name').trim()].filter(Boolean).join(' → ');
  if (command === 'pull')
    return index ? [index, core.getInput('name').trim()].filter(Boolean).join(' → ') : target;
  if (command === 'index')
    return [target && !target.startsWith('oci-layout:') ? target : '', index].filter(Boolean).join(' → ');
  return target;
}

async function main(): Promise<void> {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => controller.abort(new Error(`cancelled (${signal})`)));
  }
  try {
    const name = core.getInput('command').trim() || 'model';
    const command = COMMANDS[name];
    if (!command) {
      throw new Error(
        `input command ${JSON.stringify(name)} is not known; this release has: ${Object.keys(COMMANDS).join(', ')}`,
      );
    }
    await command(controller.signal);
  } catch (err) {
    // An error annotation titled with the command and what it worked on, so the run's summary page
    // says which step of a matrix failed on which reference; the job summary says it too.
    const command = core.getInput('command').trim() || 'model';
    const subject = subjectOf(command);
    const message = errorMessage(err).split('\n')[0]!;
    core.error(message, { title: `model-oci ${command}${subject ? `: ${subject}` : ''}` });
    process.exitCode = 1;
    if (core.isDebug() && err instanceof Error && err.stack) core.debug(err.stack);
    await core.summary
      .addRaw(failureSummary(command, subject, message))
      .write()
      .catch(() => {}); // no summary file outside a runner
  }
}

// The threadpool size and malloc settings are read at process start: run again with them (as the
// CLI does); the child inherits GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and the INPUT_ variables.
const rerun = rerunTuned(fileURLToPath(import.meta.url), process.env);
if (rerun) process.exitCode = await rerun;
else await main();
