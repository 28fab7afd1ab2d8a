// The parallel ranged fetch: bytes in order whatever the part size, and blobs that share a small
// memory budget all finish (no blob waits for permits that only its own progress would free).
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { sha256Digest } from '../../src/oci/digest.ts';
import { fetchBlobBytes } from '../../src/pull/ranged-fetch.ts';
import { Semaphore } from '../../src/util/limiter.ts';
import { tempDir } from '../helpers/tmp.ts';

async function blobs(count: number, size: number) {
  const target = await OciLayoutTarget.open(path.join(await tempDir(), 'layout'));
  const out = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(size + i * 777);
    const desc = { mediaType: 'application/octet-stream', digest: sha256Digest(bytes), size: bytes.length };
    await target.putBlob(desc, bytes);
    out.push({ desc, bytes });
  }
  return { target, blobs: out };
}

describe('fetchBlobBytes', () => {
  test('any part size and resume offset gives the bytes in order', async () => {
    const {
      target,
      blobs: [blob],
    } = await blobs(1, 5 * 1024 * 1024 + 3);
    for (const [partSize, from] of [
      [1024 * 1024, 0],
      [3 * 1024 * 1024, 0],
      [1024 * 1024, 2_500_001],
      [64 * 1024 * 1024, 10],
    ] as const) {
      const chunks: Uint8Array[] = [];
      const options = { partSize, connections: new Semaphore(3), buffers: new Semaphore(4), window: 3 };
      for await (const chunk of fetchBlobBytes(target, blob!.desc, from, options)) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(blob!.bytes.subarray(from))).toBe(true);
    }
  });

  test('three blobs with slow consumers share two part permits and two connections, and all finish', async () => {
    const { target, blobs: list } = await blobs(3, 4 * 1024 * 1024);
    const options = {
      partSize: 512 * 1024,
      connections: new Semaphore(2),
      buffers: new Semaphore(2),
      window: 6,
    };
    const read = async ({ desc, bytes }: (typeof list)[number], delay: number) => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of fetchBlobBytes(target, desc, 0, options)) {
        chunks.push(chunk);
        await sleep(delay);
      }
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    };
    await Promise.all(list.map((b, i) => read(b, i)));
    // Every permit came back.
    for (const semaphore of [options.buffers, options.connections]) {
      await semaphore.acquire();
      await semaphore.acquire();
    }
  }, 30_000);
});
