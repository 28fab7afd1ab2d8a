import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import {
  describeJson,
  encodeJson,
  type ImageIndex,
  MAX_MANIFEST_BYTES,
  parseImageIndex,
} from '../oci/manifest.ts';
import { OCI_INDEX } from '../oci/media-types.ts';
import {
  type BaseRecord,
  CATALOG_ARTIFACT_TYPE,
  CATALOG_SCHEMA_VERSION,
  type CatalogRecord,
  type CompatibleBase,
  KEY,
  type ModelRecord,
  RECORD_TAG,
} from './schema.ts';
import { compareVersionsDesc, parseRequirement, satisfies } from './version.ts';

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** Newest first; an entry without a date is older than any with one. */
const byCreatedDesc = (a: string | undefined, b: string | undefined) => byString(b ?? '', a ?? '');

/** Bases newest first: highest runtime version, then latest created, then digest. */
export function compareBases(a: BaseRecord, b: BaseRecord): number {
  return (
    compareVersionsDesc(a.version, b.version) ||
    byCreatedDesc(a.created, b.created) ||
    byString(a.descriptor.digest, b.descriptor.digest)
  );
}

/** Models by name, then newest first (created), then digest. */
export function compareModels(a: ModelRecord, b: ModelRecord): number {
  return (
    byString(a.name, b.name) ||
    byCreatedDesc(a.created, b.created) ||
    byString(a.descriptor.digest, b.descriptor.digest)
  );
}

export function compatibleBases(model: ModelRecord, bases: readonly BaseRecord[]): BaseRecord[] {
  const requirement = parseRequirement(model.requires);
  if (!requirement?.name) return [];
  return bases.filter((b) => satisfies(b.version, requirement, b.runtime));
}

export interface BuiltIndex {
  descriptor: Descriptor;
  bytes: Uint8Array;
  models: number;
  bases: number;
  pairs: number;
}

/**
 * The index for a set of records: a pure function of them (sorted, no clock), so writers that saw
 * the same records write byte-identical indexes.
 */
export function buildIndex(records: readonly CatalogRecord[]): BuiltIndex {
  const models = records.filter((r): r is ModelRecord => r.kind === 'model').sort(compareModels);
  const bases = records.filter((r): r is BaseRecord => r.kind === 'base').sort(compareBases);
  let pairs = 0;
  const manifests: Descriptor[] = [];
  for (const m of models) {
    const compatible: CompatibleBase[] = compatibleBases(m, bases).map((b) => ({
      digest: b.descriptor.digest,
      runtime: b.runtime,
      version: b.version,
    }));
    pairs += compatible.length;
    manifests.push({
      mediaType: m.descriptor.mediaType,
      digest: m.descriptor.digest,
      size: m.descriptor.size,
      ...(m.descriptor.artifactType ? { artifactType: m.descriptor.artifactType } : {}),
      annotations: {
        [KEY.kind]: 'model',
        [KEY.record]: m.tag,
        [KEY.title]: m.name,
        ...(m.created ? { [KEY.created]: m.created } : {}),
        ...(m.weightsDigest ? { [KEY.weightsDigest]: m.weightsDigest } : {}),
        [KEY.requires]: m.requires,
        [KEY.compatibleBases]: JSON.stringify(compatible),
        ...(m.image ? { [KEY.image]: m.image } : {}),
      },
    });
  }
  for (const b of bases) {
    manifests.push({
      mediaType: b.descriptor.mediaType,
      digest: b.descriptor.digest,
      size: b.descriptor.size,
      ...(b.platform ? { platform: b.platform } : {}),
      annotations: {
        [KEY.kind]: 'base',
        [KEY.record]: b.tag,
        [KEY.runtimeName]: b.runtime,
        [KEY.runtimeVersion]: b.version,
        ...(b.created ? { [KEY.created]: b.created } : {}),
      },
    });
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: CATALOG_ARTIFACT_TYPE,
    manifests,
    annotations: {
      [KEY.schema]: CATALOG_SCHEMA_VERSION,
      [KEY.models]: String(models.length),
      [KEY.bases]: String(bases.length),
      [KEY.pairs]: String(pairs),
    },
  };
  const bytes = encodeJson(index);
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new Error(
      `the compatibility index for ${models.length} models and ${bases.length} bases is ${bytes.byteLength} bytes, over the 4 MiB registries accept`,
    );
  }
  return {
    descriptor: describeJson(OCI_INDEX, bytes),
    bytes,
    models: models.length,
    bases: bases.length,
    pairs,
  };
}

export interface ParsedIndex {
  models: ModelRecord[];
  bases: BaseRecord[];
  /** Per model digest: its compatible bases as the index lists them (newest first). */
  compatible: Map<string, CompatibleBase[]>;
}

/**
 * Reads an index written by buildIndex back into records. Undefined when it is not a catalog
 * index of this schema version; entries that do not parse are left out.
 */
export function parseCatalogIndex(bytes: Uint8Array, what: string): ParsedIndex | undefined {
  let index: ImageIndex;
  try {
    index = parseImageIndex(bytes, what);
  } catch {
    return undefined;
  }
  if (index.annotations?.[KEY.schema] !== CATALOG_SCHEMA_VERSION) return undefined;
  const out: ParsedIndex = { models: [], bases: [], compatible: new Map() };
  for (const entry of index.manifests) {
    const a = entry.annotations ?? {};
    const tag = a[KEY.record];
    if (!tag || !RECORD_TAG.test(tag)) continue;
    const descriptor: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
    if (entry.artifactType) descriptor.artifactType = entry.artifactType;
    const created = a[KEY.created] ? { created: a[KEY.created] } : {};
    const [title, requires, runtime, version] = [
      a[KEY.title],
      a[KEY.requires],
      a[KEY.runtimeName],
      a[KEY.runtimeVersion],
    ];
    if (a[KEY.kind] === 'model' && title && requires) {
      out.models.push({
        kind: 'model',
        tag,
        descriptor,
        name: title,
        requires,
        ...created,
        ...(a[KEY.weightsDigest] ? { weightsDigest: a[KEY.weightsDigest] } : {}),
        ...imageOf(a[KEY.image]),
      });
      out.compatible.set(entry.digest, readCompatible(a[KEY.compatibleBases]));
    } else if (a[KEY.kind] === 'base' && runtime && version) {
      out.bases.push({
        kind: 'base',
        tag,
        descriptor,
        runtime,
        version,
        ...created,
        ...(entry.platform ? { platform: entry.platform } : {}),
      });
    }
  }
  return out;
}

function imageOf(value: string | undefined): { image?: Digest } {
  return value !== undefined && isDigest(value) ? { image: value } : {};
}

function readCompatible(text: string | undefined): CompatibleBase[] {
  try {
    const list: unknown = JSON.parse(text ?? '[]');
    if (!Array.isArray(list)) return [];
    return list.filter(
      (b): b is CompatibleBase =>
        typeof b?.digest === 'string' &&
        isDigest(b.digest) &&
        typeof b.runtime === 'string' &&
        typeof b.version === 'string',
    );
  } catch {
    return [];
  }
}
