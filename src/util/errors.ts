/**
 * An error caused by what the user asked for or gave us (a bad path, name, reference or document).
 * The CLI prints its message as the one-line reason and exits non-zero; nothing has been written.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
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
