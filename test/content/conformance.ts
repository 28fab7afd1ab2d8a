// The Target conformance suite: one set of behaviours every implementation must have — the OCI
// layout, a registry repository, the dry-run wrapper, and any later one. A target under test comes
// from a factory that gives a fresh, empty one each time.
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { DigestMismatchError, NotFoundError, SizeLimitError } from '../../src/content/errors.ts';
import { canFetchReference, canListTags, canReadRanges, type Target } from '../../src/content/target.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { sha256Digest } from '../../src/oci/digest.ts';
import { describeJson, encodeJson, MAX_MANIFEST_BYTES } from '../../src/oci/manifest.ts';
import { OCI_MANIFEST } from '../../src/oci/media-types.ts';

export interface TargetUnderTest {
  target: Target;
  /** Anything the target leaves behind besides its blobs and tags (a layout's ingest folder), for the abort test. */
  leftovers?: () => Promise<string[]>;
}

export interface ConformanceOptions {
  /** False for the dry run: writes are checked and forgotten, nothing is readable afterwards. */
  persists: boolean;
  /** The capabilities the implementation declares (checked, not assumed). */
  lists: boolean;
  fetchesReferences: boolean;
  readsRanges: boolean;
}

const LAYER = 'application/vnd.oci.image.layer.v1.tar';

function blobOf(bytes: Uint8Array, mediaType = LAYER): Descriptor {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.byteLength };
}

async function writeBlob(target: Target, chunks: Uint8Array[], expected?: Descriptor) {
  const writer = await target.openBlobWriter();
  for (const chunk of chunks) await writer.write(chunk);
  return writer.commit(expected ? { digest: expected.digest, size: expected.size } : undefined);
}

async function read(target: Target, desc: Descriptor): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await target.fetchBlob(desc)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A small image manifest over one layer (already stored). */
async function smallManifest(target: Target, note: string) {
  const config = encodeJson({ note });
  const configDesc = blobOf(config, 'application/vnd.oci.image.config.v1+json');
  await target.putBlob(configDesc, config);
  const layer = new Uint8Array(randomBytes(300));
  const layerDesc = blobOf(layer);
  await target.putBlob(layerDesc, layer);
  const bytes = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers: [layerDesc],
  });
  return { desc: describeJson(OCI_MANIFEST, bytes), bytes };
}

async function failure(work: Promise<unknown>): Promise<Error> {
  return work.then(
    () => expect.fail('expected a failure'),
    (err: unknown) => err as Error,
  );
}

