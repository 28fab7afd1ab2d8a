import { declaredRuntime, readImageFacts } from '../content/image-facts.ts';
import { readJsonObject } from '../content/read.ts';
import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { ManifestDocument } from '../oci/manifest.ts';
import { MODEL_ARTIFACT_TYPE, MODEL_CONFIG } from '../oci/media-types.ts';
import { UserError } from '../util/errors.ts';
import { type CatalogRecord, KEY, recordTag } from './schema.ts';
import { normalizeVersion, parseRequirement } from './version.ts';

const MAX_CONFIG_BYTES = 1024 * 1024;

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function isModelManifest(doc: ManifestDocument): boolean {
  return (
    doc.type === 'manifest' &&
    (doc.artifactType === MODEL_ARTIFACT_TYPE || doc.config.mediaType === MODEL_CONFIG)
  );
}

/**
 * What a manifest declares, as a catalog record: a model artifact (ModelPack) and its runtime
 * requirement, or a base image and the runtime it provides (manifest annotations first, then the
 * image config's labels; for an index, its annotations, then its first platform image's). Throws a
 * UserError naming what is missing.
 */
export async function describeRecord(
  target: Target,
  descriptor: Descriptor,
  doc: ManifestDocument,
  what: string,
  signal?: AbortSignal,
): Promise<CatalogRecord> {
  const plain: Descriptor = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
  };
  if (isModelManifest(doc) && doc.type === 'manifest') {
    const a = doc.annotations;
    const requires = a[KEY.requires];
    if (!requires) {
      throw new UserError(
        `${what} is a model artifact without ${KEY.requires}; build it with the annotation ` +
          `${KEY.requires}="<runtime> <semver range>" (e.g. "vllm >=0.8 <0.9")`,
      );
    }
    if (!parseRequirement(requires)?.name) {
      throw new UserError(
        `${what}: ${KEY.requires} "${requires}" is not "<runtime> <semver range>" (e.g. "vllm >=0.8 <0.9")`,
      );
    }
    let name = str(a[KEY.title]);
    let created = str(a[KEY.created]);
    if (!name || !created) {
      const config = await readJsonObject(target, doc.config, MAX_CONFIG_BYTES, signal);
      const described = obj(config?.descriptor);
      name ??= str(described?.name);
      created ??= str(described?.createdAt);
    }
    if (!name) throw new UserError(`${what} is a model artifact without a name (${KEY.title})`);
    return {
      kind: 'model',
      tag: recordTag('model', descriptor.digest),
      descriptor: { ...plain, artifactType: MODEL_ARTIFACT_TYPE },
      name,
      requires: requires.trim().replace(/\s+/g, ' '),
      ...(created ? { created } : {}),
      ...(a[KEY.weightsDigest] ? { weightsDigest: a[KEY.weightsDigest] } : {}),
    };
  }
  const facts = await readImageFacts(target, doc, signal);
  const runtime = declaredRuntime(facts);
  if (!runtime) {
    throw new UserError(
      `${what} is neither a model artifact nor a base image that declares its runtime: a base image needs ` +
        `${KEY.runtimeName} and ${KEY.runtimeVersion} (manifest annotations or image labels)`,
    );
  }
  if (!normalizeVersion(runtime.version)) {
    throw new UserError(`${what}: ${KEY.runtimeVersion} "${runtime.version}" is not a version`);
  }
  const created = str(facts.annotations[KEY.created]) ?? str(facts.labels[KEY.created]) ?? facts.created;
  return {
    kind: 'base',
    tag: recordTag('base', descriptor.digest),
    descriptor: plain,
    runtime: runtime.name,
    version: runtime.version,
    ...(created ? { created } : {}),
    // The platform of an index's image describes one of several; only a single image has one.
    ...(doc.type === 'manifest' && facts.platform ? { platform: facts.platform } : {}),
  };
}
