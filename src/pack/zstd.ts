import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
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

// `true` in the action's bundle (esbuild's define, scripts/build-dist.ts), undeclared elsewhere.
declare const __MODEL_OCI_BUNDLED__: boolean | undefined;
const BUNDLED = typeof __MODEL_OCI_BUNDLED__ !== 'undefined' && __MODEL_OCI_BUNDLED__;

const NATIVE_NAME = '@mongodb-js/zstd';

function isGlibc(): boolean {
  // The report resolves the names of open sockets unless told not to (Node >= 22.13; untyped here).
  const report = process.report as typeof process.report & { excludeNetwork?: boolean };
  const excludeNetwork = report.excludeNetwork;
  if (typeof excludeNetwork === 'boolean') report.excludeNetwork = true;
  try {
    const { header } = report.getReport() as { header?: { glibcVersionRuntime?: string } };
    return Boolean(header?.glibcVersionRuntime);
  } finally {
    if (typeof excludeNetwork === 'boolean') report.excludeNetwork = excludeNetwork;
  }
}

/**
 * The addon the bundle ships next to itself: dist/zstd.linux-<x64|arm64>-gnu.node, copied from the
 * @mongodb-js/zstd-linux-*-gnu packages. Chosen as @mongodb-js/zstd/bindings chooses (glibc per the
 * process report's glibcVersionRuntime); other platforms get node:zlib.
 */
function loadBundledBinding(require: NodeJS.Require): NativeZstd {
  const { platform, arch } = process;
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64') || !isGlibc())
    throw new Error(
      `no binary shipped for ${platform}-${arch}${platform === 'linux' ? ' without glibc' : ''}`,
    );
  const file = `zstd.linux-${arch}-gnu.node`;
  if (!existsSync(fileURLToPath(new URL(file, import.meta.url)))) throw new Error(`${file} is missing`);
  return require(`./${file}`) as NativeZstd;
}

/** The native binding as a FrameCompressor, or why it did not load (first line of the loader's error). */
function loadNative(): FrameCompressor | { failure: string } {
  try {
    const require = createRequire(import.meta.url);
    // The package's index.js (1.2.2) calls the binding without the level, so every level came out
    // as 3; the napi binding underneath takes it. Use the binding directly.
    const native = BUNDLED
      ? loadBundledBinding(require)
      : (require('@mongodb-js/zstd/bindings') as NativeZstd);
    return {
      name: NATIVE_NAME,
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
  } catch (err) {
    // napi-rs loaders throw multi-line errors; the first line says what failed.
    return { failure: (err instanceof Error ? err.message : String(err)).split('\n')[0]! };
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

/** `native` (@mongodb-js/zstd, the default) or Node's built-in `zlib` zstd. */
export type ZstdImplementation = 'native' | 'zlib';

export interface CompressorChoice {
  compressor: FrameCompressor;
  /** Set when frames do not go through the native binding: which implementation does, and why. */
  notice?: string;
}

/**
 * The native @mongodb-js/zstd binding when it loads (prebuilt for linux x64/arm64, macOS, Windows)
 * and is not declined, else Node's built-in zstd in node:zlib. Both run on the libuv threadpool and
 * write standard frames. Loading again is cheap (the module system keeps the binding), so nothing
 * is kept here.
 */
export function chooseCompressor(prefer: ZstdImplementation = 'native'): CompressorChoice {
  const native = prefer === 'native' ? loadNative() : undefined;
  if (native && 'compress' in native) return { compressor: native };
  const zlibCompressor = loadZlib();
  if (!zlibCompressor) {
    throw new Error(
      `no zstd implementation: ${native ? `@mongodb-js/zstd did not load (${native.failure})` : 'the native binding was declined'} and node:zlib has no zstd`,
    );
  }
  const notice = native
    ? `zstd: compressing with ${zlibCompressor.name}; the native ${NATIVE_NAME} binding did not load: ${native.failure}`
    : `zstd: compressing with ${zlibCompressor.name}, as MODEL_OCI_ZSTD=zlib asks`;
  return { compressor: zlibCompressor, notice };
}
