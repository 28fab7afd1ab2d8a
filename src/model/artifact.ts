import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { describeJson, encodeJson, type ImageManifest } from '../oci/manifest.ts';
import {
  ANNOTATION,
  type LayerEncoding,
  type LayerKind,
  MODEL_ARTIFACT_TYPE,
  MODEL_CONFIG,
  modelLayerMediaType,
  OCI_MANIFEST,
  parseModelLayerMediaType,
} from '../oci/media-types.ts';
import { encodePart, type PartInfo } from './parts.ts';
import type { DigestedFile } from './weights-digest.ts';

/** ModelPack `config.config`: what we can tell about the model from its files. */
export interface ModelFacts {
  format?: string;
  architecture?: string;
  precision?: string;
}

export interface LayerRecord {
  kind: LayerKind;
  encoding: LayerEncoding;
  grouped: boolean;
  untested: boolean;
  files: DigestedFile[];
  executable: boolean;
  digest: Digest;
  size: number;
  diffId: Digest;
  /** A part layer's place in its file (its whole-file digest filled in). */
  part?: PartInfo;
}

// Go's encoding of FileMetadata.Typeflag (a byte): '0' regular file, '5' directory.
const TYPEFLAG_FILE = 48;
const TYPEFLAG_DIR = 53;

function commonFolder(paths: readonly string[]): string {
  const parts = paths.map((p) => p.split('/').slice(0, -1));
  const first = parts[0] ?? [];
  let n = first.length;
  for (const p of parts) {
    let i = 0;
    while (i < n && p[i] === first[i]) i++;
    n = i;
  }
  return n === 0 ? '.' : first.slice(0, n).join('/');
}

const TITLE_SUFFIX: Record<LayerEncoding, string> = { 'tar+zstd': '.tar.zst', tar: '.tar', raw: '' };

/**
 * The blob's own name for `oras pull`; a tar layer says it is one, so nobody mistakes it for the
 * file. A group of small files is named after its kind (`doc.tar.zst`); withUniqueTitles renames it
 * when a file of the same name has a layer of its own.
 */
export function layerTitle(layer: Pick<LayerRecord, 'kind' | 'encoding' | 'grouped' | 'files'>): string {
  const stem = layer.grouped ? layer.kind : layer.files[0]!.path;
  return `${stem}${TITLE_SUFFIX[layer.encoding]}`;
}

/** A layer of several files (its file metadata is the folder's, typeflag '5'), as opposed to one file's. */
function isGroupLayer(desc: Descriptor): boolean {
  try {
    const metadata = JSON.parse(desc.annotations?.[ANNOTATION.modelFileMetadata] ?? '{}') as {
      typeflag?: unknown;
    };
    return metadata.typeflag === TYPEFLAG_DIR;
  } catch {
    return false;
  }
}

/**
 * The layers with titles no two share (oras pull writes each layer to a file named by its title and
 * refuses duplicates). One-file layers are titled by their path, which is unique; a group layer whose
 * name a file took (a file called `doc` or `weight.config`) becomes `<kind>-files`, `<kind>-files-2`, …
 * Works on descriptors taken over from an earlier artifact too, whose titles may collide.
 */
export function withUniqueTitles(layers: readonly Descriptor[]): Descriptor[] {
  const taken = new Set(layers.filter((l) => !isGroupLayer(l)).map((l) => l.annotations?.[ANNOTATION.title]));
  return layers.map((layer) => {
    const title = layer.annotations?.[ANNOTATION.title];
    if (!isGroupLayer(layer) || title === undefined) return layer;
    let unique = title;
    const parsed = parseModelLayerMediaType(layer.mediaType);
    const suffix = parsed ? TITLE_SUFFIX[parsed.encoding] : '';
    const stem = parsed ? `${parsed.kind}-files` : `${title}-files`;
    for (let n = 1; taken.has(unique); n++) unique = `${stem}${n === 1 ? '' : `-${n}`}${suffix}`;
    taken.add(unique);
    return unique === title
      ? layer
      : { ...layer, annotations: { ...layer.annotations, [ANNOTATION.title]: unique } };
  });
}

