import { RangeUnsupportedError } from '../content/errors.ts';
import { canReadRanges, type Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { fetchRangesInParallel, type ParallelRangeOptions } from '../util/parallel-ranges.ts';

export type FetchOptions = ParallelRangeOptions;

/** The whole rest of a blob over one connection (a target without ranged reads, or one that ignores them). */
async function* oneStream(
  target: Target,
  desc: Descriptor,
  from: number,
  options: FetchOptions,
): AsyncGenerator<Uint8Array> {
  await options.connections.acquire(options.signal);
  try {
    let skip = from;
    const stream =
      canReadRanges(target) && from === 0
        ? await target.fetchBlobRange(desc, 0, desc.size, options.signal)
        : await target.fetchBlob(desc, options.signal);
    for await (const chunk of stream) {
      options.onBytes?.(chunk.byteLength);
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      yield skip > 0 ? chunk.subarray(skip) : chunk;
      skip = 0;
    }
  } finally {
    options.connections.release();
  }
}

/**
 * The bytes `[from, size)` of a blob, in order and unverified (the caller hashes them): a blob
 * larger than one part comes over several connections at once (util/parallel-ranges.ts), each a
 * ranged request the target resumes on its own when it breaks off; a target that ignores ranges
 * is read in one stream.
 */
export async function* fetchBlobBytes(
  target: Target,
  desc: Descriptor,
  from: number,
  options: FetchOptions,
): AsyncGenerator<Uint8Array> {
  const remaining = desc.size - from;
  if (remaining <= 0) return;
  if (!canReadRanges(target) || remaining <= options.partSize) {
    yield* oneStream(target, desc, from, options);
    return;
  }
  yield* fetchRangesInParallel(
    desc.size,
    from,
    (start, end, signal) => target.fetchBlobRange(desc, start, end, signal),
    options,
    (err) => (err instanceof RangeUnsupportedError ? oneStream(target, desc, from, options) : undefined),
  );
}
