import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../oci/digest.ts';
import { errnoCode } from '../util/errors.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { type IgnoreMatcher, parseDockerignore } from './dockerignore.ts';

// The INPUT DIGEST of a base image build is the sha256 of this listing (UTF-8, every line ending
// in "\n"; strings are JSON-quoted so spaces, newlines and non-ASCII in names are unambiguous):
//
//   model-oci base input v1
//   dockerfile sha256:<hex of the Dockerfile's bytes>
//   dir <mode> <"path">                          ┐ every context entry NOT excluded by
//   file <mode> <size> sha256:<hex> <"path">     │ <context>/.dockerignore, sorted by path
//   symlink <"link target"> <"path">             ┘ (UTF-16 code unit order, i.e. JS sort)
//   arg <"name"> <"value">                       build args, sorted by name
//   target <"stage">                             "" when none
//   platform <"os/arch">                         "" when none
//   runtime <"name"> <"version">                 only when the runtime is given to the builder
//   from <"image as written, ARGs substituted"> sha256:<hex>    every external FROM, in file order
//
// <mode> is the octal permission bits (mode & 0o7777); paths are relative to the context root with
// "/" separators. The Dockerfile and .dockerignore are always listed when they lie in the context,
// even if .dockerignore excludes them (docker sends them anyway). Owners and times are not inputs:
// COPY resets the owner and the builders do not keep times in a way that matters for a base.

export const LISTING_VERSION = 'model-oci base input v1';

export interface InputDigestParts {
  dockerfileBytes: Uint8Array;
  /** Context-relative path of the Dockerfile when it is inside the context. */
  dockerfileInContext?: string;
  context: string;
  buildArgs?: Record<string, string>;
  target?: string;
  platform?: string;
  runtime?: { name: string; version: string };
  from: { image: string; digest: Digest }[];
  signal?: AbortSignal;
}

export async function inputListing(parts: InputDigestParts): Promise<string> {
  const q = (s: string) => JSON.stringify(s);
  const lines = [LISTING_VERSION, `dockerfile ${sha256(parts.dockerfileBytes)}`];
  lines.push(...(await contextEntries(parts.context, parts.dockerfileInContext, parts.signal)));
  for (const name of Object.keys(parts.buildArgs ?? {}).sort()) {
    lines.push(`arg ${q(name)} ${q(parts.buildArgs?.[name] ?? '')}`);
  }
  lines.push(`target ${q(parts.target ?? '')}`, `platform ${q(parts.platform ?? '')}`);
  if (parts.runtime) lines.push(`runtime ${q(parts.runtime.name)} ${q(parts.runtime.version)}`);
  for (const f of parts.from) lines.push(`from ${q(f.image)} ${f.digest}`);
  return `${lines.join('\n')}\n`;
}

export async function inputDigest(parts: InputDigestParts): Promise<{ digest: Digest; listing: string }> {
  const listing = await inputListing(parts);
  return { digest: sha256(listing), listing };
}

type Entry = { rel: string; kind: 'dir' | 'file' | 'symlink'; abs: string; mode: number; size: number };

/** The listing lines for the context's included entries, sorted by path. */
export async function contextEntries(
  context: string,
  dockerfileRel: string | undefined,
  signal?: AbortSignal,
): Promise<string[]> {
  const ignore = await readIgnore(context);
  const always = new Set(['.dockerignore', ...(dockerfileRel ? [dockerfileRel] : [])]);
  const entries: Entry[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, name);
      const st = await lstat(abs);
      const excluded = ignore.excludes(childRel) && !always.has(childRel);
      if (st.isDirectory()) {
        if (!excluded) entries.push({ rel: childRel, kind: 'dir', abs, mode: st.mode, size: 0 });
        // An excluded directory is entered only when an exception could re-include something in it.
        if (!excluded || ignore.hasExceptions || [...always].some((a) => a.startsWith(`${childRel}/`))) {
          await walk(abs, childRel);
        }
      } else if (!excluded && (st.isFile() || st.isSymbolicLink())) {
        const kind = st.isFile() ? 'file' : 'symlink';
        entries.push({ rel: childRel, kind, abs, mode: st.mode, size: st.size });
      }
    }
  };
  await walk(context, '');
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return mapConcurrent(
    entries,
    8,
    async (e) => {
      const mode = (e.mode & 0o7777).toString(8);
      const p = JSON.stringify(e.rel);
      if (e.kind === 'dir') return `dir ${mode} ${p}`;
      if (e.kind === 'symlink') return `symlink ${JSON.stringify(await readlink(e.abs))} ${p}`;
      return `file ${mode} ${e.size} ${await hashFile(e.abs)} ${p}`;
    },
    signal,
  );
}

async function readIgnore(context: string): Promise<IgnoreMatcher> {
  try {
    return parseDockerignore(await readFile(path.join(context, '.dockerignore'), 'utf8'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return parseDockerignore('');
    throw err;
  }
}

async function hashFile(file: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
