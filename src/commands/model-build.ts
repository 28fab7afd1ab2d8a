import { recordAndUpdate } from '../compat/catalog.ts';
import type { UpdateResult } from '../compat/index-update.ts';
import type { RecordResult } from '../compat/record.ts';
import type { HubSourceConfig, ModelBuildConfig } from '../config/model-build.ts';
import { DEFAULT_CONNECTIONS, DEFAULT_PART_SIZE } from '../config/pull.ts';
import { mountSources, openTarget, withCatalog } from '../connect/targets.ts';
import { dryRunTarget } from '../content/dry-run-target.ts';
import { type LayerLimit, layerLimitOf, type Target } from '../content/target.ts';
import type { TargetRef } from '../content/target-ref.ts';
import { HubClient } from '../hub/client.ts';
import { openHubSource } from '../hub/source.ts';
import { type BuildEvent, type BuildResult, buildModel } from '../model/build.ts';
import { chooseCompressor } from '../pack/zstd.ts';
import { type RegistryHooks, withHooks } from './hooks.ts';

/** Where the artifact landed in the compatibility index, when one was asked for. */
export interface IndexRecorded {
  /** REGISTRY/CATALOG:TAG */
  where: string;
  recorded: RecordResult;
  index: UpdateResult;
}

export interface ModelBuildOutcome {
  result: BuildResult;
  /** For an `hf://` source: the commit built, and the LFS bytes downloaded (0 when nothing was packed). */
  hub?: { commit: string; downloaded: number };
  /** The artifact by digest: `REGISTRY/REPO@sha256:…` or `oci-layout:PATH@sha256:…`. */
  ref: string;
  indexed?: IndexRecorded;
}

export interface ModelBuildHooks extends RegistryHooks {
  onEvent?: (event: BuildEvent) => void;
  /** Told when frames will not go through the native zstd binding, and why. */
  onNotice?: (message: string) => void;
  /** Told before the index is recorded in (the Action opens a log group). */
  onRecording?: (index: string) => void;
}

export function refByDigest(ref: TargetRef, digest: string): string {
  if (ref.kind === 'registry') return `${ref.reference.registry}/${ref.reference.repository}@${digest}`;
  return `oci-layout:${ref.path}@${digest}`;
}

/**
 * `model build`, the same for the CLI and the Action: opens the target (wrapped for a dry run, with
 * the mount sources a real run would use), builds, and records the artifact in the compatibility
 * index when asked.
 */
export async function runModelBuild(
  config: ModelBuildConfig,
  hooks: ModelBuildHooks = {},
  signal?: AbortSignal,
): Promise<ModelBuildOutcome> {
  const storage = withHooks(config.storage, hooks);
  const compression = config.encoding === 'tar+zstd' ? chooseCompressor(config.zstd) : undefined;
  if (compression?.notice) hooks.onNotice?.(compression.notice);
  const opened = await openTarget(config.target, 'push', storage);
  const hub = config.hub ? await openHub(config.hub, config, signal) : undefined;
  try {
    const reuseFrom = mountSources(opened, config.mountFrom, config.labels.mountFrom);
    const target = config.dryRun ? dryRunTarget(opened) : opened;
    // A Hub revision says where it came from and when: source, revision and (unless
    // SOURCE_DATE_EPOCH or an explicit date decides) created; the user's annotations still win.
    const annotations = hub ? { ...hub.source.annotations, ...config.annotations } : config.annotations;
    const createdAt = hub && config.createdAt === undefined ? hub.source.committedAt : config.createdAt;
    const result = await buildModel({
      source: hub
        ? {
            description: `${config.source} (commit ${hub.source.commit.slice(0, 12)})`,
            files: hub.source.files,
          }
        : config.source,
      name: config.name,
      target,
      tag: config.tag,
      extraTags: config.extraTags,
      encoding: config.encoding,
      level: config.level,
      frameSize: config.frameSize,
      concurrency: config.concurrency,
      include: config.include,
      exclude: config.exclude,
      annotations,
      ...(config.runtime ? { runtime: config.runtime } : {}),
      force: config.force,
      verify: config.verify,
      digestCache: config.digestCache,
      digestCacheMatch: config.digestCacheMatch,
      mtime: config.mtime,
      ...(createdAt ? { createdAt } : {}),
      ...(compression ? { compressor: compression.compressor } : {}),
      ...(config.imageForm ? { imageForm: config.imageForm } : {}),
      ...layerLimitFor(target, config),
      reuseFrom,
      ...(signal ? { signal } : {}),
      ...(hooks.onEvent ? { onEvent: hooks.onEvent } : {}),
    });
    const outcome: ModelBuildOutcome = {
      result,
      ref: refByDigest(config.target, result.digest),
      ...(hub ? { hub: { commit: hub.source.commit, downloaded: hub.source.downloaded() } } : {}),
    };
    if (config.index) {
      hooks.onRecording?.(config.index);
      outcome.indexed = await withCatalog(
        config.index,
        config.labels.index,
        storage,
        async (catalog, tag) => ({
          where: `${catalog.displayName}:${tag}`,
          ...(await recordAndUpdate(catalog, tag, opened, result.digest, signal, result.image?.digest)),
        }),
      );
    }
    return outcome;
  } finally {
    await hub?.client.close();
    await opened.close?.();
  }
}

/** The Hub client and the revision's file listing (small files fetched, LFS files known by digest). */
async function openHub(hub: HubSourceConfig, config: ModelBuildConfig, signal?: AbortSignal) {
  const client = new HubClient({
    endpoint: hub.endpoint,
    ...(hub.token ? { token: hub.token } : {}),
    tokenHint: hub.tokenHint,
  });
  try {
    const source = await openHubSource({
      client,
      ref: hub.ref,
      include: config.include,
      exclude: config.exclude,
      partSize: DEFAULT_PART_SIZE,
      connections: DEFAULT_CONNECTIONS,
      partBudget: 32 * 1024 * 1024,
      signal,
    });
    return { client, source };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/**
 * The most one layer may be: the registry's (its table entry, or what the user set for it), or for
 * a layout only what the user set (an artifact built there to be copied to a registry later).
 */
function layerLimitFor(target: Target, config: ModelBuildConfig): { layerLimit?: LayerLimit } {
  const fromTarget = layerLimitOf(target);
  if (fromTarget) return { layerLimit: fromTarget };
  const asked = config.storage.registry.upload?.maxLayer;
  return asked ? { layerLimit: { bytes: asked.bytes, why: `${asked.source} (${asked.bytes} bytes)` } } : {};
}
