// The registry part of `npm run bench`: pushes of the bench model to a real CNCF Distribution on
// this machine (directly and through a 1 Gbit/s throttling proxy), next to packing alone into a
// layout in the same rounds, the classic single-layer tar.gz push and skopeo's zstd copy.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { startFaultProxy } from '../test/helpers/fault-proxy.ts';
import {
  type BenchInput,
  type BenchRow,
  benchRegistryServer,
  samples,
  sha256File,
  writeImageLayout,
} from './bench-kit.ts';

export type { BenchRow };

export interface RegistryBenchInput extends Omit<BenchInput, 'runCli'> {
  level: number;
  /** Runs the CLI with these arguments; JSON result, wall seconds, peak RSS. */
  runBuild: BenchInput['runCli'];
}

const GBIT = 125_000_000;

/** CPU seconds a process has used so far (user + system), from /proc. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid || !existsSync(`/proc/${pid}/stat`)) return Number.NaN;
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

export async function benchRegistry(input: RegistryBenchInput): Promise<BenchRow[]> {
  const { modelDir, bytes, level, rounds, work } = input;
  const registry = await benchRegistryServer();
  const throttled = await startFaultProxy({ upstream: registry.url, bytesPerSecond: GBIT });
  const { add, median } = samples();
  const layout = path.join(work, 'push-layout');
  const common = ['model', 'build', modelDir, '--name', 'bench', '--json', '--level', String(level)];
  let stored = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      console.error(`registry round ${round} of ${rounds}`);
      await rm(layout, { recursive: true, force: true });
      const pack = await input.runBuild([...common, '--to', `oci-layout:${layout}:v1`, '--no-digest-cache']);
      add('pack', Number(pack.result.durationMs) / 1000);

      const cpuBefore = await cpuSeconds(registry.pid);
      const push = await input.runBuild([
        ...common,
        '--to',
        `${registry.host}/bench/direct-${round}:v1`,
        '--no-digest-cache',
      ]);
      add('registryCpu', (await cpuSeconds(registry.pid)) - cpuBefore);
      add('push', Number(push.result.durationMs) / 1000);
      add('pushRss', push.rssKiB);
      stored = Number(push.result.bytesWritten);

      const again = await input.runBuild([...common, '--to', `${registry.host}/bench/direct-${round}:v1`]);
      add('again', again.wall);

      const slow = await input.runBuild([
        ...common,
        '--to',
        `${throttled.host}/bench/throttled-${round}:v1`,
        '--no-digest-cache',
      ]);
      add('throttled', Number(slow.result.durationMs) / 1000);
      add('throttledRss', slow.rssKiB);
    }

    // The classic image push: one tar of everything, gzip -6, then the layer pushed (by skopeo).
    console.error('measuring: single-layer tar.gz push and skopeo zstd copy');
    const gzLayout = path.join(work, 'targz-layout');
    const tarFile = path.join(work, 'bench.tar');
    const gzFile = `${tarFile}.gz`;
    await input.shell(`tar -cf ${JSON.stringify(tarFile)} -C ${JSON.stringify(modelDir)} .`);
    const gzipSeconds = await input.shell(
      `gzip -6 -c ${JSON.stringify(tarFile)} > ${JSON.stringify(gzFile)}`,
    );
    await rm(gzLayout, { recursive: true, force: true });
    await writeImageLayout(gzLayout, [
      {
        file: gzFile,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        diffId: await sha256File(tarFile),
      },
    ]);
    const gzPushSeconds = await input.shell(
      `skopeo copy -q --dest-tls-verify=false oci:${gzLayout}:v1 docker://${registry.host}/bench/targz:v1`,
    );

    // skopeo compressing to zstd as it pushes: an image with the same per-file tar layers as ours,
    // uncompressed (skopeo only recompresses image layer media types).
    const plainLayout = path.join(work, 'plain-layout');
    await rm(plainLayout, { recursive: true, force: true });
    await input.runBuild([
      ...common,
      '--to',
      `oci-layout:${plainLayout}:v1`,
      '--compression',
      'none',
      '--no-digest-cache',
    ]);
    const plainManifest = JSON.parse(
      execFileSync('skopeo', ['inspect', '--raw', `oci:${plainLayout}:v1`], { encoding: 'utf8' }),
    ) as { layers: { digest: string }[] };
    const imageLayout = path.join(work, 'image-layout');
    await rm(imageLayout, { recursive: true, force: true });
    await writeImageLayout(
      imageLayout,
      plainManifest.layers.map((l) => ({
        file: path.join(plainLayout, 'blobs', 'sha256', l.digest.slice(7)),
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        diffId: l.digest,
      })),
    );
    const skopeoSeconds = await input.shell(
      `skopeo copy -q --dest-tls-verify=false --dest-compress-format zstd --dest-compress-level ${level} oci:${imageLayout}:v1 docker://${registry.host}/bench/skopeo-zstd:v1`,
    );
    for (const dir of [gzLayout, plainLayout, imageLayout, layout])
      await rm(dir, { recursive: true, force: true });
    await rm(tarFile, { force: true });
    await rm(gzFile, { force: true });

    const pushSeconds = median('push');
    const packSeconds = median('pack');
    // The pack keeps both cores busy; the registry's own work runs on the same cores on top of it.
    const pushFloor = packSeconds + median('registryCpu') / availableParallelism();
    return [
      {
        what: `push to a local registry (CNCF Distribution 2.8 on this machine, storage on tmpfs), cold cache`,
        seconds: pushSeconds,
        bytes,
        rssKiB: median('pushRss'),
        note: `${(packSeconds / pushSeconds).toFixed(2)}× the speed of packing alone into a layout (${packSeconds.toFixed(2)} s in the same rounds); the registry itself used ${median('registryCpu').toFixed(1)} CPU-s of the same ${availableParallelism()} cores, so even a push that costs us no more than the pack takes ${pushFloor.toFixed(2)} s here (${(packSeconds / pushFloor).toFixed(2)}×)`,
      },
      {
        what: 'push through a 1 Gbit/s throttling proxy',
        seconds: median('throttled'),
        bytes,
        rssKiB: median('throttledRss'),
        note: `${formatMB(stored)} stored; at 125 MB/s the link alone needs ${(stored / GBIT).toFixed(2)} s`,
      },
      {
        what: 'no-op push (unchanged model, warm cache)',
        seconds: median('again'),
        bytes: 0,
        note: 'skipped; wall time with process start',
      },
      {
        what: 'baseline: single-layer tar.gz push (gzip -6, then skopeo copy of the layer)',
        seconds: gzipSeconds + gzPushSeconds,
        bytes,
        note: `gzip ${gzipSeconds.toFixed(1)} s + push ${gzPushSeconds.toFixed(1)} s; ours is ${((gzipSeconds + gzPushSeconds) / pushSeconds).toFixed(1)}×`,
      },
      {
        what: `skopeo copy --dest-compress-format zstd (level ${level}) of an equivalent image`,
        seconds: skopeoSeconds,
        bytes,
        note: `same per-file tar layers, uncompressed in a layout; ours is ${(skopeoSeconds / pushSeconds).toFixed(1)}×`,
      },
    ];
  } finally {
    await throttled.stop();
    await registry.stop();
  }
}

const formatMB = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
