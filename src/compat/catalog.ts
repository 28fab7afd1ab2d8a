import type { Target } from '../content/target.ts';
import { type UpdateResult, updateIndex } from './index-update.ts';
import { type RecordResult, recordArtifact } from './record.ts';

/**
 * Records `digest` of `source` in the catalog (and, for a model built with its image form, that
 * image form too: `imageDigest`) and brings the index at `tag` up to date.
 */
export async function recordAndUpdate(
  catalog: Target,
  tag: string,
  source: Target,
  digest: string,
  signal?: AbortSignal,
  imageDigest?: string,
): Promise<{ recorded: RecordResult; index: UpdateResult }> {
  const recorded = await recordArtifact(catalog, source, imageDigest ?? digest, signal ? { signal } : {});
  const index = await updateIndex(catalog, tag, signal ? { signal } : {});
  return { recorded, index };
}
