import { HashWorker } from './hash-worker.ts';

type Digest = `sha256:${string}`;

/** Bytes per message to a worker: a slot of shared memory the bytes are copied into. */
const SLOT_BYTES = 1024 * 1024;
/** Slots of one stream on their way at once, so one stream cannot take the whole pool. */
const PER_STREAM = 4;

/**
 * sha256 computed on worker threads: a pull has three digests to check for every byte (blob,
 * diffID, file), more hashing than the core that also parses, decompresses and writes can do.
 * Each update is copied into a reused slot of shared memory (a copy costs a tenth of hashing) and
 * posted to a worker; streams are spread over the workers, and a stream's updates are applied in
 * order. Memory is bounded by the slots: `slots` × 1 MiB for the whole pool.
 */
export class HashPool {
  private readonly workers: HashWorker[];
  private next = 0;
  private readonly free: Buffer[] = [];
  private created = 0;
  private readonly maxSlots: number;
  private readonly waiters: Array<(slot: Buffer) => void> = [];

  constructor(options: { workers?: number; slots?: number } = {}) {
    this.workers = Array.from({ length: Math.max(1, options.workers ?? 2) }, () => new HashWorker());
    this.maxSlots = Math.max(PER_STREAM, options.slots ?? 8);
  }

  stream(): OffThreadHash {
    const worker = this.workers[this.next++ % this.workers.length]!;
    return new OffThreadHash(worker, this);
  }

  /** A free slot (waiting for one when all are on their way). */
  take(): Promise<Buffer> | Buffer {
    const slot = this.free.pop();
    if (slot) return slot;
    if (this.created < this.maxSlots) {
      this.created++;
      return Buffer.from(new SharedArrayBuffer(SLOT_BYTES));
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  give(slot: Buffer): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(slot);
    else this.free.push(slot);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

export class OffThreadHash {
  private readonly worker: HashWorker;
  private readonly pool: HashPool;
  private readonly id: number;
  private readonly inFlight: Promise<void>[] = [];
  private failure: unknown;
  /** The slot being filled, and how far. */
  private slot: Buffer | undefined;
  private filled = 0;
  size = 0;

  constructor(worker: HashWorker, pool: HashPool) {
    this.worker = worker;
    this.pool = pool;
    this.id = worker.create();
  }

  /**
   * Copies `chunk` towards the worker; returns once it is copied (the caller may reuse `chunk`).
   * Small chunks are gathered into one slot before it is sent, so a stream of network-sized
   * pieces costs a message per MiB, not per piece.
   */
  async update(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    let at = 0;
    while (at < chunk.byteLength) {
      if (!this.slot) {
        while (this.inFlight.length >= PER_STREAM) await this.inFlight.shift();
        this.slot = await this.pool.take();
        this.filled = 0;
      }
      const n = Math.min(chunk.byteLength - at, SLOT_BYTES - this.filled);
      // Buffer#copy is a memcpy; TypedArray#set into shared memory copies at half the speed.
      Buffer.from(chunk.buffer, chunk.byteOffset + at, n).copy(this.slot, this.filled);
      this.filled += n;
      at += n;
      this.size += n;
      if (this.filled === SLOT_BYTES) this.send();
    }
  }

  /** Posts the current slot (if it holds anything) to the worker. */
  private send(): void {
    const slot = this.slot;
    if (!slot) return;
    this.slot = undefined;
    if (this.filled === 0) {
      this.pool.give(slot);
      return;
    }
    const sent = this.worker.update(this.id, [slot.subarray(0, this.filled)]).then(
      () => this.pool.give(slot),
      (err: unknown) => {
        this.pool.give(slot);
        this.failure ??= err;
      },
    );
    this.inFlight.push(sent);
  }

  private async settle(): Promise<void> {
    this.send();
    while (this.inFlight.length > 0) await this.inFlight.shift();
    if (this.failure) throw this.failure;
  }

  /** The digest of everything so far; the stream goes on. */
  async peek(): Promise<Digest> {
    await this.settle();
    return (await this.worker.peek(this.id)).digest;
  }

  async digest(): Promise<Digest> {
    await this.settle();
    return (await this.worker.digest(this.id)).digest;
  }
}
