// `npm run bench [-- --size 1GiB --shards 4 --level 3 --frame-sweep --skip-gzip --skip-registry --skip-pull --skip-hub --pull-only --pull-ours-only --hub-only]`
//
// Packs a synthetic bf16 model (normally distributed values, so it compresses like real weights)
// and prints one markdown table whose rows were all measured in this run, next to baselines:
// the classic single-layer tar.gz, `tar | zstd -T0`, and the machine's compression limit (one-core
// zstd throughput × cores), and pushes to a local registry (scripts/bench-registry.ts). Machines
// here are noisy, so compare ratios within one run.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { chooseCompressor } from '../src/pack/zstd.ts';
import { formatBytes, parseSize } from '../src/util/format.ts';
import { rerunTuned } from '../src/util/runtime-tuning.ts';
import { benchHub } from './bench-hub.ts';
import { benchPull } from './bench-pull.ts';
import { benchRegistry } from './bench-registry.ts';
import { shardName, writeSampleModel, writeShard } from './sample-model.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Measure our compressor in the same process settings the CLI runs with (threadpool size, malloc
// tunables): without them its one-core figure is understated, and every ratio against it flattered.
const rerun = rerunTuned(fileURLToPath(import.meta.url), process.env);
if (rerun) process.exit(await rerun);
const bin = path.join(repo, 'src', 'cli', 'bin.ts');

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    shards: { type: 'string', default: '4' },
    level: { type: 'string', default: '3' },
    'frame-size': { type: 'string', default: '4MiB' },
    'frame-sweep': { type: 'boolean', default: false },
    'skip-gzip': { type: 'boolean', default: false },
    'skip-registry': { type: 'boolean', default: false },
    'skip-pull': { type: 'boolean', default: false },
    'pull-only': { type: 'boolean', default: false },
    'skip-hub': { type: 'boolean', default: false },
    'hub-only': { type: 'boolean', default: false },
    'pull-ours-only': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(repo, '.bench') },
  },
});
const weightBytes = parseSize(values.size);
const shards = Number(values.shards);
const level = Number(values.level);
const frameSize = parseSize(values['frame-size']);
const rounds = Number(values.rounds);
const cores = availableParallelism();
const work = path.resolve(values.dir);
const modelDir = path.join(work, `model-${values.size}-${shards}`);

interface Row {
  what: string;
  seconds: number;
  bytes: number;
  note?: string;
  rssKiB?: number;
}
const rows: Row[] = [];
const MB = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;

async function modelFiles(): Promise<string[]> {
  return (await readdir(modelDir)).sort().map((f) => path.join(modelDir, f));
}

async function modelSize(): Promise<number> {
  let sum = 0;
  for (const f of await modelFiles()) sum += (await stat(f)).size;
  return sum;
}

/** Reads every file once so all runs below read from the page cache, not the disk. */
async function warmPageCache(): Promise<void> {
  const buf = Buffer.allocUnsafe(4 << 20);
  for (const f of await modelFiles()) {
    const handle = await open(f, 'r');
    while ((await handle.read(buf, 0, buf.length, null)).bytesRead > 0);
    await handle.close();
  }
}

function time<T>(fn: () => T): { value: T; seconds: number } {
  const t = performance.now();
  const value = fn();
  return { value, seconds: (performance.now() - t) / 1000 };
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t) / 1000 };
}

/** One sha256 pass over the files, on one core (what a "cold" no-op is compared to). */
async function sha256Pass(): Promise<number> {
  const { seconds } = await timeAsync(async () => {
    for (const f of await modelFiles()) {
      const hash = createHash('sha256');
      const handle = await open(f, 'r');
      const buf = Buffer.allocUnsafe(4 << 20);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
      }
      await handle.close();
      hash.digest();
    }
  });
  return seconds;
}

/** One-core throughput of the compressor the packer uses: frames compressed one after another. */
async function oneCoreLibrary(bytes: number): Promise<number> {
  const { compressor } = chooseCompressor();
  let busy = 0;
  const frame = Buffer.allocUnsafe(frameSize);
  for (const f of await modelFiles()) {
    const handle = await open(f, 'r');
    for (;;) {
      const { bytesRead } = await handle.read(frame, 0, frame.length, null);
      if (bytesRead === 0) break;
      const t = performance.now();
      await compressor.compress(frame.subarray(0, bytesRead), level);
      busy += performance.now() - t;
    }
    await handle.close();
  }
  return MB(bytes, busy / 1000);
}

