/**
 * Stored content that is not what its descriptor promises: bytes whose digest or size differ, or a
 * document over the size a registry accepts. Never retried and never taken for the real thing;
 * callers tell it apart from "not there" and from transport failures with instanceof.
 */
export class IntegrityError extends Error {
  override readonly name: string = 'IntegrityError';
}
