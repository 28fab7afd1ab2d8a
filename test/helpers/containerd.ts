// A real containerd 1.6 (Debian's) for tests: root, state and sockets under a temp dir, no CRI, and
// `ctr` to drive it. What a Kubernetes node runs under the kubelet.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestContainerd {
  address: string;
  root: string;
  /** Runs `ctr --address … --namespace test ARGS`; its stdout. */
  ctr(...args: string[]): Promise<string>;
  /** The directory of the snapshot a read-only view of `chainId` (native snapshotter) shows. */
  viewDir(chainId: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<TestContainerd> {
  const dir = await mkdtemp(path.join(tmpdir(), 'containerd-'));
  const address = path.join(dir, 'containerd.sock');
  const root = path.join(dir, 'root');
  await writeFile(
    path.join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${path.join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${path.join(dir, 'containerd-ttrpc.sock')}"`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child: ChildProcess = spawn('containerd', ['--config', path.join(dir, 'config.toml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  });
  const ctr = async (...args: string[]) =>
    (await run('ctr', ['--address', address, '--namespace', 'test', ...args], { maxBuffer: 64 << 20 }))
      .stdout;
  for (let waited = 0; ; waited += 50) {
    if (
      existsSync(address) &&
      (await ctr('version').then(
        () => true,
        () => false,
      ))
    )
      break;
    if (waited > 15_000 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`containerd did not start: ${log.split('\n').slice(-5).join('\n')}`);
    }
    await sleep(50);
  }
  let views = 0;
  return {
    address,
    root,
    ctr,
    async viewDir(chainId) {
      const mounts = JSON.parse(
        await ctr('snapshots', '--snapshotter', 'native', 'view', '--mounts', `view-${views++}`, chainId),
      ) as {
        Source: string;
      }[];
      return mounts[0]!.Source;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
      // Snapshots hold read-only files; rm copes as root.
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The chain ID of a stack of diffIDs (image-spec config.md): what containerd names the top snapshot. */
export function chainId(diffIds: readonly string[]): string {
  let chain = diffIds[0]!;
  for (const diff of diffIds.slice(1))
    chain = `sha256:${createHash('sha256').update(`${chain} ${diff}`).digest('hex')}`;
  return chain;
}
