import type { Digest } from '../oci/digest.ts';
import { InvalidReferenceError, parseReference, type Reference } from '../oci/reference.ts';
import { errorMessage, UserError } from '../util/errors.ts';
import type { RegistryAccess } from './registry-access.ts';

/** An image reference the user gave, or a UserError naming what is wrong with it. */
export function parseImage(image: string, what: string): Reference {
  try {
    return parseReference(image);
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw new UserError(`${what}: ${err.message}`);
    throw err;
  }
}

/** Resolves a FROM image to its manifest (or index) digest. */
export async function resolveUpstream(
  image: string,
  access: RegistryAccess,
  signal?: AbortSignal,
): Promise<{ image: string; digest: Digest }> {
  const ref = parseImage(image, `FROM ${image}`);
  if (ref.digest) return { image, digest: ref.digest };
  const target = await access.open(ref, 'pull');
  try {
    const desc = await target.resolve(ref.tag ?? 'latest', signal);
    if (!desc)
      throw new UserError(
        `cannot resolve FROM image ${image}: ${ref.registry}/${ref.repository} has no tag ${ref.tag ?? 'latest'}`,
      );
    return { image, digest: desc.digest };
  } catch (err) {
    if (err instanceof UserError || signal?.aborted) throw err;
    throw new UserError(`cannot resolve FROM image ${image}: ${errorMessage(err)}`);
  } finally {
    await target.close?.();
  }
}
