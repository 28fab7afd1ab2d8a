import { readSmallBlob } from '../content/read.ts';
import type { Target } from '../content/target.ts';
import { type PartInfo, parsePart } from '../model/parts.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import { type ManifestDocument, parseManifestDocument } from '../oci/manifest.ts';
import { ANNOTATION, MODEL_CONFIG } from '../oci/media-types.ts';
import { expectArray, expectObject, InvalidDocumentError, parseJson } from '../oci/validate.ts';
import { UserError } from '../util/errors.ts';
import { safeRelativePath } from './entry-path.ts';

/** How a layer's bytes become its content: as they are (a raw file or a plain tar), or decompressed. */
export type PullEncoding = 'raw' | 'tar' | 'tar+zstd' | 'tar+gzip';

/** A file a layer promises (its `io.model-oci.files` entry, or a raw layer's own blob). */
export interface PlannedFile {
  path: string;
  size: number;
  digest: Digest;
}

export interface LayerPlan {
  descriptor: Descriptor;
  /**
   * sha256 of the uncompressed content (the tar, or the file of a raw layer), from the config; read
   * by withDiffIds only when a layer is fetched (a directory that holds the model reads no blob).
   */
  diffId: Digest | undefined;
  encoding: PullEncoding;
  /** The files the layer promises; undefined for a tar of another tool that lists none. */
  files: PlannedFile[] | undefined;
  /** Name for messages: the title, else the digest. */
  name: string;
  /** A one-file layer's file mode (ModelPack file metadata), 0o644 when it states none. */
  mode: number;
  /** A part layer: where its one file's bytes go in the whole file (docs/artifact-format.md). */
  part?: PartInfo;
}

/** A file the artifact holds as part layers: written part by part into one file, then checked whole. */
export interface AssembledFile {
  path: string;
  size: number;
  digest: Digest;
  mode: number;
  /** Its part layers, in file order. */
  parts: LayerPlan[];
}

