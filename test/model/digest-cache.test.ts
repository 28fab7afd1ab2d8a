import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { DigestCache } from '../../src/model/digest-cache.ts';
import { tempDir } from '../helpers/tmp.ts';

const digest = `sha256:${'a'.repeat(64)}` as const;
const here = { size: 10, mtimeNs: '1700000000000000000', ctimeNs: '1700000000000000000', ino: '42' };
// The same file restored on another runner: same size and mtime, new inode and ctime.
const elsewhere = { ...here, ctimeNs: '1800000000000000000', ino: '99' };
const rewritten = { ...here, mtimeNs: '1800000000000000000' };

describe('digest cache matching', () => {
  test('strict needs inode and ctime too; portable trusts size and mtime (a cache restored with its files)', async () => {
    const file = path.join(await tempDir(), 'cache.json');
    const strict = await DigestCache.load(file, '/models/x');
    strict.record('w.safetensors', here, digest);
    await strict.save();

    const strictAgain = await DigestCache.load(file, '/models/x');
    expect(strictAgain.lookup('w.safetensors', here)).toBe(digest);
    expect(strictAgain.lookup('w.safetensors', elsewhere)).toBeUndefined();

    const portable = await DigestCache.load(file, '/models/x', 'portable');
    expect(portable.lookup('w.safetensors', elsewhere)).toBe(digest);
    expect(portable.lookup('w.safetensors', rewritten)).toBeUndefined();
    expect(portable.lookup('w.safetensors', { ...here, size: 11 })).toBeUndefined();
  });
});
