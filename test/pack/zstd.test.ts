import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { loadCompressor } from '../../src/pack/zstd.ts';

const text = Buffer.from(
  Array.from({ length: 20000 }, (_, i) => `line ${i % 977} of a config file\n`).join(''),
);

describe('zstd frame compressor', () => {
  test('the level reaches the compressor: higher levels give smaller frames', async () => {
    const compressor = loadCompressor();
    const sizes = await Promise.all(
      [1, 3, 19].map(async (level) => (await compressor.compress(text, level)).length),
    );
    expect(sizes[1]).toBeLessThan(sizes[0]!);
    expect(sizes[2]).toBeLessThan(sizes[1]!);
  });

  test('frames are standard zstd: the zstd CLI decodes them, also when concatenated', async () => {
    const compressor = loadCompressor();
    const a = await compressor.compress(text.subarray(0, 100000), 3);
    const b = await compressor.compress(text.subarray(100000), 3);
    const out = execFileSync('zstd', ['-d', '-c'], { input: Buffer.concat([a, b]), maxBuffer: 16 << 20 });
    expect(out.equals(text)).toBe(true);
  });
});

describe('node:zlib fallback', () => {
  test('MODEL_OCI_ZSTD=zlib builds with Node’s own zstd, and the CLI reads the result', () => {
    const script = `
      import { loadCompressor } from ${JSON.stringify(new URL('../../src/pack/zstd.ts', import.meta.url).pathname)};
      const c = loadCompressor();
      const out = await c.compress(Buffer.from(process.argv[1].repeat(1000)), 19);
      process.stdout.write(c.name + ' ' + out.toString('base64'));`;
    const printed = execFileSync(process.execPath, ['--input-type=module', '-e', script, 'abc'], {
      encoding: 'utf8',
      env: { ...process.env, MODEL_OCI_ZSTD: 'zlib' },
    });
    const [name, data] = printed.split(' ');
    expect(name).toBe('node:zlib');
    const out = execFileSync('zstd', ['-d', '-c'], { input: Buffer.from(data!, 'base64') });
    expect(out.toString()).toBe('abc'.repeat(1000));
  });
});
