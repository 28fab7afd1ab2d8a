import { IntegrityError } from '../content/errors.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { readDescriptor } from '../oci/descriptor.ts';
import { type Digest, sha256Digest } from '../oci/digest.ts';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.ts';
import { expectArray, expectObject, expectStringMap, type JsonObject, parseJson } from '../oci/validate.ts';
import { BodyTooLargeError, header, readBytes } from '../registry/http-client.ts';
import { MANIFEST_ACCEPT, type RegistryTarget } from '../registry/registry-target.ts';
import { isRetryableNetworkError } from '../registry/retry.ts';

/** A manifest or an index as far as the catalog needs it; OCI and Docker media types alike. */
export type ManifestDoc =
  | {
      type: 'manifest';
      artifactType?: string;
      config: Descriptor;
      layers: Descriptor[];
      annotations: Record<string, string>;
    }
  | { type: 'index'; manifests: Descriptor[]; annotations: Record<string, string> };

export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/** Reads a manifest or index (validated descriptors) whose media type is `mediaType`. */
export function readManifestDoc(bytes: Uint8Array, mediaType: string, what: string): ManifestDoc {
  const o = expectObject(parseJson(bytes, what), what);
  const type = typeof o.mediaType === 'string' ? o.mediaType : mediaType;
  const annotations =
    o.annotations === undefined ? {} : expectStringMap(o.annotations, `${what}.annotations`);
  if (INDEX_TYPES.includes(type) || (o.manifests !== undefined && o.config === undefined)) {
    const manifests = expectArray(o.manifests, `${what}.manifests`).map((m, i) =>
      readDescriptor(m, `${what}.manifests[${i}]`),
    );
    return { type: 'index', manifests, annotations };
  }
  const doc: ManifestDoc = {
    type: 'manifest',
    config: readDescriptor(o.config, `${what}.config`),
    layers: expectArray(o.layers, `${what}.layers`).map((l, i) => readDescriptor(l, `${what}.layers[${i}]`)),
    annotations,
  };
  if (typeof o.artifactType === 'string') doc.artifactType = o.artifactType;
  return doc;
}

export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: Digest;
}

/**
 * One `GET /v2/<name>/manifests/<reference>` (no HEAD first), checked against the digest the
 * registry reports; undefined when there is none. A body that breaks off is asked for again.
 */
export async function getManifest(
  target: RegistryTarget,
  reference: string,
  signal?: AbortSignal,
): Promise<FetchedManifest | undefined> {
  for (let attempt = 1; ; attempt++) {
    const res = await target.client.send({
      method: 'GET',
      url: `/v2/${target.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [`repository:${target.repository}:pull`],
      expect: [200, 404],
      signal,
    });
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readBytes(res.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      if (attempt < 3 && !signal?.aborted && isRetryableNetworkError(err)) continue;
      if (err instanceof BodyTooLargeError) {
        throw new IntegrityError(
          `${target.displayName}@${reference}: the manifest is over the ${MAX_MANIFEST_BYTES}-byte limit registries accept`,
        );
      }
      throw err;
    }
    const digest = sha256Digest(bytes);
    const stated = header(res.headers, 'docker-content-digest');
    if ((stated && stated !== digest) || (reference.includes(':') && reference !== digest)) {
      throw new IntegrityError(`${target.displayName}: manifest ${reference} arrived with digest ${digest}`);
    }
    const mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim() || OCI_MANIFEST;
    return { bytes, mediaType, digest };
  }
}

const MAX_CONFIG_BYTES = 1024 * 1024;

/** A small JSON blob (an image or ModelPack config); undefined when it is too large to be one. */
export async function fetchJsonBlob(
  target: RegistryTarget,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<JsonObject | undefined> {
  if (desc.size > MAX_CONFIG_BYTES) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of await target.fetchBlob(desc, signal)) chunks.push(chunk);
  try {
    const value = parseJson(Buffer.concat(chunks), 'config');
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as JsonObject)
      : undefined;
  } catch {
    return undefined;
  }
}
