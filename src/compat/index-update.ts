import { setTimeout as sleep } from 'node:timers/promises';
import { IntegrityError } from '../content/errors.ts';
import { fetchReference } from '../content/read.ts';
import { canListTags, type TagLister, type Target } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import { parseManifestDocument } from '../oci/manifest.ts';
import { InvalidDocumentError } from '../oci/validate.ts';
import { UserError } from '../util/errors.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { describeRecord } from './describe.ts';
import { buildIndex, type ParsedIndex, parseCatalogIndex } from './index-format.ts';
import { type CatalogRecord, IMAGE_RECORD_TAG, imageRecordTag, RECORD_TAG } from './schema.ts';

const READS_AT_ONCE = 8;
const DEFAULT_ROUNDS = 12;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface UpdateOptions {
  signal?: AbortSignal;
  /** Rounds of list → build → PUT → verify before giving up (default 12). */
  maxRounds?: number;
  /** Read every record manifest again instead of taking what the current index says about it. */
  reread?: boolean;
  /** Milliseconds of the first backoff between rounds (default 100; doubles, jittered, at most 3 s). */
  backoffMs?: number;
}

export interface UpdateResult {
  /** The index at the tag when it was verified (maybe another writer's, with even more records). */
  digest: Digest;
  models: number;
  bases: number;
  pairs: number;
  rounds: number;
  /** Whether this call PUT an index (false when the tag already held the right one). */
  written: boolean;
  /** Record tags that are not valid records (changed by hand), with the reason; left out of the index. */
  skipped: { tag: string; reason: string }[];
}

/**
 * Rebuilds the compatibility index at `indexTag` from every record in the catalog repository, and
 * makes sure it holds all of them: list records → build → PUT (when different) → list again and read
 * the index back; repeat, with jittered backoff, until the index holds every listed record.
 * Concurrent writers converge on the same bytes (docs/compat-index.md argues why none is lost).
 * Write your own record (recordArtifact) before calling this.
 */
export async function updateIndex(
  catalog: Target,
  indexTag: string,
  options: UpdateOptions = {},
): Promise<UpdateResult> {
  const { signal } = options;
  if (!canListTags(catalog)) {
    throw new UserError(
      `${catalog.displayName} cannot list its tags, so it cannot hold a compatibility index`,
    );
  }
  const listTags = (target: TagLister) => target.listTags(signal);
  if (!TAG.test(indexTag) || RECORD_TAG.test(indexTag) || /^(model|base)-/.test(indexTag)) {
    throw new UserError(
      `"${indexTag}" cannot be the index tag: use a valid tag that does not start with model- or base- (those are the records)`,
    );
  }
  const maxRounds = Math.max(1, options.maxRounds ?? DEFAULT_ROUNDS);
  const skipped = new Map<string, string>();
  let written = false;
  for (let round = 1; ; round++) {
    const listing = await listTags(catalog);
    const tags = recordTags(listing);
    const current = await fetchReference(catalog, indexTag, signal);
    const known = new Map<string, CatalogRecord>();
    if (current && !options.reread) {
      const parsed = parseCatalogIndex(current.bytes, `${catalog.displayName}:${indexTag}`);
      for (const r of [...(parsed?.models ?? []), ...(parsed?.bases ?? [])]) known.set(r.tag, r);
    }
    const read = await mapConcurrent(
      tags.filter((t) => !skipped.has(t)),
      READS_AT_ONCE,
      async (tag, _i, inner) => known.get(tag) ?? readRecord(catalog, tag, skipped, inner),
      signal,
    );
    const records = await withImages(
      catalog,
      read.filter((r): r is CatalogRecord => r !== undefined),
      listing,
      signal,
    );
    const built = buildIndex(records);
    if (current?.descriptor.digest !== built.descriptor.digest) {
      await catalog.putManifest(built.descriptor, built.bytes, [indexTag], signal);
      written = true;
    }

    // Verify: everything listed now must be in the index the tag holds now.
    const listed = recordTags(await listTags(catalog));
    const now = await fetchReference(catalog, indexTag, signal);
    const parsed = now ? parseCatalogIndex(now.bytes, `${catalog.displayName}:${indexTag}`) : undefined;
    const present = new Set([...(parsed?.models ?? []), ...(parsed?.bases ?? [])].map((r) => r.tag));
    const withImage = new Set(
      (parsed?.models ?? []).filter((m) => m.image).map((m) => imageRecordTag(m.tag)),
    );
    const missing = [
      ...listed.filter((t) => !present.has(t) && !skipped.has(t)),
      ...imageTags(await listTags(catalog)).filter(
        (t) => !withImage.has(t) && present.has(t.replace(IMAGE_RECORD_TAG, '$1')),
      ),
    ];
    if (now && parsed && missing.length === 0) {
      return {
        digest: now.descriptor.digest,
        ...counts(parsed),
        rounds: round,
        written,
        skipped: [...skipped]
          .map(([tag, reason]) => ({ tag, reason }))
          .sort((a, b) => (a.tag < b.tag ? -1 : 1)),
      };
    }
    if (round >= maxRounds) {
      throw new Error(
        `${catalog.displayName}:${indexTag} did not settle after ${round} rounds (other writers kept changing it); ` +
          `missing ${missing.length} record(s), e.g. ${missing.slice(0, 3).join(', ') || 'the index itself'}; run the update again`,
      );
    }
    const ceiling = Math.min(3000, (options.backoffMs ?? 100) * 2 ** (round - 1));
    await sleep(
      Math.round(ceiling / 2 + Math.random() * (ceiling / 2)),
      undefined,
      signal ? { signal } : undefined,
    );
  }
}

