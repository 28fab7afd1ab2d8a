// Finds zstd frame boundaries in a byte stream without decompressing anything, by walking the
// frame and block headers of RFC 8878 (§3.1.1). Our layers are a series of independent frames of
// 4 MiB of tar each, so whole frames can go to every core at once; a frame too large to hold
// (one-frame layers other tools write) is passed on piece by piece for a streaming decoder.

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** No block regenerates more than this (Block_Maximum_Size, §3.1.1.2.4). */
const MAX_BLOCK_OUTPUT = 128 * 1024;

/** A piece of the stream, in order, with the offset of its first byte in the compressed stream. */
export type FrameToken =
  /** A whole frame no larger than the limits: decompress it on its own. */
  | { kind: 'frame'; offset: number; bytes: Uint8Array; contentSize: number | undefined; maxOutput: number }
  /** The start of a frame too large to hold: its bytes follow as 'part's, then 'end'. */
  | { kind: 'large-start'; offset: number }
  | { kind: 'large-part'; bytes: Uint8Array }
  | { kind: 'large-end' };

export interface FrameLimits {
  /** Largest compressed frame held whole. */
  maxFrameBytes: number;
  /** Largest decompressed size a frame held whole may produce (what its headers promise at most). */
  maxFrameOutput: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = { maxFrameBytes: 32 << 20, maxFrameOutput: 32 << 20 };

/** The stream is not a series of zstd frames (at the offset given). */
export class ZstdFormatError extends Error {
  override readonly name: string = 'ZstdFormatError';
}

/** Bytes arriving in chunks, read by absolute stream offset; consumed bytes are dropped. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Stream offset of chunks[0][0]. */
  start = 0;
  end = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.end += chunk.byteLength;
  }

  /** Little-endian unsigned integer of `n` ≤ 4 bytes at `at` (the caller checked they are here). */
  uint(at: number, n: number): number {
    let value = 0;
    for (let i = n - 1; i >= 0; i--) value = value * 256 + this.byte(at + i);
    return value;
  }

  /** Little-endian integer of 8 bytes; beyond 2^53 it loses precision, which a size check still catches. */
  uint64(at: number): number {
    return this.uint(at, 4) + this.uint(at + 4, 4) * 2 ** 32;
  }

  private byte(at: number): number {
    let offset = at - this.start;
    for (const chunk of this.chunks) {
      if (offset < chunk.byteLength) return chunk[offset]!;
      offset -= chunk.byteLength;
    }
    throw new RangeError(`byte ${at} is not buffered`);
  }

  /** Removes and returns the bytes up to stream offset `upTo`, as pieces (no copy). */
  take(upTo: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let want = upTo - this.start;
    while (want > 0) {
      const head = this.chunks[0]!;
      if (head.byteLength <= want) {
        out.push(head);
        this.chunks.shift();
        want -= head.byteLength;
      } else {
        out.push(head.subarray(0, want));
        this.chunks[0] = head.subarray(want);
        want = 0;
      }
    }
    this.start = upTo;
    return out;
  }
}

/**
 * The pieces as one buffer of their own, always a copy: a view would keep the whole part it came
 * from alive while the frame waits to be decompressed (a pull's memory bound counts parts only
 * until they are split).
 */
function concat(pieces: Uint8Array[]): Uint8Array {
  return Buffer.concat(pieces);
}

interface FrameWalk {
  /** Where the frame starts. */
  offset: number;
  /** Where the next header to read starts. */
  cursor: number;
  contentSize: number | undefined;
  checksum: boolean;
  /** Upper bound of the frame's output, from its block headers so far. */
  maxOutput: number;
  /** The last block was read: only the checksum (if any) remains. */
  lastBlock: boolean;
  large: boolean;
}

/**
 * Splits a zstd stream (what a `+zstd` layer holds: frames, and skippable frames, which are
 * dropped) into tokens. `offset` in tokens is relative to `baseOffset`, the stream position of the
 * first byte given (a pull resumed at a frame boundary starts there).
 */
