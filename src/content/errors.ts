// The storage errors every Target throws alike, whatever is behind it (a registry, a layout), so
// callers decide with instanceof instead of reading messages: "not there" is often an answer,
// content that fails verification never is, and a lost write may be worth doing again.

/** A blob or manifest the target does not have. */
export class NotFoundError extends Error {
  override readonly name: string = 'NotFoundError';
}

/**
 * Stored content that is not what its descriptor promises. Never retried and never taken for the
 * real thing.
 */
export class IntegrityError extends Error {
  override readonly name: string = 'IntegrityError';
}

/** Bytes whose digest or size differ from the descriptor's. */
export class DigestMismatchError extends IntegrityError {
  override readonly name: string = 'DigestMismatchError';
}

/** A document over the size the format allows (a manifest over 4 MiB). */
export class SizeLimitError extends IntegrityError {
  override readonly name: string = 'SizeLimitError';
}

/**
 * The target lost a blob write midway and cannot continue it (a registry that dropped the upload
 * session): writing the blob again from its first byte, into a new writer, can work. `why` says in
 * a few words what happened, for the list a give-up message shows.
 */
export class WriteLostError extends Error {
  override readonly name: string = 'WriteLostError';
  readonly why: string;
  /** How long the write had been going and how many bytes the target had confirmed. */
  readonly ageMs: number;
  readonly confirmed: number;

  constructor(message: string, details: { why: string; ageMs: number; confirmed: number; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.why = details.why;
    this.ageMs = details.ageMs;
    this.confirmed = details.confirmed;
  }
}

/** A range of a blob was asked for and the storage answered with the whole blob (no Range support). */
export class RangeUnsupportedError extends Error {
  override readonly name: string = 'RangeUnsupportedError';
}
