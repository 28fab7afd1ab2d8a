import { parseTargetRef, type TargetRef, targetTag } from '../content/target-ref.ts';
import { type HubRef, isHubRef, parseHubRef } from '../hub/hub-ref.ts';
import { DEFAULT_FRAME_SIZE, DEFAULT_LEVEL } from '../model/build-types.ts';
import type { CacheMatch } from '../model/digest-cache.ts';
import { DEFAULT_IMAGE_PLATFORMS, parsePlatforms } from '../model/image-form.ts';
import type { Platform } from '../oci/descriptor.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import type { ZstdImplementation } from '../pack/zstd.ts';
import { UsageError } from '../util/errors.ts';
import {
  defaultCacheDir,
  hfTokenOf,
  hubEndpoint,
  isoSeconds,
  progressInterval,
  sourceDateEpoch,
  zstdImplementation,
} from './env.ts';
import { type RawRegistry, storageConfig } from './registry.ts';
import type { StorageConfig } from './types.ts';
import { choice, type Edge, integer, keyValues, optional, required, size } from './values.ts';

/** `model build` as the user asked for it, from CLI flags or Action inputs, before anything is checked. */
export interface RawModelBuild extends RawRegistry {
  path?: string | undefined;
  name?: string | undefined;
  target?: string | undefined;
  tags?: readonly string[];
  /** `tar+zstd`, `tar` or `raw`. */
  encoding?: string | undefined;
  level?: string | undefined;
  frameSize?: string | undefined;
  concurrency?: string | undefined;
  include?: readonly string[];
  exclude?: readonly string[];
  /** KEY=VALUE items. */
  annotations?: readonly string[];
  runtime?: string | undefined;
  force?: boolean;
  verify?: boolean;
  dryRun?: boolean;
  mountFrom?: readonly string[];
  index?: string | undefined;
  /**
   * The digest cache: off, a given file, or (default) one per model directory under the user's cache
   * folder. `portable`: a cache carried to another machine (the Actions cache), matched by size and
   * mtime only.
   */
  digestCache?: { enabled: boolean; file?: string | undefined; portable?: boolean };
  /** The created date when SOURCE_DATE_EPOCH does not give one (the Action: the checkout's commit time). */
  createdAt?: string | undefined;
  /** Also publish the image form (`<tag>-image`), for these platforms (default linux/amd64,linux/arm64). */
  imageForm?: boolean;
  imagePlatforms?: string | undefined;
  /** The Hugging Face token for an `hf://` source (the Action's input); else HF_TOKEN. */
  hfToken?: string | undefined;
}

/** Where an `hf://` source is read from, and how. */
export interface HubSourceConfig {
  ref: HubRef;
  endpoint: string;
  token?: string;
  /** How the user gives the token, for messages. */
  tokenHint: string;
}

export interface ModelBuildConfig {
  /** The model directory, or `hf://ORG/NAME[@REVISION]` (then `hub` says how to read it). */
  source: string;
  hub?: HubSourceConfig;
  name: string;
  target: TargetRef;
  /** The tag the build is for (the target's, else `latest`). */
  tag: string;
  extraTags: string[];
  encoding: LayerEncoding;
  level: number;
  frameSize: number;
  concurrency: number;
  include: string[];
  exclude: string[];
  annotations: Record<string, string>;
  runtime?: string;
  force: boolean;
  verify: boolean;
  dryRun: boolean;
  mountFrom: string[];
  /** The compatibility index to record the artifact in, `REGISTRY/REPO[:TAG]` or `oci-layout:PATH[:TAG]`. */
  index?: string;
  digestCache: false | { file: string } | { dir: string };
  digestCacheMatch: CacheMatch;
  /** The tar mtime (SOURCE_DATE_EPOCH, else 0) and the created date. */
  mtime: number;
  createdAt?: string;
  zstd: ZstdImplementation;
  progressMs: number;
  storage: StorageConfig;
  /** The image form's platforms, when it is published too. */
  imageForm?: { platforms: Platform[] };
  /** How the user names the options that later errors mention (`--mount-from`, `input index`). */
  labels: { mountFrom: string; index: string };
}

/** The embedded default: an OCI layout in the working directory (action.yml's `target` default too). */
export const DEFAULT_TARGET = 'oci-layout:./oci-layout:latest';

/** Layers at once: 4 to a registry (uploads overlap packing), 2 into a layout (the disk is the limit). */
export const DEFAULT_CONCURRENCY = { registry: 4, layout: 2 } as const;

