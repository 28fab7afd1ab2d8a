import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { describeRecord } from './describe.ts';
import { getManifest, type ManifestDoc, readManifestDoc } from './read.ts';
import type { RecordKind } from './schema.ts';

const BLOBS_AT_ONCE = 4;

export interface RecordResult {
  kind: RecordKind;
  /** The record's immutable tag in the catalog repository (`model-<hex12>`, `base-<hex12>`). */
  tag: string;
  digest: Digest;
  /** False when the catalog already held this record (nothing was written). */
  written: boolean;
  /** How the blobs got into the catalog repository. */
  blobs: { present: number; mounted: number; copied: number };
}

/**
 * Copies a model artifact or a base image of `source` into the catalog repository under its record
 * tag: blobs are mounted across repositories (no weight bytes move; a registry that answers a mount
 * with 202 gets them copied registry-side through us), then the manifest bytes are PUT unchanged.
 * Both targets must be on the same registry. Idempotent: a record already there is left alone.
 */
export async function recordArtifact(
  catalog: RegistryTarget,
  source: RegistryTarget,
  reference: string,
  options: { signal?: AbortSignal } = {},
): Promise<RecordResult> {
  const { signal } = options;
  const what = `${source.displayName}${isDigest(reference) ? '@' : ':'}${reference}`;
  if (catalog.registry !== source.registry) {
    throw new UserError(
      `the catalog ${catalog.displayName} must be on the same registry as ${what} (its layers are mounted, never copied across registries)`,
    );
  }
  const fetched = await getManifest(source, reference, signal);
  if (!fetched) throw new UserError(`${what} does not exist`);
  const descriptor: Descriptor = {
    mediaType: fetched.mediaType,
    digest: fetched.digest,
    size: fetched.bytes.byteLength,
  };
  const doc = readManifestDoc(fetched.bytes, fetched.mediaType, what);
  const record = await describeRecord(source, descriptor, doc, what, signal);

  const blobs = { present: 0, mounted: 0, copied: 0 };
  const existing = await catalog.resolve(record.tag, signal);
  if (existing) {
    if (existing.digest !== descriptor.digest) {
      throw new Error(
        `${catalog.displayName}:${record.tag} holds ${existing.digest}, not ${descriptor.digest}: the catalog's record tags were changed by hand`,
      );
    }
    return { kind: record.kind, tag: record.tag, digest: descriptor.digest, written: false, blobs };
  }
  await copyManifest(catalog, source, doc, blobs, signal);
  await catalog.putManifestAt(record.tag, descriptor, fetched.bytes, signal);
  return { kind: record.kind, tag: record.tag, digest: descriptor.digest, written: true, blobs };
}

/** Makes everything `doc` refers to exist in the catalog: blobs by mount, an index's manifests by digest. */
async function copyManifest(
  catalog: RegistryTarget,
  source: RegistryTarget,
  doc: ManifestDoc,
  blobs: RecordResult['blobs'],
  signal?: AbortSignal,
): Promise<void> {
  if (doc.type === 'index') {
    for (const child of doc.manifests) {
      const fetched = await getManifest(source, child.digest, signal);
      if (!fetched)
        throw new Error(`${source.displayName}: manifest ${child.digest} of the index is missing`);
      const childDoc = readManifestDoc(
        fetched.bytes,
        child.mediaType,
        `${source.displayName}@${child.digest}`,
      );
      await copyManifest(catalog, source, childDoc, blobs, signal);
      const desc = { mediaType: child.mediaType, digest: fetched.digest, size: fetched.bytes.byteLength };
      await catalog.putManifestAt(child.digest, desc, fetched.bytes, signal);
    }
    return;
  }
  // Foreign layers (urls) stay where they are, as every registry leaves them.
  const wanted = [doc.config, ...doc.layers].filter((d) => !d.urls?.length);
  const unique = [...new Map(wanted.map((d) => [d.digest, d])).values()];
  await mapConcurrent(
    unique,
    BLOBS_AT_ONCE,
    async (desc, _i, inner) => {
      if (await catalog.hasBlob(desc.digest, inner)) {
        blobs.present++;
        return;
      }
      blobs[await catalog.mountBlob(desc, source, inner)]++;
    },
    signal,
  );
}
