import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, splitDigest } from '../oci/digest.ts';
import { describeJson, encodeJson, type ImageIndex, parseImageIndex } from '../oci/manifest.ts';
import { OCI_INDEX } from '../oci/media-types.ts';
import { header, readBytes } from './http-client.ts';
import type { RegistryTarget } from './registry-target.ts';

const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/**
 * The referrers-tag-schema fallback (distribution-spec): registries without the referrers API keep
 * an index of a subject's referrers under the tag `<alg>-<hex>`.
 */
export function referrersTag(subject: Digest): string {
  const [algorithm, encoded] = splitDigest(subject);
  return `${algorithm}-${encoded}`.slice(0, 128);
}

/**
 * Manifests that name `subject` as their subject: the referrers API where the registry has it
 * (200), else the fallback tag's index. Filtered by artifactType here when the registry did not.
 */
export async function listReferrers(
  target: RegistryTarget,
  subject: Digest,
  options: { artifactType?: string; signal?: AbortSignal } = {},
): Promise<Descriptor[]> {
  const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
  const res = await target.client.send({
    method: 'GET',
    url: `/v2/${target.repository}/referrers/${subject}${query}`,
    headers: { accept: OCI_INDEX },
    scopes: [`repository:${target.repository}:pull`],
    // 404: no referrers API here (the spec's signal for the fallback); some registries say 400/405.
    expect: [200, 404, 400, 405],
    signal: options.signal,
  });
  let index: ImageIndex;
  let filtered = false;
  if (res.status === 200) {
    index = parseImageIndex(await readBytes(res.body, MAX_INDEX_BYTES), 'referrers index');
    filtered = (header(res.headers, 'oci-filters-applied') ?? '').split(',').includes('artifactType');
  } else {
    await res.body.dump();
    const fallback = await readFallbackIndex(target, subject, options.signal);
    if (!fallback) return [];
    index = fallback.index;
  }
  const { artifactType } = options;
  return artifactType && !filtered
    ? index.manifests.filter((m) => m.artifactType === artifactType)
    : index.manifests;
}

async function readFallbackIndex(
  target: RegistryTarget,
  subject: Digest,
  signal?: AbortSignal,
): Promise<{ index: ImageIndex; descriptor: Descriptor } | undefined> {
  const descriptor = await target.resolve(referrersTag(subject), signal);
  if (!descriptor || descriptor.mediaType !== OCI_INDEX) return undefined;
  const index = parseImageIndex(await target.fetchManifest(descriptor, signal), 'referrers fallback index');
  return { index, descriptor };
}

/**
 * Pushes a manifest that has a `subject`. A registry with the referrers API says so with an
 * `OCI-Subject` header and indexes it itself; otherwise the fallback tag's index gains an entry
 * for it (read, add, write: two pushers racing on one subject can lose an entry, as with every
 * client of the fallback scheme).
 */
export async function pushReferrer(
  target: RegistryTarget,
  manifest: { descriptor: Descriptor; bytes: Uint8Array; subject: Digest },
  signal?: AbortSignal,
): Promise<'api' | 'fallback'> {
  const res = await target.putManifestAt(
    manifest.descriptor.digest,
    manifest.descriptor,
    manifest.bytes,
    signal,
  );
  if (header(res.headers, 'oci-subject')) return 'api';
  const existing = await readFallbackIndex(target, manifest.subject, signal);
  const entries = (existing?.index.manifests ?? []).filter((m) => m.digest !== manifest.descriptor.digest);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [...entries, manifest.descriptor],
  };
  const bytes = encodeJson(index);
  await target.putManifestAt(referrersTag(manifest.subject), describeJson(OCI_INDEX, bytes), bytes, signal);
  return 'fallback';
}
