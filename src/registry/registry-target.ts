import { DigestMismatchError, NotFoundError, SizeLimitError } from '../content/errors.ts';
import type {
  BlobMounter,
  BlobWriter,
  FetchedManifest,
  RangeReader,
  ReferenceFetcher,
  TagLister,
  Target,
} from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { type Digest, isDigest, sha256Digest } from '../oci/digest.ts';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.ts';
import { parseReference, type Reference } from '../oci/reference.ts';
import { errorMessage, UsageError } from '../util/errors.ts';
import { Backoff, isRetryableNetworkError } from '../util/retry.ts';
import { type BlobLocation, fetchBlobResuming, fetchRangeResuming } from './blob-reader.ts';
import { ChunkedUpload } from './chunked-upload.ts';
import { RegistryError, redactUrl } from './errors.ts';
import {
  BodyTooLargeError,
  describeNetworkError,
  type HttpClient,
  header,
  type RegistryResponse,
  readBytes,
} from './http-client.ts';
import { putWhole, SpooledUpload } from './spooled-upload.ts';
import { listTags } from './tags.ts';
import type { UploadPolicy } from './upload-policy.ts';
import { UploadSession } from './upload-session.ts';

/** Every manifest type we can read, so registries do not convert or refuse. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ');

export interface RegistryTargetOptions {
  client: HttpClient;
  /** As written in references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
  registry: string;
  repository: string;
  policy: UploadPolicy;
  /** pull for reading only; push asks the token server for pull and push at once. */
  access: 'pull' | 'push';
  spoolDir?: string;
}

const clients = new WeakMap<RegistryTarget, HttpClient>();

/** The HTTP client of a target (its connection pool, tokens, scheme): for this folder and its tests only. */
export function clientOf(target: RegistryTarget): HttpClient {
  return clients.get(target)!;
}

/**
 * A repository on a registry as a Target: blobs are HEADed before upload and skipped when there,
 * mounted from a sibling repository when the caller names one, and uploaded per the registry's
 * policy (chunked and resumable, or spooled and PUT whole); manifests are PUT byte for byte. Has
 * every capability: tag lists, one-GET reads by reference, cross-repository mounts, ranged reads.
 */
export class RegistryTarget implements Target, TagLister, ReferenceFetcher, BlobMounter, RangeReader {
  readonly displayName: string;
  readonly registry: string;
  readonly repository: string;
  readonly policy: UploadPolicy;
  private readonly client: HttpClient;
  private readonly access: 'pull' | 'push';
  private readonly spoolDir: string | undefined;

  constructor(options: RegistryTargetOptions) {
    this.client = options.client;
    clients.set(this, options.client);
    this.registry = options.registry;
    this.repository = options.repository;
    this.policy = options.policy;
    this.access = options.access;
    this.spoolDir = options.spoolDir;
    this.displayName = `${options.registry}/${options.repository}`;
  }

  /** The same registry and client (one connection pool, one token cache), another repository. */
  withRepository(repository: string, access: 'pull' | 'push' = this.access): RegistryTarget {
    return new RegistryTarget({
      client: this.client,
      registry: this.registry,
      repository,
      policy: this.policy,
      access,
      ...(this.spoolDir ? { spoolDir: this.spoolDir } : {}),
    });
  }

  /**
   * Another repository of this registry as the user names it, `org/base` or `REGISTRY/org/base`
   * (a mount source); `what` names the flag or input in errors.
   */
  sibling(text: string, what: string, access: 'pull' | 'push' = 'pull'): RegistryTarget {
    let ref: Reference;
    try {
      ref = parseReference(text.startsWith(`${this.registry}/`) ? text : `${this.registry}/${text}`);
    } catch (err) {
      throw new UsageError(`${what}: ${err instanceof Error ? err.message : err}`);
    }
    if (ref.tag !== undefined || ref.digest !== undefined)
      throw new UsageError(`${what} ${JSON.stringify(text)}: name a repository, without a tag or digest`);
    return this.withRepository(ref.repository, access);
  }

  /** The origin the client speaks to (`https://host` or, where allowed and TLS is not spoken, `http://host`). */
  baseUrl(signal?: AbortSignal): Promise<string> {
    return this.client.baseUrl(signal);
  }

  private get scopes(): string[] {
    return [`repository:${this.repository}:${this.access === 'push' ? 'pull,push' : 'pull'}`];
  }

  private path(kind: 'blobs' | 'manifests', reference: string): string {
    return `/v2/${this.repository}/${kind}/${reference}`;
  }

  async hasBlob(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const res = await this.client.send({
      method: 'HEAD',
      url: this.path('blobs', digest),
      scopes: this.scopes,
      expect: [200, 404],
      signal,
    });
    await res.body.dump();
    return res.status === 200;
  }

