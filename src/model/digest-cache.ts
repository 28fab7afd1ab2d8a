import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Digest, isDigest } from '../oci/digest.ts';
import { errnoCode } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { type StatKey, sameStat } from './source.ts';

/**
 * strict: size, mtime, ctime and inode must match (a local directory: a file rewritten with its
 * old mtime still misses). portable: size and mtime only — for a cache carried to another machine
 * (the Actions cache) together with files restored with their mtimes, where inode and ctime are new.
 */
export type CacheMatch = 'strict' | 'portable';

interface Entry extends StatKey {
  digest: Digest;
}

interface CacheFile {
  version: 1;
  root: string;
  files: Record<string, Entry>;
}

/** One cache file per model directory under `cacheDir`, named after the directory's absolute path. */
export function cacheFileFor(modelRoot: string, cacheDir: string): string {
  const id = createHash('sha256').update(modelRoot).digest('hex').slice(0, 24);
  return path.join(cacheDir, `${id}.json`);
}

function readEntry(value: unknown): Entry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const e = value as Record<string, unknown>;
  if (typeof e.size !== 'number' || typeof e.mtimeNs !== 'string' || typeof e.ctimeNs !== 'string')
    return undefined;
  if (typeof e.ino !== 'string' || typeof e.digest !== 'string' || !isDigest(e.digest)) return undefined;
  return { size: e.size, mtimeNs: e.mtimeNs, ctimeNs: e.ctimeNs, ino: e.ino, digest: e.digest };
}

/**
 * (path, size, mtime, ctime, inode) → content sha256, in a small JSON file, so an unchanged local
 * model is not read again to be hashed. ctime cannot be set back by a user, so a file rewritten
 * with its old mtime still misses. A cache that is missing, unreadable or from another directory
 * is simply empty: it can only ever save work, never change a result.
 */
export class DigestCache {
  private readonly entries: Map<string, Entry>;
  private readonly seen = new Map<string, Entry>();
  private dirty = false;
  readonly file: string;
  readonly root: string;
  private readonly match: CacheMatch;

  private constructor(file: string, root: string, entries: Map<string, Entry>, match: CacheMatch) {
    this.file = file;
    this.root = root;
    this.entries = entries;
    this.match = match;
  }

  static async load(file: string, root: string, match: CacheMatch = 'strict'): Promise<DigestCache> {
    const entries = new Map<string, Entry>();
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<CacheFile>;
      if (parsed.version === 1 && parsed.root === root && typeof parsed.files === 'object' && parsed.files) {
        for (const [rel, value] of Object.entries(parsed.files)) {
          const entry = readEntry(value);
          if (entry) entries.set(rel, entry);
        }
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
    return new DigestCache(file, root, entries, match);
  }

  lookup(relPath: string, stat: StatKey): Digest | undefined {
    const entry = this.entries.get(relPath);
    const same =
      this.match === 'portable'
        ? entry?.size === stat.size && entry.mtimeNs === stat.mtimeNs
        : entry !== undefined && sameStat(entry, stat);
    if (!entry || !same) return undefined;
    this.seen.set(relPath, entry);
    return entry.digest;
  }

  record(relPath: string, stat: StatKey, digest: Digest): void {
    const entry: Entry = { ...stat, digest };
    this.seen.set(relPath, entry);
    this.entries.set(relPath, entry);
    this.dirty = true;
  }

  /** Writes the entries of this run's files (files that are gone drop out). */
  async save(): Promise<void> {
    if (!this.dirty && this.seen.size === this.entries.size) return;
    const files: Record<string, Entry> = {};
    for (const [rel, entry] of [...this.seen].sort(([a], [b]) => (a < b ? -1 : 1))) files[rel] = entry;
    const content: CacheFile = { version: 1, root: this.root, files };
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, `${JSON.stringify(content)}\n`);
  }
}
