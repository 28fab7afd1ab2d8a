// The frame splitter and parallel decoder against what the zstd CLI writes and reads.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { chooseCompressor } from '../../src/pack/zstd.ts';
import { type DecodedPiece, decodeZstd } from '../../src/pull/zstd-decode.ts';
import { splitFrames, ZstdFormatError } from '../../src/pull/zstd-frames.ts';

const zstdCli = (input: Buffer, ...args: string[]) =>
  execFileSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 1 << 30 });

/** Somewhat compressible bytes: random runs and repeated text. */
function sample(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += 8192) {
    const piece = at % 16384 === 0 ? randomBytes(8192) : Buffer.from('weights '.repeat(1024));
    piece.copy(out, at, 0, Math.min(8192, bytes - at));
  }
  return out;
}

async function collect(
  pieces: AsyncIterable<DecodedPiece>,
): Promise<{ bytes: Buffer; starts: DecodedPiece['frameStart'][] }> {
  const chunks: Uint8Array[] = [];
  const starts: DecodedPiece['frameStart'][] = [];
  for await (const piece of pieces) {
    chunks.push(piece.bytes);
    if (piece.frameStart) starts.push(piece.frameStart);
  }
  return { bytes: Buffer.concat(chunks), starts };
}

/** Feeds `data` in chunks of `size` bytes. */
async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
}

async function framesOf(data: Buffer, frameSize: number): Promise<Buffer> {
  const { compressor } = chooseCompressor();
  const frames: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += frameSize)
    frames.push(await compressor.compress(data.subarray(at, at + frameSize), 3));
  return Buffer.concat(frames);
}

describe('zstd frames', () => {
  test('our framed layers decode in parallel to what zstd -d gives, with every frame start reported', async () => {
    const data = sample(9 * 1024 * 1024 + 123);
    const layer = await framesOf(data, 1 << 20);
    expect(zstdCli(layer, '-d').equals(data)).toBe(true);
    for (const chunk of [1 << 20, 65_537, 7]) {
      const input = chunk === 7 ? layer.subarray(0, 300_000) : layer;
      const want = chunk === 7 ? undefined : data;
      const run = collect(decodeZstd(chunked(input, chunk), { parallel: 3 }));
      if (!want) {
        // A stream cut inside a frame is refused, whatever the chunking.
        await expect(run).rejects.toThrow(ZstdFormatError);
        continue;
      }
      const { bytes, starts } = await run;
      expect(bytes.equals(want)).toBe(true);
      expect(starts).toHaveLength(10);
      expect(starts.map((s) => s!.decompressed)).toEqual(Array.from({ length: 10 }, (_, i) => i << 20));
    }
  });

  test('tiny chunks: a header split over many reads is still found (1-byte reads)', async () => {
    const data = sample(300_000);
    const layer = await framesOf(data, 100_000);
    const { bytes, starts } = await collect(decodeZstd(chunked(layer, 1), { parallel: 2 }));
    expect(bytes.equals(data)).toBe(true);
    expect(starts).toHaveLength(3);
  });

  test('what the zstd CLI writes: checksums, no content size, skippable frames, one large frame', async () => {
    const a = sample(3_000_000);
    const b = sample(2_000_000);
    const skippable = Buffer.concat([
      Buffer.from([0x5e, 0x2a, 0x4d, 0x18]),
      Buffer.from([5, 0, 0, 0]),
      Buffer.from('hello'),
    ]);
    const stream = Buffer.concat([
      zstdCli(a, '-3', '--check'),
      skippable,
      zstdCli(b, '--no-check', '--no-content-size'),
    ]);
    const { bytes } = await collect(decodeZstd(chunked(stream, 50_000), { parallel: 2 }));
    expect(bytes.equals(Buffer.concat([a, b]))).toBe(true);

    // One frame over the limit goes through the streaming decoder, piece by piece.
    const big = sample(12 * 1024 * 1024);
    const limits = { maxFrameBytes: 1 << 20, maxFrameOutput: 4 << 20 };
    for (const flags of [[], ['--no-content-size']]) {
      const tokens = [];
      for await (const t of splitFrames(chunked(zstdCli(big, ...flags), 1 << 20), limits))
        tokens.push(t.kind);
      expect(tokens[0]).toBe('large-start');
      expect(tokens.at(-1)).toBe('large-end');
      const out = await collect(
        decodeZstd(chunked(zstdCli(big, ...flags), 300_000), { parallel: 2, limits }),
      );
      expect(out.bytes.equals(big)).toBe(true);
    }
  });

  test('damage is a ZstdFormatError naming the offset: not zstd, a flipped byte, a checksum that lies', async () => {
    const data = sample(2_000_000);
    const good = zstdCli(data, '--check');
    await expect(
      collect(decodeZstd(chunked(Buffer.from('plain tar bytes, not zstd'), 64), { parallel: 2 })),
    ).rejects.toThrow(/not a zstd stream: no frame magic number at byte 0/);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 2]! ^= 0xff; // inside the content checksum
    await expect(collect(decodeZstd(chunked(flipped, 1 << 20), { parallel: 2 }))).rejects.toThrow(
      ZstdFormatError,
    );
    const trailing = Buffer.concat([good, Buffer.from('junk')]);
    await expect(collect(decodeZstd(chunked(trailing, 1 << 20), { parallel: 2 }))).rejects.toThrow(
      /no frame magic number at byte/,
    );
  });

  test('a resumed stream starts at a frame boundary and reports absolute offsets', async () => {
    const data = sample(4 * 1024 * 1024);
    const layer = await framesOf(data, 1 << 20);
    const all = await collect(decodeZstd(chunked(layer, 1 << 20), { parallel: 2 }));
    const third = all.starts[2]!;
    const resumed = await collect(
      decodeZstd(chunked(layer.subarray(third.compressed), 500_000), { parallel: 2, base: third }),
    );
    expect(resumed.bytes.equals(data.subarray(third.decompressed))).toBe(true);
    expect(resumed.starts).toEqual(all.starts.slice(2));
  });
});
