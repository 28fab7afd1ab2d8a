import { formatBytes } from '../util/format.ts';

/** How a blob whose digest is known only at the end travels to a registry. */
export type UploadStrategy = 'chunked' | 'single';

export interface UploadPolicy {
  strategy: UploadStrategy;
  /** Bytes per PATCH for `chunked`. Two chunk buffers per upload in flight bound its memory. */
  chunkSize: number;
  /** How long the registry lets one upload session live (ghcr.io: 10 minutes), when it has a limit. */
  sessionLimitMs?: number;
  /** Why this policy applies, for logs. */
  reason: string;
  /** The most bytes one blob may have there (its own limit, or what its upload time limit allows). */
  layerLimit?: { bytes: number; why: string };
}

/**
 * The slowest upload rate parts are sized for where a registry limits an upload's time: 100 Mbit/s,
 * with a fifth of the time left as margin. GitHub-hosted runners reach several times that.
 */
export const MIN_UPLOAD_BYTES_PER_SECOND = 12_500_000;

const MiB = 1024 * 1024;
/** Large enough that a PATCH round trip costs little; 4 uploads × 2 buffers of it add 64 MiB at most. */
export const DEFAULT_CHUNK_SIZE = 8 * MiB;
export const MIN_CHUNK_SIZE = 256 * 1024;

interface PolicyRule {
  matches: (host: string) => boolean;
  strategy: UploadStrategy;
  chunkSize?: number;
  /** The most a PATCH may carry there; an override cannot go above it. */
  maxChunk?: number;
  sessionLimitMs?: number;
  /** The largest blob it takes, and where that is documented. */
  maxLayer?: { bytes: number; source: string };
  reason: string;
}

// What hosted registries are known to do (see docs/registries.md).
const RULES: readonly PolicyRule[] = [
  {
    matches: (h) => h === 'ghcr.io',
    strategy: 'chunked',
    chunkSize: 4 * MiB,
    maxChunk: 4 * MiB,
    sessionLimitMs: 10 * 60_000,
    maxLayer: { bytes: 10 * 1000 ** 3, source: 'GitHub Packages docs: 10 GB per layer' },
    reason: 'ghcr.io refuses a PATCH over 4 MiB (416) and cuts a single upload off after 10 minutes',
  },
  {
    matches: (h) => h.endsWith('-docker.pkg.dev') || h === 'gcr.io' || h.endsWith('.gcr.io'),
    strategy: 'single',
    reason: 'Google Artifact Registry has no chunked upload',
  },
  {
    matches: (h) => /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(h),
    strategy: 'single',
    maxLayer: { bytes: 52_000 * MiB, source: 'Amazon ECR service quotas: layer size 52,000 MiB' },
    reason: 'ECR reports stale ranges on chunked PATCH',
  },
  {
    matches: (h) => h === 'public.ecr.aws',
    strategy: 'single',
    maxLayer: { bytes: 10_000 * MiB, source: 'Amazon ECR Public service quotas: layer size 10,000 MiB' },
    reason: 'ECR reports stale ranges on chunked PATCH',
  },
  {
    matches: (h) => h === 'quay.io',
    strategy: 'chunked',
    maxLayer: { bytes: 20 * 1000 ** 3, source: 'quay.io: 20 GB per layer' },
    reason: 'chunked uploads resume after a dropped connection',
  },
];

export interface UploadOverride {
  strategy?: UploadStrategy;
  chunkSize?: number;
  /** A registry's upload time limit where the table does not know it (e.g. a proxy in front). */
  sessionLimitMs?: number;
  /** A registry's blob size limit where the table does not know it (a private Harbor), named for messages. */
  maxLayer?: { bytes: number; source: string };
}

/** The policy for a registry host: the table above, then the user's override within its limits. */
export function uploadPolicyFor(host: string, override: UploadOverride = {}): UploadPolicy {
  const name = host.toLowerCase();
  const rule = RULES.find((r) => r.matches(name));
  let chunkSize = override.chunkSize ?? rule?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (rule?.maxChunk !== undefined) chunkSize = Math.min(chunkSize, rule.maxChunk);
  chunkSize = Math.max(MIN_CHUNK_SIZE, chunkSize);
  const strategy = override.strategy ?? rule?.strategy ?? 'chunked';
  const reason = override.strategy
    ? `upload strategy ${override.strategy} was asked for`
    : (rule?.reason ?? 'chunked uploads resume after a dropped connection');
  const sessionLimitMs = override.sessionLimitMs ?? rule?.sessionLimitMs;
  const layerLimit = layerLimitFor(name, override.maxLayer ?? rule?.maxLayer, sessionLimitMs);
  return {
    strategy,
    chunkSize,
    ...(sessionLimitMs !== undefined ? { sessionLimitMs } : {}),
    reason,
    ...(layerLimit ? { layerLimit } : {}),
  };
}

/** 10 GB as 10.0 GB; small test limits in binary units (64.0 MiB). */
const sized = (bytes: number) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : formatBytes(bytes));

/** The smaller of the size limit and what the time limit lets through at the slowest planned rate. */
function layerLimitFor(
  host: string,
  size: { bytes: number; source: string } | undefined,
  sessionLimitMs: number | undefined,
): { bytes: number; why: string } | undefined {
  const bySize = size && {
    bytes: size.bytes,
    why: `the layer limit of ${host}, ${sized(size.bytes)} (${size.source})`,
  };
  const seconds = sessionLimitMs === undefined ? undefined : sessionLimitMs / 1000;
  const byTime =
    seconds === undefined
      ? undefined
      : {
          bytes: Math.floor(seconds * 0.8 * MIN_UPLOAD_BYTES_PER_SECOND),
          why: `the upload time limit of ${host}, ${seconds} s (${sized(seconds * 0.8 * MIN_UPLOAD_BYTES_PER_SECOND)} in 80% of it at ${MIN_UPLOAD_BYTES_PER_SECOND / 1e6} MB/s)`,
        };
  if (!bySize) return byTime;
  if (!byTime) return bySize;
  return byTime.bytes < bySize.bytes ? byTime : bySize;
}