export async function* splitFrames(
  input: AsyncIterable<Uint8Array>,
  limits: FrameLimits = DEFAULT_FRAME_LIMITS,
  baseOffset = 0,
): AsyncGenerator<FrameToken> {
  const q = new ByteQueue();
  q.start = q.end = baseOffset;
  let walk: FrameWalk | undefined;
  let skipUntil = -1;
  const fail = (message: string, at: number): never => {
    throw new ZstdFormatError(`not a zstd stream: ${message} at byte ${at}`);
  };

  /** Advances through what is buffered; returns tokens ready to go out. */
  const advance = (): FrameToken[] => {
    const out: FrameToken[] = [];
    for (;;) {
      if (skipUntil >= 0) {
        if (q.end < skipUntil) {
          q.take(q.end);
          return out;
        }
        q.take(skipUntil);
        skipUntil = -1;
      }
      if (!walk) {
        const at = q.start;
        if (q.end - at < 4) return out;
        const magic = q.uint(at, 4);
        if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          if (q.end - at < 8) return out;
          skipUntil = at + 8 + q.uint(at + 4, 4);
          continue;
        }
        if (magic !== ZSTD_MAGIC) fail('no frame magic number', at);
        if (q.end - at < 5) return out;
        const descriptor = q.uint(at + 4, 1);
        if (descriptor & 0x08) fail('reserved bit set in a frame header', at + 4);
        const fcsFlag = descriptor >> 6;
        const singleSegment = (descriptor >> 5) & 1;
        const dictFlag = descriptor & 3;
        const dictBytes = [0, 1, 2, 4][dictFlag]!;
        const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
        const headerBytes = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
        if (q.end - at < headerBytes) return out;
        const fcsAt = at + headerBytes - fcsBytes;
        let contentSize: number | undefined;
        if (fcsBytes === 1) contentSize = q.uint(fcsAt, 1);
        else if (fcsBytes === 2) contentSize = q.uint(fcsAt, 2) + 256;
        else if (fcsBytes === 4) contentSize = q.uint(fcsAt, 4);
        else if (fcsBytes === 8) contentSize = q.uint64(fcsAt);
        walk = {
          offset: at,
          cursor: at + headerBytes,
          contentSize,
          checksum: Boolean(descriptor & 0x04),
          maxOutput: 0,
          lastBlock: false,
          large: contentSize !== undefined && contentSize > limits.maxFrameOutput,
        };
      }
      // Walk the block headers that are buffered.
      while (!walk.lastBlock && q.end - walk.cursor >= 3) {
        const header = q.uint(walk.cursor, 3);
        const type = (header >> 1) & 3;
        const size = header >> 3;
        if (type === 3) fail('reserved block type', walk.cursor);
        if (size > MAX_BLOCK_OUTPUT) fail('block larger than 128 KiB', walk.cursor);
        walk.maxOutput += type === 2 ? MAX_BLOCK_OUTPUT : size;
        walk.cursor += 3 + (type === 1 ? 1 : size);
        walk.lastBlock = Boolean(header & 1);
      }
      const frameEnd = walk.lastBlock ? walk.cursor + (walk.checksum ? 4 : 0) : undefined;
      if (
        !walk.large &&
        (walk.cursor - walk.offset > limits.maxFrameBytes ||
          (walk.contentSize === undefined && walk.maxOutput > limits.maxFrameOutput))
      ) {
        walk.large = true;
      }
      if (walk.large) {
        if (q.start === walk.offset) out.push({ kind: 'large-start', offset: walk.offset - baseOffset });
        // Keep a block header that is only partly here: it is read once the rest arrives.
        const upTo = Math.min(q.end, frameEnd ?? walk.cursor);
        if (upTo > q.start) out.push({ kind: 'large-part', bytes: concat(q.take(upTo)) });
        if (frameEnd === undefined || q.start < frameEnd) return out;
        out.push({ kind: 'large-end' });
        walk = undefined;
        continue;
      }
      if (frameEnd === undefined || q.end < frameEnd) return out;
      out.push({
        kind: 'frame',
        offset: walk.offset - baseOffset,
        bytes: concat(q.take(frameEnd)),
        contentSize: walk.contentSize,
        maxOutput: walk.contentSize ?? walk.maxOutput,
      });
      walk = undefined;
    }
  };

  for await (const chunk of input) {
    q.push(chunk);
    yield* advance();
  }
  if (walk || skipUntil >= 0 || q.end > q.start) fail('the stream ends inside a frame', q.end);
}
