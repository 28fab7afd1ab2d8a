import type { Semaphore } from './limiter.ts';

export interface ParallelRangeOptions {
  /** Bytes per ranged request. */
  partSize: number;
  /** Connections, shared by everything read at once. */
  connections: Semaphore;
  /**
   * Parts in memory (being fetched, or fetched and not yet taken), shared likewise: the memory
   * bound. A part holds one from its request until the consumer took it.
   */
  buffers: Semaphore;
  /** Parts of one stream requested ahead of the one being consumed. */
  window: number;
  signal?: AbortSignal | undefined;
  /** Called as bytes arrive (progress). */
  onBytes?: (bytes: number) => void;
}

/** Reads `[start, end)` (resuming after a dropped connection is the reader's business). */
export type RangeFetch = (
  start: number,
  end: number,
  signal: AbortSignal,
) => Promise<AsyncIterable<Uint8Array>>;

/** One part, read whole into memory as the chunks that arrived (no copy). */
async function fetchPart(
  fetchRange: RangeFetch,
  start: number,
  end: number,
  options: ParallelRangeOptions,
  signal: AbortSignal,
): Promise<Uint8Array[]> {
  return options.connections.run(async () => {
    const chunks: Uint8Array[] = [];
    let filled = 0;
    for await (const chunk of await fetchRange(start, end, signal)) {
      if (filled + chunk.byteLength > end - start)
        throw new Error(`the source sent more than the range asked for`);
      chunks.push(chunk);
      filled += chunk.byteLength;
      options.onBytes?.(chunk.byteLength);
    }
    if (filled !== end - start)
      throw new Error(`the source sent ${filled} of ${end - start} bytes of a range`);
    return chunks;
  }, signal);
}

/**
 * The bytes `[from, size)` of something readable by ranges, in order: several parts are fetched
 * at once, `window` ahead of the consumer, each holding a connection while it is fetched and a
 * buffer permit until it is consumed. Permits are asked for in part order, so a stream's next part
 * always gets one before its later ones: streams sharing the permits cannot starve each other.
 * A failure of the first part is `onFirstFailure`'s to turn into a fallback stream (or rethrow).
 */
export async function* fetchRangesInParallel(
  size: number,
  from: number,
  fetchRange: RangeFetch,
  options: ParallelRangeOptions,
  onFirstFailure?: (err: unknown) => AsyncIterable<Uint8Array> | undefined,
): AsyncGenerator<Uint8Array> {
  const remaining = size - from;
  if (remaining <= 0) return;
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
      const end = Math.min(size, start + options.partSize);
      const part = options.buffers.acquire(controller.signal).then(() => {
        held++;
        return fetchPart(fetchRange, start, end, options, controller.signal);
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
        const fallback = i === 0 ? onFirstFailure?.(err) : undefined;
        if (!fallback) throw err;
        controller.abort(err);
        yield* fallback;
        return;
      }
      delete parts[i];
      for (const chunk of part) yield chunk;
      held--;
      options.buffers.release();
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort(new Error('no longer read'));
    // Parts still in flight keep their permits until they settle.
    await Promise.allSettled(parts.filter(Boolean));
    for (; held > 0; held--) options.buffers.release();
  }
}
