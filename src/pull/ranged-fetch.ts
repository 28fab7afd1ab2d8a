import { RangeUnsupportedError } from '../content/errors.ts';
import { canReadRanges, type RangeReader, type Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Semaphore } from '../util/limiter.ts';

export interface FetchOptions {
  /** Bytes per ranged request. */
  partSize: number;
  /** Connections, shared by every blob of the pull. */
  connections: Semaphore;
  /**
   * Parts in memory (being fetched, or fetched and not yet taken), shared by every blob of the pull:
   * the fetch's memory bound. A part holds one from its request until the consumer took it.
   */
  buffers: Semaphore;
  /** Parts of one blob requested ahead of the one being consumed: its memory is window × partSize. */
  window: number;
  signal?: AbortSignal | undefined;
  /** Called as bytes arrive (progress). */
  onBytes?: (bytes: number) => void;
}

/**
 * One part, read whole into memory as the chunks the connection delivered (no copy; the target
 * resumes a part that broke off by itself).
 */
async function fetchPart(
  target: Target & RangeReader,
  desc: Descriptor,
  start: number,
  end: number,
  options: FetchOptions,
  signal: AbortSignal,
): Promise<Uint8Array[]> {
  return options.connections.run(async () => {
    const chunks: Uint8Array[] = [];
    let filled = 0;
    for await (const chunk of await target.fetchBlobRange(desc, start, end, signal)) {
      if (filled + chunk.byteLength > end - start)
        throw new Error(`${target.displayName}: blob ${desc.digest} sent more than the range asked for`);
      chunks.push(chunk);
      filled += chunk.byteLength;
      options.onBytes?.(chunk.byteLength);
    }
    if (filled !== end - start)
      throw new Error(
        `${target.displayName}: blob ${desc.digest} sent ${filled} of ${end - start} bytes of a range`,
      );
    return chunks;
  }, signal);
}

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
 * larger than one part comes over several connections at once, `window` parts ahead of the
 * consumer, each a ranged request the target resumes on its own when it breaks off. A part's
 * chunks are handed on once the parts before it were.
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
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const count = Math.ceil(remaining / options.partSize);
  const parts: Promise<Uint8Array[]>[] = [];
  let launched = 0;
  let held = 0;
  const launch = (consumed: number) => {
    while (launched < count && launched < consumed + options.window) {
      const start = from + launched * options.partSize;
      const end = Math.min(desc.size, start + options.partSize);
      // Buffer permits are asked for in part order, so a blob's next part always gets one first.
      const part = options.buffers.acquire(controller.signal).then(() => {
        held++;
        return fetchPart(target, desc, start, end, options, controller.signal);
      });
      part.catch(() => {}); // awaited in order below
      parts[launched++] = part;
    }
  };
  try {
    for (let i = 0; i < count; i++) {
      launch(i);
      let part: Uint8Array[];
      try {
        part = await parts[i]!;
      } catch (err) {
        if (i === 0 && err instanceof RangeUnsupportedError) {
          controller.abort(err);
          yield* oneStream(target, desc, from, options);
          return;
        }
        throw err;
      }
      delete parts[i];
      for (const chunk of part) yield chunk;
      held--;
      options.buffers.release();
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort(new Error('the blob is no longer read'));
    // Parts still in flight keep their permits until they settle.
    await Promise.allSettled(parts.filter(Boolean));
    for (; held > 0; held--) options.buffers.release();
  }
}
