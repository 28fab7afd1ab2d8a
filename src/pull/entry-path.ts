import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../content/errors.ts';
import { errnoCode } from '../util/errors.ts';

/**
 * An artifact that would write where it must not, or holds what a model never does: a path with
 * `..` or an absolute one, a link out of the directory or written through, a device node, a
 * duplicate entry, a size that disagrees with its header. Nothing of the layer is kept.
 */
export class UnsafeArchiveError extends IntegrityError {
  override readonly name: string = 'UnsafeArchiveError';
}

/** Where pull keeps its state inside DIR; no artifact may write there. */
export const STATE_FOLDER = '.cache/model-oci';

/**
 * An archive path made relative and checked: `./a/b` → `a/b`; absolute paths, `..`, empty names,
 * NUL and backslashes are refused (a backslash is a separator on Windows, `..\x` an escape there).
 */
export function safeRelativePath(name: string, where: string): string {
  const refuse = (why: string): never => {
    throw new UnsafeArchiveError(`${where}: refused entry ${JSON.stringify(name)}: ${why}`);
  };
  if (name.includes('\0')) refuse('the path holds a NUL byte');
  if (name.includes('\\')) refuse('the path holds a backslash');
  if (name.startsWith('/')) refuse('the path is absolute');
  const parts = name.split('/').filter((p, i, all) => !(p === '' && i === all.length - 1) && p !== '.');
  if (parts.length === 0) refuse('the path is empty');
  if (parts.some((p) => p === '..')) refuse('the path climbs out with ..');
  if (parts.some((p) => p === '')) refuse('the path has an empty component');
  const rel = parts.join('/');
  if (rel === STATE_FOLDER || rel.startsWith(`${STATE_FOLDER}/`))
    refuse(`${STATE_FOLDER}/ is where pull keeps its state`);
  return rel;
}

/** A symlink's target, from the folder the link is in, stays inside the directory. */
export function linkStaysInside(linkRel: string, target: string): boolean {
  if (target.startsWith('/') || target.includes('\\') || target.includes('\0')) return false;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(linkRel), target));
  return resolved !== '..' && !resolved.startsWith('../') && resolved !== '.';
}

/**
 * Checks that every existing folder on the way to `rel` inside `root` is a real folder, not a
 * symlink (a write through a link could land anywhere), and creates the missing ones.
 */
export async function ensureRealParents(root: string, rel: string, where: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let current = root;
  for (const part of parts) {
    current = path.join(current, part);
    const info = await lstat(current).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (!info) {
      await mkdir(current).catch((err: unknown) => {
        if (errnoCode(err) !== 'EEXIST') throw err;
      });
      continue;
    }
    if (info.isSymbolicLink())
      throw new UnsafeArchiveError(
        `${where}: refused entry ${JSON.stringify(rel)}: it would be written through the symlink ${path.relative(root, current)}`,
      );
    if (!info.isDirectory())
      throw new UnsafeArchiveError(
        `${where}: refused entry ${JSON.stringify(rel)}: ${path.relative(root, current)} is a file, not a folder`,
      );
  }
}
