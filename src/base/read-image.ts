import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { ANNOTATION, DOCKER_MANIFEST_LIST, OCI_INDEX } from '../oci/media-types.ts';

export interface ImageFacts {
  runtime?: { name: string; version: string };
  baseName?: string;
  baseDigest?: string;
  builder?: 'buildah' | 'buildx';
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * What a pushed base image says about itself: manifest annotations first, the config's labels for
 * the runtime when the annotations do not name it (a Dockerfile LABEL). An index is read through
 * its first manifest.
 */
export async function readImageFacts(
  target: Target,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<ImageFacts> {
  let manifest = JSON.parse(Buffer.from(await target.fetchManifest(desc, signal)).toString('utf8'));
  if (desc.mediaType === OCI_INDEX || desc.mediaType === DOCKER_MANIFEST_LIST) {
    const first = manifest.manifests?.[0] as Descriptor | undefined;
    if (!first) return {};
    manifest = JSON.parse(Buffer.from(await target.fetchManifest(first, signal)).toString('utf8'));
  }
  const annotations: Record<string, string> = manifest.annotations ?? {};
  const facts: ImageFacts = {};
  if (annotations['org.opencontainers.image.base.name'])
    facts.baseName = annotations['org.opencontainers.image.base.name'];
  if (annotations['org.opencontainers.image.base.digest'])
    facts.baseDigest = annotations['org.opencontainers.image.base.digest'];
  const builder = annotations['io.model-oci.base.builder'];
  if (builder === 'buildah' || builder === 'buildx') facts.builder = builder;
  let labels: Record<string, string> = annotations;
  if (!labels[ANNOTATION.runtimeName] && manifest.config?.digest) {
    labels = (await readConfig(target, manifest.config as Descriptor, signal)).config?.Labels ?? {};
  }
  const name = labels[ANNOTATION.runtimeName];
  const version = labels[ANNOTATION.runtimeVersion];
  if (name && version) facts.runtime = { name, version };
  return facts;
}

async function readConfig(target: Target, desc: Descriptor, signal?: AbortSignal) {
  if (desc.size > MAX_CONFIG_BYTES) return {};
  const chunks: Uint8Array[] = [];
  for await (const chunk of await target.fetchBlob(desc, signal)) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    config?: { Labels?: Record<string, string> };
  };
}