export interface PullPlan {
  /** The manifest the layers come from (for an image index: the platform image chosen). */
  manifest: Descriptor;
  /** What the user asked for, when it was an index (the image form). */
  index?: Descriptor;
  config: Descriptor;
  /** `target@digest` of the manifest, for messages. */
  where: string;
  layers: LayerPlan[];
  /** Digest of the weights listing, when the artifact states it. */
  weightsDigest?: string;
  /** The files held as part layers. */
  assembled: AssembledFile[];
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

function encodingOf(mediaType: string): PullEncoding | undefined {
  const model = /^application\/vnd\.cncf\.model\.[a-z.]+\.v1\.(raw|tar|tar\+zstd|tar\+gzip)$/.exec(mediaType);
  if (model) return model[1] as PullEncoding;
  switch (mediaType) {
    case 'application/vnd.oci.image.layer.v1.tar':
      return 'tar';
    case 'application/vnd.oci.image.layer.v1.tar+zstd':
      return 'tar+zstd';
    case 'application/vnd.oci.image.layer.v1.tar+gzip':
    case 'application/vnd.docker.image.rootfs.diff.tar.gzip':
      return 'tar+gzip';
    default:
      return undefined;
  }
}

/** `io.model-oci.files` of a layer, each path checked as an archive path would be. */
function filesOf(layer: Descriptor, where: string): PlannedFile[] | undefined {
  const text = layer.annotations?.[ANNOTATION.layerFiles];
  if (text === undefined) return undefined;
  const path = `${where}.annotations["${ANNOTATION.layerFiles}"]`;
  return expectArray(parseJson(text, path), path).map((value, i) => {
    const f = expectObject(value, `${path}[${i}]`);
    if (typeof f.path !== 'string' || !Number.isSafeInteger(f.size) || (f.size as number) < 0)
      throw new InvalidDocumentError(`${path}[${i}]`, 'expected {path, size, digest}');
    if (typeof f.digest !== 'string' || !isDigest(f.digest))
      throw new InvalidDocumentError(`${path}[${i}].digest`, `not a digest: ${JSON.stringify(f.digest)}`);
    return { path: safeRelativePath(f.path, where), size: f.size as number, digest: f.digest };
  });
}

/** The mode in ModelPack's file metadata annotation: 0o755 when any execute bit is set, else 0o644. */
function modeOf(layer: Descriptor): number {
  try {
    const metadata = JSON.parse(layer.annotations?.[ANNOTATION.modelFileMetadata] ?? '{}') as {
      mode?: unknown;
    };
    return typeof metadata.mode === 'number' && (metadata.mode & 0o111) !== 0 ? 0o755 : 0o644;
  } catch {
    return 0o644;
  }
}

/** The diffIDs the config states: ModelPack `modelfs.diffIds` or an image's `rootfs.diff_ids`. */
function diffIdsOf(config: Descriptor, bytes: Uint8Array, where: string): Digest[] {
  const o = expectObject(parseJson(bytes, `${where} config`), `${where} config`);
  const list =
    config.mediaType === MODEL_CONFIG
      ? expectObject(o.modelfs, 'config.modelfs').diffIds
      : expectObject(o.rootfs, 'config.rootfs').diff_ids;
  return expectArray(list, 'config diffIDs').map((d, i) => {
    if (typeof d !== 'string' || !isDigest(d))
      throw new InvalidDocumentError(`config diffIDs[${i}]`, `not a digest: ${JSON.stringify(d)}`);
    return d;
  });
}

/** The plan with every layer's diffID, from the config (one small blob read). */
export async function withDiffIds(target: Target, plan: PullPlan, signal?: AbortSignal): Promise<PullPlan> {
  const { where } = plan;
  const bytes = await readSmallBlob(target, plan.config, MAX_CONFIG_BYTES, signal);
  const diffIds = diffIdsOf(plan.config, bytes, where);
  if (diffIds.length !== plan.layers.length)
    throw new InvalidDocumentError(
      `${where} config`,
      `lists ${diffIds.length} diffIDs for ${plan.layers.length} layers`,
    );
  const layers = plan.layers.map((layer, i) => {
    if (layer.encoding === 'raw' && diffIds[i] !== layer.descriptor.digest)
      throw new InvalidDocumentError(`${where} config`, `the diffID of raw layer ${i} is not its digest`);
    return { ...layer, diffId: diffIds[i]! };
  });
  return { ...plan, layers };
}

/** The platform image an index holds for `platform` (`os/arch`), else its first real one. */
function pickPlatform(
  doc: Extract<ManifestDocument, { type: 'index' }>,
  platform: string,
): Descriptor | undefined {
  const [os, architecture] = platform.split('/');
  const real = doc.manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  return (
    real.find((m) => m.platform?.os === os && m.platform?.architecture === architecture) ??
    real[0] ??
    doc.manifests[0]
  );
}

/**
 * What to pull from a manifest (a model artifact or an image; an index: its image for `platform`,
 * whose layers are the same blobs): every layer with its encoding and promised files.
 */
export async function planPull(
  target: Target,
  manifest: { descriptor: Descriptor; bytes: Uint8Array },
  options: { platform: string; signal?: AbortSignal | undefined },
): Promise<PullPlan> {
  let where = `${target.displayName}@${manifest.descriptor.digest}`;
  let doc = parseManifestDocument(manifest.bytes, where, manifest.descriptor.mediaType);
  let chosen = manifest.descriptor;
  let index: Descriptor | undefined;
  if (doc.type === 'index') {
    const image = pickPlatform(doc, options.platform);
    if (!image) throw new UserError(`${where} is an index with no manifests`);
    index = manifest.descriptor;
    chosen = image;
    where = `${target.displayName}@${image.digest}`;
    doc = parseManifestDocument(await target.fetchManifest(image, options.signal), where, image.mediaType);
    if (doc.type !== 'manifest') throw new UserError(`${where}: an index inside an index is not a model`);
  }
  const layers = doc.layers.map((layer, i): LayerPlan => {
    const layerWhere = `${where} layer ${i}`;
    const encoding = encodingOf(layer.mediaType);
    if (!encoding) throw new UserError(`${layerWhere}: cannot unpack layers of type ${layer.mediaType}`);
    const title = layer.annotations?.[ANNOTATION.title];
    let files = filesOf(layer, layerWhere);
    if (encoding === 'raw') {
      const path = layer.annotations?.[ANNOTATION.modelFilepath] ?? title;
      if (!path) throw new UserError(`${layerWhere}: a raw layer without a file path (no title or filepath)`);
      files = [{ path: safeRelativePath(path, layerWhere), size: layer.size, digest: layer.digest }];
    }
    const partText = layer.annotations?.[ANNOTATION.part];
    const part = partText === undefined ? undefined : parsePart(partText, `${layerWhere} part`);
    if (part) {
      part.path = safeRelativePath(part.path, layerWhere);
      if (files?.length !== 1 || files[0]!.size !== part.size)
        throw new InvalidDocumentError(
          layerWhere,
          "a part layer must list exactly its one part, of the part's size",
        );
    }
    return {
      descriptor: layer,
      diffId: undefined,
      encoding,
      files,
      name: title ?? layer.digest,
      mode: modeOf(layer),
      ...(part ? { part } : {}),
    };
  });
  const assembled = assemble(layers, where);
  const paths = new Set<string>();
  for (const file of [...layers.flatMap((l) => l.files ?? []), ...assembled]) {
    if (paths.has(file.path)) throw new InvalidDocumentError(where, `two layers hold ${file.path}`);
    paths.add(file.path);
  }
  const weightsDigest = doc.annotations[ANNOTATION.weightsDigest];
  return {
    manifest: chosen,
    ...(index ? { index } : {}),
    config: doc.config,
    where,
    layers,
    ...(weightsDigest ? { weightsDigest } : {}),
    assembled,
  };
}

/**
 * The files held as part layers, each checked whole: parts 1…count once each, the same file size
 * and digest on every one, and consecutive ranges that cover the file exactly.
 */
function assemble(layers: readonly LayerPlan[], where: string): AssembledFile[] {
  const byPath = new Map<string, LayerPlan[]>();
  for (const layer of layers)
    if (layer.part) byPath.set(layer.part.path, [...(byPath.get(layer.part.path) ?? []), layer]);
  return [...byPath].map(([path, parts]) => {
    parts.sort((a, b) => a.part!.index - b.part!.index);
    const first = parts[0]!.part!;
    let offset = 0;
    for (const [i, layer] of parts.entries()) {
      const p = layer.part!;
      if (
        p.index !== i + 1 ||
        p.count !== parts.length ||
        p.offset !== offset ||
        p.fileSize !== first.fileSize ||
        p.fileDigest !== first.fileDigest
      )
        throw new InvalidDocumentError(
          where,
          `the part layers of ${path} do not make up the file (part ${p.index} of ${p.count} at ${p.offset})`,
        );
      offset += p.size;
    }
    if (offset !== first.fileSize)
      throw new InvalidDocumentError(
        where,
        `the part layers of ${path} hold ${offset} of its ${first.fileSize} bytes`,
      );
    return { path, size: first.fileSize, digest: first.fileDigest!, mode: parts[0]!.mode, parts };
  });
}
