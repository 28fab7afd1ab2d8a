// Media types and annotation keys from the OCI image-spec and the CNCF ModelPack spec
// (modelpack/model-spec specs-go/v1/mediatype.go and annotations.go).

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const MODEL_ARTIFACT_TYPE = 'application/vnd.cncf.model.manifest.v1+json';
export const MODEL_CONFIG = 'application/vnd.cncf.model.config.v1+json';

/** What a layer holds, in ModelPack's vocabulary. */
export type LayerKind = 'weight' | 'weight.config' | 'doc' | 'code' | 'dataset';

/** How a layer's bytes are encoded: a tar (optionally zstd-compressed) or the plain file. */
export type LayerEncoding = 'tar+zstd' | 'tar' | 'raw';

export function modelLayerMediaType(kind: LayerKind, encoding: LayerEncoding): string {
  return `application/vnd.cncf.model.${kind}.v1.${encoding}`;
}

const MODEL_LAYER =
  /^application\/vnd\.cncf\.model\.(weight|weight\.config|doc|code|dataset)\.v1\.(tar\+zstd|tar|raw)$/;

export function parseModelLayerMediaType(
  mediaType: string,
): { kind: LayerKind; encoding: LayerEncoding } | undefined {
  const m = MODEL_LAYER.exec(mediaType);
  if (!m) return undefined;
  return { kind: m[1] as LayerKind, encoding: m[2] as LayerEncoding };
}

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  created: 'org.opencontainers.image.created',
  refName: 'org.opencontainers.image.ref.name',
  modelFilepath: 'org.cncf.model.filepath',
  modelFileMetadata: 'org.cncf.model.file.metadata+json',
  modelMediaTypeUntested: 'org.cncf.model.file.mediatype.untested',
  // This project's own keys (documented in docs/artifact-format.md).
  weightsDigest: 'io.model-oci.weights.digest',
  encoding: 'io.model-oci.encoding',
  layerFiles: 'io.model-oci.files',
  /** On a part layer: which bytes of which file it holds (docs/artifact-format.md, part layers). */
  part: 'io.model-oci.part',
  /** On a model artifact: the runtime it needs, `<name> <semver range>` (docs/compat-index.md). */
  runtimeRequires: 'io.model-oci.runtime.requires',
  /** On a base image: the runtime it provides, name and version. */
  runtimeName: 'io.model-oci.runtime.name',
  runtimeVersion: 'io.model-oci.runtime.version',
} as const;

/** Docker's manifest types, which registries still serve for images pushed by docker. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
