import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { chooseCompressor } from '../../src/pack/zstd.ts';

const text = Buffer.from(
  Array.from({ length: 20000 }, (_, i) => `line ${i % 977} of a config file\n`).join(''),
);

describe('zstd frame compressor', () => {
  test('the level reaches the compressor: higher levels give smaller frames', async () => {
    const { compressor, notice } = chooseCompressor();
    expect(notice).toBeUndefined();
    const sizes = await Promise.all(
      [1, 3, 19].map(async (level) => (await compressor.compress(text, level)).length),
    );
    expect(sizes[1]).toBeLessThan(sizes[0]!);
    expect(sizes[2]).toBeLessThan(sizes[1]!);
  });

  test('frames are standard zstd: the zstd CLI decodes them, also when concatenated', async () => {
    const { compressor, notice } = chooseCompressor();
    expect(notice).toBeUndefined();
    const a = await compressor.compress(text.subarray(0, 100000), 3);
    const b = await compressor.compress(text.subarray(100000), 3);
    const out = execFileSync('zstd', ['-d', '-c'], { input: Buffer.concat([a, b]), maxBuffer: 16 << 20 });
    expect(out.equals(text)).toBe(true);
  });
});

describe('node:zlib fallback', () => {
  test('zlib (MODEL_OCI_ZSTD=zlib at the edge) compresses with Node’s own zstd, and the zstd CLI reads it', async () => {
    const { compressor, notice } = chooseCompressor('zlib');
    expect(compressor.name).toBe('node:zlib');
    expect(notice).toBe('zstd: compressing with node:zlib, as MODEL_OCI_ZSTD=zlib asks');
    const data = await compressor.compress(Buffer.from('abc'.repeat(1000)), 19);
    const out = execFileSync('zstd', ['-d', '-c'], { input: data });
    expect(out.toString()).toBe('abc'.repeat(1000));
  });
});
