import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Descriptor } from '../../oci/descriptor.ts';
import { type Digest, isDigest, sha256Digest, splitDigest } from '../../oci/digest.ts';
import { type ImageIndex, MAX_MANIFEST_BYTES } from '../../oci/manifest.ts';
import { ANNOTATION, OCI_INDEX, OCI_MANIFEST } from '../../oci/media-types.ts';
import { expectObject, parseJson } from '../../oci/validate.ts';
import { errnoCode, throwIfAborted, UserError } from '../../util/errors.ts';
import { writeFileAtomic } from '../../util/fs-atomic.ts';
import { DigestMismatchError, NotFoundError, SizeLimitError } from '../errors.ts';
import type {
  BlobWriter,
  FetchedManifest,
  RangeReader,
  ReferenceFetcher,
  TagLister,
  Target,
} from '../target.ts';
import { verifiedStream } from '../verified-stream.ts';
import { BlobFileWriter } from './blob-file-writer.ts';
import {
  emptyIndex,
  readIndexFile,
  readLayoutMarker,
  writeIndexFile,
  writeLayoutMarker,
} from './index-file.ts';
import { withFileLock } from './lock.ts';

/** What a layout folder holds while it is being created (by us or another writer). */
const LAYOUT_ENTRIES = new Set(['blobs', 'ingest', 'index.json', 'index.json.lock', 'oci-layout']);

