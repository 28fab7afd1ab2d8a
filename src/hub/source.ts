import { createHash } from 'node:crypto';
import type { SourceFile } from '../model/source.ts';
import { DEFAULT_EXCLUDES, matchesAny } from '../model/source.ts';
import type { Digest } from '../oci/digest.ts';
import type { SourceReader } from '../pack/source-reader.ts';
import { UserError } from '../util/errors.ts';
import { Semaphore } from '../util/limiter.ts';
import { fetchRangesInParallel } from '../util/parallel-ranges.ts';
import type { HubClient } from './client.ts';
import type { HubRef } from './hub-ref.ts';

/** Files the Hub keeps in git rather than LFS are small (it refuses more than 10 MB there). */
const MAX_SMALL_FILE = 16 * 1024 * 1024;

export interface HubSourceOptions {
  client: HubClient;
  ref: HubRef;
  include?: readonly string[];
  exclude?: readonly string[];
  /** Ranged downloads of large files: bytes per request, connections and parts in memory in all. */
  partSize: number;
  connections: number;
  partBudget: number;
  signal?: AbortSignal | undefined;
  /** Called with LFS bytes as they arrive (progress, and tests that count them). */
  onBytes?: (bytes: number) => void;
}

/** What a build needs of a Hub revision: its files, and what the artifact says about where it came from. */
export interface HubSource {
  files: SourceFile[];
  commit: string;
  /** The commit's date (the Hub's `lastModified`), RFC 3339. */
  committedAt?: string;
  /** `org.opencontainers.image.source` and `.revision`. */
  annotations: Record<string, string>;
  /** LFS bytes downloaded so far (0 when nothing was packed). */
  downloaded(): number;
}

/** A reader over bytes in memory (a small file fetched while listing). */
function memoryReader(bytes: Buffer): SourceReader {
  return {
    read: async (buffer, offset, length, position) => {
      const n = Math.max(0, Math.min(length, bytes.length - position));
      buffer.set(bytes.subarray(position, position + n), offset);
      return { bytesRead: n };
    },
    checkUnchanged: async () => {},
    close: async () => {},
  };
}

/**
 * A reader over a download that the packer reads front to back: parts fetched over several
 * connections at once ahead of the reads (util/parallel-ranges.ts), each resumed by the client
 * where it broke off. Nothing of it is written to disk.
 */
function streamReader(chunks: AsyncGenerator<Uint8Array>): SourceReader {
  let current: Uint8Array | undefined;
  let at = 0;
  return {
    async read(buffer, offset, length, position) {
      if (position !== at)
        throw new Error(`a download is read in order (asked for byte ${position} at ${at})`);
      let filled = 0;
      while (filled < length) {
        if (!current || current.byteLength === 0) {
          const next = await chunks.next();
          if (next.done) break;
          current = next.value;
        }
        const n = Math.min(length - filled, current.byteLength);
        buffer.set(current.subarray(0, n), offset + filled);
        current = current.subarray(n);
        filled += n;
      }
      at += filled;
      return { bytesRead: filled };
    },
    checkUnchanged: async () => {},
    close: async () => {
      await chunks.return(undefined);
    },
  };
}

function sortByPath(files: SourceFile[]): SourceFile[] {
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * A Hugging Face repository revision as a model source: the revision resolved to a commit, the
 * file listing filtered by the globs before anything is fetched, small (non-LFS) files fetched
 * into memory and hashed, LFS files known by the sha256 the Hub lists — so the weights digest,
 * and with it "unchanged", needs no LFS byte. An LFS file is downloaded only when its layer is
 * packed, streamed into the packer, and its bytes are checked against that sha256 before the
 * layer is committed.
 */
export async function openHubSource(options: HubSourceOptions): Promise<HubSource> {
  const { client, ref, signal } = options;
  const { sha, lastModified } = await client.revision(ref.repo, ref.revision, signal);
  const exclude = [...DEFAULT_EXCLUDES, ...(options.exclude ?? [])];
  const include = options.include ?? [];
  const connections = new Semaphore(options.connections);
  const buffers = new Semaphore(Math.max(2, Math.floor(options.partBudget / options.partSize)));
  let downloaded = 0;
  const files: SourceFile[] = [];
  for await (const entry of client.tree(ref.repo, sha, signal)) {
    if (matchesAny(entry.path, exclude)) continue;
    if (include.length > 0 && !matchesAny(entry.path, include)) continue;
    if (entry.sha256) {
      const { path, size } = entry;
      files.push({
        path,
        size,
        executable: false,
        digest: entry.sha256,
        open: async (range) =>
          streamReader(
            fetchRangesInParallel(
              range?.end ?? size,
              range?.start ?? 0,
              async (start, end, partSignal) => client.fileRange(ref.repo, sha, path, start, end, partSignal),
              {
                partSize: options.partSize,
                connections,
                buffers,
                window: options.connections,
                signal,
                onBytes: (n) => {
                  downloaded += n;
                  options.onBytes?.(n);
                },
              },
            ),
          ),
      });
      continue;
    }
    if (entry.size > MAX_SMALL_FILE)
      throw new UserError(
        `hf://${ref.repo}@${sha}/${entry.path}: ${entry.size} bytes in git, not LFS; the Hub lists no sha256 for it`,
      );
    const bytes = await client.fetchSmall(ref.repo, sha, entry.path, MAX_SMALL_FILE, signal);
    if (bytes.length !== entry.size)
      throw new UserError(
        `hf://${ref.repo}@${sha}/${entry.path}: the Hub sent ${bytes.length} bytes, its listing says ${entry.size}`,
      );
    const digest: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    files.push({
      path: entry.path,
      size: bytes.length,
      executable: false,
      digest,
      open: async (range) => memoryReader(range ? bytes.subarray(range.start, range.end) : bytes),
    });
  }
  if (files.length === 0) {
    const filtered = include.length > 0 || (options.exclude?.length ?? 0) > 0 ? ' after include/exclude' : '';
    throw new UserError(`hf://${ref.repo}@${ref.revision} has no files to package${filtered}`);
  }
  const committedAt = lastModified
    ? new Date(lastModified).toISOString().replace(/\.\d{3}Z$/, 'Z')
    : undefined;
  return {
    files: sortByPath(files),
    commit: sha,
    ...(committedAt ? { committedAt } : {}),
    annotations: {
      'org.opencontainers.image.source': `${client.endpoint.origin}${client.endpoint.pathname.replace(/\/$/, '')}/${ref.repo}`,
      'org.opencontainers.image.revision': sha,
    },
    downloaded: () => downloaded,
  };
}
