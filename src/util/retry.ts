import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from './errors.ts';

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  attempts: number;
  /** First backoff; each later one doubles. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** No new attempt starts once this much time has passed since the first. */
  totalMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  totalMs: 10 * 60_000,
};

/** Statuses a registry or the proxies in front of it answer when trying again later can work. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/**
 * A dropped or stalled connection. Refused connections and unknown hosts are not retried: they are
 * almost always a wrong address, and the user should hear so at once.
 */
export function isRetryableNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = errnoCode(e);
    if (code && RETRYABLE_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** `Retry-After` as seconds or an HTTP date → milliseconds from now, or undefined. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Paces the attempts of one operation: exponential backoff with jitter (half fixed, half random, so parallel uploads
 * that failed together do not come back together), a server's Retry-After taking precedence, and
 * a bound on attempts and on total time.
 */
export class Backoff {
  private attempt = 0;
  private readonly started = Date.now();
  private readonly policy: RetryPolicy;

  constructor(policy: RetryPolicy) {
    this.policy = policy;
  }

  get attempts(): number {
    return this.attempt + 1;
  }

  /**
   * Waits before the next attempt and returns true, or returns false when the budget is spent
   * (also when the server asks us to wait past it).
   */
  async next(retryAfterMs: number | undefined, signal?: AbortSignal): Promise<boolean> {
    this.attempt++;
    if (this.attempt >= this.policy.attempts) return false;
    const exp = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (this.attempt - 1));
    const delay = retryAfterMs ?? Math.round(exp / 2 + Math.random() * (exp / 2));
    if (Date.now() - this.started + delay > this.policy.totalMs) return false;
    await sleep(delay, undefined, signal ? { signal } : undefined);
    return true;
  }
}
