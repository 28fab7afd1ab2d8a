import { type Descriptor, expectMediaType, readDescriptor } from './descriptor.ts';
import { type Digest, sha256Digest } from './digest.ts';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from './media-types.ts';
import {
  expectArray,
  expectObject,
  expectStringMap,
  InvalidDocumentError,
  parseJson,
  setOptional,
} from './validate.ts';

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: typeof OCI_MANIFEST;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: typeof OCI_INDEX;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * A manifest or an index as registries serve them: OCI or Docker media types alike, every
 * descriptor validated, annotations an empty map when absent. What the readers of foreign content
 * (base images, records, copies) see; ImageManifest and ImageIndex are the strict OCI forms we write.
 */
export type ManifestDocument =
  | {
      type: 'manifest';
      mediaType: string;
      artifactType?: string;
      config: Descriptor;
      layers: Descriptor[];
      subject?: Descriptor;
      annotations: Record<string, string>;
    }
  | {
      type: 'index';
      mediaType: string;
      artifactType?: string;
      manifests: Descriptor[];
      subject?: Descriptor;
      annotations: Record<string, string>;
    };

/** Manifests and indexes larger than this are refused, as registries do (distribution-spec). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/**
 * The one reader of manifests and indexes: the size limit, JSON, schemaVersion 2, and the media
 * type — the document's own, else the one it was served as (`servedAs`), else what its fields say.
 * Errors name the JSON path (`manifest.layers[2].digest: …`).
 */
export function parseManifestDocument(
  bytes: Uint8Array,
  what = 'manifest',
  servedAs?: string,
  only?: typeof OCI_MANIFEST | typeof OCI_INDEX,
): ManifestDocument {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new InvalidDocumentError('', `${what} is ${bytes.byteLength} bytes, over the 4 MiB manifest limit`);
  }
  const o = expectObject(parseJson(bytes, what), what);
  if (o.schemaVersion !== 2) {
    throw new InvalidDocumentError(
      `${what}.schemaVersion`,
      `expected 2, found ${JSON.stringify(o.schemaVersion)}`,
    );
  }
  const declared = o.mediaType === undefined ? undefined : expectMediaType(o.mediaType, `${what}.mediaType`);
  if (only && declared !== undefined && declared !== only) throw wrongType(what, only, declared);
  const isIndex = declared
    ? INDEX_TYPES.includes(declared)
    : servedAs
      ? INDEX_TYPES.includes(servedAs)
      : o.manifests !== undefined && o.config === undefined;
  const mediaType =
    declared ??
    (servedAs && [...INDEX_TYPES, ...MANIFEST_TYPES].includes(servedAs)
      ? servedAs
      : isIndex
        ? OCI_INDEX
        : OCI_MANIFEST);
  const annotations =
    o.annotations === undefined ? {} : expectStringMap(o.annotations, `${what}.annotations`);
  const doc: ManifestDocument = isIndex
    ? {
        type: 'index',
        mediaType,
        manifests: expectArray(o.manifests, `${what}.manifests`).map((m, i) =>
          readDescriptor(m, `${what}.manifests[${i}]`),
        ),
        annotations,
      }
    : {
        type: 'manifest',
        mediaType,
        config: readDescriptor(o.config, `${what}.config`),
        layers: expectArray(o.layers, `${what}.layers`).map((l, i) =>
          readDescriptor(l, `${what}.layers[${i}]`),
        ),
        annotations,
      };
  setOptional(doc, o, 'artifactType', what, expectMediaType);
  setOptional(doc, o, 'subject', what, readDescriptor);
  return doc;
}

function wrongType(what: string, expected: string, found: string): InvalidDocumentError {
  return new InvalidDocumentError(
    `${what}.mediaType`,
    `expected ${expected}, found ${JSON.stringify(found)}`,
  );
}

/** The strict OCI form: an image manifest of media type OCI_MANIFEST (what a model artifact is). */
export function parseImageManifest(bytes: Uint8Array, what = 'manifest'): ImageManifest {
  const doc = parseManifestDocument(bytes, what, OCI_MANIFEST, OCI_MANIFEST);
  if (doc.type !== 'manifest' || doc.mediaType !== OCI_MANIFEST)
    throw wrongType(what, OCI_MANIFEST, doc.mediaType);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: doc.config,
    layers: doc.layers,
  };
  if (doc.artifactType !== undefined) manifest.artifactType = doc.artifactType;
  if (doc.subject !== undefined) manifest.subject = doc.subject;
  if (Object.keys(doc.annotations).length > 0) manifest.annotations = doc.annotations;
  return manifest;
}

/** The strict OCI form: an image index of media type OCI_INDEX (index.json, the compatibility index). */
export function parseImageIndex(bytes: Uint8Array, what = 'index'): ImageIndex {
  const doc = parseManifestDocument(bytes, what, OCI_INDEX, OCI_INDEX);
  if (doc.type !== 'index') throw wrongType(what, OCI_INDEX, doc.mediaType);
  const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: doc.manifests };
  if (doc.artifactType !== undefined) index.artifactType = doc.artifactType;
  if (doc.subject !== undefined) index.subject = doc.subject;
  if (Object.keys(doc.annotations).length > 0) index.annotations = doc.annotations;
  return index;
}

/**
 * The bytes that get hashed and stored. Key order is the order the object was built in, and there is
 * no whitespace, so the same inputs always give the same digest.
 */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function describeJson(mediaType: string, bytes: Uint8Array, extra?: Partial<Descriptor>): Descriptor {
  const digest: Digest = sha256Digest(bytes);
  return { mediaType, digest, size: bytes.byteLength, ...extra };
}
