import * as core from '@actions/core';
import { withCatalog } from '../compat/catalog.ts';
import { updateIndex } from '../compat/index-update.ts';
import { resolveModel } from '../compat/resolve.ts';
import { parseReference } from '../oci/reference.ts';
import { openRegistryTarget } from '../registry/open-registry.ts';
import { UserError } from '../util/errors.ts';
import { recordInIndex } from './compat-steps.ts';
import { readRegistryInputs, requiredInput } from './inputs.ts';
import { registryOptions } from './registry-options.ts';
import { indexSummary, resolveSummary } from './summary.ts';

/**
 * `command: index` — records the artifact or image named by `target` (tag or digest) in the index,
 * or, without a target, brings the index up to date with what the catalog holds.
 */
export async function runIndexCommand(signal: AbortSignal): Promise<void> {
  const index = requiredInput('index', 'index');
  const registry = registryOptions(readRegistryInputs());
  const target = core.getInput('target').trim();
  if (target && !target.startsWith('oci-layout:')) {
    const ref = parseReference(target);
    const source = await openRegistryTarget(ref, 'pull', registry);
    try {
      const reference = ref.digest ?? ref.tag ?? 'latest';
      const desc = await source.resolve(reference, signal);
      if (!desc) throw new UserError(`${target}: nothing there to record`);
      const outcome = await recordInIndex(index, source, desc.digest, registry, signal);
      await core.summary.addRaw(indexSummary(outcome)).write();
    } finally {
      await source.close();
    }
    return;
  }
  await withCatalog(index, registry, 'input index', async (catalog, tag) => {
    const updated = await updateIndex(catalog, tag, { signal });
    const where = `${catalog.displayName}:${tag}`;
    core.info(
      `index ${where} is ${updated.digest}: ${updated.models} model artifact(s), ${updated.bases} base image(s), ${updated.pairs} compatible pair(s)`,
    );
    for (const left of updated.skipped) core.warning(`${where}: left out ${left.tag}: ${left.reason}`);
    core.setOutput('index-digest', updated.digest);
    await core.summary.addRaw(indexSummary({ where, index: updated }, updated.skipped)).write();
  });
}

/**
 * `command: resolve` — one read of the index: the model artifact for `name` and the newest base image
 * it is compatible with (optionally within the `runtime` constraint).
 */
export async function runResolveCommand(signal: AbortSignal): Promise<void> {
  const index = requiredInput('index', 'resolve');
  const model = requiredInput('name', 'resolve');
  const runtime = core.getInput('runtime').trim() || undefined;
  await withCatalog(index, registryOptions(readRegistryInputs()), 'input index', async (catalog, tag) => {
    const found = await resolveModel(catalog, tag, { model, ...(runtime ? { runtime } : {}) }, signal);
    core.info(
      `${model}: artifact ${found.model.ref}, base ${found.base.ref} (${found.base.runtime} ${found.base.version})`,
    );
    core.setOutput('model-digest', found.model.digest);
    core.setOutput('model-ref', found.model.ref);
    core.setOutput('base-digest', found.base.digest);
    core.setOutput('base-ref', found.base.ref);
    core.setOutput('runtime-version', `${found.base.runtime} ${found.base.version}`);
    core.setOutput('metadata', JSON.stringify(found));
    await core.summary.addRaw(resolveSummary(found, `${catalog.displayName}:${tag}`)).write();
  });
}
