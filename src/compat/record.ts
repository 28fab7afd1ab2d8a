import { copyGraph } from '../content/copy.ts';
import { fetchReference } from '../content/read.ts';
import { canMount, type Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import { parseManifestDocument } from '../oci/manifest.ts';
import { UserError } from '../util/errors.ts';
import { describeRecord } from './describe.ts';
import { imageRecordTag, type RecordKind } from './schema.ts';

export interface RecordResult {
  kind: RecordKind;
  /** The record's immutable tag in the catalog repository (`model-<hex12>`, `base-<hex12>`). */
  tag: string;
  digest: Digest;
  /** False when the catalog already held this record (nothing was written). */
  written: boolean;
  /** How the blobs got into the catalog repository. */
  blobs: { present: number; mounted: number; copied: number };
  /** When an image form was recorded: it is kept next to its model's record. */
  image?: { tag: string; digest: Digest; written: boolean };
}

/** The ModelPack manifest an image form says it was made from (model/image-form.ts writes it). */
const MODEL_DIGEST_KEY = 'io.model-oci.model.digest';

/**
 * Copies a model artifact or a base image of `source` into the catalog under its record tag: blobs
 * are mounted across repositories where the catalog can (a registry; no weight bytes move — one
 * that declines a mount gets the blob copied through us), copied otherwise (a layout), then the
 * manifest bytes are put unchanged. A registry catalog takes records from its own registry only.
 * Idempotent: a record already there is left alone.
 */
export async function recordArtifact(
  catalog: Target,
  source: Target,
  reference: string,
  options: { signal?: AbortSignal } = {},
): Promise<RecordResult> {
  const { signal } = options;
  const what = `${source.displayName}${isDigest(reference) ? '@' : ':'}${reference}`;
  if (canMount(catalog) && !catalog.canMountFrom(source)) {
    throw new UserError(
      `the catalog ${catalog.displayName} must be on the same registry as ${what} (its layers are mounted, never copied across registries)`,
    );
  }
  const fetched = await fetchReference(source, reference, signal);
  if (!fetched) throw new UserError(`${what} does not exist`);
  const descriptor: Descriptor = {
    mediaType: fetched.descriptor.mediaType,
    digest: fetched.descriptor.digest,
    size: fetched.bytes.byteLength,
  };
  const doc = parseManifestDocument(fetched.bytes, what, descriptor.mediaType);
  const modelDigest = doc.type === 'index' ? doc.annotations[MODEL_DIGEST_KEY] : undefined;
  if (modelDigest !== undefined) {
    if (!isDigest(modelDigest)) throw new UserError(`${what}: ${MODEL_DIGEST_KEY} is not a digest`);
    return recordImageForm(
      catalog,
      source,
      { ...descriptor, mediaType: doc.mediaType },
      fetched.bytes,
      modelDigest,
      options,
    );
  }
  const record = await describeRecord(source, { ...descriptor, mediaType: doc.mediaType }, doc, what, signal);

  const existing = await catalog.resolve(record.tag, signal);
  if (existing) {
    if (existing.digest !== descriptor.digest) {
      throw new Error(
        `${catalog.displayName}:${record.tag} holds ${existing.digest}, not ${descriptor.digest}: the catalog's record tags were changed by hand`,
      );
    }
    const blobs = { present: 0, mounted: 0, copied: 0 };
    return { kind: record.kind, tag: record.tag, digest: descriptor.digest, written: false, blobs };
  }
  const blobs = await copyGraph(
    source,
    catalog,
    { ...descriptor, mediaType: doc.mediaType },
    {
      mount: true,
      tags: [record.tag],
      rootBytes: fetched.bytes,
      ...(signal ? { signal } : {}),
    },
  );
  return { kind: record.kind, tag: record.tag, digest: descriptor.digest, written: true, blobs };
}

/**
 * An image form (model/image-form.ts) is recorded with its model: the model artifact first (the
 * image's layers are its blobs), then the image under `model-<hex12>-image` in the catalog, which
 * the index update finds next to the model's record. A tag holding another image form of the same
 * model (other platforms) is moved to this one.
 */
async function recordImageForm(
  catalog: Target,
  source: Target,
  descriptor: Descriptor,
  bytes: Uint8Array,
  modelDigest: Digest,
  options: { signal?: AbortSignal },
): Promise<RecordResult> {
  const { signal } = options;
  const model = await recordArtifact(catalog, source, modelDigest, options);
  if (model.kind !== 'model')
    throw new UserError(`${source.displayName}@${modelDigest} is not a model artifact`);
  const tag = imageRecordTag(model.tag);
  const existing = await catalog.resolve(tag, signal);
  if (existing?.digest === descriptor.digest)
    return { ...model, image: { tag, digest: descriptor.digest, written: false } };
  const blobs = await copyGraph(source, catalog, descriptor, {
    mount: true,
    tags: [tag],
    rootBytes: bytes,
    ...(signal ? { signal } : {}),
  });
  const sum = (key: keyof typeof blobs) => model.blobs[key] + blobs[key];
  return {
    ...model,
    blobs: { present: sum('present'), mounted: sum('mounted'), copied: sum('copied') },
    image: { tag, digest: descriptor.digest, written: true },
  };
}
