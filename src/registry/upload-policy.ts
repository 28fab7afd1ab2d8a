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
}

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
    reason: 'ghcr.io refuses a PATCH over 4 MiB (416) and cuts a single upload off after 10 minutes',
  },
  {
    matches: (h) => h.endsWith('-docker.pkg.dev') || h === 'gcr.io' || h.endsWith('.gcr.io'),
    strategy: 'single',
    reason: 'Google Artifact Registry has no chunked upload',
  },
  {
    matches: (h) => /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(h) || h === 'public.ecr.aws',
    strategy: 'single',
    reason: 'ECR reports stale ranges on chunked PATCH',
  },
];

export interface UploadOverride {
  strategy?: UploadStrategy;
  chunkSize?: number;
  /** A registry's upload time limit where the table does not know it (e.g. a proxy in front). */
  sessionLimitMs?: number;
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
  return { strategy, chunkSize, ...(sessionLimitMs !== undefined ? { sessionLimitMs } : {}), reason };
}
