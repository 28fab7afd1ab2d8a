import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { errnoCode } from './errors.ts';

/** O_DIRECT wants buffer addresses, offsets and lengths in multiples of the block size. */
const ALIGN = 4096;
const STAGE_SIZE = 4 * 1024 * 1024;

/**
 * Buffers whose memory starts on a page boundary. Node gives no aligned allocations, but
 * WebAssembly memory is page-aligned by construction; the staging buffers are cut from it and
 * reused across files, so there are only ever a few.
 */
const spareStages: Buffer[] = [];
// The ES lib TypeScript is given here does not declare WebAssembly; Node has it.
const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly.Memory;
function takeStage(): Buffer {
  return spareStages.pop() ?? Buffer.from(new WasmMemory({ initial: STAGE_SIZE / 65536 }).buffer);
}

/**
 * Appends to a file, preferring O_DIRECT: the bytes go from our buffer to the disk without the
 * page cache, so the kernel does not spend CPU copying them and writing them back later (on the
 * virtual machines measured in docs/benchmarks.md that was as much CPU as hashing the layer), and a
 * multi-GiB blob does not push the model files out of the cache. Filesystems without O_DIRECT
 * (tmpfs, some network filesystems) get ordinary buffered writes, flushed in the background.
 */
export class SequentialFileWriter {
  private handle: FileHandle;
  private direct: boolean;
  private stage: Buffer | undefined;
  private staged = 0;
  /** Where the next flushed stage goes (direct mode) or bytes written so far (buffered mode). */
  private position = 0;
  private pending: Promise<void> = Promise.resolve();
  private unsynced = 0;
  private readonly path: string;

  private constructor(path: string, handle: FileHandle, direct: boolean) {
    this.path = path;
    this.handle = handle;
    this.direct = direct;
  }

  /** Creates `path` (it must not exist); `direct: false` writes through the page cache. */
  static async create(path: string, options: { direct?: boolean } = {}): Promise<SequentialFileWriter> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
    if (constants.O_DIRECT !== undefined && options.direct !== false) {
      try {
        return new SequentialFileWriter(path, await open(path, flags | constants.O_DIRECT, 0o644), true);
      } catch (err) {
        if (errnoCode(err) !== 'EINVAL') throw err;
      }
    }
    return new SequentialFileWriter(path, await open(path, flags, 0o644), false);
  }

  /**
   * Writes from `offset` on into a file shared with other writers (each its own range; created if
   * missing, never truncated): the part layers of one file, pulled in parallel. Buffered writes, so
   * no block padding can spill into a neighbour's range.
   */
  static async region(path: string, offset: number): Promise<SequentialFileWriter> {
    const writer = new SequentialFileWriter(
      path,
      await open(path, constants.O_WRONLY | constants.O_CREAT, 0o644),
      false,
    );
    writer.position = offset;
    return writer;
  }

  /**
   * Opens an existing file to append at `size` (what an earlier attempt kept; the rest is cut off).
   * In direct mode the partial last block is read back into the stage and written again with what
   * follows, since O_DIRECT writes whole blocks only.
   */
  static async append(
    path: string,
    size: number,
    options: { direct?: boolean } = {},
  ): Promise<SequentialFileWriter> {
    let writer: SequentialFileWriter | undefined;
    if (constants.O_DIRECT !== undefined && options.direct !== false) {
      try {
        writer = new SequentialFileWriter(
          path,
          await open(path, constants.O_RDWR | constants.O_DIRECT),
          true,
        );
      } catch (err) {
        if (errnoCode(err) !== 'EINVAL') throw err;
      }
    }
    writer ??= new SequentialFileWriter(path, await open(path, constants.O_RDWR), false);
    await writer.handle.truncate(size);
    if (!writer.direct) {
      writer.position = size;
      return writer;
    }
    const tail = size % ALIGN;
    writer.position = size - tail;
    if (tail > 0) {
      writer.stage = takeStage();
      // A whole block read at an aligned offset (past the end it is short): O_DIRECT's terms.
      await writer.handle.read(writer.stage, 0, ALIGN, writer.position);
      writer.staged = tail;
    }
    return writer;
  }

  /**
   * Makes every byte written so far durable without ending the file: in direct mode the stage is
   * written (its last block padded, and written again later with what follows), then the data is
   * synced. What a resume checkpoint needs.
   */
  async checkpoint(): Promise<void> {
    if (this.direct && this.staged > 0) {
      const padded = Math.ceil(this.staged / ALIGN) * ALIGN;
      this.stage!.fill(0, this.staged, padded);
      await this.pending;
      await this.writeAll(this.stage!, padded, this.position);
    }
    await this.pending;
    await this.handle.datasync();
  }

  get isDirect(): boolean {
    return this.direct;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.direct) return this.writeBuffered(chunk);
    let offset = 0;
    while (offset < chunk.byteLength) {
      this.stage ??= takeStage();
      const n = Math.min(chunk.byteLength - offset, STAGE_SIZE - this.staged);
      this.stage.set(chunk.subarray(offset, offset + n), this.staged);
      this.staged += n;
      offset += n;
      if (this.staged === STAGE_SIZE) await this.flushStage(STAGE_SIZE);
    }
  }

  /** Writes a full (or, at the end, zero-padded) stage; one write in flight while the next fills. */
  private async flushStage(length: number): Promise<void> {
    const stage = this.stage!;
    const at = this.position;
    this.stage = undefined;
    this.staged = 0;
    this.position += length;
    await this.pending;
    this.pending = this.writeAll(stage, length, at).finally(() => spareStages.push(stage));
    this.pending.catch(() => {}); // surfaced by the next flush or by finish()
  }

  private async writeAll(buffer: Buffer, length: number, at: number): Promise<void> {
    let done = 0;
    while (done < length) {
      try {
        const { bytesWritten } = await this.handle.write(buffer, done, length - done, at + done);
        done += bytesWritten;
      } catch (err) {
        // A filesystem that took O_DIRECT at open but refuses the writes: go on without it.
        if (!this.direct || errnoCode(err) !== 'EINVAL') throw err;
        await this.handle.close();
        this.handle = await open(this.path, constants.O_WRONLY);
        this.direct = false;
      }
    }
  }

  private async writeBuffered(chunk: Uint8Array): Promise<void> {
    await this.writeAll(
      Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      chunk.byteLength,
      this.position,
    );
    this.position += chunk.byteLength;
    this.unsynced += chunk.byteLength;
    // Start writing back while packing goes on, so the fsync at the end finds little left to do.
    if (this.unsynced >= 64 * 1024 * 1024) {
      this.unsynced = 0;
      await this.pending;
      this.pending = this.handle.datasync();
      this.pending.catch(() => {});
    }
  }

  /** Writes what is left, trims the block padding, and makes the file durable. */
  async finish(): Promise<void> {
    if (this.direct && this.staged > 0) {
      const size = this.position + this.staged;
      const padded = Math.ceil(this.staged / ALIGN) * ALIGN;
      this.stage!.fill(0, this.staged, padded);
      await this.flushStage(padded);
      await this.pending;
      await this.handle.truncate(size);
      this.position = size;
    }
    await this.pending;
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.pending.catch(() => {});
    if (this.stage) spareStages.push(this.stage);
    this.stage = undefined;
    await this.handle.close();
  }

  toString(): string {
    return `${this.path} (${this.direct ? 'direct' : 'buffered'})`;
  }
}
