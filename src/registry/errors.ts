import { WriteLostError } from '../content/errors.ts';

/**
 * What went wrong talking to a registry, with what a user or a retry decision needs: the HTTP
 * method and status, the registry's own error code (`BLOB_UNKNOWN`, `DENIED`, …) and a URL with
 * its query string and user info removed — upload URLs and storage redirects carry signed state.
 */
/** The request and the registry's answer to it, as an error carries them. */
export interface RegistryDetails {
  method: string;
  url: string | URL;
  status?: number;
  code?: string;
  cause?: unknown;
}

export class RegistryError extends Error {
  override readonly name: string = 'RegistryError';
  readonly method: string;
  readonly url: string;
  readonly status: number | undefined;
  readonly code: string | undefined;
  /** The server's Retry-After, in ms, when it sent one (a caller that retries itself honours it). */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: RegistryDetails & { retryAfterMs?: number | undefined }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.method = details.method;
    this.url = redactUrl(details.url);
    this.status = details.status;
    this.code = details.code;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The Retry-After a failed request carried, if any. */
export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof RegistryError ? err.retryAfterMs : undefined;
}

/** Credentials were missing or refused; retrying will not help. */
export class RegistryAuthError extends RegistryError {
  override readonly name: string = 'RegistryAuthError';
}

/**
 * An upload session the registry no longer takes anything in: it answered 404 (BLOB_UPLOAD_INVALID or
 * BLOB_UPLOAD_UNKNOWN) on the session after a failed request, or reports fewer bytes than it had
 * confirmed. CNCF Distribution kills a session whose PATCH broke off mid-body and keeps the part it
 * got, so nobody knows which bytes it holds. Retrying in this session cannot work: the blob has to
 * go again from its first byte in a new session (for a layer being packed, by packing it again).
 * A WriteLostError, as every target's lost write is; it carries the registry's answer too.
 */
export class UploadSessionLostError extends WriteLostError {
  override readonly name: string = 'UploadSessionLostError';
  /** The request that found the session gone and the registry's answer (the URL redacted). */
  readonly answer: RegistryError;

  constructor(message: string, details: RegistryDetails & { why: string; ageMs: number; confirmed: number }) {
    super(message, details);
    this.answer = new RegistryError(message, details);
  }
}

const SESSION_GONE_CODES = new Set(['BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN']);

/** A registry's answer, on an upload session's URL, that the session is gone (404, with an upload code or none). */
export function isUploadSessionGone(err: unknown): err is RegistryError {
  return (
    err instanceof RegistryError &&
    err.status === 404 &&
    (err.code === undefined || SESSION_GONE_CODES.has(err.code))
  );
}

/**
 * The last failure of an operation that stops trying after `attempts` attempts, saying so; an
 * error that is not a RegistryError is passed on as it is.
 */
export function gaveUp(last: unknown, attempts: number): unknown {
  return last instanceof RegistryError ? gaveUpError(last, attempts) : last;
}

export function gaveUpError(last: RegistryError, attempts: number): RegistryError {
  return new RegistryError(`${last.message} (gave up after ${attempts} attempts)`, {
    method: last.method,
    url: last.url,
    ...(last.status !== undefined ? { status: last.status } : {}),
    ...(last.code !== undefined ? { code: last.code } : {}),
    cause: last,
  });
}

/** `scheme://host/path` without user info, query or fragment. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

interface RegistryErrorBody {
  errors?: { code?: unknown; message?: unknown; detail?: unknown }[];
}

/**
 * The first error of a distribution-spec error body (`{"errors":[{"code","message"}]}`), or
 * undefined when the body is something else (proxies answer HTML).
 */
export function parseErrorBody(text: string): { code: string; message: string } | undefined {
  try {
    const body = JSON.parse(text) as RegistryErrorBody;
    const first = body.errors?.[0];
    if (first && typeof first.code === 'string') {
      return { code: first.code, message: typeof first.message === 'string' ? first.message : '' };
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** `PUT https://host/v2/x/blobs/uploads/…: 416 (BLOB_UPLOAD_INVALID: …)` as one line. */
export function describeFailure(
  method: string,
  url: string | URL,
  status: number,
  bodyText: string,
): { message: string; code?: string } {
  const parsed = parseErrorBody(bodyText);
  const where = `${method} ${redactUrl(url)}`;
  if (parsed) {
    const detail = parsed.message ? `: ${parsed.message}` : '';
    return { message: `${where}: ${status} ${parsed.code}${detail}`, code: parsed.code };
  }
  const snippet = bodyText.replace(/\s+/g, ' ').trim().slice(0, 120);
  return { message: `${where}: ${status}${snippet ? ` (${snippet})` : ''}` };
}