/**
 * Seconds for a shell script, run without blocking the event loop: the registry and proxy the
 * benchmark starts live in this process, and a synchronous child would stop them from draining
 * their pipes and sockets (a registry whose log pipe fills up stops answering).
 */
function shellAsync(script: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`failed: ${script}`)),
    );
  });
}

function shell(script: string): number {
  const { value, seconds } = time(() =>
    spawnSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );
  if (value.status !== 0) throw new Error(`failed: ${script}`);
  return seconds;
}

/** Compression MB/s of `zstd -b` (one thread, in memory) on a file. */
function zstdBenchmark(file: string): number {
  const run = spawnSync('zstd', [`-b${level}`, '-i2', file], { encoding: 'utf8' });
  const speeds = [...`${run.stdout}${run.stderr}`.matchAll(/\(x[\d.]+\),\s+([\d.]+) MB\/s/g)].map((m) =>
    Number(m[1]),
  );
  if (run.status !== 0 || speeds.length === 0) throw new Error(`zstd -b failed: ${run.stderr}`);
  return speeds.at(-1)!;
}

const hasTimeCommand = existsSync('/usr/bin/time');

// The CLI starts as from a user's shell: without the settings this process was re-run with, so
// it re-runs itself tuned and its start-up time is the real one.
const cliEnv: NodeJS.ProcessEnv = { ...process.env, MODEL_OCI_PROGRESS_MS: '1000000' };
for (const name of ['MODEL_OCI_TUNED', 'UV_THREADPOOL_SIZE', 'GLIBC_TUNABLES']) delete cliEnv[name];

/** Runs the CLI; returns its JSON result, wall time and peak RSS (KiB, from GNU time when present). */
function runBuild(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ result: Record<string, unknown>; wall: number; rssKiB?: number }> {
  const rssFile = path.join(work, 'rss.txt');
  const command = hasTimeCommand ? '/usr/bin/time' : process.execPath;
  const argv = hasTimeCommand ? ['-f', '%M', '-o', rssFile, process.execPath, bin, ...args] : [bin, ...args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, argv, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...cliEnv, ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`model-oci ${args.slice(0, 2).join(' ')} failed (${code})`));
      const result = JSON.parse(out) as Record<string, unknown>;
      if (!hasTimeCommand) return resolve({ result, wall });
      readFile(rssFile, 'utf8').then(
        (text) => resolve({ result, wall, rssKiB: Number(text.trim()) }),
        reject,
      );
    });
  });
}

