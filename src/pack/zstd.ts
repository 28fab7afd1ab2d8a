import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/** Compresses one frame into one complete zstd frame; runs off the main thread. */
export interface FrameCompressor {
  readonly name: string;
  compress(frame: Uint8Array, level: number): Promise<Uint8Array>;
}

export const MIN_LEVEL = 1;
export const MAX_LEVEL = 22;

interface NativeZstd {
  compress(buf: Buffer, level?: number): Promise<Buffer>;
}

function loadNative(): FrameCompressor | undefined {
  if (process.env.MODEL_OCI_ZSTD === 'zlib') return undefined;
  try {
    const require = createRequire(import.meta.url);
    // The package's index.js (1.2.2) calls the binding without the level, so every level came out
    // as 3; the napi binding underneath takes it. Use the binding directly.
    const native = require('@mongodb-js/zstd/bindings') as NativeZstd;
    return {
      name: '@mongodb-js/zstd',
      // The addon wants a Buffer; wrapping shares memory, it does not copy.
      compress: async (frame, level) => {
        try {
          return await native.compress(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), level);
        } catch (err) {
          // napi errors carry no stack; say where they come from.
          throw new Error(`zstd: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    };
  } catch {
    return undefined;
  }
}

function loadZlib(): FrameCompressor | undefined {
  if (typeof zlib.zstdCompress !== 'function') return undefined;
  const compressAsync = promisify(zlib.zstdCompress);
  return {
    name: 'node:zlib',
    compress: (frame, level) =>
      compressAsync(frame, {
        // One output chunk per frame: with the default 16 KiB chunks every frame costs hundreds of
        // round trips between the threadpool and the main thread (measured: 160 vs 470 MB/s).
        chunkSize: Math.max(64 * 1024, frame.byteLength + (frame.byteLength >> 7) + 1024),
        params: {
          [zlib.constants.ZSTD_c_compressionLevel]: level,
          [zlib.constants.ZSTD_c_checksumFlag]: 0,
        },
        pledgedSrcSize: frame.byteLength,
      }),
  };
}

let cached: FrameCompressor | undefined;

/**
 * The native @mongodb-js/zstd binding when it loads (prebuilt for linux x64/arm64, macOS, Windows),
 * else Node's built-in zstd in node:zlib. Both run on the libuv threadpool and write standard frames.
 */
export function loadCompressor(): FrameCompressor {
  cached ??= loadNative() ?? loadZlib();
  if (!cached)
    throw new Error('no zstd implementation: @mongodb-js/zstd did not load and node:zlib has no zstd');
  return cached;
}
