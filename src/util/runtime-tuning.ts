import { availableParallelism } from 'node:os';

/**
 * Process settings the packer wants, which the runtime reads only at process start:
 *
 * - UV_THREADPOOL_SIZE = cores + 1: zstd frames compress on the libuv threadpool; one thread per
 *   core keeps every core busy and one more serves file reads and writes. More threads only add
 *   memory and context switches (measured in docs/benchmarks.md).
 * - glibc malloc tunables: every frame's compressed output is a fresh multi-MiB allocation freed
 *   when the garbage collector gets to it. With glibc's defaults the freed memory is handed back to
 *   the kernel and faulted in again for the next frames; on virtual machines where page faults are
 *   expensive that cost a quarter of the pack time. Keeping up to 128 MiB per arena avoids it.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728';

const MARKER = 'MODEL_OCI_TUNED';

function usesGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return typeof header?.glibcVersionRuntime === 'string';
}

/**
 * The environment to re-run this process with, or undefined when the current process already has
 * it (or there is nothing to tune, or MODEL_OCI_TUNED=0 turns tuning off).
 */
export function tunedEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv | undefined {
  if (env[MARKER] !== undefined) return undefined;
  const wanted: NodeJS.ProcessEnv = { [MARKER]: '1' };
  if (env.UV_THREADPOOL_SIZE === undefined)
    wanted.UV_THREADPOOL_SIZE = String(Math.max(3, availableParallelism() + 1));
  if (usesGlibc() && !(env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.')) {
    wanted.GLIBC_TUNABLES = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${MALLOC_TUNABLES}` : MALLOC_TUNABLES;
  }
  if (Object.keys(wanted).length === 1) return undefined;
  return { ...env, ...wanted };
}
