import * as core from '@actions/core';
import { recordAndUpdate, withCatalog } from '../compat/catalog.ts';
import type { RegistryOptions } from '../registry/open-registry.ts';
import type { RegistryTarget } from '../registry/registry-target.ts';
import type { IndexOutcome } from './summary.ts';

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
): Promise<IndexOutcome> {
  core.startGroup(`Record in the compatibility index ${indexRef}`);
  try {
    return await withCatalog(indexRef, registry, 'input index', async (catalog, tag) => {
      const { recorded, index } = await recordAndUpdate(catalog, tag, source, digest, signal);
      const where = `${catalog.displayName}:${tag}`;
      core.info(
        recorded.written
          ? `recorded ${recorded.kind} ${recorded.digest} as ${catalog.displayName}:${recorded.tag}`
          : `${recorded.kind} ${recorded.digest} was already recorded as ${catalog.displayName}:${recorded.tag}`,
      );
      core.info(
        `index ${where} is ${index.digest}: ${index.models} model artifact(s), ${index.bases} base image(s), ${index.pairs} compatible pair(s)`,
      );
      core.setOutput('index-digest', index.digest);
      return { where, index, recorded };
    });
  } finally {
    core.endGroup();
  }
}
