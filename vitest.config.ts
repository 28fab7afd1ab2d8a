import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests drive real tools (skopeo, GNU tar, zstd) and child processes; give them room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make each slower and the compressor's timing noisier.
    maxWorkers: 2,
  },
});
