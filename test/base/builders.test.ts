// Which builder `auto` picks: buildah wherever it is installed (GitHub's Ubuntu runners have both it
// and a Docker engine; buildah is the path every test covers), docker buildx only without buildah.
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { chooseBuilder } from '../../src/base/builders.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A `docker` that answers `buildx version` and `info` as a runner's engine does, first on PATH. */
async function withWorkingDocker<T>(work: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
  const bin = await tempDir();
  await writeFile(path.join(bin, 'docker'), '#!/bin/sh\nexit 0\n');
  await chmod(path.join(bin, 'docker'), 0o755);
  return work({ ...process.env, PATH: `${bin}:${process.env.PATH}` });
}

describe('builder auto', () => {
  test('picks buildah when it is installed, even where a Docker engine with buildx runs', async () => {
    expect(await withWorkingDocker((env) => chooseBuilder('auto', env))).toBe('buildah');
  });

  test('picks buildx only when buildah is missing', async () => {
    const missing = { command: '/nonexistent/buildah' };
    expect(await withWorkingDocker((env) => chooseBuilder('auto', env, missing))).toBe('buildx');
  });

  test('asked for, each is taken as asked; with neither, the error says what to install', async () => {
    expect(await chooseBuilder('buildx', process.env)).toBe('buildx');
    const bin = await tempDir();
    // No docker either on this PATH.
    await expect(chooseBuilder('auto', { PATH: bin }, { command: '/nonexistent/buildah' })).rejects.toThrow(
      'no image builder found: install buildah, or docker with buildx and a running engine',
    );
  });
});
