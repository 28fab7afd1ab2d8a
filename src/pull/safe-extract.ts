import { extract as tarExtract } from 'tar-stream';
import { errorMessage } from '../util/errors.ts';
import { linkStaysInside, safeRelativePath, UnsafeArchiveError } from './entry-path.ts';
import type { PlannedFile } from './plan.ts';
import type { StagedFile } from './staged-file.ts';

/** The parser's own complaints (tar-stream 3 has no error codes), as opposed to our refusals and I/O errors. */
function isTarFormatError(err: unknown): boolean {
  const message = errorMessage(err);
  return /^(Invalid tar header|Unexpected end of data|Header exceeds max size|Invalid header)/.test(message);
}

/** What an archive holds, checked, with its files written to staged files (not yet in place). */
export type ExtractedEntry =
  | { kind: 'file'; path: string; staged: StagedFile; digest: string; size: number; mode: number }
  | { kind: 'directory'; path: string }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'hardlink'; path: string; target: string };

export interface ExtractOptions {
  /** Names the layer in messages. */
  where: string;
  /** The files the layer promises, by path; undefined when it lists none (another tool's tar). */
  expected: ReadonlyMap<string, PlannedFile> | undefined;
  /** Files the user asked for; the others are read through (their bytes count for the diffID) and dropped. */
  wanted: (path: string) => boolean;
  /** A staged file to write an entry into. */
  stage: (path: string) => Promise<StagedFile>;
  /** Told where a file's content starts in the tar, before its first byte is written. */
  onFileStart?: (path: string, dataOffset: number, file: StagedFile) => void;
  signal?: AbortSignal | undefined;
}

/**
 * Reads a tar with tar-stream's parser and keeps only what is safe to put in a model directory:
 * regular files, folders, and links that stay inside and are never written through. Refused (an
 * UnsafeArchiveError naming the entry): absolute paths and `..`, device nodes and FIFOs, links out
 * of the directory, entries below a link, duplicate paths, files the layer's list does not name or
 * sizes it disagrees with, and listed files the tar does not hold. A file's digest is checked by
 * the caller once the whole layer verified. Staged files come from `stage`, and whatever happens the
 * caller keeps or discards them: extraction never does.
 */
export async function extractTar(
  tar: AsyncIterable<Uint8Array>,
  options: ExtractOptions,
): Promise<ExtractedEntry[]> {
  const { where } = options;
  const parser = tarExtract();
  const refuse = (name: string, why: string): never => {
    throw new UnsafeArchiveError(`${where}: refused entry ${JSON.stringify(name)}: ${why}`);
  };
  let feedError: unknown;
  const feeding = (async () => {
    try {
      for await (const chunk of tar) {
        if (parser.destroyed) return;
        if (!parser.write(chunk))
          await new Promise<void>((resolve) => {
            const done = () => {
              parser.off('drain', done);
              parser.off('close', done);
              resolve();
            };
            parser.on('drain', done);
            parser.on('close', done);
          });
      }
      parser.end(null);
    } catch (err) {
      feedError = err;
      parser.destroy(err as Error);
    }
  })();

  const entries: ExtractedEntry[] = [];
  const seen = new Set<string>();
  const links = new Set<string>();
  const files = new Set<string>();
  try {
    for await (const entry of parser) {
      const header = entry.header;
      const rel = safeRelativePath(header.name, where);
      if (seen.has(rel)) refuse(rel, 'a second entry of the same path');
      seen.add(rel);
      for (let at = rel.indexOf('/'); at > 0; at = rel.indexOf('/', at + 1)) {
        if (links.has(rel.slice(0, at)))
          refuse(rel, `it would be written through the link ${rel.slice(0, at)}`);
        if (files.has(rel.slice(0, at))) refuse(rel, `${rel.slice(0, at)} is a file, not a folder`);
      }
      switch (header.type) {
        case 'file':
        case 'contiguous-file': {
          const promised = options.expected?.get(rel);
          if (options.expected && !promised) refuse(rel, 'the layer does not list this file');
          if (promised && promised.size !== header.size)
            refuse(rel, `its header says ${header.size} bytes, the layer's file list ${promised.size}`);
          files.add(rel);
          if (!options.wanted(rel)) {
            entry.resume();
            await new Promise<void>((resolve, reject) => {
              entry.once('end', () => resolve());
              entry.once('error', reject);
            });
            break;
          }
          const staged = await options.stage(rel);
          options.onFileStart?.(rel, (header as { byteOffset?: number }).byteOffset ?? -1, staged);
          for await (const chunk of entry) await staged.write(chunk as Uint8Array);
          if (staged.written !== header.size)
            refuse(rel, `it ended after ${staged.written} of ${header.size} bytes`);
          const { digest, size } = await staged.finish();
          entries.push({ kind: 'file', path: rel, staged, digest, size, mode: header.mode });
          break;
        }
        case 'directory':
          entries.push({ kind: 'directory', path: rel });
          entry.resume();
          break;
        case 'symlink': {
          const target = header.linkname ?? '';
          if (!linkStaysInside(rel, target))
            refuse(rel, `a symlink to ${JSON.stringify(target)}, outside the directory`);
          if (options.expected) refuse(rel, 'the layer does not list this link');
          links.add(rel);
          entries.push({ kind: 'symlink', path: rel, target });
          entry.resume();
          break;
        }
        case 'link': {
          const target = safeRelativePath(header.linkname ?? '', where);
          if (!files.has(target))
            refuse(rel, `a hard link to ${JSON.stringify(target)}, which is not a file extracted before it`);
          if (options.expected) refuse(rel, 'the layer does not list this link');
          files.add(rel);
          entries.push({ kind: 'hardlink', path: rel, target });
          entry.resume();
          break;
        }
        default:
          refuse(rel, `a ${header.type}; a model holds only files, folders and links`);
      }
    }
    await feeding;
    if (feedError) throw feedError;
  } catch (err) {
    parser.destroy();
    await feeding;
    if (feedError) throw feedError;
    if (isTarFormatError(err))
      throw new UnsafeArchiveError(`${where}: not a valid tar: ${errorMessage(err)}`, { cause: err });
    throw err;
  }
  for (const file of options.expected?.values() ?? []) {
    if (!files.has(file.path))
      throw new UnsafeArchiveError(`${where}: the layer lists ${file.path}, which its tar does not hold`);
  }
  return entries;
}
