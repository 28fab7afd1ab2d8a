#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tunedEnvironment } from '../util/runtime-tuning.ts';

// Settings that only take effect at process start (libuv threadpool size, glibc malloc tunables)
// are applied by running the CLI once more in a child process with them set; see
// src/util/runtime-tuning.ts for what they are and what they save.
const tuned = tunedEnvironment(process.env);
if (tuned) {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env: tuned,
    },
  );
  // Pass signals on. A Ctrl-C reaches the child twice (from the terminal and from here); the CLI
  // treats repeats of a signal it is already stopping for as one.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1);
  });
  child.on('error', (err) => {
    process.stderr.write(`model-oci: error: cannot start: ${err.message}\n`);
    process.exitCode = 1;
  });
} else {
  const { main } = await import('./main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
