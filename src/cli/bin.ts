#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { rerunTuned } from '../util/runtime-tuning.ts';

// Settings that only take effect at process start (libuv threadpool size, glibc malloc tunables)
// are applied by running the CLI once more in a child process with them set; see
// src/util/runtime-tuning.ts for what they are and what they save.
const rerun = rerunTuned(fileURLToPath(import.meta.url), process.env);
if (rerun) {
  process.exitCode = await rerun;
} else {
  const { main } = await import('./main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
