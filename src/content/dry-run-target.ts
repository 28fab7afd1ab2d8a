import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { Sha256Counter } from '../oci/digest.ts';
import type { BlobWriter, CommittedBlob, Target } from './target.ts';

/**
 * A target for dry runs: it reads from the real one (so skip and reuse decide as they would) and
 * writes nowhere — blobs are hashed and dropped, manifests and tags forgotten. What a build reports
 * against it is what it would have pushed.
 */
export class DryRunTarget implements Target {
  readonly displayName: string;
  private readonly inner: Target;

  constructor(inner: Target) {
    this.inner = inner;
    this.displayName = `${inner.displayName} (dry run)`;
  }

  hasBlob(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return this.inner.hasBlob(digest, signal);
  }

  async openBlobWriter(): Promise<BlobWriter> {
    const hash = new Sha256Counter();
    return {
      write: async (chunk) => hash.update(chunk),
      commit: async (expected): Promise<CommittedBlob> => {
        const digest = hash.digest();
        if (expected && (expected.digest !== digest || expected.size !== hash.size))
          throw new Error(`blob verification failed: got ${digest}, expected ${expected.digest}`);
        return { digest, size: hash.size, stored: true };
      },
      abort: async () => {},
    };
  }

  async putBlob(desc: Descriptor, _bytes: Uint8Array, signal?: AbortSignal): Promise<{ stored: boolean }> {
    return { stored: !(await this.inner.hasBlob(desc.digest, signal)) };
  }

  fetchBlob(desc: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    return this.inner.fetchBlob(desc, signal);
  }

  resolve(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    return this.inner.resolve(reference, signal);
  }

  fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    return this.inner.fetchManifest(desc, signal);
  }

  async putManifest(): Promise<void> {}

  async tag(): Promise<void> {}

  async mountBlob(): Promise<'mounted' | 'copied'> {
    return 'mounted';
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
