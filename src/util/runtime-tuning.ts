import { spawn } from 'node:child_process';
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

/**
 * When this process is not tuned yet, runs `entry` (this process's script) again in a child with the
 * tuned environment, passing signals on, and resolves to the child's exit code. Undefined when the
 * current process should just go on.
 */
export function rerunTuned(entry: string, processEnv: NodeJS.ProcessEnv): Promise<number> | undefined {
  const env = tunedEnvironment(processEnv);
  if (!env) return undefined;
  const child = spawn(process.execPath, [...process.execArgv, entry, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env,
  });
  // A Ctrl-C reaches the child twice (from the terminal and from here); the CLI treats repeats of a
  // signal it is already stopping for as one.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.on('exit', (code, signal) =>
      resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)),
    );
    child.on('error', (err) => {
      process.stderr.write(`cannot start ${entry}: ${err.message}\n`);
      resolve(1);
    });
  });
}
