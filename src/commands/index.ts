import { recordAndUpdate } from '../compat/catalog.ts';
import { type UpdateResult, updateIndex } from '../compat/index-update.ts';
import { type Resolved, resolveModel } from '../compat/resolve.ts';
import type { IndexConfig, IndexRecordConfig, ResolveConfig } from '../config/index-commands.ts';
import { openTarget, withCatalog } from '../connect/targets.ts';
import type { Target } from '../content/target.ts';
import { targetTag } from '../content/target-ref.ts';
import { UserError } from '../util/errors.ts';
import { type RegistryHooks, withHooks } from './hooks.ts';
import type { IndexRecorded } from './model-build.ts';

/** `index record`: the artifact or image `from` names, recorded in the index, which is then brought up to date. */
export async function runIndexRecord(
  config: IndexRecordConfig,
  hooks: RegistryHooks = {},
  signal?: AbortSignal,
): Promise<IndexRecorded> {
  const storage = withHooks(config.storage, hooks);
  const source = await openTarget(config.from, 'pull', storage);
  try {
    const reference =
      config.from.kind === 'registry'
        ? (config.from.reference.digest ?? config.from.reference.tag ?? 'latest')
        : (config.from.digest ?? targetTag(config.from) ?? 'latest');
    const desc = await source.resolve(reference, signal);
    if (!desc) throw new UserError(`${config.labels.from} ${config.from.text}: nothing there to record`);
    return await onCatalog(config, hooks, 'push', (catalog, tag) =>
      recordAndUpdate(catalog, tag, source, desc.digest, signal),
    );
  } finally {
    await source.close?.();
  }
}

/** Runs `work` on the config's catalog; the result says where the index is (`REGISTRY/REPO:TAG`). */
async function onCatalog<T>(
  config: IndexConfig,
  hooks: RegistryHooks,
  access: 'pull' | 'push',
  work: (catalog: Target, tag: string) => Promise<T>,
): Promise<{ where: string } & T> {
  const storage = withHooks(config.storage, hooks);
  return withCatalog(
    config.index,
    config.labels.index,
    storage,
    async (catalog, tag) => ({ where: `${catalog.displayName}:${tag}`, ...(await work(catalog, tag)) }),
    access,
  );
}

/** `index update`: the index rebuilt from the records the catalog holds. */
export function runIndexUpdate(
  config: IndexConfig,
  hooks: RegistryHooks = {},
  signal?: AbortSignal,
): Promise<{ where: string; index: UpdateResult }> {
  return onCatalog(config, hooks, 'push', async (catalog, tag) => ({
    index: await updateIndex(catalog, tag, signal ? { signal } : {}),
  }));
}

/** `resolve`: the model artifact and the newest compatible base image, from one read of the index. */
export function runResolve(
  config: ResolveConfig,
  hooks: RegistryHooks = {},
  signal?: AbortSignal,
): Promise<{ where: string; found: Resolved }> {
  const query = { model: config.model, ...(config.runtime ? { runtime: config.runtime } : {}) };
  return onCatalog(config, hooks, 'pull', async (catalog, tag) => ({
    found: await resolveModel(catalog, tag, query, signal),
  }));
}
