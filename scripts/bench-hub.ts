// The Hugging Face part of `npm run bench`: the bench model served by the local Hub server
// (test/helpers/hub-server.ts), its CDN behind the fault proxy throttled as a download link is
// (125 MB/s in all, 40 MB/s per connection), built into a local registry:
//   (a) ours: `model build hf://…`, the files streamed Hub → zstd → registry;
//   (b) what the matrix example did before: download every file (curl, 8 files at once, one
//       connection each, as `hf download` does), then `model build DIR`;
//   (c) the no-op run: the same `hf://` build again (skipped; LFS bytes counted at the CDN).
// Peak disk use under the temp dirs (TMPDIR, RUNNER_TEMP, and the download dir for (b)) is sampled.
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { startFaultProxy } from '../test/helpers/fault-proxy.ts';
import { startHubServer } from '../test/helpers/hub-server.ts';
import { type BenchInput, type BenchRow, benchRegistryServer, samples } from './bench-kit.ts';

const PER_CONNECTION = 40_000_000;
const LINK = 125_000_000;
const REPO = 'bench/model';

const q = (s: string) => JSON.stringify(s);

/** Bytes of the regular files under `dirs` now. */
async function bytesUnder(dirs: readonly string[]): Promise<number> {
  let total = 0;
  for (const dir of dirs) {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
    for (const e of entries)
      if (e.isFile())
        total += await stat(path.join(e.parentPath, e.name)).then(
          (s) => s.size,
          () => 0,
        );
  }
  return total;
}

/** Runs `work` while sampling the bytes under `dirs` every 50 ms; the peak seen. */
async function peakDisk<T>(
  dirs: readonly string[],
  work: () => Promise<T>,
): Promise<{ value: T; peak: number }> {
  let peak = 0;
  let done = false;
  const sampling = (async () => {
    while (!done) {
      peak = Math.max(peak, await bytesUnder(dirs));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return { value: await work(), peak };
  } finally {
    done = true;
    await sampling;
    peak = Math.max(peak, await bytesUnder(dirs));
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

export async function benchHub(input: BenchInput): Promise<BenchRow[]> {
  const { bytes, rounds, work } = input;
  const names = (await readdir(input.modelDir)).sort();
  const files = await Promise.all(
    names.map(async (name) => ({ path: name, content: await readFile(path.join(input.modelDir, name)) })),
  );
  const [hub, registry] = await Promise.all([startHubServer(), benchRegistryServer()]);
  const cdn = await startFaultProxy({
    upstream: hub.cdnUrl,
    bytesPerSecond: LINK,
    perConnectionBytesPerSecond: PER_CONNECTION,
  });
  hub.redirectCdnVia(cdn.url);
  const { sha } = hub.setRepo(REPO, ['main'], { files });
  const temp = path.join(work, 'hub-temp');
  const download = path.join(work, 'hub-download');
  const { add, median } = samples();
  try {
    for (let round = 1; round <= rounds; round++) {
      console.error(`hub round ${round} of ${rounds}`);
      await rm(temp, { recursive: true, force: true });
      await mkdir(temp, { recursive: true });
      const env = { HF_ENDPOINT: hub.url, TMPDIR: temp, RUNNER_TEMP: temp };

      // The same build twice: the first streams the model, the second is the no-op run.
      const hfBuild = () =>
        input.runCli(
          [
            'model',
            'build',
            `hf://${REPO}`,
            '--name',
            'bench',
            '--to',
            `${registry.host}/hub/streamed-${round}:main`,
            '--json',
          ],
          env,
        );
      const streamed = await peakDisk([temp], hfBuild);
      add('streamed', streamed.value.wall);
      add('streamedRss', streamed.value.rssKiB);
      add('streamedPeak', streamed.peak);

      const before = hub.lfsBytes();
      const noop = await hfBuild();
      if (noop.result.status !== 'skipped') throw new Error('the no-op hf:// build did not skip');
      add('noop', noop.wall);
      add('noopLfs', hub.lfsBytes() - before);

      // Download, then build: the files land in a directory first (curl follows the Hub's redirect
      // to the throttled CDN), and only then is the directory packed and pushed.
      await rm(download, { recursive: true, force: true });
      await mkdir(download, { recursive: true });
      const urls = names
        .map((n) => `-o ${q(path.join(download, n))} ${q(`${hub.url}/${REPO}/resolve/${sha}/${n}`)}`)
        .join(' ');
      const baseline = await peakDisk([temp, download], async () => {
        const fetchSeconds = await input.shell(
          `curl -sS --no-progress-meter -L --fail -Z --parallel-max 8 ${urls}`,
        );
        const built = await input.runCli(
          [
            'model',
            'build',
            download,
            '--name',
            'bench',
            '--to',
            `${registry.host}/hub/downloaded-${round}:main`,
            '--json',
            '--no-digest-cache',
          ],
          env,
        );
        return { fetchSeconds, built };
      });
      add('download', baseline.value.fetchSeconds);
      add('downloadBuild', baseline.value.built.wall);
      add('downloadTotal', baseline.value.fetchSeconds + baseline.value.built.wall);
      add('downloadPeak', baseline.peak);
      if (baseline.value.built.result.weightsDigest !== streamed.value.result.weightsDigest)
        throw new Error('the downloaded and the streamed build differ in weights digest');
    }
    const ratio = median('downloadTotal') / median('streamed');
    return [
      {
        what: 'hf:// build, streamed Hub → registry (125 MB/s link, 40 MB/s per connection)',
        seconds: median('streamed'),
        bytes,
        rssKiB: median('streamedRss'),
        note: `${ratio.toFixed(2)}× faster than download-then-build; peak temp disk ${mib(median('streamedPeak'))} MiB; ${(bytes / median('streamed') / LINK).toFixed(2)}× the link`,
      },
      {
        what: 'download everything (curl, 8 files at once), then build the directory',
        seconds: median('downloadTotal'),
        bytes,
        note: `download ${median('download').toFixed(2)} s + build ${median('downloadBuild').toFixed(2)} s; peak disk ${mib(median('downloadPeak'))} MiB`,
      },
      {
        what: 'hf:// no-op run (unchanged revision)',
        seconds: median('noop'),
        bytes: 0,
        note: `skipped; ${median('noopLfs')} LFS bytes downloaded; process start included`,
      },
    ];
  } finally {
    await cdn.stop();
    await Promise.all([hub.stop(), registry.stop()]);
    await rm(download, { recursive: true, force: true });
    await rm(temp, { recursive: true, force: true });
  }
}
