import type { Descriptor, Platform } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { splitDigest } from '../oci/digest.ts';
import { ANNOTATION } from '../oci/media-types.ts';

// The compatibility index: its annotation keys, record tags and what one entry says.
// docs/compat-index.md describes the format; keep the two in step.

export const CATALOG_SCHEMA_VERSION = '1';
export const CATALOG_ARTIFACT_TYPE = 'application/vnd.model-oci.catalog.v1+json';

export const KEY = {
  // On the artifacts themselves (what their builders declare): the same keys they write.
  requires: ANNOTATION.runtimeRequires,
  runtimeName: ANNOTATION.runtimeName,
  runtimeVersion: ANNOTATION.runtimeVersion,
  title: ANNOTATION.title,
  created: ANNOTATION.created,
  weightsDigest: ANNOTATION.weightsDigest,
  // On the index and its entries.
  schema: 'io.model-oci.catalog.schema',
  models: 'io.model-oci.catalog.models',
  bases: 'io.model-oci.catalog.bases',
  pairs: 'io.model-oci.catalog.pairs',
  kind: 'io.model-oci.catalog.kind',
  record: 'io.model-oci.catalog.record',
  compatibleBases: 'io.model-oci.compatible-bases',
  /** On a model entry: the digest of the model's image form (an index of platform images), when recorded. */
  image: 'io.model-oci.image',
} as const;

export type RecordKind = 'model' | 'base';

/** `model-<12 hex>` or `base-<12 hex>`: the immutable tag of a record in the catalog repository. */
export const RECORD_TAG = /^(model|base)-([0-9a-f]{12})$/;

export function recordTag(kind: RecordKind, digest: Digest): string {
  return `${kind}-${splitDigest(digest)[1].slice(0, 12)}`;
}

/** `model-<12 hex>-image`: where a model record's image form is kept in the catalog repository. */
export const IMAGE_RECORD_TAG = /^(model-[0-9a-f]{12})-image$/;

export function imageRecordTag(modelRecordTag: string): string {
  return `${modelRecordTag}-image`;
}

/** What the index needs to know about a recorded model artifact. */
export interface ModelRecord {
  kind: 'model';
  tag: string;
  descriptor: Descriptor;
  name: string;
  /** `<runtime> <semver range>`, as declared. */
  requires: string;
  created?: string;
  weightsDigest?: string;
  /** The digest of its image form, when one is recorded. */
  image?: Digest;
}

/** What the index needs to know about a recorded base image. */
export interface BaseRecord {
  kind: 'base';
  tag: string;
  descriptor: Descriptor;
  runtime: string;
  version: string;
  created?: string;
  platform?: Platform;
}

export type CatalogRecord = ModelRecord | BaseRecord;

/** One element of a model entry's `io.model-oci.compatible-bases`. */
export interface CompatibleBase {
  digest: Digest;
  runtime: string;
  version: string;
}
