import type { Descriptor } from '../oci/descriptor.ts';
import { Sha256Counter } from '../oci/digest.ts';
import { IntegrityError } from './errors.ts';

/**
 * Passes a blob's bytes through and fails at the end (or as soon as there are too many) unless they
 * have the descriptor's size and digest — so nothing unverified is ever taken for the blob.
 */
export async function* verifiedStream(
  desc: Descriptor,
  source: AsyncIterable<Uint8Array>,
  where: string,
): AsyncGenerator<Uint8Array> {
  const hash = new Sha256Counter();
  for await (const chunk of source) {
    hash.update(chunk);
    if (hash.size > desc.size)
      throw new IntegrityError(`${where}: blob ${desc.digest} is longer than its ${desc.size} bytes`);
    yield chunk;
  }
  if (hash.size !== desc.size)
    throw new IntegrityError(`${where}: blob ${desc.digest} ended after ${hash.size} of ${desc.size} bytes`);
  const digest = hash.digest();
  if (digest !== desc.digest)
    throw new IntegrityError(
      `${where}: blob ${desc.digest} does not match its digest (its bytes hash to ${digest})`,
    );
}
