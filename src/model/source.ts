import { type BigIntStats, constants } from 'node:fs';
import { access, type FileHandle, lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../oci/digest.ts';
import { type ByteRange, openLocal, type SourceReader, windowed } from '../pack/source-reader.ts';
import { errnoCode, UserError } from '../util/errors.ts';

/** What identifies a file's state cheaply: if none of it changed, the content did not either. */
export interface StatKey {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export interface SourceFile {
  /** Relative, '/'-separated path inside the model. */
  path: string;
  size: number;
  executable: boolean;
  /** A local file's path and state (for the digest cache and the changed-while-read check). */
  absPath?: string;
  statKey?: StatKey;
  /**
   * The content digest its source vouches for (the Hub's sha256 of an LFS file, a small file hashed
   * when it was fetched): known without reading the file, and checked when it is packed.
   */
  digest?: Digest;
  /** Reads the file, or only `[start, end)` of it (a part layer), positions then relative to start. */
  open(range?: ByteRange): Promise<SourceReader>;
}

export interface ScanOptions {
  include?: readonly string[];
  exclude?: readonly string[];
}

/** Folders that hold tool state rather than model files (git clone, huggingface-cli download). */
export const DEFAULT_EXCLUDES: readonly string[] = ['.git/**', '.cache/**', '.huggingface/**'];

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function statKeyOf(s: BigIntStats): StatKey {
  return { size: Number(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs), ino: String(s.ino) };
}

export function sameStat(a: StatKey, b: StatKey): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/** Throws when an open file no longer matches what the scan saw: it was modified meanwhile. */
export async function checkUnchanged(
  file: { path: string; statKey?: StatKey },
  handle: FileHandle,
): Promise<void> {
  if (!file.statKey) return;
  const now = statKeyOf(await handle.stat({ bigint: true }));
  if (!sameStat(now, file.statKey)) {
    throw new UserError(`${file.path} changed while it was being read; run again when it is stable`);
  }
}

/**
 * Globs match the relative path (node:path matchesGlob, `**` for any depth). A pattern without a
 * '/' also matches a file's base name at any depth, as in .gitignore: `*.md` finds docs/x.md.
 */
export function matchesAny(relPath: string, patterns: readonly string[]): boolean {
  const base = relPath.slice(relPath.lastIndexOf('/') + 1);
  return patterns.some(
    (p) => path.matchesGlob(relPath, p) || (!p.includes('/') && path.matchesGlob(base, p)),
  );
}

/** True when a pattern `X/**` excludes everything below the folder `rel`, so it need not be read. */
function excludesWholeFolder(rel: string, patterns: readonly string[]): boolean {
  const folders = patterns.filter((p) => p.endsWith('/**')).map((p) => p.slice(0, -3));
  return matchesAny(rel, folders);
}

function kindOf(s: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
}): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isCharacterDevice()) return 'a character device';
  return 'not a regular file';
}

