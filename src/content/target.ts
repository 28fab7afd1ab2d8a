import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';

export interface CommittedBlob {
  digest: Digest;
  size: number;
  /** False when the target already had these bytes and kept its copy. */
  stored: boolean;
}

/**
 * Receives one blob whose digest is only known once all bytes went through (a layer being packed).
 * The writer hashes what it is given — a registry needs the digest for the final PUT anyway — so
 * the packer never hashes its output a second time. Nothing becomes visible before commit.
 */
export interface BlobWriter {
  /** Resolves when the target has taken the chunk (backpressure). */
  write(chunk: Uint8Array): Promise<void>;
  /** Publishes the blob under the digest of the bytes written; checks them against `expected` if given. */
  commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob>;
  /** Drops what was written. Safe to call after a failed or successful commit. */
  abort(): Promise<void>;
}

/**
 * Where artifacts go: an OCI image layout on disk or a registry repository. The build pipeline sees
 * only this interface, so both behave the same to it (oras-go calls this a Target too).
 */
export interface Target {
  /** How to name this target in messages, without secrets. */
  readonly displayName: string;

  hasBlob(digest: Digest, signal?: AbortSignal): Promise<boolean>;
  openBlobWriter(signal?: AbortSignal): Promise<BlobWriter>;
  /** Stores a small blob whose bytes are in memory (a config). */
  putBlob(desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<{ stored: boolean }>;
  /** Reads a blob; the caller verifies digest and size (pull-side code does). */
  fetchBlob(desc: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;

  /** A tag or digest → the manifest descriptor, or undefined when there is none. */
  resolve(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined>;
  /** The manifest bytes, verified against desc.digest and desc.size. */
  fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  /** Stores manifest bytes exactly as given and points every tag at them. */
  putManifest(
    desc: Descriptor,
    bytes: Uint8Array,
    tags: readonly string[],
    signal?: AbortSignal,
  ): Promise<void>;
  /** Points tags at an existing manifest. Tags that already point there are left alone. */
  tag(desc: Descriptor, tags: readonly string[], signal?: AbortSignal): Promise<void>;
  /**
   * Makes a blob that `source` holds available here without the caller sending its bytes (a
   * registry's cross-repository mount, or a copy when it declines). Only where both sides allow it.
   */
  mountBlob?(desc: Descriptor, source: Target, signal?: AbortSignal): Promise<'mounted' | 'copied'>;
  /**
   * How many writers a blob of about `bytes` may use when the target loses writes midway (a registry
   * that drops an upload session): each loss means producing the blob again. Absent: writes are not
   * lost, only failed.
   */
  writeAttempts?(bytes: number): number;
  /** Releases connections; the target is not used afterwards. */
  close?(): Promise<void>;
}
