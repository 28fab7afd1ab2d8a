import type { Target } from '../content/target.ts';
import type { Descriptor, Platform } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { describeJson, encodeJson, type ImageIndex, type ImageManifest } from '../oci/manifest.ts';
import { ANNOTATION, OCI_INDEX, OCI_MANIFEST, parseModelLayerMediaType } from '../oci/media-types.ts';
import { UsageError } from '../util/errors.ts';

// The image form of a model artifact: the same layer blobs, described as a plain OCI image — an
// image config with rootfs.diff_ids and layers of type application/vnd.oci.image.layer.v1.tar+zstd
// — so containerd pulls and unpacks it and Kubernetes mounts it as an image volume. One image per
// platform (the weights are the same bytes on every one; only the config's architecture differs),
// under one index. Costs one small config per platform, their manifests and the index.

export const IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** On the image form's index and manifests: the ModelPack manifest it was made from. */
export const MODEL_DIGEST_KEY = 'io.model-oci.model.digest';
/** The tag of the image form next to each tag of the artifact. */
export const IMAGE_TAG_SUFFIX = '-image';

export const DEFAULT_IMAGE_PLATFORMS: readonly Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

const IMAGE_LAYER: Record<string, string> = {
  'tar+zstd': 'application/vnd.oci.image.layer.v1.tar+zstd',
  tar: 'application/vnd.oci.image.layer.v1.tar',
};

export interface BuiltDocument {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export interface ImageForm {
  index: BuiltDocument;
  images: { platform: Platform; config: BuiltDocument; manifest: BuiltDocument }[];
}

/** `linux/amd64,linux/arm64/v8` → platforms; a usage error naming `what` for anything else. */
export function parsePlatforms(text: string, what: string): Platform[] {
  const platforms = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(p);
      if (!m)
        throw new UsageError(`${what}: ${JSON.stringify(p)} is not OS/ARCH[/VARIANT] (e.g. linux/arm64)`);
      return { os: m[1]!, architecture: m[2]!, ...(m[3] ? { variant: m[3] } : {}) };
    });
  if (platforms.length === 0) throw new UsageError(`${what}: name at least one platform`);
  return platforms;
}

/**
 * The image form of a model manifest whose layers have these diffIDs. Deterministic: the same
 * artifact and platforms give the same bytes, so a rebuild of an unchanged model writes nothing.
 */
export function buildImageForm(
  model: { descriptor: Descriptor; manifest: ImageManifest; diffIds: readonly Digest[] },
  platforms: readonly Platform[],
): ImageForm {
  const { manifest } = model;
  const annotations: Record<string, string> = {};
  for (const key of [ANNOTATION.title, ANNOTATION.created, ANNOTATION.weightsDigest, ANNOTATION.encoding]) {
    const value = manifest.annotations?.[key];
    if (value !== undefined) annotations[key] = value;
  }
  annotations[MODEL_DIGEST_KEY] = model.descriptor.digest;
  const layers = manifest.layers.map((layer): Descriptor => {
    const encoding = parseModelLayerMediaType(layer.mediaType)?.encoding;
    const mediaType = encoding ? IMAGE_LAYER[encoding] : undefined;
    if (!mediaType)
      throw new UsageError(
        `the image form needs tar layers (this artifact has ${layer.mediaType}); build with --encoding tar`,
      );
    return {
      mediaType,
      digest: layer.digest,
      size: layer.size,
      ...(layer.annotations ? { annotations: layer.annotations } : {}),
    };
  });
  const created = manifest.annotations?.[ANNOTATION.created];
  const images = platforms.map((platform) => {
    const configBytes = encodeJson({
      ...(created ? { created } : {}),
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Labels: annotations },
      rootfs: { type: 'layers', diff_ids: model.diffIds },
    });
    const config = { descriptor: describeJson(IMAGE_CONFIG, configBytes), bytes: configBytes };
    const image: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: config.descriptor,
      layers,
      annotations,
    };
    const bytes = encodeJson(image);
    return { platform, config, manifest: { descriptor: describeJson(OCI_MANIFEST, bytes), bytes } };
  });
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((i) => ({ ...i.manifest.descriptor, platform: i.platform })),
    annotations,
  };
  const bytes = encodeJson(index);
  return { index: { descriptor: describeJson(OCI_INDEX, bytes), bytes }, images };
}

export interface PublishedImageForm {
  digest: Digest;
  tags: string[];
  platforms: string[];
  /** False when every tag already pointed at this index (nothing was written). */
  written: boolean;
}

/**
 * Stores the image form in `target` (its layers are the artifact's, already there) and points
 * `tags` at its index. A tag that already holds it is left alone; when all do, nothing is written.
 */
export async function publishImageForm(
  target: Target,
  form: ImageForm,
  tags: readonly string[],
  signal?: AbortSignal,
): Promise<PublishedImageForm> {
  const result = {
    digest: form.index.descriptor.digest,
    tags: [...tags],
    platforms: form.images.map(
      (i) =>
        `${i.platform.os}/${i.platform.architecture}${i.platform.variant ? `/${i.platform.variant}` : ''}`,
    ),
  };
  const current = await Promise.all(tags.map((t) => target.resolve(t, signal)));
  if (current.every((d) => d?.digest === form.index.descriptor.digest)) return { ...result, written: false };
  for (const image of form.images) {
    await target.putBlob(image.config.descriptor, image.config.bytes, signal);
    await target.putManifest(image.manifest.descriptor, image.manifest.bytes, [], signal);
  }
  await target.putManifest(form.index.descriptor, form.index.bytes, tags, signal);
  return { ...result, written: true };
}

/** The image form's tag for an artifact tag (`1.0` → `1.0-image`); a usage error when too long. */
export function imageTagOf(tag: string): string {
  const imageTag = `${tag}${IMAGE_TAG_SUFFIX}`;
  if (imageTag.length > 128)
    throw new UsageError(
      `tag ${JSON.stringify(tag)} is too long to add ${IMAGE_TAG_SUFFIX} for the image form (128 characters at most)`,
    );
  return imageTag;
}
