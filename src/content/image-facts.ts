import type { Descriptor, Platform } from '../oci/descriptor.ts';
import { type ManifestDocument, parseManifestDocument } from '../oci/manifest.ts';
import { ANNOTATION } from '../oci/media-types.ts';
import { readJsonObject } from './read.ts';
import type { Target } from './target.ts';

/** What an image says about itself: its manifest's annotations and its config's labels and facts. */
export interface ImageFacts {
  /** The manifest's annotations (for an index, its own, then its platform image's where it has none). */
  annotations: Record<string, string>;
  /** The image config's `config.Labels` (Dockerfile LABEL), empty for an artifact or a config too large. */
  labels: Record<string, string>;
  /** The config's `created`. */
  created?: string;
  platform?: Platform;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function stringsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(obj(v) ?? {})) if (typeof value === 'string') out[k] = value;
  return out;
}

/**
 * The facts of the image `doc` (a manifest or an index already read, named `descriptor`): for an
 * index, read through its first real platform's manifest (not an attestation's `unknown/unknown`).
 * The one reader of image facts: base images (what they were built from, by which builder) and
 * catalog records (which runtime they provide) both ask it.
 */
export async function readImageFacts(
  target: Target,
  doc: ManifestDocument,
  signal?: AbortSignal,
): Promise<ImageFacts> {
  if (doc.type === 'index') {
    const first = doc.manifests.find((m) => m.platform && m.platform.os !== 'unknown') ?? doc.manifests[0];
    if (!first) return { annotations: doc.annotations, labels: {} };
    const inner = await readDocument(target, first, signal);
    if (inner.type !== 'manifest') return { annotations: doc.annotations, labels: {} };
    const facts = await readImageFacts(target, inner, signal);
    return { ...facts, annotations: { ...facts.annotations, ...doc.annotations } };
  }
  const config = await readJsonObject(target, doc.config, MAX_CONFIG_BYTES, signal).catch(() => undefined);
  const architecture = str(config?.architecture);
  const os = str(config?.os);
  const variant = str(config?.variant);
  const facts: ImageFacts = { annotations: doc.annotations, labels: stringsOf(obj(config?.config)?.Labels) };
  const created = str(config?.created);
  if (created) facts.created = created;
  if (architecture && os) facts.platform = { architecture, os, ...(variant ? { variant } : {}) };
  return facts;
}

/** A manifest or index of `target`, read and validated. */
export async function readDocument(
  target: Target,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<ManifestDocument> {
  const bytes = await target.fetchManifest(desc, signal);
  return parseManifestDocument(bytes, `${target.displayName}@${desc.digest}`, desc.mediaType);
}

/**
 * The runtime an image declares it provides: `io.model-oci.runtime.name` and `.version` as manifest
 * annotations, else as config labels (a Dockerfile LABEL). Undefined unless both are there.
 */
export function declaredRuntime(facts: ImageFacts): { name: string; version: string } | undefined {
  const name = str(facts.annotations[ANNOTATION.runtimeName]) ?? str(facts.labels[ANNOTATION.runtimeName]);
  const version =
    str(facts.annotations[ANNOTATION.runtimeVersion]) ?? str(facts.labels[ANNOTATION.runtimeVersion]);
  return name && version ? { name, version } : undefined;
}
