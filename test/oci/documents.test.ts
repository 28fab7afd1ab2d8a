import { describe, expect, test } from 'vitest';
import { isDigest, parseDigest, sha256Digest } from '../../src/oci/digest.ts';
import {
  encodeJson,
  MAX_MANIFEST_BYTES,
  parseImageIndex,
  parseImageManifest,
} from '../../src/oci/manifest.ts';

const digest = `sha256:${'0'.repeat(64)}`;
const bytes = (value: unknown): Uint8Array => encodeJson(value);
const manifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest, size: 2 },
  layers: [
    { mediaType: 'application/vnd.cncf.model.weight.v1.tar+zstd', digest, size: 10, annotations: { a: 'b' } },
  ],
};

describe('digests', () => {
  test('sha256 of known input', () => {
    expect(sha256Digest('abc')).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
  test('grammar and registered algorithm lengths', () => {
    expect(isDigest(digest)).toBe(true);
    expect(isDigest('sha256:ABC')).toBe(false);
    expect(isDigest(`sha512:${'a'.repeat(128)}`)).toBe(true);
    expect(isDigest('sha256')).toBe(false);
    expect(() => parseDigest(`sha256:${'0'.repeat(63)}`)).toThrow('64 lowercase hex digits');
  });
});

describe('manifest and index validation', () => {
  test('a valid manifest keeps only spec fields', () => {
    const parsed = parseImageManifest(bytes({ ...manifest, extra: 1 }));
    expect(parsed.layers[0]?.annotations).toEqual({ a: 'b' });
    expect('extra' in parsed).toBe(false);
  });

  test.each([
    [{ ...manifest, schemaVersion: 1 }, 'manifest.schemaVersion: expected 2, found 1'],
    [{ ...manifest, layers: 'x' }, 'manifest.layers: expected an array, found a string'],
    [
      { ...manifest, config: { ...manifest.config, digest: 'sha256:xyz' } },
      'manifest.config.digest: "sha256:xyz": a sha256 digest has 64 lowercase hex digits',
    ],
    [
      { ...manifest, config: { ...manifest.config, size: -1 } },
      'manifest.config.size: expected an integer >= 0, found -1',
    ],
    [
      { ...manifest, layers: [{ ...manifest.layers[0], mediaType: 'nope' }] },
      'manifest.layers[0].mediaType: "nope" is not a media type',
    ],
    [{ ...manifest, annotations: { k: 1 } }, 'manifest.annotations["k"]: expected a string, found a number'],
    [
      { ...manifest, mediaType: 'application/vnd.oci.image.index.v1+json' },
      'manifest.mediaType: expected application/vnd.oci.image.manifest.v1+json',
    ],
  ])('rejects a broken manifest, naming the field (%#)', (value, message) => {
    expect(() => parseImageManifest(bytes(value))).toThrow(message);
  });

  test('rejects bytes that are not JSON, or not UTF-8', () => {
    expect(() => parseImageManifest(new TextEncoder().encode('{"schemaVersion":'))).toThrow(
      'manifest is not valid JSON',
    );
    expect(() => parseImageIndex(new Uint8Array([0xff, 0xfe]))).toThrow();
  });

  test('refuses manifests over 4 MiB', () => {
    expect(() => parseImageManifest(new Uint8Array(MAX_MANIFEST_BYTES + 1))).toThrow(
      'over the 4 MiB manifest limit',
    );
  });

  test('index: descriptors are validated one by one', () => {
    const index = {
      schemaVersion: 2,
      manifests: [
        { mediaType: manifest.mediaType, digest, size: 1 },
        { digest, size: 1 },
      ],
    };
    expect(() => parseImageIndex(bytes(index), 'index.json')).toThrow(
      'index.json.manifests[1].mediaType: expected a string, found nothing',
    );
  });
});