function printRows(bytes: number): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `Model: ${formatBytes(bytes)} in ${shards} bf16 safetensors shards (+ config, tokenizer, docs). Machine: ${cores} cores (${cpu}), ${formatBytes(totalmem())} RAM, Node ${process.versions.node}, zstd CLI ${/v(\d+\.\d+\.\d+)/.exec(execFileSync('zstd', ['-V'], { encoding: 'utf8' }))?.[1] ?? '?'}.\n`,
  );
  console.log(`Medians of ${rounds} interleaved rounds.\n`);
  console.log('| measurement | time (s) | throughput (MB/s) | peak RSS (MiB) | notes |');
  console.log('|---|---:|---:|---:|---|');
  for (const r of rows) {
    const rate = r.bytes > 0 ? MB(r.bytes, r.seconds).toFixed(0) : '';
    const rss = r.rssKiB ? (r.rssKiB / 1024).toFixed(0) : '';
    console.log(`| ${r.what} | ${r.seconds.toFixed(2)} | ${rate} | ${rss} | ${r.note ?? ''} |`);
  }
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  if (!existsSync(modelDir)) {
    console.error(`writing a ${values.size} ${shards}-shard bf16 model to ${modelDir}`);
    await writeSampleModel(modelDir, { weightBytes, shards, seed: 7 });
  }
  const bytes = await modelSize();
  await warmPageCache();
  const hasTool = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  const pullRows = async () =>
    !values['skip-pull'] && hasTool('docker-registry') && hasTool('skopeo')
      ? benchPull({
          modelDir,
          bytes,
          rounds,
          work,
          runCli: (args) => runBuild(args),
          shell: shellAsync,
          oursOnly: values['pull-ours-only'],
        })
      : [];
  const hubRows = async () =>
    !values['skip-hub'] && hasTool('docker-registry') && hasTool('curl')
      ? benchHub({ modelDir, bytes, rounds, work, runCli: runBuild, shell: shellAsync })
      : [];
  if (values['hub-only']) {
    rows.push(...(await hubRows()));
    printRows(bytes);
    return;
  }
  if (values['pull-only']) {
    rows.push(...(await pullRows()));
    printRows(bytes);
    return;
  }
  const layout = path.join(work, 'layout');
  const cache = path.join(work, 'digests.json');
  const buildArgs = (...extra: string[]) => [
    'model',
    'build',
    modelDir,
    '--name',
    'bench',
    '--to',
    `oci-layout:${layout}:v1`,
    '--json',
    '--level',
    String(level),
    '--frame-size',
    String(frameSize),
    '--digest-cache',
    cache,
    ...extra,
  ];

  // Every measurement is repeated `rounds` times, interleaved, and the median is reported: on a
  // noisy machine a single run of each can easily be 30% off in either direction.
  const samples = new Map<string, number[]>();
  const add = (name: string, value: number | undefined): void => {
    if (value === undefined || Number.isNaN(value)) return;
    samples.set(name, [...(samples.get(name) ?? []), value]);
  };
  const median = (name: string): number => {
    const v = [...(samples.get(name) ?? [Number.NaN])].sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)]!;
  };
  const tarCmd = `tar -cf - -C ${JSON.stringify(modelDir)} .`;
  const perShard = Math.round(weightBytes / shards / (1024 * 2048 * 2));
  const lastShard = path.join(modelDir, shardName(shards - 1, shards));
  const frameSizes = values['frame-sweep'] ? [4, 8, 16, 32].map((n) => n * 1024 * 1024) : [];
  let incrementalReport = '';
  let ratio = 0;

  // zstd's own benchmark mode (-b) measures one core compressing in memory; it wants a file.
  const tarFile = path.join(work, 'model.tar');
  shell(`${tarCmd} > ${JSON.stringify(tarFile)}`);

  for (let round = 1; round <= rounds; round++) {
    console.error(`round ${round} of ${rounds}`);
    add('sha', await sha256Pass());
    add('lib', bytes / 1e6 / (await oneCoreLibrary(bytes)));
    add('cliOne', bytes / 1e6 / zstdBenchmark(tarFile));
    add('cliAll', shell(`${tarCmd} | zstd -q -${level} -T0 -c > /dev/null`));

    await rm(layout, { recursive: true, force: true });
    await rm(cache, { force: true });
    const pack = await runBuild(buildArgs());
    add('pack', Number(pack.result.durationMs) / 1000);
    add('packWall', pack.wall);
    add('packRss', pack.rssKiB);
    const layers = (pack.result as { layers: { size: number; uncompressedSize: number }[] }).layers;
    ratio = layers.reduce((n, l) => n + l.size, 0) / layers.reduce((n, l) => n + l.uncompressedSize, 0);

    const warm = await runBuild(buildArgs());
    add('warm', warm.wall);
    add('warmBuild', Number(warm.result.durationMs) / 1000);
    add('warmRss', warm.rssKiB);
    await rm(cache, { force: true });
    const cold = await runBuild(buildArgs());
    add('cold', cold.wall);
    add('coldRss', cold.rssKiB);

    await writeShard(lastShard, (shards - 1) * perShard, perShard, 1000 + round);
    await warmPageCache();
    const incremental = await runBuild(buildArgs());
    add('incremental', incremental.wall);
    add('incrementalRss', incremental.rssKiB);
    const inc = incremental.result as { layers: { status: string }[]; bytesRead: number };
    incrementalReport = `${inc.layers.filter((l) => l.status !== 'reused').length} layer(s) packed, ${inc.layers.filter((l) => l.status === 'reused').length} reused; read ${formatBytes(inc.bytesRead)}`;
    await writeShard(lastShard, (shards - 1) * perShard, perShard, 7 * 1000 + shards - 1); // as generated
    await warmPageCache();

    for (const size of frameSizes) {
      await rm(layout, { recursive: true, force: true });
      await rm(cache, { force: true });
      const run = await runBuild(buildArgs('--frame-size', String(size)));
      add(`frame${size}`, Number(run.result.durationMs) / 1000);
      add(`frame${size}Rss`, run.rssKiB);
    }
  }

  await rm(tarFile, { force: true });

  // The classic single-layer image: one tar of everything, gzip -6 on one thread. GNU gzip is the
  // textbook tool (Docker's builders use Go's compress/gzip, of similar speed); Node's zlib
  // (Chromium's, with SIMD) is faster and shown too, as the harder baseline.
  let gzipSeconds: number | undefined;
  let zlibGzipSeconds: number | undefined;
  if (!values['skip-gzip']) {
    console.error('measuring: single-layer tar.gz with GNU gzip -6 and with node:zlib gzip level 6');
    gzipSeconds = shell(`${tarCmd} | gzip -6 -c > /dev/null`);
    zlibGzipSeconds = (
      await timeAsync(async () => {
        const tar = spawn('tar', ['-cf', '-', '-C', modelDir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
        await pipeline(tar.stdout, createGzip({ level: 6 }), async function* (src) {
          for await (const _ of src) yield* [];
        });
      })
    ).seconds;
  }

  const packSeconds = median('pack');
  const packRate = MB(bytes, packSeconds);
  const limitLib = MB(bytes, median('lib')) * cores;
  const limitCli = MB(bytes, median('cliOne')) * cores;
  const shaRate = MB(bytes, median('sha'));
  // What two cores can do at best when, besides compressing, every byte is hashed twice (file
  // content, tar) and every compressed byte once (blob digest): the work the formats require.
  const ceiling = cores / (1 / MB(bytes, median('lib')) + (2 + ratio) / shaRate);
  const versus = (rate: number): string => `ours is ${(packRate / rate).toFixed(2)}×`;
  const rss = (name: string): number | undefined => (samples.has(name) ? median(name) : undefined);
  rows.push({
    what: `our pack into an OCI layout (level ${level}, ${formatBytes(frameSize)} frames, cold cache)`,
    seconds: packSeconds,
    bytes,
    rssKiB: rss('packRss'),
    note: `wall ${median('packWall').toFixed(2)} s with process start; stored ${(ratio * 100).toFixed(1)}% of the input`,
  });
  if (gzipSeconds !== undefined && zlibGzipSeconds !== undefined) {
    rows.push({
      what: 'baseline: single-layer tar.gz, GNU gzip -6 (one thread)',
      seconds: gzipSeconds,
      bytes,
      note: `ours is ${(packRate / MB(bytes, gzipSeconds)).toFixed(1)}×`,
    });
    rows.push({
      what: 'baseline: single-layer tar.gz, node:zlib gzip level 6 (one thread, SIMD zlib)',
      seconds: zlibGzipSeconds,
      bytes,
      note: `ours is ${(packRate / MB(bytes, zlibGzipSeconds)).toFixed(1)}×`,
    });
  }
  rows.push({
    what: `baseline: tar \\| zstd -${level} -T0 (to /dev/null)`,
    seconds: median('cliAll'),
    bytes,
    note: versus(MB(bytes, median('cliAll'))),
  });
  rows.push({
    what: `limit: one-core zstd -${level} (zstd -b on the tar, in memory) × ${cores} cores`,
    seconds: bytes / 1e6 / limitCli,
    bytes,
    note: versus(limitCli),
  });
  rows.push({
    what: `limit: one-core zstd -${level} (our compressor, in memory) × ${cores} cores`,
    seconds: bytes / 1e6 / limitLib,
    bytes,
    note: versus(limitLib),
  });
  rows.push({
    what: `ceiling: that compressor plus the three sha256 passes the formats require, on ${cores} cores`,
    seconds: bytes / 1e6 / ceiling,
    bytes,
    note: versus(ceiling),
  });
  rows.push({ what: 'one sha256 pass over the files (one core)', seconds: median('sha'), bytes });
  rows.push({
    what: 'no-op rebuild, warm digest cache',
    seconds: median('warm'),
    bytes: 0,
    rssKiB: rss('warmRss'),
    note: `skipped; ${median('warmBuild').toFixed(3)} s in the build, the rest is process start`,
  });
  rows.push({
    what: 'no-op rebuild, cold digest cache',
    seconds: median('cold'),
    bytes,
    rssKiB: rss('coldRss'),
    note: `skipped; ${(median('cold') / median('sha')).toFixed(2)}× one sha256 pass, process start included`,
  });
  rows.push({
    what: `incremental rebuild, 1 of ${shards} shards changed`,
    seconds: median('incremental'),
    bytes: 0,
    rssKiB: rss('incrementalRss'),
    note: incrementalReport,
  });
  for (const size of frameSizes) {
    rows.push({
      what: `frame size ${formatBytes(size)}`,
      seconds: median(`frame${size}`),
      bytes,
      rssKiB: rss(`frame${size}Rss`),
    });
  }

  if (!values['skip-registry'] && hasTool('docker-registry') && hasTool('skopeo')) {
    rows.push(
      ...(await benchRegistry({
        modelDir,
        bytes,
        level,
        rounds,
        work,
        runBuild: (args) => runBuild(args),
        shell: shellAsync,
      })),
    );
  }

  rows.push(...(await pullRows()));
  rows.push(...(await hubRows()));
  printRows(bytes);
}

await main();