  async openBlobWriter(signal?: AbortSignal): Promise<BlobWriter> {
    const exists = (digest: Digest) => this.hasBlob(digest, signal);
    const start = async () => (await UploadSession.start(this.client, this.repository, this.scopes, signal))!;
    if (this.policy.strategy === 'single') {
      return SpooledUpload.create(this.client, start, exists, { spoolDir: this.spoolDir, signal });
    }
    return new ChunkedUpload(await start(), this.client, this.policy, exists, signal);
  }

  /**
   * Upload sessions a blob may use: 5, plus 2 per PATCH it takes, at most 64. Each request is a
   * chance for a registry like CNCF Distribution to drop the session (a body cut off, an answer
   * lost), so the allowance grows with the requests; a fixed few failed most pushes of multi-chunk
   * layers at high fault rates. The single-PUT strategy retries in new sessions by itself.
   */
  writeAttempts(bytes: number): number {
    if (this.policy.strategy === 'single') return 1;
    return Math.min(64, 5 + 2 * Math.ceil(bytes / this.policy.chunkSize));
  }

  async putBlob(desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<{ stored: boolean }> {
    if (sha256Digest(bytes) !== desc.digest || bytes.byteLength !== desc.size) {
      throw new DigestMismatchError(`blob ${desc.digest}: the bytes given do not match the descriptor`);
    }
    if (await this.hasBlob(desc.digest, signal)) return { stored: false };
    const start = async () => (await UploadSession.start(this.client, this.repository, this.scopes, signal))!;
    const exists = (digest: Digest) => this.hasBlob(digest, signal);
    await putWhole(this.client, start, exists, desc.digest, { data: bytes, size: bytes.byteLength }, signal);
    return { stored: true };
  }

  /** A registry mounts from another repository of itself, reached through the same host. */
  canMountFrom(source: Target): boolean {
    return source instanceof RegistryTarget && source.registry === this.registry;
  }

  /**
   * Makes a blob of `source` (same registry) available here without sending its bytes through us:
   * a cross-repository mount. A registry that answers 202 instead (mounts off, or the blob is not
   * visible to us there) started a plain upload session: it is given up and the caller copies.
   */
  async mountBlob(desc: Descriptor, source: Target, signal?: AbortSignal): Promise<'mounted' | 'declined'> {
    if (!(source instanceof RegistryTarget) || !this.canMountFrom(source)) {
      throw new Error(
        `cannot mount from ${source.displayName} into ${this.displayName}: not the same registry`,
      );
    }
    const scopes = [...this.scopes, `repository:${source.repository}:pull`];
    const session = await UploadSession.start(this.client, this.repository, scopes, signal, {
      digest: desc.digest,
      from: source.repository,
    });
    if (!session) return 'mounted';
    await session.cancel();
    return 'declined';
  }

  private blobLocation(desc: Descriptor): BlobLocation {
    return {
      client: this.client,
      path: this.path('blobs', desc.digest),
      scopes: this.scopes,
      notFound: () => new NotFoundError(`${this.displayName}: blob ${desc.digest} is not there`),
    };
  }

  /** Streams a blob, verified against the descriptor; a dropped transfer resumes with a Range request. */
  async fetchBlob(desc: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    return fetchBlobResuming(this.blobLocation(desc), desc, signal);
  }

  /** Bytes `[start, end)` of a blob by a Range GET, resumed after drops, redirects re-resolved. */
  fetchBlobRange(
    desc: Descriptor,
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    return fetchRangeResuming(this.blobLocation(desc), desc, start, end, signal);
  }

  async resolve(reference: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const res = await this.client.send({
      method: 'HEAD',
      url: this.path('manifests', reference),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: this.scopes,
      expect: [200, 404],
      signal,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    const mediaType = contentType(res);
    const digest = header(res.headers, 'docker-content-digest');
    const size = Number(header(res.headers, 'content-length'));
    if (digest && isDigest(digest) && Number.isSafeInteger(size) && mediaType) {
      if (isDigest(reference) && digest !== reference) throw this.mismatch('HEAD', res, reference, digest);
      return { mediaType, digest, size };
    }
    // Some registries leave the digest off a HEAD: read the manifest and hash it ourselves.
    return (await this.fetchReference(reference, signal))?.descriptor;
  }

  async fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new SizeLimitError(
        `${this.displayName}: manifest ${desc.digest} is ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
      );
    }
    const got = await this.fetchReference(desc.digest, signal);
    if (!got) throw new NotFoundError(`${this.displayName}: manifest ${desc.digest} is not there`);
    if (got.bytes.byteLength !== desc.size) {
      throw new DigestMismatchError(
        `${this.displayName}: manifest ${desc.digest} is ${got.bytes.byteLength} bytes, not the ${desc.size} its descriptor says`,
      );
    }
    return got.bytes;
  }

  /**
   * One `GET /v2/<name>/manifests/<reference>` (no HEAD first), its bytes checked against the
   * digest asked for and the one the registry reports; one whose body breaks off is asked again (it
   * is small, and GETs are safe to repeat). Undefined when there is none.
   */
  async fetchReference(reference: string, signal?: AbortSignal): Promise<FetchedManifest | undefined> {
    const backoff = new Backoff(this.client.retry);
    const where = `${this.displayName}${isDigest(reference) ? '@' : ':'}${reference}`;
    for (;;) {
      const res = await this.client.send({
        method: 'GET',
        url: this.path('manifests', reference),
        headers: { accept: MANIFEST_ACCEPT },
        scopes: this.scopes,
        expect: [200, 404],
        signal,
      });
      if (res.status === 404) {
        await res.body.dump();
        return undefined;
      }
      const declared = Number(header(res.headers, 'content-length') ?? 0);
      if (declared > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new SizeLimitError(
          `${where}: the manifest is ${declared} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
        );
      }
      let bytes: Uint8Array;
      try {
        bytes = await readBytes(res.body, MAX_MANIFEST_BYTES);
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof BodyTooLargeError) {
          throw new SizeLimitError(`${where}: the manifest is over the ${MAX_MANIFEST_BYTES}-byte limit`);
        }
        if (!isRetryableNetworkError(err)) throw new Error(`${where}: ${errorMessage(err)}`, { cause: err });
        if (await backoff.next(undefined, signal)) continue;
        throw new RegistryError(
          `GET ${redactUrl(res.url)}: the manifest transfer broke off: ${describeNetworkError(err, this.client.hints, this.client.host)} ` +
            `(gave up after ${backoff.attempts - 1} attempts)`,
          { method: 'GET', url: res.url, status: res.status, cause: err },
        );
      }
      const digest = sha256Digest(bytes);
      const stated = header(res.headers, 'docker-content-digest');
      if ((stated && stated !== digest) || (isDigest(reference) && reference !== digest)) {
        throw new DigestMismatchError(`${where}: the manifest arrived with digest ${digest}`);
      }
      return {
        descriptor: { mediaType: contentType(res) ?? OCI_MANIFEST, digest, size: bytes.byteLength },
        bytes,
      };
    }
  }

  /** The registry's blob size limit (upload-policy.ts), which builds split files to fit. */
  layerLimit(): { bytes: number; why: string } | undefined {
    return this.policy.layerLimit;
  }

  listTags(signal?: AbortSignal): Promise<string[]> {
    return listTags(this.client, this.repository, this.displayName, signal);
  }

  private mismatch(method: string, res: RegistryResponse, expected: string, got: string): RegistryError {
    return new RegistryError(`${method} ${res.url.pathname}: the registry answered ${got} for ${expected}`, {
      method,
      url: res.url,
      status: res.status,
    });
  }

  async putManifest(desc: Descriptor, bytes: Uint8Array, tags: readonly string[], signal?: AbortSignal) {
    if (bytes.byteLength > MAX_MANIFEST_BYTES) {
      throw new SizeLimitError(
        `manifest ${desc.digest} is ${bytes.byteLength} bytes; registries take at most 4 MiB`,
      );
    }
    for (const reference of tags.length > 0 ? tags : [desc.digest]) {
      await this.putManifestAt(reference, desc, bytes, signal);
    }
  }

  /** PUT of the exact bytes, so the digest the registry stores is the one we computed. */
  private async putManifestAt(reference: string, desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal) {
    const res = await this.client.send({
      method: 'PUT',
      url: this.path('manifests', reference),
      headers: { 'content-type': desc.mediaType, 'content-length': String(bytes.byteLength) },
      body: bytes,
      scopes: this.scopes,
      expect: [201, 200, 202, 204],
      signal,
    });
    await res.body.dump();
    const stored = header(res.headers, 'docker-content-digest');
    if (stored && stored !== desc.digest) throw this.mismatch('PUT', res, desc.digest, stored);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async tag(desc: Descriptor, tags: readonly string[], signal?: AbortSignal): Promise<void> {
    let bytes: Uint8Array | undefined;
    for (const tag of tags) {
      const current = await this.resolve(tag, signal);
      if (current?.digest === desc.digest) continue;
      bytes ??= await this.fetchManifest(desc, signal);
      await this.putManifestAt(tag, desc, bytes, signal);
    }
  }
}

function contentType(res: RegistryResponse): string | undefined {
  return header(res.headers, 'content-type')?.split(';')[0]?.trim() || undefined;
}
