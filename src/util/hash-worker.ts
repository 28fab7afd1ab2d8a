import { Worker } from 'node:worker_threads';

// (Digest is the OCI form `sha256:<hex>`; util/ imports nothing of ours, so it is spelled out.)
type Digest = `sha256:${string}`;

// sha256 of the tar stream and of each file's content is the largest piece of main-thread work in
// a pack (two passes over every byte). A worker thread does it instead, reading the same shared
// frame memory the compressor reads, so the main thread stays free to keep frames moving.
// The worker's code is inline so a bundled dist/ needs no second file.
const WORKER_SOURCE = `
  const { parentPort } = require('node:worker_threads');
  const { createHash } = require('node:crypto');
  const hashes = new Map();
  parentPort.on('message', (m) => {
    if (m.op === 'update') {
      let h = hashes.get(m.id);
      if (!h) { h = { hash: createHash('sha256'), size: 0 }; hashes.set(m.id, h); }
      for (const view of m.views) { h.hash.update(view); h.size += view.byteLength; }
      parentPort.postMessage({ op: 'ack', seq: m.seq });
    } else if (m.op === 'peek') {
      const h = hashes.get(m.id) ?? { hash: createHash('sha256'), size: 0 };
      parentPort.postMessage({ op: 'digest', seq: m.seq, digest: 'sha256:' + h.hash.copy().digest('hex'), size: h.size });
    } else if (m.op === 'fork') {
      const h = hashes.get(m.id) ?? { hash: createHash('sha256'), size: 0 };
      hashes.set(m.to, { hash: h.hash.copy(), size: h.size });
      parentPort.postMessage({ op: 'ack', seq: m.seq });
    } else if (m.op === 'drop') {
      hashes.delete(m.id);
      parentPort.postMessage({ op: 'ack', seq: m.seq });
    } else if (m.op === 'digest') {
      const h = hashes.get(m.id) ?? { hash: createHash('sha256'), size: 0 };
      hashes.delete(m.id);
      parentPort.postMessage({ op: 'digest', seq: m.seq, digest: 'sha256:' + h.hash.digest('hex'), size: h.size });
    }
  });
`;

interface Reply {
  op: 'ack' | 'digest';
  seq: number;
  digest?: Digest;
  size?: number;
}

/**
 * A sha256 service on one worker thread. Updates for one id are applied in the order sent.
 * Views must stay unchanged until their update resolves; they should be backed by a
 * SharedArrayBuffer so posting them shares memory instead of copying it.
 */
export class HashWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private nextId = 0;
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.seq);
      this.pending.delete(reply.seq);
      waiter?.resolve(reply);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`hash worker exited with code ${code}`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  private send(message: object): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.worker.postMessage({ ...message, seq });
    });
  }

  /** A fresh hash context id. */
  create(): number {
    return this.nextId++;
  }

  async update(id: number, views: readonly Uint8Array[]): Promise<void> {
    if (views.length > 0) await this.send({ op: 'update', id, views });
  }

  /** The digest of what was hashed so far under `id`, which goes on. */
  async peek(id: number): Promise<{ digest: Digest; size: number }> {
    const reply = await this.send({ op: 'peek', id });
    return { digest: reply.digest!, size: reply.size! };
  }

  /** A new id that starts where `id` is now (both go on separately): a checkpoint to go back to. */
  async fork(id: number): Promise<number> {
    const to = this.create();
    await this.send({ op: 'fork', id, to });
    return to;
  }

  /** Forgets a hash without finishing it. */
  async drop(id: number): Promise<void> {
    await this.send({ op: 'drop', id });
  }

  async digest(id: number): Promise<{ digest: Digest; size: number }> {
    const reply = await this.send({ op: 'digest', id });
    return { digest: reply.digest!, size: reply.size! };
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
