import type { Descriptor } from '../oci/descriptor.ts';
import { sha256Digest } from '../oci/digest.ts';
import { parseManifestDocument } from '../oci/manifest.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { DigestMismatchError } from './errors.ts';
import { canMount, type Target } from './target.ts';
import { writeWithRetries } from './write-retries.ts';

/** How a blob got to the destination: it was there, a registry mounted it, or its bytes were copied. */
export type BlobArrival = 'present' | 'mounted' | 'copied';

export interface CopyOptions {
  /** Mount blobs across repositories where the destination can (a registry, same host). */
  mount?: boolean;
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Told of every blob as it arrives (progress lines, counts). */
  onBlob?: (desc: Descriptor, how: BlobArrival) => void;
  onWarning?: (message: string) => void;
}

/**
 * Makes `desc` present in `dst`: nothing to do when it is there, a mount when the destination can
 * mount from the source (and does not decline), else a copy of the verified bytes — written again
 * if the destination loses the write, as often as it allows.
 */
export async function copyBlob(
  src: Target,
  dst: Target,
  desc: Descriptor,
  options: CopyOptions = {},
): Promise<BlobArrival> {
  const { signal } = options;
  if (await dst.hasBlob(desc.digest, signal)) return 'present';
  if (options.mount && canMount(dst) && dst.canMountFrom(src)) {
    if ((await dst.mountBlob(desc, src, signal)) === 'mounted') return 'mounted';
  }
  await writeWithRetries(
    dst,
    {
      what: `blob ${desc.digest}`,
      kind: 'blob',
      bytes: desc.size,
      ...(signal ? { signal } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    },
    async (writer) => {
      for await (const chunk of await src.fetchBlob(desc, signal)) await writer.write(chunk);
      return writer.commit({ digest: desc.digest, size: desc.size });
    },
  );
  return 'copied';
}

export interface CopyResult {
  present: number;
  mounted: number;
  copied: number;
}

/**
 * Copies the graph `root` names from `src` to `dst`: for a manifest its config and layers (foreign
 * layers with `urls` stay where they are, as registries leave them), for an index every manifest it
 * lists, children first and by digest; the root manifest last, byte for byte, under `tags` (none:
 * by digest only). So nothing in `dst` ever points at a blob that is not there. `rootBytes`: the
 * root's bytes when the caller read them already (verified against `root`).
 */
export async function copyGraph(
  src: Target,
  dst: Target,
  root: Descriptor,
  options: CopyOptions & { tags?: readonly string[]; rootBytes?: Uint8Array } = {},
): Promise<CopyResult> {
  const counts: CopyResult = { present: 0, mounted: 0, copied: 0 };
  const { signal } = options;
  const bytes = options.rootBytes ?? (await src.fetchManifest(root, signal));
  if (options.rootBytes && sha256Digest(bytes) !== root.digest)
    throw new DigestMismatchError(`manifest ${root.digest}: the bytes given do not match it`);
  const doc = parseManifestDocument(bytes, `${src.displayName}@${root.digest}`, root.mediaType);
  if (doc.type === 'index') {
    for (const child of doc.manifests) {
      const { rootBytes: _root, ...rest } = options;
      const inner = await copyGraph(src, dst, child, { ...rest, tags: [] });
      counts.present += inner.present;
      counts.mounted += inner.mounted;
      counts.copied += inner.copied;
    }
  } else {
    const wanted = [doc.config, ...doc.layers].filter((d) => !d.urls?.length);
    const unique = [...new Map(wanted.map((d) => [d.digest, d])).values()];
    await mapConcurrent(
      unique,
      options.concurrency ?? 4,
      async (desc, _i, inner) => {
        const how = await copyBlob(src, dst, desc, { ...options, signal: inner });
        counts[how]++;
        options.onBlob?.(desc, how);
      },
      signal,
    );
  }
  const descriptor: Descriptor = { mediaType: doc.mediaType, digest: root.digest, size: bytes.byteLength };
  await dst.putManifest(descriptor, bytes, options.tags ?? [], signal);
  return counts;
}
