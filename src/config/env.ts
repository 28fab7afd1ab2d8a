import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ZstdImplementation } from '../pack/zstd.ts';
import { UsageError } from '../util/errors.ts';

// The environment variables the tool reads, all here: the config edge turns them into options, and
// nothing below it looks at process.env.

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * SOURCE_DATE_EPOCH (reproducible-builds.org): the fixed mtime of every tar entry and the artifact's
 * created date. Undefined when unset; a usage error when it is not a whole number of seconds.
 */
export function sourceDateEpoch(env: Env): number | undefined {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9]{1,11}$/.test(raw)) {
    throw new UsageError(`SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a whole number of seconds`);
  }
  return Number(raw);
}

/** RFC 3339 without fractional seconds, as the created annotation is written. */
export function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** MODEL_OCI_ZSTD=zlib compresses with Node's built-in zstd instead of the native module. */
export function zstdImplementation(env: Env): ZstdImplementation {
  return env.MODEL_OCI_ZSTD === 'zlib' ? 'zlib' : 'native';
}

/** MODEL_OCI_DIRECT_IO=0 writes layout blobs through the page cache instead of O_DIRECT. */
export function directIo(env: Env): boolean {
  return env.MODEL_OCI_DIRECT_IO !== '0';
}

export const DEFAULT_PROGRESS_MS = 2000;

/** MODEL_OCI_PROGRESS_MS: how often progress lines may be printed (default 2 s, CLI and Action alike). */
export function progressInterval(env: Env): number {
  const text = env.MODEL_OCI_PROGRESS_MS?.trim();
  const ms = Number(text);
  return text && Number.isFinite(ms) && ms >= 0 ? ms : DEFAULT_PROGRESS_MS;
}

/** MODEL_OCI_DEBUG=1 (or true/yes/on) prints stack traces; 0, false, no or empty do not. */
export function debugEnabled(env: Env): boolean {
  return /^(1|true|yes|on)$/i.test(env.MODEL_OCI_DEBUG?.trim() ?? '');
}

/** Where digest caches live: $XDG_CACHE_HOME/model-oci/digests, else $HOME/.cache/model-oci/digests. */
export function defaultCacheDir(env: Env): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || tmpdir(), '.cache');
  return path.join(base, 'model-oci', 'digests');
}

/** The temp directory when none is chosen: $TMPDIR, else the system's. */
export function defaultTempDir(env: Env): string {
  return env.TMPDIR || tmpdir();
}

/** The Hugging Face Hub to read `hf://` sources from: HF_ENDPOINT, as the Hub's own clients read it. */
export function hubEndpoint(env: Env): string {
  const value = env.HF_ENDPOINT?.trim() || 'https://huggingface.co';
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`HF_ENDPOINT=${JSON.stringify(value)} is not an http(s) URL`);
  }
  return value.replace(/\/+$/, '');
}

/** The Hugging Face token: HF_TOKEN (as the Hub's clients read it), else none. */
export function hfTokenOf(env: Env): string | undefined {
  return env.HF_TOKEN?.trim() || undefined;
}
