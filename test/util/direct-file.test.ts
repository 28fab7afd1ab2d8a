import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { SequentialFileWriter } from '../../src/util/direct-file.ts';
import { MALLOC_TUNABLES, tunedEnvironment } from '../../src/util/runtime-tuning.ts';
import { tempDir } from '../helpers/tmp.ts';

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function writeInChunks(
  file: string,
  chunks: Buffer[],
  options: { direct?: boolean } = {},
): Promise<SequentialFileWriter> {
  const writer = await SequentialFileWriter.create(file, options);
  for (const c of chunks) await writer.write(c);
  await writer.finish();
  await writer.close();
  return writer;
}

describe('sequential file writer', () => {
  test.each([
    ['empty', []],
    ['one byte', [1]],
    ['exactly one stage', [4 * 1024 * 1024]],
    ['odd sizes across stages', [3, 4 * 1024 * 1024 + 5, 1_000_003, 7]],
  ])('writes exactly the bytes given: %s', async (_name, sizes) => {
    const file = path.join(await tempDir(), 'blob');
    const chunks = (sizes as number[]).map((n, i) => pattern(n, i));
    await writeInChunks(file, chunks);
    expect((await readFile(file)).equals(Buffer.concat(chunks))).toBe(true);
  });

  test('with O_DIRECT on (where the filesystem has it) and off, the same bytes land', async () => {
    const data = [pattern(5 * 1024 * 1024 + 17, 3), pattern(100, 4)];
    const direct = path.join(await tempDir(), 'blob');
    await writeInChunks(direct, data);
    const buffered = path.join(await tempDir(), 'blob');
    expect((await writeInChunks(buffered, data, { direct: false })).isDirect).toBe(false);
    expect((await readFile(direct)).equals(Buffer.concat(data))).toBe(true);
    expect((await readFile(buffered)).equals(Buffer.concat(data))).toBe(true);
  });

  test('refuses to overwrite an existing file', async () => {
    const file = path.join(await tempDir(), 'blob');
    await writeInChunks(file, [pattern(10, 1)]);
    await expect(SequentialFileWriter.create(file)).rejects.toThrow(/EEXIST/);
  });
});

describe('runtime tuning', () => {
  test('asks for a re-run with the threadpool size and malloc tunables, once', () => {
    const env = tunedEnvironment({ PATH: '/bin' });
    expect(env?.MODEL_OCI_TUNED).toBe('1');
    expect(Number(env?.UV_THREADPOOL_SIZE)).toBeGreaterThanOrEqual(3);
    if (env?.GLIBC_TUNABLES !== undefined) expect(env.GLIBC_TUNABLES).toBe(MALLOC_TUNABLES);
    expect(tunedEnvironment({ ...env })).toBeUndefined();
    expect(tunedEnvironment({ MODEL_OCI_TUNED: '0' })).toBeUndefined();
  });

  test('keeps what the user set', () => {
    const env = tunedEnvironment({ UV_THREADPOOL_SIZE: '16', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
    expect(env?.UV_THREADPOOL_SIZE ?? '16').toBe('16');
    expect(env?.GLIBC_TUNABLES ?? 'glibc.malloc.arena_max=2').toBe('glibc.malloc.arena_max=2');
  });
});
