import { type Digest, InvalidDigestError, parseDigest } from './digest.ts';
import {
  expectArray,
  expectObject,
  expectSafeInteger,
  expectString,
  expectStringMap,
  InvalidDocumentError,
  type JsonObject,
  optional,
} from './validate.ts';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

// image-spec defs-descriptor.json mediaType pattern (RFC 6838).
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export function expectMediaType(value: unknown, path: string): string {
  return expectString(value, path, MEDIA_TYPE, 'a media type');
}

export function expectDigest(value: unknown, path: string): Digest {
  const s = expectString(value, path);
  try {
    return parseDigest(s);
  } catch (err) {
    if (err instanceof InvalidDigestError) throw new InvalidDocumentError(path, err.message);
    throw err;
  }
}

function readPlatform(value: unknown, path: string): Platform {
  const o = expectObject(value, path);
  const platform: Platform = {
    architecture: expectString(o.architecture, `${path}.architecture`),
    os: expectString(o.os, `${path}.os`),
  };
  const osVersion = optional(o, 'os.version', path, expectString);
  if (osVersion !== undefined) platform['os.version'] = osVersion;
  const features = optional(o, 'os.features', path, (v, p) =>
    expectArray(v, p).map((f, i) => expectString(f, `${p}[${i}]`)),
  );
  if (features !== undefined) platform['os.features'] = features;
  const variant = optional(o, 'variant', path, expectString);
  if (variant !== undefined) platform.variant = variant;
  return platform;
}

/** Validates one descriptor and returns a copy holding only the fields the spec defines. */
export function readDescriptor(value: unknown, path: string): Descriptor {
  const o: JsonObject = expectObject(value, path);
  const desc: Descriptor = {
    mediaType: expectMediaType(o.mediaType, `${path}.mediaType`),
    digest: expectDigest(o.digest, `${path}.digest`),
    size: expectSafeInteger(o.size, `${path}.size`),
  };
  const urls = optional(o, 'urls', path, (v, p) =>
    expectArray(v, p).map((u, i) => expectString(u, `${p}[${i}]`)),
  );
  if (urls !== undefined) desc.urls = urls;
  const annotations = optional(o, 'annotations', path, expectStringMap);
  if (annotations !== undefined) desc.annotations = annotations;
  const data = optional(o, 'data', path, (v, p) => expectString(v, p, /^[A-Za-z0-9+/]*={0,2}$/, 'base64'));
  if (data !== undefined) desc.data = data;
  const platform = optional(o, 'platform', path, readPlatform);
  if (platform !== undefined) desc.platform = platform;
  const artifactType = optional(o, 'artifactType', path, expectMediaType);
  if (artifactType !== undefined) desc.artifactType = artifactType;
  return desc;
}