function imageTags(tags: readonly string[]): string[] {
  return tags.filter((t) => IMAGE_RECORD_TAG.test(t)).sort();
}

/**
 * Model records with the digest of their image form, where the catalog keeps one next to the
 * record (`model-<hex12>-image`): read every round (a HEAD each), so an image form recorded again
 * for other platforms is seen.
 */
async function withImages(
  catalog: Target,
  records: CatalogRecord[],
  listing: readonly string[],
  signal?: AbortSignal,
): Promise<CatalogRecord[]> {
  const images = new Set(imageTags(listing));
  return mapConcurrent(
    records,
    READS_AT_ONCE,
    async (record) => {
      if (record.kind !== 'model') return record;
      const { image: _stale, ...rest } = record;
      if (!images.has(imageRecordTag(record.tag))) return rest;
      const found = await catalog.resolve(imageRecordTag(record.tag), signal);
      return found ? { ...rest, image: found.digest } : rest;
    },
    signal,
  );
}

function recordTags(tags: readonly string[]): string[] {
  return tags.filter((t) => RECORD_TAG.test(t)).sort();
}

function counts(parsed: ParsedIndex): { models: number; bases: number; pairs: number } {
  let pairs = 0;
  for (const list of parsed.compatible.values()) pairs += list.length;
  return { models: parsed.models.length, bases: parsed.bases.length, pairs };
}

/** A record as its manifest in the catalog says; undefined (and noted in `skipped`) when it is not one. */
async function readRecord(
  catalog: Target,
  tag: string,
  skipped: Map<string, string>,
  signal?: AbortSignal,
): Promise<CatalogRecord | undefined> {
  const fetched = await fetchReference(catalog, tag, signal);
  if (!fetched) return undefined; // deleted since the listing
  const what = `${catalog.displayName}:${tag}`;
  try {
    const doc = parseManifestDocument(fetched.bytes, what, fetched.descriptor.mediaType);
    const descriptor = { ...fetched.descriptor, mediaType: doc.mediaType };
    const record = await describeRecord(catalog, descriptor, doc, what, signal);
    if (record.tag !== tag) {
      skipped.set(tag, `holds ${fetched.descriptor.digest}, whose record tag is ${record.tag}`);
      return undefined;
    }
    return record;
  } catch (err) {
    if (signal?.aborted) throw err;
    const damaged = err instanceof IntegrityError || err instanceof InvalidDocumentError;
    if (!(err instanceof UserError) && !damaged) throw err;
    skipped.set(tag, err.message);
    return undefined;
  }
}
