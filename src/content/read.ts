import type { Descriptor } from '../oci/descriptor.ts';
import { parseJson } from '../oci/validate.ts';
import { SizeLimitError } from './errors.ts';
import { canFetchReference, type FetchedManifest, type Target } from './target.ts';

/** The bytes of a small blob (a config), verified; refused when its descriptor says it is over `limit`. */
export async function readSmallBlob(
  target: Target,
  desc: Descriptor,
  limit: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  if (desc.size > limit) {
    throw new SizeLimitError(
      `${target.displayName}: blob ${desc.digest} is ${desc.size} bytes, over the ${limit} read here`,
    );
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of await target.fetchBlob(desc, signal)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A small JSON blob (an image or ModelPack config) as an object; undefined when it is not one. */
export async function readJsonObject(
  target: Target,
  desc: Descriptor,
  limit: number,
  signal?: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  if (desc.size > limit) return undefined;
  const bytes = await readSmallBlob(target, desc, limit, signal);
  try {
    const value = parseJson(bytes, 'config');
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A manifest by tag or digest, with its descriptor: in one round trip where the target can
 * (ReferenceFetcher), else resolve then fetch. Undefined when there is none.
 */
export async function fetchReference(
  target: Target,
  reference: string,
  signal?: AbortSignal,
): Promise<FetchedManifest | undefined> {
  if (canFetchReference(target)) return target.fetchReference(reference, signal);
  const descriptor = await target.resolve(reference, signal);
  if (!descriptor) return undefined;
  return { descriptor, bytes: await target.fetchManifest(descriptor, signal) };
}
