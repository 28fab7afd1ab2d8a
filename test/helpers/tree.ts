import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Everything observable about a directory tree: every path with its type, mode, size, mtime and
 * content hash. Two equal snapshots mean nothing was written, renamed, touched or removed.
 */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const abs = path.join(dir, name);
      const rel = path.relative(root, abs);
      const s = await lstat(abs, { bigint: true });
      if (s.isDirectory()) {
        out[`${rel}/`] = `dir ${s.mode.toString(8)} ${s.mtimeNs}`;
        await walk(abs);
      } else {
        const hash = s.isFile()
          ? createHash('sha256')
              .update(await readFile(abs))
              .digest('hex')
          : '';
        out[rel] = `${s.mode.toString(8)} ${s.size} ${s.mtimeNs} ${hash}`;
      }
    }
  };
  const top = await lstat(root).catch(() => undefined);
  if (!top) return {};
  if (!top.isDirectory()) {
    out['.'] = `file ${createHash('sha256')
      .update(await readFile(root))
      .digest('hex')} ${top.mtimeMs}`;
    return out;
  }
  await walk(root);
  return out;
}
