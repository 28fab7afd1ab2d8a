import type { Target } from '../content/target.ts';
import { type Descriptor, expectDigest } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { type ImageManifest, parseImageManifest } from '../oci/manifest.ts';
import { ANNOTATION, MODEL_ARTIFACT_TYPE, MODEL_CONFIG, OCI_MANIFEST } from '../oci/media-types.ts';
import { expectArray, expectObject, expectSafeInteger, expectString, parseJson } from '../oci/validate.ts';
import type { DigestedFile } from './weights-digest.ts';

export interface PreviousLayer {
  descriptor: Descriptor;
  diffId: Digest;
  files: DigestedFile[];
}

/** A model artifact this tool built earlier, as far as reuse and skipping need it. */
export interface PreviousArtifact {
  descriptor: Descriptor;
  manifest: ImageManifest;
  weightsDigest: string | undefined;
  encoding: string | undefined;
  layers: PreviousLayer[];
  /** path → size, for every file the artifact holds. */
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

async function readBlob(target: Target, desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await target.fetchBlob(desc, signal)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Loads the model artifact at `reference` (a tag or digest) with the file lists of its layers.
 * Anything else there — nothing, an image, a foreign or damaged artifact — is `undefined`: it just
 * means there is nothing to reuse, so it is never an error.
 */
export async function loadPreviousArtifact(
  target: Target,
  reference: string,
  signal?: AbortSignal,
): Promise<PreviousArtifact | undefined> {
  const descriptor = await target.resolve(reference, signal);
  if (!descriptor || descriptor.mediaType !== OCI_MANIFEST) return undefined;
  try {
    const manifest = parseImageManifest(await target.fetchManifest(descriptor, signal));
    if (manifest.artifactType !== MODEL_ARTIFACT_TYPE || manifest.config.mediaType !== MODEL_CONFIG)
      return undefined;
    const configBytes = await readBlob(target, manifest.config, signal);
    const diffIds = readDiffIds(configBytes);
    if (diffIds.length !== manifest.layers.length) return undefined;
    const layers: PreviousLayer[] = [];
    const sizes = new Map<string, number>();
    for (const [i, layer] of manifest.layers.entries()) {
      const listing = layer.annotations?.[ANNOTATION.layerFiles];
      if (listing === undefined) return undefined;
      const files = readFiles(listing, `layers[${i}] files`);
      for (const f of files) sizes.set(f.path, f.size);
      layers.push({ descriptor: layer, diffId: diffIds[i]!, files });
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
    return undefined;
  }
}
