// Which builder `auto` picks: buildah wherever it is installed (GitHub's Ubuntu runners have both it
// and a Docker engine; buildah is the path every test covers), docker buildx only without buildah.
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { chooseBuilder } from '../../src/base/builders.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A `docker` that answers `buildx version` and `info` as a runner's engine does, first on PATH. */
async function withWorkingDocker<T>(work: () => Promise<T>): Promise<T> {
  const bin = await tempDir();
  await writeFile(path.join(bin, 'docker'), '#!/bin/sh\nexit 0\n');
  await chmod(path.join(bin, 'docker'), 0o755);
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved}`;
  try {
    return await work();
  } finally {
    process.env.PATH = saved;
  }
}

describe('builder auto', () => {
  test('picks buildah when it is installed, even where a Docker engine with buildx runs', async () => {
    expect(await withWorkingDocker(() => chooseBuilder('auto'))).toBe('buildah');
  });

  test('picks buildx only when buildah is missing', async () => {
    const missing = { command: '/nonexistent/buildah' };
    expect(await withWorkingDocker(() => chooseBuilder('auto', missing))).toBe('buildx');
  });

  test('asked for, each is taken as asked; with neither, the error says what to install', async () => {
    expect(await chooseBuilder('buildx')).toBe('buildx');
    const bin = await tempDir();
    const saved = process.env.PATH;
    process.env.PATH = bin; // no docker either
    try {
      await expect(chooseBuilder('auto', { command: '/nonexistent/buildah' })).rejects.toThrow(
        'no image builder found: install buildah, or docker with buildx and a running engine',
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});
