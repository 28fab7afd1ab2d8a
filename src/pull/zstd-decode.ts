import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { DEFAULT_FRAME_LIMITS, type FrameLimits, splitFrames, ZstdFormatError } from './zstd-frames.ts';

const zstdDecompress = promisify(zlib.zstdDecompress);

/** Decompressed bytes in order; the first piece of each frame says where the frame began. */
export interface DecodedPiece {
  bytes: Uint8Array;
  /** On a frame's first piece: its offset in the compressed stream and in the decompressed one. */
  frameStart?: { compressed: number; decompressed: number };
}

export interface DecodeOptions {
  /** Frames decompressed at once (on the libuv threadpool); also how many wait, decoded, in order. */
  parallel: number;
  limits?: FrameLimits;
  /** Stream offsets of the first byte given, compressed and decompressed (a resumed pull: a frame start). */
  base?: { compressed: number; decompressed: number };
}

function formatError(err: unknown, offset: number): Error {
  const message = err instanceof Error ? err.message : String(err);
  return new ZstdFormatError(`the zstd frame at byte ${offset} does not decompress: ${message}`);
}

/** One whole frame, its output bounded by what its headers allow (no decompression bombs). */
async function decodeFrame(bytes: Uint8Array, maxOutput: number, offset: number): Promise<Uint8Array> {
  try {
    return await zstdDecompress(bytes, {
      // One output buffer of the frame's size: the default 16 KiB chunks cost a round trip each.
      chunkSize: Math.max(64 * 1024, Math.min(maxOutput, 64 << 20)),
      maxOutputLength: Math.max(1, maxOutput),
    });
  } catch (err) {
    throw formatError(err, offset);
  }
}

/** A frame too large to hold, through a streaming decoder, piece by piece. */
async function* decodeLarge(parts: AsyncIterator<Uint8Array>, offset: number): AsyncGenerator<Uint8Array> {
  const decoder = zlib.createZstdDecompress({ chunkSize: 1 << 20 });
  const output: Buffer[] = [];
  let failure: Error | undefined;
  decoder.on('data', (chunk: Buffer) => output.push(chunk));
  decoder.on('error', (err) => {
    failure = formatError(err, offset);
  });
  const drain = async function* () {
    while (output.length > 0) yield output.shift()!;
  };
  for (let next = await parts.next(); !next.done; next = await parts.next()) {
    const accepted = decoder.write(next.value);
    if (!accepted) await new Promise((resolve) => decoder.once('drain', resolve));
    if (failure) throw failure;
    yield* drain();
  }
  await new Promise<void>((resolve) => decoder.end(resolve));
  if (failure) throw failure;
  yield* drain();
}

/**
 * Decompresses a series of zstd frames on every core at once and hands the output on in order.
 * Memory is bounded: at most `parallel` frames are being decompressed or wait to be taken.
 */
export async function* decodeZstd(
  input: AsyncIterable<Uint8Array>,
  options: DecodeOptions,
): AsyncGenerator<DecodedPiece> {
  const base = options.base ?? { compressed: 0, decompressed: 0 };
  const tokens = splitFrames(input, options.limits ?? DEFAULT_FRAME_LIMITS, base.compressed)[
    Symbol.asyncIterator
  ]();
  const pending: { offset: number; output: Promise<Uint8Array> }[] = [];
  let produced = base.decompressed;
  const emit = (offset: number, bytes: Uint8Array): DecodedPiece => {
    const piece = { bytes, frameStart: { compressed: base.compressed + offset, decompressed: produced } };
    produced += bytes.byteLength;
    return piece;
  };
  /** Hands the oldest pending frame's output on. */
  async function* emitHead(): AsyncGenerator<DecodedPiece> {
    const head = pending.shift()!;
    yield emit(head.offset, await head.output);
  }
  try {
    for (let next = await tokens.next(); !next.done; next = await tokens.next()) {
      const token = next.value;
      if (token.kind === 'frame') {
        const output = decodeFrame(token.bytes, token.maxOutput, base.compressed + token.offset);
        output.catch(() => {}); // awaited in order below; a failure surfaces there
        pending.push({ offset: token.offset, output });
        while (pending.length >= options.parallel) yield* emitHead();
        continue;
      }
      if (token.kind !== 'large-start') throw new ZstdFormatError('frame tokens out of order');
      // The frames before go out first; the large one streams through alone.
      while (pending.length > 0) yield* emitHead();
      const parts: AsyncIterator<Uint8Array> = {
        next: async () => {
          const t = await tokens.next();
          if (t.done || t.value.kind === 'large-end') return { done: true, value: undefined };
          if (t.value.kind !== 'large-part') throw new ZstdFormatError('frame tokens out of order');
          return { done: false, value: t.value.bytes };
        },
      };
      let first = true;
      for await (const bytes of decodeLarge(parts, base.compressed + token.offset)) {
        if (first) yield emit(token.offset, bytes);
        else {
          produced += bytes.byteLength;
          yield { bytes };
        }
        first = false;
      }
    }
    while (pending.length > 0) yield* emitHead();
  } finally {
    await Promise.allSettled(pending.map((p) => p.output));
    await tokens.return?.(undefined);
  }
}