/** The temp files writeFileAtomic leaves for a moment beside index.json and oci-layout. */
function isTempFile(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/**
 * An OCI image layout directory (image-spec image-layout.md): the embedded default target.
 * Tags are `org.opencontainers.image.ref.name` annotations on the descriptors in index.json.
 *
 * Safe with several writers: blobs appear by atomic rename of complete, verified files, and
 * index.json is rewritten (temp file + rename) only under a lock file, from a fresh read.
 */
export interface LayoutOptions {
  /** Write blobs with O_DIRECT where the filesystem allows it (default true; see util/direct-file.ts). */
  directIo?: boolean;
}

export class OciLayoutTarget implements Target, TagLister, ReferenceFetcher, RangeReader {
  readonly displayName: string;
  readonly root: string;
  private readonly indexPath: string;
  private readonly directIo: boolean;

  private constructor(root: string, options: LayoutOptions) {
    this.root = root;
    this.displayName = `oci-layout:${root}`;
    this.indexPath = path.join(root, 'index.json');
    this.directIo = options.directIo ?? true;
  }

  /**
   * Checks the directory without changing it: it must be a layout, an empty directory or not exist
   * yet (created on first write). A regular file, a foreign non-empty folder or a corrupt
   * index.json is refused here, before any work is done.
   */
  static async open(root: string, options: LayoutOptions = {}): Promise<OciLayoutTarget> {
    const layout = new OciLayoutTarget(root, options);
    let isDir: boolean;
    try {
      isDir = (await stat(root)).isDirectory();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return layout;
      throw new UserError(`cannot use ${root} as an OCI layout: ${errnoCode(err) ?? err}`);
    }
    if (!isDir) throw new UserError(`${root} is not a directory, so it cannot be an OCI layout`);
    const version = await readLayoutMarker(path.join(root, 'oci-layout'));
    if (version === undefined) {
      // Empty, or a layout another writer is creating right now (the marker is written last).
      const foreign = (await readdir(root)).filter((name) => !LAYOUT_ENTRIES.has(name) && !isTempFile(name));
      if (foreign.length > 0) {
        throw new UserError(
          `${root} is not an OCI layout (no oci-layout file) and not empty; refusing to write into it`,
        );
      }
      return layout;
    }
    if ((await readIndexFile(layout.indexPath)) === undefined) {
      throw new UserError(`${layout.indexPath} is missing: ${root} is not a complete OCI layout`);
    }
    return layout;
  }

  blobPath(digest: Digest): string {
    const [algorithm, encoded] = splitDigest(digest);
    return path.join(this.root, 'blobs', algorithm, encoded);
  }

  /** Creates what a layout must have; index.json before the marker, so a marked layout is complete. */
  private async ensureCreated(): Promise<void> {
    const marker = path.join(this.root, 'oci-layout');
    if ((await readLayoutMarker(marker)) !== undefined) return;
    await mkdir(path.join(this.root, 'blobs', 'sha256'), { recursive: true });
    await withFileLock(`${this.indexPath}.lock`, async () => {
      if ((await readIndexFile(this.indexPath)) === undefined)
        await writeIndexFile(this.indexPath, emptyIndex());
      if ((await readLayoutMarker(marker)) === undefined) await writeLayoutMarker(marker);
    });
  }

  private async readIndex(): Promise<ImageIndex> {
    return (await readIndexFile(this.indexPath)) ?? emptyIndex();
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async openBlobWriter(signal?: AbortSignal): Promise<BlobWriter> {
    throwIfAborted(signal);
    await this.ensureCreated();
    return BlobFileWriter.open(path.join(this.root, 'ingest'), (d) => this.blobPath(d), this.directIo);
  }

  async putBlob(desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal): Promise<{ stored: boolean }> {
    const file = this.blobPath(desc.digest);
    const existing = await readFile(file).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (existing && Buffer.from(bytes).equals(existing)) return { stored: false };
    if (existing) {
      // A damaged copy on disk (these blobs are small): put the verified bytes in its place.
      if (sha256Digest(bytes) !== desc.digest || bytes.byteLength !== desc.size)
        throw new DigestMismatchError(`blob ${desc.digest}: the bytes given do not match the descriptor`);
      await writeFileAtomic(file, bytes);
      return { stored: true };
    }
    const writer = await this.openBlobWriter(signal);
    try {
      await writer.write(bytes);
      return { stored: (await writer.commit(desc)).stored };
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  async fetchBlob(desc: Descriptor): Promise<AsyncIterable<Uint8Array>> {
    const file = this.blobPath(desc.digest);
    // Fail here rather than inside the consumer's loop.
    await stat(file).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT')
        throw new NotFoundError(`${this.displayName}: blob ${desc.digest} is not there`);
      throw err;
    });
    return verifiedStream(desc, createReadStream(file, { highWaterMark: 1 << 20 }), this.displayName);
  }

  /** Bytes `[start, end)` of a blob file, unverified (the caller checks the whole). */
  async fetchBlobRange(desc: Descriptor, start: number, end: number): Promise<AsyncIterable<Uint8Array>> {
    const file = this.blobPath(desc.digest);
    const size = await stat(file).then(
      (s) => s.size,
      (err: unknown) => {
        if (errnoCode(err) === 'ENOENT')
          throw new NotFoundError(`${this.displayName}: blob ${desc.digest} is not there`);
        throw err;
      },
    );
    if (end > size)
      throw new DigestMismatchError(
        `${this.displayName}: blob ${desc.digest} is ${size} bytes, shorter than its descriptor's ${desc.size}`,
      );
    if (start === end) return (async function* () {})();
    return createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 });
  }

  async resolve(reference: string): Promise<Descriptor | undefined> {
    const index = await this.readIndex();
    if (isDigest(reference)) {
      const listed = index.manifests.find((m) => m.digest === reference);
      if (listed) return withoutRefName(listed);
      if (!(await this.hasBlob(reference))) return undefined;
      const bytes = await readFile(this.blobPath(reference));
      return { mediaType: sniffManifestMediaType(bytes), digest: reference, size: bytes.byteLength };
    }
    // The last entry wins if a foreign tool left duplicates, matching how it would read the file.
    const entry = index.manifests.findLast((m) => m.annotations?.[ANNOTATION.refName] === reference);
    return entry ? withoutRefName(entry) : undefined;
  }

  async fetchManifest(desc: Descriptor): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new SizeLimitError(
        `${this.displayName}: manifest ${desc.digest} is ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte manifest limit`,
      );
    }
    const bytes = await readFile(this.blobPath(desc.digest)).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT')
        throw new NotFoundError(`${this.displayName}: manifest ${desc.digest} is not there`);
      throw err;
    });
    const actual = sha256Digest(bytes);
    if (actual !== desc.digest || bytes.byteLength !== desc.size) {
      throw new DigestMismatchError(
        `${this.displayName}: manifest ${desc.digest} is damaged on disk (content hashes to ${actual})`,
      );
    }
    return bytes;
  }

  /** The manifest a tag or digest names, and its descriptor; undefined when there is none. */
  async fetchReference(reference: string): Promise<FetchedManifest | undefined> {
    const descriptor = await this.resolve(reference);
    if (!descriptor) return undefined;
    return { descriptor, bytes: await this.fetchManifest(descriptor) };
  }

  /** Every tag in index.json (`org.opencontainers.image.ref.name`), each once, in file order. */
  async listTags(): Promise<string[]> {
    const names = (await this.readIndex()).manifests.map((m) => m.annotations?.[ANNOTATION.refName]);
    return [...new Set(names.filter((n): n is string => n !== undefined))];
  }

  async putManifest(
    desc: Descriptor,
    bytes: Uint8Array,
    tags: readonly string[],
    signal?: AbortSignal,
  ): Promise<void> {
    if (bytes.byteLength > MAX_MANIFEST_BYTES) {
      throw new SizeLimitError(
        `manifest ${desc.digest} is ${bytes.byteLength} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES} (registries refuse more)`,
      );
    }
    await this.putBlob(desc, bytes, signal);
    await this.tag(desc, tags, signal);
  }

  async tag(desc: Descriptor, tags: readonly string[], signal?: AbortSignal): Promise<void> {
    if (tags.length === 0) return;
    await this.ensureCreated();
    await withFileLock(
      `${this.indexPath}.lock`,
      async () => {
        const index = await this.readIndex();
        const updated = retag(index, withoutRefName(desc), tags);
        if (updated) await writeIndexFile(this.indexPath, updated);
      },
      { signal },
    );
  }
}

