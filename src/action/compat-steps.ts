import * as core from '@actions/core';
import { updateIndex } from '../compat/index-update.ts';
import { recordArtifact } from '../compat/record.ts';
import { parseReference } from '../oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import { UserError } from '../util/errors.ts';

/** The catalog repository and index tag named by the `index` input (`REGISTRY/REPO:TAG`). */
export async function openCatalog(
  indexRef: string,
  registry: RegistryOptions,
): Promise<{ catalog: RegistryTarget; tag: string }> {
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(indexRef);
  } catch (err) {
    throw new UserError(`input index: ${(err as Error).message}`);
  }
  if (ref.digest) throw new UserError('input index names a tag the index is written to, not a digest');
  return { catalog: await openRegistryTarget(ref, 'push', registry), tag: ref.tag ?? 'index' };
}

/**
 * Records an artifact (a model artifact or a base image, by digest in its repository) in the
 * compatibility index and brings the index up to date; outputs say where the index stands.
 */
export async function recordInIndex(
  indexRef: string,
  source: RegistryTarget,
  digest: string,
  registry: RegistryOptions,
  signal: AbortSignal,
): Promise<void> {
  core.startGroup(`Record in the compatibility index ${indexRef}`);
  const { catalog, tag } = await openCatalog(indexRef, registry);
  try {
    if (catalog.registry !== source.registry) {
      throw new UserError(
        `input index is on ${catalog.registry}, the artifact on ${source.registry}: the index must be on the same registry (its entries are mounted into it)`,
      );
    }
    const recorded = await recordArtifact(catalog, source, digest, { signal });
    core.info(`recorded ${recorded.kind} ${recorded.digest} as ${catalog.displayName}:${recorded.tag}`);
    const index = await updateIndex(catalog, tag, { signal });
    core.info(
      `index ${catalog.displayName}:${tag} is ${index.digest}: ${index.models} model artifact(s), ${index.bases} base image(s), ${index.pairs} compatible pair(s)`,
    );
    core.setOutput('index-digest', index.digest);
  } finally {
    await catalog.close();
    core.endGroup();
  }
}