export function describeTargetConformance(
  name: string,
  make: () => Promise<TargetUnderTest>,
  options: ConformanceOptions,
): void {
  describe(`Target conformance: ${name}`, () => {
    test('a blob round trip: written in pieces, committed under its digest, read back the same', async () => {
      const { target } = await make();
      const bytes = randomBytes(3 * 1024 * 1024 + 11);
      const desc = blobOf(bytes);
      const committed = await writeBlob(target, [bytes.subarray(0, 1000), bytes.subarray(1000)], desc);
      expect(committed).toMatchObject({ digest: desc.digest, size: desc.size });
      expect(await target.hasBlob(desc.digest)).toBe(options.persists);
      if (options.persists) expect((await read(target, desc)).equals(bytes)).toBe(true);
      const small = new Uint8Array(randomBytes(64));
      const smallDesc = blobOf(small);
      expect(await target.putBlob(smallDesc, small)).toEqual({ stored: true });
      if (options.persists) expect(await target.putBlob(smallDesc, small)).toEqual({ stored: false });
    });

    test('bytes that do not match their digest are refused and nothing is published', async () => {
      const { target } = await make();
      const bytes = randomBytes(5000);
      const wrong = blobOf(randomBytes(5000));
      const err = await failure(writeBlob(target, [bytes], wrong));
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect(await target.hasBlob(sha256Digest(bytes))).toBe(false);
      expect(await failure(target.putBlob(wrong, new Uint8Array(bytes)))).toBeInstanceOf(DigestMismatchError);
      expect(await target.hasBlob(wrong.digest)).toBe(false);
    });

    test.runIf(options.persists)(
      'ranged reads: any [start, end) of a blob, and NotFoundError for an absent one',
      async () => {
        const { target } = await make();
        expect(canReadRanges(target)).toBe(options.readsRanges);
        if (!canReadRanges(target)) return;
        const bytes = randomBytes(2 * 1024 * 1024 + 5);
        const desc = blobOf(bytes);
        await writeBlob(target, [bytes], desc);
        const range = async (start: number, end: number) => {
          const chunks: Uint8Array[] = [];
          for await (const chunk of await target.fetchBlobRange(desc, start, end)) chunks.push(chunk);
          return Buffer.concat(chunks);
        };
        for (const [start, end] of [
          [0, desc.size],
          [0, 1],
          [1_000_000, 1_500_001],
          [desc.size - 3, desc.size],
          [17, 17],
        ] as const) {
          expect((await range(start, end)).equals(bytes.subarray(start, end))).toBe(true);
        }
        expect(await failure(target.fetchBlobRange(blobOf(randomBytes(9)), 0, 9))).toBeInstanceOf(
          NotFoundError,
        );
      },
    );

    test('a blob that is not there is a NotFoundError, a manifest that is not there resolves to nothing', async () => {
      const { target } = await make();
      const absent = blobOf(randomBytes(10));
      expect(await failure(read(target, absent))).toBeInstanceOf(NotFoundError);
      expect(await target.resolve('no-such-tag')).toBeUndefined();
      expect(await target.resolve(absent.digest)).toBeUndefined();
    });

    test('manifests: put under a tag, resolved by tag and digest, tagged again, read back byte for byte', async () => {
      const { target } = await make();
      const { desc, bytes } = await smallManifest(target, name);
      await target.putManifest(desc, bytes, ['one']);
      const resolved = await target.resolve('one');
      if (!options.persists) {
        expect(resolved).toBeUndefined();
        return;
      }
      expect(resolved).toMatchObject({ mediaType: OCI_MANIFEST, digest: desc.digest, size: desc.size });
      expect(await target.resolve(desc.digest)).toMatchObject({ digest: desc.digest, size: desc.size });
      expect(Buffer.from(await target.fetchManifest(desc)).equals(Buffer.from(bytes))).toBe(true);
      await target.tag(desc, ['two', 'three']);
      expect((await target.resolve('three'))?.digest).toBe(desc.digest);
      expect(canListTags(target)).toBe(options.lists);
      if (canListTags(target)) expect((await target.listTags()).sort()).toEqual(['one', 'three', 'two']);
      expect(canFetchReference(target)).toBe(options.fetchesReferences);
      if (canFetchReference(target)) {
        const fetched = await target.fetchReference('two');
        expect(fetched?.descriptor).toMatchObject({ digest: desc.digest, size: desc.size });
        expect(Buffer.from(fetched!.bytes).equals(Buffer.from(bytes))).toBe(true);
        expect(await target.fetchReference('no-such-tag')).toBeUndefined();
      }
    });

    test('the 4 MiB manifest limit, both ways', async () => {
      const { target } = await make();
      const huge = encodeJson({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        padding: 'x'.repeat(MAX_MANIFEST_BYTES),
      });
      const desc = describeJson(OCI_MANIFEST, huge);
      expect(await failure(target.putManifest(desc, huge, ['huge']))).toBeInstanceOf(SizeLimitError);
      expect(await failure(target.fetchManifest(desc))).toBeInstanceOf(SizeLimitError);
    });

    test('concurrent writers: distinct blobs, the same blob, tags on one manifest, all land', async () => {
      const { target } = await make();
      const blobs = Array.from({ length: 6 }, () => randomBytes(200_000));
      const same = randomBytes(300_000);
      await Promise.all([
        ...blobs.map((b) => writeBlob(target, [b], blobOf(b))),
        ...Array.from({ length: 4 }, () => writeBlob(target, [same], blobOf(same))),
      ]);
      const manifests = await Promise.all(
        Array.from({ length: 5 }, (_, i) => smallManifest(target, `m${i}`)),
      );
      await Promise.all(manifests.map((m, i) => target.putManifest(m.desc, m.bytes, [`tag-${i}`])));
      if (!options.persists) return;
      for (const b of [...blobs, same]) expect(await target.hasBlob(sha256Digest(b))).toBe(true);
      for (const [i, m] of manifests.entries())
        expect((await target.resolve(`tag-${i}`))?.digest).toBe(m.desc.digest);
    });

    test('an aborted write leaves nothing behind', async () => {
      const { target, leftovers } = await make();
      const bytes = randomBytes(2 * 1024 * 1024);
      const writer = await target.openBlobWriter();
      await writer.write(bytes.subarray(0, 1024 * 1024));
      await writer.abort();
      await writer.abort(); // safe twice
      expect(await target.hasBlob(sha256Digest(bytes))).toBe(false);
      expect(await target.hasBlob(sha256Digest(bytes.subarray(0, 1024 * 1024)))).toBe(false);
      if (leftovers) expect(await leftovers()).toEqual([]);
    });
  });
}
