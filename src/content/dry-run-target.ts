import type { Descriptor } from '../oci/descriptor.ts';
import { Sha256Counter } from '../oci/digest.ts';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts';
import { DigestMismatchError, SizeLimitError } from './errors.ts';
import {
  type BlobMounter,
  type BlobWriter,
  type CommittedBlob,
  canFetchReference,
  canListTags,
  canMount,
  canReadRanges,
  layerLimitOf,
  type Target,
} from './target.ts';

/**
 * A target for dry runs: it reads from the real one (so skip and reuse decide as they would) and
 * writes nowhere — blobs are hashed (and verified, as a real write would be) and dropped, manifests
 * and tags forgotten, mounts reported as the mounts a real run would ask for. What a build reports
 * against it is what it would have pushed. It has the capabilities of the target it wraps.
 */
export function dryRunTarget(inner: Target): Target {
  const target: Target = {
    displayName: `${inner.displayName} (dry run)`,
    hasBlob: (digest, signal) => inner.hasBlob(digest, signal),
    async openBlobWriter(): Promise<BlobWriter> {
      const hash = new Sha256Counter();
      return {
        write: async (chunk) => hash.update(chunk),
        commit: async (expected): Promise<CommittedBlob> => {
          const digest = hash.digest();
          if (expected && (expected.digest !== digest || expected.size !== hash.size))
            throw new DigestMismatchError(
              `blob verification failed: got ${digest}, expected ${expected.digest}`,
            );
          return { digest, size: hash.size, stored: true };
        },
        abort: async () => {},
      };
    },
    async putBlob(desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal) {
      const hash = new Sha256Counter();
      hash.update(bytes);
      if (hash.digest() !== desc.digest || hash.size !== desc.size)
        throw new DigestMismatchError(`blob ${desc.digest}: the bytes given do not match the descriptor`);
      return { stored: !(await inner.hasBlob(desc.digest, signal)) };
    },
    fetchBlob: (desc, signal) => inner.fetchBlob(desc, signal),
    resolve: (reference, signal) => inner.resolve(reference, signal),
    fetchManifest: (desc, signal) => inner.fetchManifest(desc, signal),
    // A manifest the real target would refuse is refused here too.
    putManifest: async (desc, bytes) => {
      if (bytes.byteLength > MAX_MANIFEST_BYTES)
        throw new SizeLimitError(
          `manifest ${desc.digest} is ${bytes.byteLength} bytes; registries take at most 4 MiB`,
        );
    },
    tag: async () => {},
    close: async () => {
      await inner.close?.();
    },
  };
  const limit = layerLimitOf(inner);
  if (limit) Object.assign(target, { layerLimit: () => limit });
  if (canListTags(inner))
    Object.assign(target, { listTags: (signal?: AbortSignal) => inner.listTags(signal) });
  if (canFetchReference(inner))
    Object.assign(target, {
      fetchReference: (reference: string, signal?: AbortSignal) => inner.fetchReference(reference, signal),
    });
  if (canReadRanges(inner))
    Object.assign(target, {
      fetchBlobRange: (desc: Descriptor, start: number, end: number, signal?: AbortSignal) =>
        inner.fetchBlobRange(desc, start, end, signal),
    });
  if (canMount(inner)) {
    const mounter: BlobMounter = {
      canMountFrom: (source) => inner.canMountFrom(source),
      mountBlob: async () => 'mounted',
    };
    Object.assign(target, mounter);
  }
  return target;
}
