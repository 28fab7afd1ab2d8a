import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseTargetRef, type TargetRef } from '../content/target-ref.ts';
import type { PullTuning } from '../pull/pull.ts';
import { UsageError } from '../util/errors.ts';
import { directIo, progressInterval } from './env.ts';
import { type RawRegistry, storageConfig } from './registry.ts';
import type { StorageConfig } from './types.ts';
import { type Edge, integer, optional, required, size } from './values.ts';

/** `model pull` as the user asked for it, from CLI flags or Action inputs. */
export interface RawPull extends RawRegistry {
  /** The artifact or image: `REGISTRY/REPO:TAG`, `…@sha256:…` or `oci-layout:PATH[:TAG]`. */
  from?: string | undefined;
  /** Or through the compatibility index: the catalog, the model name and an optional runtime constraint. */
  index?: string | undefined;
  model?: string | undefined;
  runtime?: string | undefined;
  to?: string | undefined;
  include?: readonly string[];
  exclude?: readonly string[];
  verify?: boolean;
  platform?: string | undefined;
  connections?: string | undefined;
  partSize?: string | undefined;
}

export type PullSource =
  | { kind: 'ref'; ref: TargetRef; text: string }
  | { kind: 'index'; index: string; model: string; runtime?: string; label: string };

export interface PullConfig {
  source: PullSource;
  dir: string;
  include: string[];
  exclude: string[];
  verify: boolean;
  /** `os/arch` of the image an image index stands for. */
  platform: string;
  tuning: PullTuning;
  progressMs: number;
  storage: StorageConfig;
}

/** Connections at once over all blobs: enough to fill a link of object storage's ~40 MB/s streams. */
export const DEFAULT_CONNECTIONS = 6;
/** Bytes per ranged request: large enough that a request's overhead is noise, small enough to spread. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/** The platform of this machine as OCI names it (`linux/amd64`, `linux/arm64`). */
export function hostPlatform(): string {
  const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }[
    process.arch as string
  ];
  return `linux/${arch ?? process.arch}`;
}

function platformOf(text: string | undefined, edge: Edge): string {
  const value = optional(text);
  if (value === undefined) return hostPlatform();
  if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(value))
    throw new UsageError(
      `${edge.name('platform')} must be OS/ARCH (e.g. linux/arm64), not ${JSON.stringify(value)}`,
    );
  return value;
}

export async function pullConfig(raw: RawPull, edge: Edge): Promise<PullConfig> {
  const from = optional(raw.from);
  const index = optional(raw.index);
  let source: PullSource;
  if (from !== undefined && index !== undefined)
    throw new UsageError(`give the artifact or ${edge.name('index')} with ${edge.name('model')}, not both`);
  if (index !== undefined) {
    try {
      parseTargetRef(index, edge.hints.plainHttp);
    } catch (err) {
      throw new UsageError(`${edge.name('index')}: ${(err as Error).message}`);
    }
    const runtime = optional(raw.runtime);
    source = {
      kind: 'index',
      index,
      model: required(raw.model, 'model', edge),
      ...(runtime ? { runtime } : {}),
      label: edge.name('index'),
    };
  } else {
    if (from === undefined)
      throw new UsageError(
        `the artifact to pull is required (REF, or ${edge.name('index')} with ${edge.name('model')})`,
      );
    if (optional(raw.model) !== undefined)
      throw new UsageError(`${edge.name('model')} goes with ${edge.name('index')}`);
    let ref: TargetRef;
    try {
      ref = parseTargetRef(from, edge.hints.plainHttp);
    } catch (err) {
      throw new UsageError(`${edge.name('from')}: ${(err as Error).message}`);
    }
    source = { kind: 'ref', ref, text: from };
  }
  const dir = path.resolve(required(raw.to, 'to', edge));
  const connections = integer(raw.connections, 'connections', edge, {
    min: 1,
    max: 64,
    fallback: DEFAULT_CONNECTIONS,
  });
  const partSize =
    size(raw.partSize, 'partSize', edge, {
      min: 1024 * 1024,
      max: 1024 * 1024 * 1024,
      words: 'from 1MiB to 1GiB',
    }) ?? DEFAULT_PART_SIZE;
  return {
    source,
    dir,
    include: [...(raw.include ?? [])],
    exclude: [...(raw.exclude ?? [])],
    verify: raw.verify ?? false,
    platform: platformOf(raw.platform, edge),
    tuning: {
      connections,
      partSize,
      layers: 2,
      decodeParallel: availableParallelism() + 1,
      directIo: directIo(edge.env),
    },
    progressMs: progressInterval(edge.env),
    storage: await storageConfig(raw, edge),
  };
}
