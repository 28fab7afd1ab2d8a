// The pull part of `npm run bench`: the bench model pulled from a real CNCF Distribution on this
// machine into an empty directory, next to what a user would do without us, in the same rounds:
//   (a) single stream: skopeo copy docker://… oci:… then `zstd -d | tar -x` per layer;
//   (b) containerd 1.6: `ctr images pull` of the image form, which unpacks it into a snapshot;
//   (c) the classic single-layer tar.gz image: skopeo copy, then `tar -xzf`.
// On loopback, then through the fault proxy throttled as object storage behaves (40 MB/s per
// connection, 125 MB/s in all); a re-pull into the full directory; peak RSS.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startContainerd } from '../test/helpers/containerd.ts';
import { startFaultProxy } from '../test/helpers/fault-proxy.ts';
import {
  type BenchInput,
  type BenchRow,
  benchRegistryServer,
  samples,
  sha256File,
  writeImageLayout,
} from './bench-kit.ts';

export interface PullBenchInput extends BenchInput {
  /** Only our pull and the re-pull (the memory rows of a large model), no baselines. */
  oursOnly?: boolean;
}

const PER_CONNECTION = 40_000_000;
const LINK = 125_000_000;

const q = (s: string) => JSON.stringify(s);

/** A one-layer OCI image of the model as a tar.gz (gzip -1: how fast it was made does not change how it unpacks). */
async function pushTarGz(input: PullBenchInput, registryHost: string): Promise<void> {
  const layout = path.join(input.work, 'targz-pull-layout');
  const tar = path.join(input.work, 'pull.tar');
  await rm(layout, { recursive: true, force: true });
  await input.shell(`tar -cf ${q(tar)} -C ${q(input.modelDir)} .`);
  const diffId = await sha256File(tar);
  await input.shell(`gzip -1 -f ${q(tar)}`);
  await writeImageLayout(layout, [
    { file: `${tar}.gz`, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', diffId },
  ]);
  await input.shell(
    `skopeo copy -q --dest-tls-verify=false oci:${q(layout)}:v1 docker://${registryHost}/pull/targz:1`,
  );
  await rm(layout, { recursive: true, force: true });
  await rm(`${tar}.gz`, { force: true });
}

/** skopeo copy into a layout, then each layer through `decompress | tar -x` into `dir`: one stream each step. */
async function singleStream(
  input: PullBenchInput,
  ref: string,
  dir: string,
  decompress: string,
): Promise<{ copy: number; unpack: number }> {
  const layout = path.join(input.work, 'single-stream-layout');
  const copy = await input.shell(
    `rm -rf ${q(layout)} && skopeo copy -q --src-tls-verify=false docker://${ref} oci:${q(layout)}:1`,
  );
  const layers = (
    JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:1`], { encoding: 'utf8' })) as {
      layers: { digest: string }[];
    }
  ).layers.map((l) => path.join(layout, 'blobs', 'sha256', l.digest.slice(7)));
  const unpack = await input.shell(
    `mkdir -p ${q(dir)} && ${layers.map((l) => `${decompress} ${q(l)} | tar -x -C ${q(dir)}`).join(' && ')}`,
  );
  await input.shell(`rm -rf ${q(layout)}`);
  return { copy, unpack };
}

export async function benchPull(input: PullBenchInput): Promise<BenchRow[]> {
  const { bytes, rounds, work } = input;
  const registry = await benchRegistryServer();
  const throttled = await startFaultProxy({
    upstream: registry.url,
    bytesPerSecond: LINK,
    perConnectionBytesPerSecond: PER_CONNECTION,
  });
  const hasContainerd = existsSync('/usr/bin/containerd') || existsSync('/usr/local/bin/containerd');
  const { add, median } = samples();
  const out = path.join(work, 'pulled');
  const ref = `${registry.host}/pull/model:1`;
  try {
    console.error('pull: pushing the bench model (both forms) and a single-layer tar.gz image');
    const pushed = await input.runCli([
      'model',
      'build',
      input.modelDir,
      '--name',
      'bench',
      '--to',
      ref,
      '--image-form',
      '--json',
      '--no-digest-cache',
    ]);
    const stored = (pushed.result.layers as { size: number }[]).reduce((s, l) => s + l.size, 0);
    if (!input.oursOnly) await pushTarGz(input, registry.host);

    for (let round = 1; round <= rounds; round++) {
      console.error(`pull round ${round} of ${rounds}`);
      await rm(out, { recursive: true, force: true });
      const ours = await input.runCli(['model', 'pull', ref, '--to', out, '--json']);
      add('ours', ours.wall);
      add('oursRss', ours.rssKiB);
      const again = await input.runCli(['model', 'pull', ref, '--to', out, '--json']);
      add('again', again.wall);
      if (Number(again.result.fetchedBytes) !== 0) throw new Error('the re-pull fetched bytes');
      if (input.oursOnly) continue;

      await rm(out, { recursive: true, force: true });
      const single = await singleStream(input, `${registry.host}/pull/model:1-image`, out, 'zstd -d -c');
      add('singleCopy', single.copy);
      add('singleUnpack', single.unpack);

      await rm(out, { recursive: true, force: true });
      const gz = await singleStream(input, `${registry.host}/pull/targz:1`, out, 'gzip -d -c');
      add('gzCopy', gz.copy);
      add('gzUnpack', gz.unpack);

      if (hasContainerd) {
        const containerd = await startContainerd();
        try {
          const started = performance.now();
          await containerd.ctr('images', 'pull', '--plain-http', '--snapshotter', 'native', `${ref}-image`);
          add('containerd', (performance.now() - started) / 1000);
        } finally {
          await containerd.stop();
        }
      }

      await rm(out, { recursive: true, force: true });
      const slow = await input.runCli([
        'model',
        'pull',
        `${throttled.host}/pull/model:1`,
        '--to',
        out,
        '--json',
      ]);
      add('throttled', slow.wall);
      add('throttledRss', slow.rssKiB);
      await rm(out, { recursive: true, force: true });
      const slowSingle = await singleStream(input, `${throttled.host}/pull/model:1-image`, out, 'zstd -d -c');
      add('throttledSingle', slowSingle.copy + slowSingle.unpack);
      await rm(out, { recursive: true, force: true });
    }

    const ours = median('ours');
    if (input.oursOnly)
      return [
        {
          what: 'pull from a local registry into an empty directory (`model pull`, wall time with process start)',
          seconds: ours,
          bytes,
          rssKiB: median('oursRss'),
        },
        { what: 're-pull into the directory that holds the model', seconds: median('again'), bytes: 0 },
      ];
    const single = median('singleCopy') + median('singleUnpack');
    const gz = median('gzCopy') + median('gzUnpack');
    const rows: BenchRow[] = [
      {
        what: 'pull from a local registry into an empty directory (`model pull`, wall time with process start)',
        seconds: ours,
        bytes,
        rssKiB: median('oursRss'),
        note: `${(single / ours).toFixed(2)}× the single-stream path, ${(gz / ours).toFixed(2)}× the tar.gz image${hasContainerd ? `, ${(median('containerd') / ours).toFixed(2)}× containerd` : ''}`,
      },
      {
        what: '(a) single stream: skopeo copy to a layout, then zstd -d \\| tar -x per layer',
        seconds: single,
        bytes,
        note: `copy ${median('singleCopy').toFixed(2)} s + unpack ${median('singleUnpack').toFixed(2)} s`,
      },
      ...(hasContainerd
        ? [
            {
              what: '(b) containerd 1.6 `ctr images pull` of the image form (fetch and unpack into a native snapshot)',
              seconds: median('containerd'),
              bytes,
            },
          ]
        : []),
      {
        what: '(c) single-layer tar.gz image: skopeo copy, then tar -xz',
        seconds: gz,
        bytes,
        note: `copy ${median('gzCopy').toFixed(2)} s + unpack ${median('gzUnpack').toFixed(2)} s`,
      },
      {
        what: `pull through a throttling proxy: ${PER_CONNECTION / 1e6} MB/s per connection, ${LINK / 1e6} MB/s in all`,
        seconds: median('throttled'),
        bytes,
        rssKiB: median('throttledRss'),
        note: `${(stored / 1e6 / median('throttled')).toFixed(0)} MB/s of blob bytes, ${(stored / median('throttled') / LINK).toFixed(2)}× the link; the single stream took ${median('throttledSingle').toFixed(2)} s (${(stored / 1e6 / median('throttledSingle')).toFixed(0)} MB/s)`,
      },
      {
        what: 'the single-stream path through the same proxy',
        seconds: median('throttledSingle'),
        bytes,
      },
      {
        what: 're-pull into the directory that holds the model',
        seconds: median('again'),
        bytes: 0,
        note: 'no blob fetched; wall time with process start',
      },
    ];
    return rows;
  } finally {
    await rm(out, { recursive: true, force: true });
    await throttled.stop();
    await registry.stop();
  }
}
