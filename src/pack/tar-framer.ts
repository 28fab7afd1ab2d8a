import { throwIfAborted } from '../util/errors.ts';
import type { FramePool } from './frame-pool.ts';
import type { SourceReader } from './source-reader.ts';

/** Where one file's bytes sit inside a frame, so its content hash can be fed from the frame. */
export interface Segment {
  file: number;
  start: number;
  end: number;
}

export interface Frame {
  buffer: Buffer;
  length: number;
  segments: Segment[];
}

/**
 * Lays a tar stream out in fixed-size frames taken from the pool: headers and padding are copied
 * in, file contents are read by the kernel straight into the frame (no intermediate buffer).
 * Every full frame is handed to `emit`, which owns it from then on and returns it to the pool.
 */
export class TarFramer {
  private frame: Frame | undefined;
  private readonly pool: FramePool;
  private readonly emit: (frame: Frame) => Promise<void>;
  private readonly signal: AbortSignal | undefined;

  constructor(pool: FramePool, emit: (frame: Frame) => Promise<void>, signal?: AbortSignal) {
    this.pool = pool;
    this.emit = emit;
    this.signal = signal;
  }

  private async current(): Promise<Frame> {
    this.frame ??= { buffer: await this.pool.acquire(this.signal), length: 0, segments: [] };
    return this.frame;
  }

  private async flushIfFull(): Promise<void> {
    if (this.frame && this.frame.length === this.pool.frameSize) {
      const full = this.frame;
      this.frame = undefined;
      await this.emit(full);
    }
  }

  async writeBytes(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const frame = await this.current();
      const n = Math.min(bytes.byteLength - offset, this.pool.frameSize - frame.length);
      frame.buffer.set(bytes.subarray(offset, offset + n), frame.length);
      frame.length += n;
      offset += n;
      await this.flushIfFull();
    }
  }

  async writeZeros(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      const frame = await this.current();
      const n = Math.min(left, this.pool.frameSize - frame.length);
      frame.buffer.fill(0, frame.length, frame.length + n);
      frame.length += n;
      left -= n;
      await this.flushIfFull();
    }
  }

  /** Reads `size` bytes of `handle` into frames; returns how many bytes the file really had. */
  async writeFile(
    file: number,
    handle: SourceReader,
    size: number,
    onProgress?: (bytes: number) => void,
  ): Promise<number> {
    let position = 0;
    while (position < size) {
      throwIfAborted(this.signal);
      const frame = await this.current();
      const want = Math.min(size - position, this.pool.frameSize - frame.length);
      const { bytesRead } = await handle.read(frame.buffer, frame.length, want, position);
      if (bytesRead === 0) return position;
      frame.segments.push({ file, start: frame.length, end: frame.length + bytesRead });
      frame.length += bytesRead;
      position += bytesRead;
      onProgress?.(bytesRead);
      await this.flushIfFull();
    }
    return position;
  }

  /** Emits the last, partial frame. */
  async end(): Promise<void> {
    if (this.frame && this.frame.length > 0) {
      const last = this.frame;
      this.frame = undefined;
      await this.emit(last);
    } else if (this.frame) {
      this.pool.release(this.frame.buffer);
      this.frame = undefined;
    }
  }

  /** Returns a frame still being filled to the pool after a failure. */
  discard(): void {
    if (this.frame) this.pool.release(this.frame.buffer);
    this.frame = undefined;
  }
}
