/**
 * An error caused by what the user asked for or gave us (a bad path, name, reference or document).
 * The CLI prints its message as the one-line reason and exits non-zero; nothing has been written.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
}

/**
 * A UserError in the request itself: an unknown or missing flag or input, or an option value that is
 * malformed or out of range. The CLI exits 2 for these (1 when a well-formed request failed).
 */
export class UsageError extends UserError {
  override readonly name: string = 'UsageError';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return undefined;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
