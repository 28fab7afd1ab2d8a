import { type BaseBuildResult, buildBase } from '../base/build-base.ts';
import { recordAndUpdate } from '../compat/catalog.ts';
import type { BaseBuildConfig } from '../config/base-build.ts';
import { registryAccess } from '../connect/registry-access.ts';
import { openTarget, withCatalog } from '../connect/targets.ts';
import { type RegistryHooks, withHooks } from './hooks.ts';
import type { IndexRecorded } from './model-build.ts';

export interface BaseBuildHooks extends RegistryHooks {
  onLog?: (line: string) => void;
  onRecording?: (index: string) => void;
}

/**
 * `base build`, the same for the CLI and the Action: builds the runtime image when its inputs
 * changed, and records it in the compatibility index when asked.
 */
export async function runBaseBuild(
  config: BaseBuildConfig,
  hooks: BaseBuildHooks = {},
  signal?: AbortSignal,
): Promise<{ result: BaseBuildResult; indexed?: IndexRecorded }> {
  const storage = withHooks(config.storage, hooks);
  const result = await buildBase({
    context: config.context,
    ...(config.dockerfile ? { dockerfile: config.dockerfile } : {}),
    image: config.image,
    buildArgs: config.buildArgs,
    ...(config.buildTarget ? { target: config.buildTarget } : {}),
    ...(config.platform ? { platform: config.platform } : {}),
    builder: config.builder,
    force: config.force,
    ...(config.runtime ? { runtime: config.runtime } : {}),
    access: registryAccess(config.reference.registry, storage.registry),
    tempDir: storage.tempDir,
    env: config.env,
    ...(signal ? { signal } : {}),
    ...(hooks.onLog ? { onLog: hooks.onLog } : {}),
  });
  if (!config.index) return { result };
  hooks.onRecording?.(config.index);
  const source = await openTarget(config.reference, 'pull', storage);
  try {
    const indexed = await withCatalog(config.index, config.labels.index, storage, async (catalog, tag) => ({
      where: `${catalog.displayName}:${tag}`,
      ...(await recordAndUpdate(catalog, tag, source, result.digest, signal)),
    }));
    return { result, indexed };
  } finally {
    await source.close?.();
  }
}
