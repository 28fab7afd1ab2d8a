import { parseProvidedRuntime } from '../base/runtime.ts';
import { parseReference, type Reference } from '../oci/reference.ts';
import { UsageError } from '../util/errors.ts';
import { type RawRegistry, storageConfig } from './registry.ts';
import type { StorageConfig } from './types.ts';
import { choice, type Edge, keyValues, optional, required } from './values.ts';

/** `base build` as the user asked for it, before anything is checked. */
export interface RawBaseBuild extends RawRegistry {
  context?: string | undefined;
  dockerfile?: string | undefined;
  /** REGISTRY/REPO:TAG to push to. */
  image?: string | undefined;
  /** KEY=VALUE items. */
  buildArgs?: readonly string[];
  buildTarget?: string | undefined;
  platform?: string | undefined;
  builder?: string | undefined;
  runtime?: string | undefined;
  force?: boolean;
  index?: string | undefined;
}

export interface BaseBuildConfig {
  context: string;
  dockerfile?: string;
  image: string;
  reference: Reference;
  buildArgs: Record<string, string>;
  buildTarget?: string;
  platform?: string;
  builder: 'auto' | 'buildah' | 'buildx';
  runtime?: { name: string; version: string };
  force: boolean;
  index?: string;
  /** The environment the builder runs with. */
  env: Record<string, string | undefined>;
  storage: StorageConfig;
  labels: { index: string };
}

/** A registry reference the user gave, or a usage error naming the option. */
export function referenceOption(text: string, key: Parameters<Edge['name']>[0], edge: Edge): Reference {
  try {
    return parseReference(text);
  } catch (err) {
    throw new UsageError(`${edge.name(key)}: ${(err as Error).message}`);
  }
}

export async function baseBuildConfig(raw: RawBaseBuild, edge: Edge): Promise<BaseBuildConfig> {
  const image = required(raw.image, 'image', edge);
  const reference = referenceOption(image, 'image', edge);
  if (reference.digest)
    throw new UsageError(`${edge.name('image')} ${image}: give a tag to push to, not a digest`);
  const dockerfile = optional(raw.dockerfile);
  const buildTarget = optional(raw.buildTarget);
  const platform = optional(raw.platform);
  const runtime = optional(raw.runtime);
  const index = optional(raw.index);
  if (index) referenceOption(index, 'index', edge);
  return {
    context: optional(raw.context) ?? '.',
    ...(dockerfile ? { dockerfile } : {}),
    image,
    reference,
    buildArgs: keyValues(raw.buildArgs ?? [], 'buildArgs', edge),
    ...(buildTarget ? { buildTarget } : {}),
    ...(platform ? { platform } : {}),
    builder: choice(raw.builder, 'builder', edge, ['auto', 'buildah', 'buildx'] as const, 'auto'),
    ...(runtime ? { runtime: parseProvidedRuntime(runtime, edge.name('runtime')) } : {}),
    force: raw.force ?? false,
    ...(index ? { index } : {}),
    env: { ...edge.env },
    storage: await storageConfig(raw, edge),
    labels: { index: edge.name('index') },
  };
}
