import { createHash } from 'node:crypto';

/** A content digest in OCI form. Only sha256 is produced; others are recognised when read. */
export type Digest = `${string}:${string}`;

// image-spec descriptor.md: algorithm ":" encoded, with the grammar below.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const SHA512_HEX = /^[a-f0-9]{128}$/;

export class InvalidDigestError extends Error {
  override readonly name = 'InvalidDigestError';
}

/** Checks the digest grammar and, for registered algorithms, the encoded length. */
export function parseDigest(value: string): Digest {
  if (!DIGEST_GRAMMAR.test(value)) {
    throw new InvalidDigestError(
      `${JSON.stringify(value)} is not a digest (expected sha256:<64 hex digits>)`,
    );
  }
  const [algorithm, encoded] = splitDigest(value as Digest);
  if (algorithm === 'sha256' && !SHA256_HEX.test(encoded)) {
    throw new InvalidDigestError(`${JSON.stringify(value)}: a sha256 digest has 64 lowercase hex digits`);
  }
  if (algorithm === 'sha512' && !SHA512_HEX.test(encoded)) {
    throw new InvalidDigestError(`${JSON.stringify(value)}: a sha512 digest has 128 lowercase hex digits`);
  }
  return value as Digest;
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function splitDigest(digest: Digest): [algorithm: string, encoded: string] {
  const i = digest.indexOf(':');
  return [digest.slice(0, i), digest.slice(i + 1)];
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Incremental sha256 that also counts bytes, so size and digest always come from the same pass. */
export class Sha256Counter {
  private readonly hash = createHash('sha256');
  size = 0;
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.byteLength;
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