/** The descriptor without its tag, fields in the spec's order so index.json reads the same everywhere. */
function withoutRefName(desc: Descriptor): Descriptor {
  const { [ANNOTATION.refName]: _tag, ...annotations } = desc.annotations ?? {};
  const copy: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.artifactType !== undefined) copy.artifactType = desc.artifactType;
  if (desc.platform !== undefined) copy.platform = desc.platform;
  if (desc.urls !== undefined) copy.urls = desc.urls;
  if (desc.data !== undefined) copy.data = desc.data;
  if (Object.keys(annotations).length > 0) copy.annotations = annotations;
  return copy;
}

/** index.json with every tag pointing at desc; undefined when nothing would change. */
function retag(index: ImageIndex, desc: Descriptor, tags: readonly string[]): ImageIndex | undefined {
  const wanted = new Set(tags);
  const already = new Set(
    index.manifests
      .filter((m) => m.digest === desc.digest && wanted.has(m.annotations?.[ANNOTATION.refName] ?? ''))
      .map((m) => m.annotations?.[ANNOTATION.refName]),
  );
  if (tags.every((t) => already.has(t))) return undefined;
  const kept = index.manifests.filter((m) => {
    const name = m.annotations?.[ANNOTATION.refName];
    return name === undefined || !wanted.has(name) || (m.digest === desc.digest && already.has(name));
  });
  const added = tags
    .filter((t) => !already.has(t))
    .map((t) => ({ ...desc, annotations: { ...desc.annotations, [ANNOTATION.refName]: t } }));
  return { ...index, mediaType: OCI_INDEX, manifests: [...kept, ...added] };
}

function sniffManifestMediaType(bytes: Uint8Array): string {
  try {
    const o = expectObject(parseJson(bytes, 'manifest'), 'manifest');
    if (typeof o.mediaType === 'string') return o.mediaType;
    return Array.isArray(o.manifests) ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return OCI_MANIFEST;
  }
}
