import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { registryAccess } from '../../src/connect/registry-access.ts';
import { parseReference } from '../../src/oci/reference.ts';

/** buildah with its own vfs storage under `dir` (chroot isolation), so tests never touch the machine's. */
export function isolatedBuildah(dir: string) {
  const storage = { root: path.join(dir, 'storage'), runroot: path.join(dir, 'run'), storageDriver: 'vfs' };
  const run = (...args: string[]) =>
    execFileSync(
      'buildah',
      ['--storage-driver', 'vfs', '--root', storage.root, '--runroot', storage.runroot, ...args],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, BUILDAH_ISOLATION: 'chroot' },
      },
    ).trim();

  /**
   * A runnable busybox image (Debian's static busybox, /bin/sh linked to it) pushed to `ref` over
   * plain HTTP; `marker` is written into it so each push is a different image.
   */
  const pushBusybox = (ref: string, marker: string): void => {
    const c = run('from', 'scratch');
    try {
      run('copy', c, '/bin/busybox', '/bin/busybox');
      run('run', c, '--', '/bin/busybox', 'ln', '-s', 'busybox', '/bin/sh');
      run('run', c, '--', '/bin/sh', '-c', `echo ${marker} > /upstream-version`);
      run('commit', '-q', c, `upstream:${marker}`);
      run('push', '-q', '--tls-verify=false', `upstream:${marker}`, `docker://${ref}`);
    } finally {
      run('rm', c);
    }
  };
  return { storage, run, pushBusybox };
}

/**
 * What buildBase needs besides the build itself, as the CLI would give it but with nothing of the
 * machine in reach: registry access with a clean env and a temp home, and `work` as the temp dir.
 */
export function baseBuildEnvironment(image: string, work: string) {
  const env = { PATH: process.env.PATH, HOME: work };
  return {
    access: registryAccess(parseReference(image).registry, { env, homeDir: work }),
    tempDir: work,
    env,
  };
}
