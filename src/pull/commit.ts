import { chmod, link, lstat, mkdir, readlink, rename, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { statKeyOf } from '../model/source.ts';
import type { Digest } from '../oci/digest.ts';
import { errnoCode, UserError } from '../util/errors.ts';
import { fsyncDir } from '../util/fs-atomic.ts';
import { ensureRealParents } from './entry-path.ts';
import type { PullState } from './pull-state.ts';
import type { ExtractedEntry } from './safe-extract.ts';

/** A file that is now part of the model directory. */
export interface PlacedFile {
  path: string;
  size: number;
  digest: Digest;
}

async function lstatOrUndefined(file: string) {
  return lstat(file).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
}

/**
 * Puts a verified layer's entries into DIR: each file appears at once, by renaming its staged copy
 * over whatever had that name (never through a symlink on the way: ensureRealParents), and is
 * recorded in the stat cache so the next pull knows it without reading it. Folders and links that
 * stay inside come after their files. The folders are synced so the renames survive a crash.
 */
/** What commit needs of an entry: files by their staged temp path. */
export type CommitEntry =
  | (Omit<Extract<ExtractedEntry, { kind: 'file' }>, 'staged'> & { staged: { tempPath: string } })
  | Exclude<ExtractedEntry, { kind: 'file' }>;

export async function commitEntries(
  entries: readonly CommitEntry[],
  state: PullState,
  where: string,
): Promise<PlacedFile[]> {
  const { dir } = state;
  const touched = new Set<string>();
  const placed: PlacedFile[] = [];
  // Every destination is checked before the first rename: a layer goes in whole or not at all.
  for (const entry of entries) await ensureRealParents(dir, entry.path, where);
  for (const entry of entries) {
    const final = path.join(dir, entry.path);
    touched.add(path.dirname(final));
    const existing = await lstatOrUndefined(final);
    if (existing?.isDirectory() && entry.kind !== 'directory')
      throw new UserError(`${final} is a folder; the model has a file there (move it away and pull again)`);
    switch (entry.kind) {
      case 'file': {
        await chmod(entry.staged.tempPath, entry.mode & 0o111 ? 0o755 : 0o644);
        await rename(entry.staged.tempPath, final);
        const statKey = statKeyOf(await stat(final, { bigint: true }));
        state.cache.record(entry.path, statKey, entry.digest as Digest);
        placed.push({ path: entry.path, size: entry.size, digest: entry.digest as Digest });
        break;
      }
      case 'directory':
        if (!existing)
          await mkdir(final).catch((err: unknown) => {
            if (errnoCode(err) !== 'EEXIST') throw err;
          });
        else if (!existing.isDirectory())
          throw new UserError(
            `${final} is a file; the model has a folder there (move it away and pull again)`,
          );
        break;
      case 'symlink': {
        if (existing?.isSymbolicLink() && (await readlink(final)) === entry.target) break;
        const temp = state.tempPath();
        await symlink(entry.target, temp);
        await rename(temp, final);
        break;
      }
      case 'hardlink': {
        const temp = state.tempPath();
        await link(path.join(dir, entry.target), temp);
        await rename(temp, final).catch(async (err: unknown) => {
          await unlink(temp).catch(() => {});
          throw err;
        });
        break;
      }
    }
  }
  for (const folder of touched) await fsyncDir(folder);
  return placed;
}
