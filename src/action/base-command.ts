import * as core from '@actions/core';
import { buildBase } from '../base/build-base.ts';
import { parseProvidedRuntime } from '../base/runtime.ts';
import { parseReference } from '../oci/reference.ts';
import { openRegistryTarget } from '../registry/open-registry.ts';
import { UserError } from '../util/errors.ts';
import { recordInIndex } from './compat-steps.ts';
import { booleanInput, keyValueInput, readRegistryInputs, requiredInput } from './inputs.ts';
import { registryOptions } from './registry-options.ts';
import { baseSummary, type IndexOutcome } from './summary.ts';

/**
 * `command: base` — builds the runtime base image when its inputs or its FROM images changed (or
 * with force), pushes it with zstd layers, and records it in the compatibility index.
 */
export async function runBaseCommand(signal: AbortSignal): Promise<void> {
  const image = requiredInput('target', 'base');
  const registryInputs = readRegistryInputs();
  const registry = registryOptions(registryInputs);
  const builder = core.getInput('builder').trim() || 'auto';
  if (builder !== 'auto' && builder !== 'buildx' && builder !== 'buildah')
    throw new UserError(`input builder must be auto, buildx or buildah, not ${JSON.stringify(builder)}`);
  const runtimeText = core.getInput('runtime').trim();
  const index = core.getInput('index').trim() || undefined;
  const dockerfile = core.getInput('dockerfile').trim();
  const target = core.getInput('build-target').trim();
  const platform = core.getInput('platform').trim();

  core.startGroup(`Base image ${image}`);
  const result = await buildBase({
    context: core.getInput('context').trim() || '.',
    ...(dockerfile ? { dockerfile } : {}),
    image,
    buildArgs: keyValueInput('build-args'),
    ...(target ? { target } : {}),
    ...(platform ? { platform } : {}),
    builder,
    force: booleanInput('force'),
    ...(runtimeText ? { runtime: parseProvidedRuntime(runtimeText, 'input runtime') } : {}),
    registry,
    ...(process.env.RUNNER_TEMP ? { tempDir: process.env.RUNNER_TEMP } : {}),
    signal,
    onLog: (line) => core.info(line),
  });
  core.endGroup();

  if (result.status === 'skipped') core.notice(`${image}: skipped, ${result.reason}`);
  else core.info(`pushed ${result.ref}`);
  core.setOutput('digest', result.digest);
  core.setOutput('ref', result.ref);
  core.setOutput('input-digest', result.inputDigest);
  core.setOutput('skipped', String(result.status === 'skipped'));
  core.setOutput('upstream', JSON.stringify(result.upstream));
  core.setOutput('runtime-version', result.runtime ? `${result.runtime.name} ${result.runtime.version}` : '');
  core.setOutput('metadata', JSON.stringify(result));
  let outcome: IndexOutcome | undefined;
  if (index) {
    const source = await openRegistryTarget(parseReference(image), 'pull', registry);
    try {
      outcome = await recordInIndex(index, source, result.digest, registry, signal);
    } finally {
      await source.close();
    }
  }
  await core.summary.addRaw(baseSummary(result, outcome)).write();
}
