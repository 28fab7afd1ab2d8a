import { type Digest, InvalidDigestError, parseDigest } from './digest.ts';
import {
  expectArray,
  expectObject,
  expectSafeInteger,
  expectString,
  expectStringMap,
  InvalidDocumentError,
  type JsonObject,
  setOptional,
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

function expectStringList(value: unknown, path: string): string[] {
  return expectArray(value, path).map((item, i) => expectString(item, `${path}[${i}]`));
}

function readPlatform(value: unknown, path: string): Platform {
  const o = expectObject(value, path);
  const platform: Platform = {
    architecture: expectString(o.architecture, `${path}.architecture`),
    os: expectString(o.os, `${path}.os`),
  };
  setOptional(platform, o, 'os.version', path, expectString);
  setOptional(platform, o, 'os.features', path, expectStringList);
  setOptional(platform, o, 'variant', path, expectString);
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
  setOptional(desc, o, 'urls', path, expectStringList);
  setOptional(desc, o, 'annotations', path, expectStringMap);
  setOptional(desc, o, 'data', path, (v, p) => expectString(v, p, /^[A-Za-z0-9+/]*={0,2}$/, 'base64'));
  setOptional(desc, o, 'platform', path, readPlatform);
  setOptional(desc, o, 'artifactType', path, expectMediaType);
  return desc;
}
