import type { Descriptor, Platform } from '../oci/descriptor.ts';
import { MODEL_ARTIFACT_TYPE, MODEL_CONFIG } from '../oci/media-types.ts';
import type { JsonObject } from '../oci/validate.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import { fetchJsonBlob, getManifest, type ManifestDoc, readManifestDoc } from './read.ts';
import { type CatalogRecord, KEY, recordTag } from './schema.ts';
import { normalizeVersion, parseRequirement } from './version.ts';

const obj = (v: unknown): JsonObject | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function isModelManifest(doc: ManifestDoc): boolean {
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
  target: RegistryTarget,
  descriptor: Descriptor,
  doc: ManifestDoc,
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
      const described = obj((await fetchJsonBlob(target, doc.config, signal))?.descriptor);
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
  const found = await runtimeOf(target, doc, what, signal);
  if (!found.runtime || !found.version) {
    throw new UserError(
      `${what} is neither a model artifact nor a base image that declares its runtime: a base image needs ` +
        `${KEY.runtimeName} and ${KEY.runtimeVersion} (manifest annotations or image labels)`,
    );
  }
  if (!normalizeVersion(found.version)) {
    throw new UserError(`${what}: ${KEY.runtimeVersion} "${found.version}" is not a version`);
  }
  return {
    kind: 'base',
    tag: recordTag('base', descriptor.digest),
    descriptor: plain,
    runtime: found.runtime,
    version: found.version,
    ...(found.created ? { created: found.created } : {}),
    ...(found.platform ? { platform: found.platform } : {}),
  };
}

interface RuntimeFacts {
  runtime?: string | undefined;
  version?: string | undefined;
  created?: string | undefined;
  platform?: Platform | undefined;
}

async function runtimeOf(
  target: RegistryTarget,
  doc: ManifestDoc,
  what: string,
  signal?: AbortSignal,
): Promise<RuntimeFacts> {
  const a = doc.annotations;
  const declared: RuntimeFacts = {
    runtime: str(a[KEY.runtimeName]),
    version: str(a[KEY.runtimeVersion]),
    created: str(a[KEY.created]),
  };
  if (doc.type === 'index') {
    if (declared.runtime && declared.version) return declared;
    const first = doc.manifests.find((m) => m.platform && m.platform.os !== 'unknown') ?? doc.manifests[0];
    if (!first) return declared;
    const child = await getManifest(target, first.digest, signal);
    if (!child) return declared;
    const inner = readManifestDoc(child.bytes, first.mediaType, `${what} ${first.digest}`);
    if (inner.type !== 'manifest') return declared;
    const facts = await runtimeOf(target, inner, what, signal);
    return {
      runtime: declared.runtime ?? facts.runtime,
      version: declared.version ?? facts.version,
      created: declared.created ?? facts.created,
    };
  }
  // An image: its config holds the labels, the platform and the created time.
  const config = await fetchJsonBlob(target, doc.config, signal);
  const labels = obj(obj(config?.config)?.Labels) ?? {};
  const architecture = str(config?.architecture);
  const os = str(config?.os);
  const variant = str(config?.variant);
  return {
    runtime: declared.runtime ?? str(labels[KEY.runtimeName]),
    version: declared.version ?? str(labels[KEY.runtimeVersion]),
    created: declared.created ?? str(labels[KEY.created]) ?? str(config?.created),
    platform: architecture && os ? { architecture, os, ...(variant ? { variant } : {}) } : undefined,
  };
}