function hasControlCharacter(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

const HUB_CACHE_REPO = /^(models|datasets|spaces)--[^/\\]+$/;

/**
 * The Hugging Face cache folder of one repository (`…/hub/models--ORG--NAME`) when `root` is one of
 * its snapshots (`…/models--ORG--NAME/snapshots/<revision>[/sub]`). A snapshot's files are symlinks
 * into that folder's `blobs/`, so links that stay inside it are the model's own files.
 */
export function hubCacheRepoOf(root: string): string | undefined {
  const parts = root.split(path.sep);
  const at = parts.lastIndexOf('snapshots');
  if (at < 1 || at + 1 >= parts.length || !HUB_CACHE_REPO.test(parts[at - 1]!)) return undefined;
  return parts.slice(0, at).join(path.sep);
}

/**
 * Lists the regular files of a model directory (and its real path), sorted by path (byte order of the UTF-8 path, the
 * order the tar and the weights digest use). Refuses, naming the path: a symlink that leads out of
 * the directory, FIFOs/sockets/devices, unreadable files or folders, names that are not UTF-8 or
 * hold control characters. Symlinks that stay inside are followed; in a Hugging Face cache snapshot,
 * so are links into the same repository's cache folder (its `blobs/`), and no others.
 */
export async function scanModelDir(
  dir: string,
  options: ScanOptions = {},
): Promise<{ root: string; files: SourceFile[] }> {
  let rootStat: Awaited<ReturnType<typeof stat>>;
  try {
    rootStat = await stat(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new UserError(`model directory ${dir} does not exist`);
    throw new UserError(`cannot read model directory ${dir} (${code ?? err})`);
  }
  if (!rootStat.isDirectory()) throw new UserError(`model path ${dir} is not a directory`);
  const root = await realpath(dir);
  const hubRepo = hubCacheRepoOf(root);
  const allowed = (resolved: string) =>
    isInside(root, resolved) || (hubRepo !== undefined && isInside(hubRepo, resolved));
  const include = options.include ?? [];
  const exclude = [...DEFAULT_EXCLUDES, ...(options.exclude ?? [])];
  const files: SourceFile[] = [];
  const visitedDirs = new Set<string>([root]);

  const walk = async (absDir: string, relDir: string): Promise<void> => {
    let names: Buffer[];
    try {
      names = await readdir(absDir, { encoding: 'buffer' });
    } catch (err) {
      throw new UserError(`cannot read folder ${relDir || '.'} in ${dir} (${errnoCode(err) ?? err})`);
    }
    for (const raw of names) {
      let name: string;
      try {
        name = utf8.decode(raw);
      } catch {
        throw new UserError(
          `${path.posix.join(relDir, raw.toString('latin1'))} in ${dir}: file name is not valid UTF-8`,
        );
      }
      const rel = relDir ? `${relDir}/${name}` : name;
      if (hasControlCharacter(name)) {
        throw new UserError(
          `${JSON.stringify(rel)} in ${dir}: file names with control characters cannot be packaged`,
        );
      }
      const abs = path.join(absDir, name);
      const link = await lstat(abs);
      let target = link;
      if (link.isSymbolicLink()) {
        const resolved = await realpath(abs).catch(() => undefined);
        if (resolved === undefined) throw new UserError(`${rel} in ${dir} is a broken symlink`);
        if (!allowed(resolved)) {
          const outside = hubRepo
            ? `outside the model directory and its Hugging Face cache folder ${hubRepo}`
            : 'outside the model directory';
          throw new UserError(`${rel} in ${dir} is a symlink to ${resolved}, ${outside}`);
        }
        target = await stat(resolved);
        if (target.isDirectory()) {
          if (visitedDirs.has(resolved)) continue; // a link back up the tree: its files are listed already
          visitedDirs.add(resolved);
        }
      }
      if (target.isDirectory()) {
        if (excludesWholeFolder(rel, exclude)) continue;
        await walk(abs, rel);
        continue;
      }
      if (matchesAny(rel, exclude)) continue;
      if (include.length > 0 && !matchesAny(rel, include)) continue;
      if (!target.isFile())
        throw new UserError(`${rel} in ${dir} is ${kindOf(target)}; only regular files can be packaged`);
      try {
        await access(abs, constants.R_OK);
      } catch (err) {
        throw new UserError(`${rel} in ${dir} is not readable (${errnoCode(err) ?? err})`);
      }
      const full = await stat(abs, { bigint: true });
      const file: SourceFile = {
        path: rel,
        absPath: abs,
        size: Number(full.size),
        executable: (Number(full.mode) & 0o111) !== 0,
        statKey: statKeyOf(full),
        open: async (range) => {
          const reader = await openLocal(abs, (handle) => checkUnchanged(file, handle));
          return range ? windowed(reader, range) : reader;
        },
      };
      files.push(file);
    }
  };
  await walk(root, '');
  if (files.length === 0) {
    const filtered = include.length > 0 || (options.exclude?.length ?? 0) > 0 ? ' after include/exclude' : '';
    throw new UserError(`model directory ${dir} has no files to package${filtered}`);
  }
  files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return { root, files };
}