/** Checks and completes a `model build` request: defaults, values, the environment. Nothing is opened yet. */
export async function modelBuildConfig(raw: RawModelBuild, edge: Edge): Promise<ModelBuildConfig> {
  const source = required(raw.path, 'path', edge);
  const hubRef = isHubRef(source) ? parseHubRef(source, edge.name('path')) : undefined;
  const name = required(raw.name, 'name', edge);
  const target = parseTargetRef(raw.target?.trim() || DEFAULT_TARGET, edge.hints.plainHttp);
  const encoding = choice(raw.encoding, 'encoding', edge, ['tar+zstd', 'tar', 'raw'] as const, 'tar+zstd');
  const runtime = optional(raw.runtime);
  const index = optional(raw.index);
  const dryRun = raw.dryRun ?? false;
  if (index && !runtime) {
    throw new UsageError(
      `${edge.name('index')} needs ${edge.name('runtime')}: the index pairs a model with bases by the runtime it needs`,
    );
  }
  if (index && dryRun) {
    throw new UsageError(
      `${edge.name('index')} cannot be recorded in a dry run (recording writes to the index)`,
    );
  }
  const imagePlatforms = optional(raw.imagePlatforms);
  if (imagePlatforms && !raw.imageForm)
    throw new UsageError(`${edge.name('imagePlatforms')} goes with ${edge.name('imageForm')}`);
  const imageForm = raw.imageForm
    ? {
        platforms: imagePlatforms
          ? parsePlatforms(imagePlatforms, edge.name('imagePlatforms'))
          : [...DEFAULT_IMAGE_PLATFORMS],
      }
    : undefined;
  if (imageForm && encoding === 'raw')
    throw new UsageError(
      `${edge.name('imageForm')} needs tar layers, not ${edge.name('encoding')} raw (plain files no runtime unpacks)`,
    );
  const mountFrom = [...(raw.mountFrom ?? [])];
  if (mountFrom.length > 0 && target.kind !== 'registry')
    throw new UsageError(`${edge.name('mountFrom')} needs a registry target (REGISTRY/REPO:TAG)`);
  const epoch = sourceDateEpoch(edge.env);
  const createdAt = optional(raw.createdAt) ?? (epoch !== undefined ? isoSeconds(epoch) : undefined);
  const cache = raw.digestCache ?? { enabled: true };
  const frameSize = size(raw.frameSize, 'frameSize', edge, {
    min: 64 * 1024,
    max: 256 * 1024 * 1024,
    words: 'from 64KiB to 256MiB',
  });
  const hfToken = raw.hfToken?.trim() || hfTokenOf(edge.env);
  return {
    source,
    ...(hubRef
      ? {
          hub: {
            ref: hubRef,
            endpoint: hubEndpoint(edge.env),
            ...(hfToken ? { token: hfToken } : {}),
            tokenHint: hubTokenHint(raw.hfToken, edge),
          },
        }
      : {}),
    name,
    target,
    tag: targetTag(target) ?? 'latest',
    extraTags: [...(raw.tags ?? [])],
    encoding,
    level: integer(raw.level, 'level', edge, { min: 1, max: 22, fallback: DEFAULT_LEVEL }),
    frameSize: frameSize ?? DEFAULT_FRAME_SIZE,
    concurrency: integer(raw.concurrency, 'concurrency', edge, {
      min: 1,
      max: 64,
      fallback: DEFAULT_CONCURRENCY[target.kind === 'registry' ? 'registry' : 'layout'],
    }),
    include: [...(raw.include ?? [])],
    exclude: [...(raw.exclude ?? [])],
    annotations: keyValues(raw.annotations ?? [], 'annotations', edge),
    ...(runtime ? { runtime } : {}),
    force: raw.force ?? false,
    verify: raw.verify ?? false,
    dryRun,
    mountFrom,
    ...(index ? { index } : {}),
    digestCache: !cache.enabled
      ? false
      : cache.file
        ? { file: cache.file }
        : { dir: defaultCacheDir(edge.env) },
    digestCacheMatch: cache.portable ? 'portable' : 'strict',
    mtime: epoch ?? 0,
    ...(createdAt ? { createdAt } : {}),
    zstd: zstdImplementation(edge.env),
    progressMs: progressInterval(edge.env),
    storage: await storageConfig(raw, edge),
    ...(imageForm ? { imageForm } : {}),
    labels: { mountFrom: edge.name('mountFrom'), index: edge.name('index') },
  };
}

/** How messages name where the Hub token comes from: the way it was given, else every way to give it. */
function hubTokenHint(given: string | undefined, edge: Edge): string {
  if (given?.trim()) return edge.name('hfToken');
  if (hfTokenOf(edge.env)) return 'HF_TOKEN';
  const own = edge.name('hfToken');
  return own === 'HF_TOKEN' ? own : `${own} or HF_TOKEN`;
}
