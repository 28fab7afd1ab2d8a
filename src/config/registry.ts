import type { RegistryOptions } from '../registry/open-registry.ts';
import type { UploadStrategy } from '../registry/upload-policy.ts';
import { UsageError } from '../util/errors.ts';
import { checkTempDir } from '../util/temp-dir.ts';
import { defaultTempDir, directIo } from './env.ts';
import type { StorageConfig } from './types.ts';
import { choice, type Edge, integer, size } from './values.ts';

/** The registry options as the user gave them, before they are checked. */
export interface RawRegistry {
  username?: string | undefined;
  password?: string | undefined;
  plainHttp?: readonly string[];
  caFiles?: readonly string[];
  upload?: string | undefined;
  chunkSize?: string | undefined;
  /** The most one blob may be, where the registry table does not know it (a private Harbor). */
  maxLayerSize?: string | undefined;
  /** Seconds the registry lets one upload run, where the table does not know it. */
  uploadTimeLimit?: string | undefined;
  tempDir?: string | undefined;
  /** The token for ghcr.io when nothing else is found (the Action's github-token input); else GITHUB_TOKEN. */
  githubToken?: string | undefined;
}

/**
 * How targets are opened, from the registry options and the environment: credentials (both or
 * neither), plain-HTTP hosts, CA files, the upload strategy and chunk size, the temp directory
 * (checked now, before any work), and the layout's O_DIRECT setting.
 */
export async function storageConfig(raw: RawRegistry, edge: Edge): Promise<StorageConfig> {
  const username = raw.username?.trim() || undefined;
  const password = raw.password || undefined;
  if (password !== undefined && username === undefined)
    throw new UsageError(`${edge.name('password')} was given without ${edge.name('username')}`);
  if (username !== undefined && password === undefined)
    throw new UsageError(`${edge.name('username')} needs a password: ${edge.name('password')}`);
  const upload = choice(raw.upload, 'upload', edge, ['auto', 'chunked', 'single'] as const, 'auto');
  const chunkSize = size(raw.chunkSize, 'chunkSize', edge, {
    min: 256 * 1024,
    max: 1024 * 1024 * 1024,
    words: 'from 256KiB to 1GiB',
  });
  const maxLayer = size(raw.maxLayerSize, 'maxLayerSize', edge, {
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    words: 'a size such as 10GB or 64MiB',
  });
  const uploadSeconds = integer(raw.uploadTimeLimit, 'uploadTimeLimit', edge, {
    min: 1,
    max: 7 * 24 * 3600,
    fallback: 0,
  });
  const tempDir = raw.tempDir?.trim()
    ? await checkTempDir(raw.tempDir.trim(), edge.name('tempDir'))
    : defaultTempDir(edge.env);
  const env = raw.githubToken ? { ...edge.env, GITHUB_TOKEN: raw.githubToken } : { ...edge.env };
  const registry: RegistryOptions = {
    ...(username !== undefined && password !== undefined
      ? { username, password, explicitSource: `${edge.name('username')} and ${edge.name('password')}` }
      : {}),
    plainHttp: [...(raw.plainHttp ?? [])],
    caFiles: [...(raw.caFiles ?? [])],
    upload: {
      ...(upload !== 'auto' ? { strategy: upload as UploadStrategy } : {}),
      ...(chunkSize !== undefined ? { chunkSize } : {}),
      ...(maxLayer !== undefined
        ? { maxLayer: { bytes: maxLayer, source: `${edge.name('maxLayerSize')}` } }
        : {}),
      ...(uploadSeconds > 0 ? { sessionLimitMs: uploadSeconds * 1000 } : {}),
    },
    spoolDir: tempDir,
    hints: edge.hints,
    env,
  };
  return { registry, layout: { directIo: directIo(edge.env) }, tempDir };
}
