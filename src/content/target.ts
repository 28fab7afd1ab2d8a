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
  /**
   * Publishes the blob under the digest of the bytes written; checks them against `expected` if
   * given (DigestMismatchError, nothing published). A WriteLostError means the target lost the
   * write: the blob may be written again, from its start, into a new writer.
   */
  commit(expected?: { digest: Digest; size: number }): Promise<CommittedBlob>;
  /** Drops what was written. Safe to call after a failed or successful commit. */
  abort(): Promise<void>;
}

/**
 * Where artifacts are: an OCI image layout on disk or a registry repository. Every reader and
 * writer of artifacts (build, compatibility index, base push, pull) goes through this interface and
 * the optional capabilities below, so both behave the same to them (oras-go calls this a Target
 * too). Failures are the shared errors of ./errors.ts: NotFoundError, IntegrityError (and its
 * DigestMismatchError and SizeLimitError), WriteLostError.
 */
export interface Target {
  /** How to name this target in messages, without secrets; `${displayName}@${digest}` names an artifact in it. */
  readonly displayName: string;

  hasBlob(digest: Digest, signal?: AbortSignal): Promise<boolean>;
  openBlobWriter(signal?: AbortSignal): Promise<BlobWriter>;
  /** Stores a small blob whose bytes are in memory (a config). */
  putBlob(desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<{ stored: boolean }>;
  /** Reads a blob, verified against the descriptor's digest and size as it streams (NotFoundError when absent). */
  fetchBlob(desc: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;

  /** A tag or digest → the manifest descriptor, or undefined when there is none. */
  resolve(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined>;
  /** The manifest bytes, verified against desc.digest and desc.size; at most 4 MiB (SizeLimitError). */
  fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  /** Stores manifest bytes exactly as given and points every tag at them (none: by digest only). */
  putManifest(
    desc: Descriptor,
    bytes: Uint8Array,
    tags: readonly string[],
    signal?: AbortSignal,
  ): Promise<void>;
  /** Points tags at an existing manifest. Tags that already point there are left alone. */
  tag(desc: Descriptor, tags: readonly string[], signal?: AbortSignal): Promise<void>;
  /**
   * How many writers a blob of about `bytes` may use when the target loses writes midway (a registry
   * that drops an upload session): each loss means producing the blob again. Absent: writes are not
   * lost, only failed.
   */
  writeAttempts?(bytes: number): number;
  /** Releases connections; the target is not used afterwards. */
  close?(): Promise<void>;
}

/** A manifest or index read by reference in one request, with the descriptor it was read as. */
export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** Capability: every tag of the repository or layout. */
export interface TagLister {
  listTags(signal?: AbortSignal): Promise<string[]>;
}

/**
 * Capability: a tag or digest → the manifest and its descriptor in one round trip (a registry GET),
 * verified; undefined when there is none. What "one read of the index" rests on.
 */
export interface ReferenceFetcher {
  fetchReference(reference: string, signal?: AbortSignal): Promise<FetchedManifest | undefined>;
}

/**
 * Capability: makes a blob that another target holds available here without sending its bytes (a
 * registry's cross-repository mount). `declined`: the caller copies it.
 */
export interface BlobMounter {
  canMountFrom(source: Target): boolean;
  mountBlob(desc: Descriptor, source: Target, signal?: AbortSignal): Promise<'mounted' | 'declined'>;
}

/**
 * Capability: the bytes `[start, end)` of a blob, unverified — the caller checks the whole blob once
 * its parts are together. What lets a large blob come over several connections at once, and a part
 * that broke off continue where it stopped. RangeUnsupportedError when the storage sends the whole
 * blob instead (the caller then reads it in one stream).
 */
export interface RangeReader {
  fetchBlobRange(
    desc: Descriptor,
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>>;
}

/** The most bytes one blob may have in a target, and why (a registry's documented limit). */
export interface LayerLimit {
  bytes: number;
  why: string;
}

/** A target that caps the size of one blob (registries do); builds split files to fit it. */
export interface LayerLimiter {
  layerLimit(): LayerLimit | undefined;
}

export function layerLimitOf(target: Target): LayerLimit | undefined {
  const limiter = target as Partial<LayerLimiter>;
  return typeof limiter.layerLimit === 'function' ? limiter.layerLimit() : undefined;
}

export function canReadRanges(target: Target): target is Target & RangeReader {
  return typeof (target as Partial<RangeReader>).fetchBlobRange === 'function';
}

export function canListTags(target: Target): target is Target & TagLister {
  return typeof (target as Partial<TagLister>).listTags === 'function';
}

export function canFetchReference(target: Target): target is Target & ReferenceFetcher {
  return typeof (target as Partial<ReferenceFetcher>).fetchReference === 'function';
}

export function canMount(target: Target): target is Target & BlobMounter {
  return typeof (target as Partial<BlobMounter>).mountBlob === 'function';
}
