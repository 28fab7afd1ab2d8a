import { type Descriptor, expectMediaType, readDescriptor } from './descriptor.ts';
import { type Digest, sha256Digest } from './digest.ts';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.ts';
import {
  expectArray,
  expectObject,
  expectStringMap,
  InvalidDocumentError,
  type JsonObject,
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

/** Manifests and indexes larger than this are refused, as registries do (distribution-spec). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

function expectSchemaVersion2(o: JsonObject, what: string): 2 {
  if (o.schemaVersion !== 2) {
    throw new InvalidDocumentError(
      `${what}.schemaVersion`,
      `expected 2, found ${JSON.stringify(o.schemaVersion)}`,
    );
  }
  return 2;
}

/**
 * What manifests and indexes share: the size limit, JSON, schemaVersion 2, and a mediaType that —
 * when present — must be the expected one.
 */
function readDocument(bytes: Uint8Array, what: string, mediaType: string): JsonObject {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new InvalidDocumentError('', `${what} is ${bytes.byteLength} bytes, over the 4 MiB manifest limit`);
  }
  const o = expectObject(parseJson(bytes, what), what);
  expectSchemaVersion2(o, what);
  if (o.mediaType !== undefined && o.mediaType !== mediaType) {
    throw new InvalidDocumentError(
      `${what}.mediaType`,
      `expected ${mediaType}, found ${JSON.stringify(o.mediaType)}`,
    );
  }
  return o;
}

/** The optional fields manifests and indexes share. */
function readCommonFields(target: ImageManifest | ImageIndex, o: JsonObject, what: string): void {
  setOptional(target, o, 'artifactType', what, expectMediaType);
  setOptional(target, o, 'subject', what, readDescriptor);
  setOptional(target, o, 'annotations', what, expectStringMap);
}

export function parseImageManifest(bytes: Uint8Array, what = 'manifest'): ImageManifest {
  const o = readDocument(bytes, what, OCI_MANIFEST);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: readDescriptor(o.config, `${what}.config`),
    layers: expectArray(o.layers, `${what}.layers`).map((l, i) => readDescriptor(l, `${what}.layers[${i}]`)),
  };
  readCommonFields(manifest, o, what);
  return manifest;
}

export function parseImageIndex(bytes: Uint8Array, what = 'index'): ImageIndex {
  const o = readDocument(bytes, what, OCI_INDEX);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: expectArray(o.manifests, `${what}.manifests`).map((m, i) =>
      readDescriptor(m, `${what}.manifests[${i}]`),
    ),
  };
  readCommonFields(index, o, what);
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
