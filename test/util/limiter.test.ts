import { describe, expect, test } from 'vitest';
import { mapConcurrent } from '../../src/util/limiter.ts';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mapConcurrent', () => {
  test('keeps order, never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapConcurrent([5, 1, 4, 2, 3], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await tick(n * 3);
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });

  test('the first failure aborts the work in flight and starts nothing new', async () => {
    const started: number[] = [];
    let abortedSeen = false;
    const run = mapConcurrent([1, 2, 3, 4, 5], 2, async (n, _i, signal) => {
      started.push(n);
      if (n === 1) {
        await tick(5);
        throw new Error('boom');
      }
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      abortedSeen = signal.aborted;
      return n;
    });
    await expect(run).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
    expect(abortedSeen).toBe(true);
  });
});