function layerAnnotations(layer: LayerRecord, mtime: number): Record<string, string> {
  const mtimeIso = new Date(mtime * 1000).toISOString().replace('.000Z', 'Z');
  const single = layer.grouped ? undefined : layer.files[0]!;
  const filepath = single ? single.path : commonFolder(layer.files.map((f) => f.path));
  const metadata = single
    ? {
        name: single.path.slice(single.path.lastIndexOf('/') + 1),
        mode: layer.executable ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        size: single.size,
        mtime: mtimeIso,
        typeflag: TYPEFLAG_FILE,
      }
    : { name: filepath, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: mtimeIso, typeflag: TYPEFLAG_DIR };
  const annotations: Record<string, string> = {
    [ANNOTATION.title]: layerTitle(layer),
    [ANNOTATION.modelFilepath]: filepath,
    [ANNOTATION.modelFileMetadata]: JSON.stringify(metadata),
  };
  if (layer.untested) annotations[ANNOTATION.modelMediaTypeUntested] = 'true';
  annotations[ANNOTATION.layerFiles] = JSON.stringify(
    layer.files.map((f) => ({ path: f.path, size: f.size, digest: f.digest })),
  );
  if (layer.part) annotations[ANNOTATION.part] = encodePart(layer.part);
  return annotations;
}

export function layerDescriptor(layer: LayerRecord, mtime: number): Descriptor {
  return {
    mediaType: modelLayerMediaType(layer.kind, layer.encoding),
    digest: layer.digest,
    size: layer.size,
    annotations: layerAnnotations(layer, mtime),
  };
}

export interface ArtifactInput {
  name: string;
  /** Seconds since the epoch; also `createdAt` when SOURCE_DATE_EPOCH pinned it. */
  mtime: number;
  createdAt?: string;
  facts: ModelFacts;
  encoding: LayerEncoding;
  weightsDigest: Digest;
  layers: Descriptor[];
  diffIds: Digest[];
  annotations: Record<string, string>;
}

export interface BuiltArtifact {
  config: { descriptor: Descriptor; bytes: Uint8Array };
  manifest: { descriptor: Descriptor; bytes: Uint8Array; value: ImageManifest };
}

/**
 * The ModelPack config and the image manifest, serialised deterministically: same inputs, same
 * bytes, same digests, on any machine. No wall-clock time goes in unless SOURCE_DATE_EPOCH asks.
 */
export function buildArtifact(input: ArtifactInput): BuiltArtifact {
  const descriptor: Record<string, string> = { name: input.name };
  if (input.createdAt) descriptor.createdAt = input.createdAt;
  const config = {
    descriptor,
    config: { ...input.facts },
    modelfs: { type: 'layers', diffIds: input.diffIds },
  };
  const configBytes = encodeJson(config);
  const configDescriptor = describeJson(MODEL_CONFIG, configBytes);
  const annotations: Record<string, string> = {
    [ANNOTATION.title]: input.name,
    ...(input.createdAt ? { [ANNOTATION.created]: input.createdAt } : {}),
    ...input.annotations,
    [ANNOTATION.weightsDigest]: input.weightsDigest,
    [ANNOTATION.encoding]: input.encoding,
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: MODEL_ARTIFACT_TYPE,
    config: configDescriptor,
    layers: withUniqueTitles(input.layers),
    annotations,
  };
  const manifestBytes = encodeJson(manifest);
  return {
    config: { descriptor: configDescriptor, bytes: configBytes },
    manifest: {
      descriptor: describeJson(OCI_MANIFEST, manifestBytes, { artifactType: MODEL_ARTIFACT_TYPE }),
      bytes: manifestBytes,
      value: manifest,
    },
  };
}
