import { parseReference } from '../oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';
import { type UpdateResult, updateIndex } from './index-update.ts';
import { type RecordResult, recordArtifact } from './record.ts';

/**
 * Runs `work` on the catalog repository an index reference names (`REGISTRY/REPO[:TAG]`, the tag
 * defaulting to `index`), and closes it after. `what` names the reference in errors (`--index`,
 * `input index`).
 */
export async function withCatalog<T>(
  indexRef: string,
  registry: RegistryOptions,
  what: string,
  work: (catalog: RegistryTarget, tag: string) => Promise<T>,
): Promise<T> {
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(indexRef);
  } catch (err) {
    throw new UserError(`${what}: ${(err as Error).message}`);
  }
  if (ref.digest) throw new UserError(`${what} names a tag the index is written to, not a digest`);
  const catalog = await openRegistryTarget(ref, 'push', registry);
  try {
    return await work(catalog, ref.tag ?? 'index');
  } finally {
    await catalog.close();
  }
}

/** Records `digest` of `source` in the catalog and brings the index at `tag` up to date. */
export async function recordAndUpdate(
  catalog: RegistryTarget,
  tag: string,
  source: RegistryTarget,
  digest: string,
  signal?: AbortSignal,
): Promise<{ recorded: RecordResult; index: UpdateResult }> {
  const recorded = await recordArtifact(catalog, source, digest, signal ? { signal } : {});
  const index = await updateIndex(catalog, tag, signal ? { signal } : {});
  return { recorded, index };
}
