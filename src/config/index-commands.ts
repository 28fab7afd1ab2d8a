import { parseTargetRef, type TargetRef } from '../content/target-ref.ts';
import { UsageError } from '../util/errors.ts';
import { type RawRegistry, storageConfig } from './registry.ts';
import type { StorageConfig } from './types.ts';
import { type Edge, optional, required } from './values.ts';

// `index record`, `index update`, `resolve` and `model inspect`: what they read and write, checked.

export interface RawIndexCommand extends RawRegistry {
  /** The compatibility index, `REGISTRY/REPO[:TAG]` or `oci-layout:PATH[:TAG]` (tag `index`). */
  index?: string | undefined;
  /** record: the artifact or image to record; inspect: the artifact to read. */
  from?: string | undefined;
  /** resolve: the model name and an optional runtime constraint. */
  model?: string | undefined;
  runtime?: string | undefined;
}

export interface IndexConfig {
  index: string;
  storage: StorageConfig;
  labels: { index: string; from: string };
}

/** The index reference as given: checked here so a typo fails before anything is opened. */
function indexOf(raw: RawIndexCommand, edge: Edge): string {
  const index = required(raw.index, 'index', edge);
  try {
    parseTargetRef(index, edge.hints.plainHttp);
  } catch (err) {
    throw new UsageError(`${edge.name('index')}: ${(err as Error).message}`);
  }
  return index;
}

/** A target reference option (`--from`), or a usage error naming it. */
function targetOption(text: string, key: 'from', edge: Edge): TargetRef {
  try {
    return parseTargetRef(text, edge.hints.plainHttp);
  } catch (err) {
    throw new UsageError(`${edge.name(key)}: ${(err as Error).message}`);
  }
}

async function indexConfig(raw: RawIndexCommand, edge: Edge): Promise<IndexConfig> {
  return {
    index: indexOf(raw, edge),
    storage: await storageConfig(raw, edge),
    labels: { index: edge.name('index'), from: edge.name('from') },
  };
}

export interface IndexRecordConfig extends IndexConfig {
  from: TargetRef;
}

export async function indexRecordConfig(raw: RawIndexCommand, edge: Edge): Promise<IndexRecordConfig> {
  const from = targetOption(required(raw.from, 'from', edge), 'from', edge);
  return { ...(await indexConfig(raw, edge)), from };
}

export function indexUpdateConfig(raw: RawIndexCommand, edge: Edge): Promise<IndexConfig> {
  return indexConfig(raw, edge);
}

export interface ResolveConfig extends IndexConfig {
  model: string;
  runtime?: string;
}

export async function resolveConfig(raw: RawIndexCommand, edge: Edge): Promise<ResolveConfig> {
  const model = required(raw.model, 'model', edge);
  const runtime = optional(raw.runtime);
  return { ...(await indexConfig(raw, edge)), model, ...(runtime ? { runtime } : {}) };
}

export interface InspectConfig {
  from: TargetRef;
  /** The text the user gave, for messages. */
  text: string;
  storage: StorageConfig;
}

export async function inspectConfig(raw: RawIndexCommand, edge: Edge): Promise<InspectConfig> {
  const text = required(raw.from, 'from', edge);
  return { from: targetOption(text, 'from', edge), text, storage: await storageConfig(raw, edge) };
}
