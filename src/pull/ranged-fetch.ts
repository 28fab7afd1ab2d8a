import { RangeUnsupportedError } from '../content/errors.ts';
import { canReadRanges, type RangeReader, type Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Semaphore } from '../util/limiter.ts';

export interface FetchOptions {
  /** Bytes per ranged request. */
  partSize: number;
  /** Connections, shared by every blob of the pull. */
  connections: Semaphore;
  /** Parts of one blob requested ahead of the one being consumed: its memory is window × partSize. */
  window: number;
  signal?: AbortSignal | undefined;
  /** Called as bytes arrive (progress). */
  onBytes?: (bytes: number) => void;
}

/** One part, read whole into memory (the target resumes a part that broke off by itself). */
async function fetchPart(
  target: Target & RangeReader,
  desc: Descriptor,
  start: number,
  end: number,
  options: FetchOptions,
  signal: AbortSignal,
): Promise<Buffer> {
  return options.connections.run(async () => {
    const part = Buffer.allocUnsafe(end - start);
    let filled = 0;
    for await (const chunk of await target.fetchBlobRange(desc, start, end, signal)) {
      if (filled + chunk.byteLength > part.byteLength)
        throw new Error(`${target.displayName}: blob ${desc.digest} sent more than the range asked for`);
      part.set(chunk, filled);
      filled += chunk.byteLength;
      options.onBytes?.(chunk.byteLength);
    }
    if (filled !== part.byteLength)
      throw new Error(
        `${target.displayName}: blob ${desc.digest} sent ${filled} of ${part.byteLength} bytes of a range`,
      );
    return part;
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
 * consumer, each a ranged request the target resumes on its own when it breaks off. Parts are
 * handed on whole as they complete in order.
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
  const parts: Promise<Buffer>[] = [];
  let launched = 0;
  const launch = (consumed: number) => {
    while (launched < count && launched < consumed + options.window) {
      const start = from + launched * options.partSize;
      const end = Math.min(desc.size, start + options.partSize);
      const part = fetchPart(target, desc, start, end, options, controller.signal);
      part.catch(() => {}); // awaited in order below
      parts[launched++] = part;
    }
  };
  try {
    for (let i = 0; i < count; i++) {
      launch(i);
      let part: Buffer;
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
      yield part;
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort(new Error('the blob is no longer read'));
  }
}
