import type { Digest } from '../oci/digest.ts';
import { InvalidReferenceError, parseReference, type Reference } from '../oci/reference.ts';
import { apiHost, schemePolicy } from '../registry/endpoint.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import { errorMessage, UserError } from '../util/errors.ts';

/** An image reference the user gave, or a UserError naming what is wrong with it. */
export function parseImage(image: string, what: string): Reference {
  try {
    return parseReference(image);
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw new UserError(`${what}: ${err.message}`);
    throw err;
  }
}

/** Registry options for a registry other than the target: never the target's explicit credentials. */
export function optionsFor(
  registry: string,
  targetRegistry: string,
  options: RegistryOptions,
): RegistryOptions {
  if (registry === targetRegistry) return options;
  const { username: _u, password: _p, ...rest } = options;
  return rest;
}

/** Resolves a FROM image to its manifest (or index) digest through our registry client. */
export async function resolveUpstream(
  image: string,
  targetRegistry: string,
  options: RegistryOptions,
  signal?: AbortSignal,
): Promise<{ image: string; digest: Digest }> {
  const ref = parseImage(image, `FROM ${image}`);
  if (ref.digest) return { image, digest: ref.digest };
  const target = await openRegistryTarget(ref, 'pull', optionsFor(ref.registry, targetRegistry, options));
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
    await target.close();
  }
}

/** True when the builder must be allowed plain HTTP for this registry (loopback or listed). */
export function isPlainHttp(registry: string, options: RegistryOptions): boolean {
  return schemePolicy(apiHost(registry), options.plainHttp) === 'https-then-http';
}
