#!/usr/bin/env node
import { availableParallelism } from 'node:os';

// Set before the libuv threadpool first starts (at the first file or zstd call): frames being
// compressed then never hold up the reads and writes that feed and drain them.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 4));

const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
