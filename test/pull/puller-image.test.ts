// The puller image (puller/Dockerfile): built by our own base build with buildah, FROM a Node.js
// 24 image assembled here (no Docker Hub on this machine: this Node binary and the glibc libraries
// it links), then run as an init container would run it — as its non-root user, an empty
// directory mounted at /models — to pull a model from the registry.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildBase } from '../../src/base/build-base.ts';
import { baseBuildEnvironment, isolatedBuildah } from '../helpers/buildah.ts';
import { repoRoot } from '../helpers/cli.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { skopeoJson } from '../helpers/tools.ts';
import { build, filesOf } from './helpers.ts';

let registry: TestRegistry;
let work: string;
beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(path.join(tmpdir(), 'model-oci-puller-'));
});
afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The shared libraries a binary loads, as `ldd` lists them (absolute paths). */
function librariesOf(binary: string): string[] {
  return execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((lib): lib is string => lib !== undefined);
}

describe('the puller image', () => {
  test('builds from puller/Dockerfile with buildah and pulls a model inside a container, as a non-root user', async () => {
    const buildah = isolatedBuildah(work);
    // The upstream: /usr/local/bin/node and its libraries, as the official node image has them.
    const upstream = `${registry.host}/upstream/node:24`;
    const c = buildah.run('from', 'scratch');
    try {
      buildah.run('copy', c, process.execPath, '/usr/local/bin/node');
      for (const lib of librariesOf(process.execPath)) buildah.run('copy', c, lib, lib);
      buildah.run('config', '--env', 'PATH=/usr/local/bin:/usr/bin:/bin', c);
      buildah.run('commit', '-q', c, 'upstream-node');
      buildah.run('push', '-q', '--tls-verify=false', 'upstream-node', `docker://${upstream}`);
    } finally {
      buildah.run('rm', c);
    }

    const image = `${registry.host}/tools/model-oci-puller:1`;
    const built = await buildBase({
      context: path.join(repoRoot, 'dist'),
      dockerfile: path.join(repoRoot, 'puller', 'Dockerfile'),
      image,
      buildArgs: { BASE: upstream },
      builder: 'buildah',
      buildah: buildah.storage,
      ...baseBuildEnvironment(image, work),
    });
    expect(built.status).toBe('built');
    const config = skopeoJson('inspect', '--config', '--raw', '--tls-verify=false', `docker://${image}`);
    expect(config.config.Entrypoint).toEqual(['node', '/opt/model-oci/cli.js']);
    expect(config.config.User).toBe('1000:1000');

    const { dir } = await sampleModel({ shards: 2, weightBytes: 4 * 1024 * 1024, seed: 11 });
    await build([dir, '--name', 'tiny', '--to', `${registry.host}/models/tiny:1`]);

    // An emptyDir is writable by any user; the container runs the image's entrypoint as uid 1000.
    const models = path.join(work, 'models');
    await mkdir(models);
    await chmod(models, 0o777);
    const ctr = buildah.run('from', '--tls-verify=false', image);
    try {
      const output = buildah.run(
        'run',
        '--volume',
        `${models}:/models`,
        ctr,
        '--',
        ...config.config.Entrypoint,
        'model',
        'pull',
        `${registry.host}/models/tiny:1`,
        '--to',
        '/models/tiny',
      );
      expect(output).toMatch(/^pulled /);
    } finally {
      buildah.run('rm', ctr);
    }
    expect(await filesOf(path.join(models, 'tiny'))).toEqual(await filesOf(dir));
    expect((await stat(path.join(models, 'tiny', 'config.json'))).uid).toBe(1000);
  });
});
