import { type Resolved, resolveModel } from '../compat/resolve.ts';
import type { PullConfig } from '../config/pull.ts';
import { openTarget, withCatalog } from '../connect/targets.ts';
import type { Target } from '../content/target.ts';
import { targetTag } from '../content/target-ref.ts';
import { type PullEvent, type PullResult, pullModel } from '../pull/pull.ts';
import { type RegistryHooks, withHooks } from './hooks.ts';

export interface PullOutcome extends PullResult {
  /** When the artifact was found through the compatibility index: what `resolve` answered. */
  resolved?: Resolved;
}

/**
 * `model pull`: an artifact (or its image form) into a directory; by reference, or through the
 * compatibility index with the same one read of it `resolve` makes.
 */
export async function runPull(
  config: PullConfig,
  hooks: RegistryHooks = {},
  signal?: AbortSignal,
  onEvent?: (event: PullEvent) => void,
): Promise<PullOutcome> {
  const storage = withHooks(config.storage, hooks);
  const pull = (target: Target, reference: string) =>
    pullModel({
      target,
      reference,
      dir: config.dir,
      include: config.include,
      exclude: config.exclude,
      verify: config.verify,
      platform: config.platform,
      tuning: config.tuning,
      signal,
      ...(onEvent ? { onEvent } : {}),
    });
  const { source } = config;
  if (source.kind === 'index') {
    const query = { model: source.model, ...(source.runtime ? { runtime: source.runtime } : {}) };
    return withCatalog(
      source.index,
      source.label,
      storage,
      async (catalog, tag) => {
        const resolved = await resolveModel(catalog, tag, query, signal);
        return { ...(await pull(catalog, resolved.model.digest)), resolved };
      },
      'pull',
    );
  }
  const { ref } = source;
  const reference =
    ref.kind === 'registry'
      ? (ref.reference.digest ?? ref.reference.tag ?? 'latest')
      : (ref.digest ?? targetTag(ref) ?? 'latest');
  const target = await openTarget(ref, 'pull', storage);
  try {
    return await pull(target, reference);
  } finally {
    await target.close?.();
  }
}
