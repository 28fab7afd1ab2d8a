import { throwIfAborted } from '../util/errors.ts';

/**
 * A fixed set of frame buffers shared by every layer being packed: the whole packer's memory bound.
 * A frame goes back to the pool only when its compressed bytes have been written, so a slow
 * target slows the readers down instead of filling memory. Buffers are SharedArrayBuffer-backed
 * so the hash worker reads the same bytes the compressor reads, without a copy.
 */
export class FramePool {
  readonly frameSize: number;
  readonly count: number;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private readonly waiters: Array<(buf: Buffer) => void> = [];

  constructor(frameSize: number, count: number) {
    if (count < 2) throw new RangeError('a frame pool needs at least two frames');
    this.frameSize = frameSize;
    this.count = count;
  }

  async acquire(signal?: AbortSignal): Promise<Buffer> {
    throwIfAborted(signal);
    const buf = this.free.pop();
    if (buf) return buf;
    if (this.allocated < this.count) {
      this.allocated++;
      return Buffer.from(new SharedArrayBuffer(this.frameSize));
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const grant = (b: Buffer): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(b);
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(buf: Buffer): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(buf);
    else this.free.push(buf);
  }
}
