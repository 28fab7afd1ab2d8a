import { IntegrityError } from '../content/errors.ts';
import { readSmallBlob } from '../content/read.ts';
import type { Target } from '../content/target.ts';
import { type Descriptor, expectDigest } from '../oci/descriptor.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import { type ImageManifest, parseImageManifest } from '../oci/manifest.ts';
import { ANNOTATION, MODEL_ARTIFACT_TYPE, MODEL_CONFIG, OCI_MANIFEST } from '../oci/media-types.ts';
import {
  expectArray,
  expectObject,
  expectSafeInteger,
  expectString,
  InvalidDocumentError,
  parseJson,
} from '../oci/validate.ts';
import { UserError } from '../util/errors.ts';
import { type PartInfo, parsePart } from './parts.ts';
import type { DigestedFile } from './weights-digest.ts';

export interface PreviousLayer {
  descriptor: Descriptor;
  diffId: Digest;
  files: DigestedFile[];
  /** A part layer's place in its file. */
  part?: PartInfo;
}

/** A model artifact this tool built earlier, as far as reuse and skipping need it. */
export interface PreviousArtifact {
  descriptor: Descriptor;
  manifest: ImageManifest;
  weightsDigest: string | undefined;
  encoding: string | undefined;
  layers: PreviousLayer[];
  /** path → size, for every file the artifact holds (a split file by its own path and whole size). */
  sizes: Map<string, number>;
}

function readFiles(json: string, where: string): DigestedFile[] {
  return expectArray(parseJson(json, where), where).map((value, i) => {
    const o = expectObject(value, `${where}[${i}]`);
    return {
      path: expectString(o.path, `${where}[${i}].path`),
      size: expectSafeInteger(o.size, `${where}[${i}].size`),
      digest: expectDigest(o.digest, `${where}[${i}].digest`),
    };
  });
}

function readDiffIds(bytes: Uint8Array): Digest[] {
  const config = expectObject(parseJson(bytes, 'model config'), 'config');
  const modelfs = expectObject(config.modelfs, 'config.modelfs');
  return expectArray(modelfs.diffIds, 'config.modelfs.diffIds').map((d, i) =>
    expectDigest(d, `diffIds[${i}]`),
  );
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * A model artifact of ours that cannot be read as one: a manifest or config whose bytes do not match
 * their digest, a manifest over the size limit, or documents that do not parse. Unlike "nothing
 * there" or "someone else's artifact", this is never taken to mean "no previous artifact".
 */
export class DamagedArtifactError extends UserError {
  override readonly name: string = 'DamagedArtifactError';
}

/**
 * Loads the model artifact at `reference` (a tag or digest) with the file lists of its layers.
 * Undefined when there is nothing there, or something that is not a model artifact built by this
 * tool (an image, a foreign artifact): there is simply nothing to reuse. Throws a
 * DamagedArtifactError when it is one of ours but fails verification, and passes transport errors on.
 */
export async function loadPreviousArtifact(
  target: Target,
  reference: string,
  signal?: AbortSignal,
): Promise<PreviousArtifact | undefined> {
  const descriptor = await target.resolve(reference, signal);
  if (!descriptor || descriptor.mediaType !== OCI_MANIFEST) return undefined;
  const where = `${target.displayName}${isDigest(reference) ? '@' : ':'}${reference}`;
  try {
    const manifest = parseImageManifest(await target.fetchManifest(descriptor, signal), 'manifest');
    if (manifest.artifactType !== MODEL_ARTIFACT_TYPE || manifest.config.mediaType !== MODEL_CONFIG)
      return undefined;
    if (manifest.layers.some((l) => l.annotations?.[ANNOTATION.layerFiles] === undefined)) return undefined;
    const configBytes = await readSmallBlob(target, manifest.config, MAX_CONFIG_BYTES, signal).catch(
      (err: unknown) => {
        if (err instanceof IntegrityError)
          throw new IntegrityError(`config ${err.message.replace(/^.*?: blob /, 'blob ')}`);
        throw err;
      },
    );
    const diffIds = readDiffIds(configBytes);
    if (diffIds.length !== manifest.layers.length) {
      throw new InvalidDocumentError(
        'config.modelfs.diffIds',
        `lists ${diffIds.length} layers, the manifest ${manifest.layers.length}`,
      );
    }
    const layers: PreviousLayer[] = [];
    const sizes = new Map<string, number>();
    for (const [i, layer] of manifest.layers.entries()) {
      const files = readFiles(layer.annotations![ANNOTATION.layerFiles]!, `layers[${i}] files`);
      for (const f of files) sizes.set(f.path, f.size);
      const partText = layer.annotations?.[ANNOTATION.part];
      const part = partText === undefined ? undefined : parsePart(partText, `layers[${i}] part`);
      if (part) sizes.set(part.path, part.fileSize);
      layers.push({ descriptor: layer, diffId: diffIds[i]!, files, ...(part ? { part } : {}) });
    }
    return {
      descriptor,
      manifest,
      weightsDigest: manifest.annotations?.[ANNOTATION.weightsDigest],
      encoding: manifest.annotations?.[ANNOTATION.encoding],
      layers,
      sizes,
    };
  } catch (err) {
    if (signal?.aborted) throw err;
    if (err instanceof IntegrityError || err instanceof InvalidDocumentError) {
      const prefix = `${target.displayName}: `;
      const detail = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      throw new DamagedArtifactError(`${where} cannot be verified: ${detail}`);
    }
    throw err;
  }
}
