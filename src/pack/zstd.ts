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

/** Why the native binding is not used; set when loadCompressor() chose node:zlib. */
let nativeFailure: string | undefined;

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

function loadNative(): FrameCompressor | undefined {
  if (process.env.MODEL_OCI_ZSTD === 'zlib') return undefined;
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
    nativeFailure = (err instanceof Error ? err.message : String(err)).split('\n')[0];
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

/**
 * Undefined when frames go through the native binding; otherwise which implementation compresses
 * and why the native one did not load (for the action to log as a notice). Chooses the compressor
 * as loadCompressor() does, and does not throw.
 */
export function compressorNotice(): string | undefined {
  let compressor: FrameCompressor;
  try {
    compressor = loadCompressor();
  } catch (err) {
    return `${err instanceof Error ? err.message : String(err)}${nativeFailure ? ` (${nativeFailure})` : ''}`;
  }
  if (compressor.name === NATIVE_NAME) return undefined;
  if (process.env.MODEL_OCI_ZSTD === 'zlib')
    return `zstd: compressing with ${compressor.name}, as MODEL_OCI_ZSTD=zlib asks`;
  return `zstd: compressing with ${compressor.name}; the native ${NATIVE_NAME} binding did not load: ${nativeFailure}`;
}
