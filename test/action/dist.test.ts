// The committed dist/ (scripts/build-dist.ts): the bundle runs from a copy of dist/ alone, with no
// node_modules around, and the native zstd addon shipped next to it loads there.
import { execFile } from 'node:child_process';
import { copyFile, cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import * as esbuild from 'esbuild';
import { describe, expect, test } from 'vitest';
import { bundleOptions, repoRoot } from '../../scripts/build-dist.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const dist = path.join(repoRoot, 'dist');
const arch = process.arch;
const shipped = process.platform === 'linux' && (arch === 'x64' || arch === 'arm64');
const glibc = Boolean(
  (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime,
);

/** The environment of a step with no inputs: no INPUT_, GITHUB_ or RUNNER_ variables. */
function bareEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(INPUT_|GITHUB_|RUNNER_|ACTIONS_)/.test(key)),
  );
}

interface ProbeResult {
  name: string;
  notice: string | null;
  roundTrip: boolean;
}

/**
 * src/pack/zstd.ts bundled as dist/index.js bundles it (same esbuild options), into `dir`; run there
 * it compresses one frame at level 19 and reports the compressor, the notice, and the round trip.
 */
async function bundleProbe(dir: string): Promise<() => Promise<ProbeResult>> {
  await esbuild.build({
    ...bundleOptions(),
    stdin: {
      contents: `
        import zlib from 'node:zlib';
        import { chooseCompressor } from './src/pack/zstd.ts';
        const { compressor, notice } = chooseCompressor();
        const input = Buffer.from('model-oci '.repeat(10000));
        const out = Buffer.from(await compressor.compress(input, 19));
        const roundTrip = zlib.zstdDecompressSync(out).equals(input);
        console.log(JSON.stringify({ name: compressor.name, notice: notice ?? null, roundTrip }));`,
      resolveDir: repoRoot,
      sourcefile: 'probe.ts',
      loader: 'ts',
    },
    outfile: path.join(dir, 'probe.js'),
    logLevel: 'silent',
  });
  return async () => {
    const { stdout } = await run(process.execPath, ['probe.js'], { cwd: dir, env: bareEnv() });
    return JSON.parse(stdout) as ProbeResult;
  };
}

describe('dist/', () => {
  test('dist/index.js runs from a copy of dist/ alone: without inputs it fails through core.setFailed', async () => {
    const dir = await tempDir();
    await cp(dist, dir, { recursive: true });
    const result = await run(process.execPath, ['index.js'], { cwd: dir, env: bareEnv() }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^::error( title=[^:]*)?::\S/m);
    // A clean failure: no uncaught exception, no module or syntax error.
    expect(result.stderr).not.toMatch(/Error|at .*index\.js/);
  });

  test('the shipped binaries are the ELF objects for glibc Linux x64 and arm64, and the licenses are there', async () => {
    for (const [name, machine] of [
      ['zstd.linux-x64-gnu.node', 62],
      ['zstd.linux-arm64-gnu.node', 183],
    ] as const) {
      const binary = await readFile(path.join(dist, name));
      expect(binary.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(binary.readUInt16LE(18)).toBe(machine);
    }
    const installed = path.join(
      repoRoot,
      'node_modules/@mongodb-js/zstd-linux-x64-gnu/zstd.linux-x64-gnu.node',
    );
    if (arch === 'x64' && process.platform === 'linux' && glibc)
      expect(
        (await readFile(installed)).equals(await readFile(path.join(dist, 'zstd.linux-x64-gnu.node'))),
      ).toBe(true);
    expect(await readFile(path.join(dist, 'licenses/mongodb-js-zstd-LICENSE.md'), 'utf8')).toMatch(
      /Apache License/,
    );
    expect(await readFile(path.join(dist, 'licenses.txt'), 'utf8')).toMatch(/^ {2}@actions\/core \S+ MIT$/m);
  });

  test.runIf(shipped && glibc)(
    'bundled, zstd.ts loads the addon from next to the bundle; missing or broken, node:zlib compresses and the notice says why',
    async () => {
      const dir = await tempDir();
      const probe = await bundleProbe(dir);
      const addon = path.join(dir, `zstd.linux-${arch}-gnu.node`);
      await copyFile(path.join(dist, 'package.json'), path.join(dir, 'package.json'));
      await copyFile(path.join(dist, `zstd.linux-${arch}-gnu.node`), addon);

      expect(await probe()).toEqual({ name: '@mongodb-js/zstd', notice: null, roundTrip: true });

      await rm(addon);
      const missing = await probe();
      expect(missing).toMatchObject({ name: 'node:zlib', roundTrip: true });
      expect(missing.notice).toBe(
        `zstd: compressing with node:zlib; the native @mongodb-js/zstd binding did not load: zstd.linux-${arch}-gnu.node is missing`,
      );

      await writeFile(addon, 'not an ELF object');
      const broken = await probe();
      expect(broken).toMatchObject({ name: 'node:zlib', roundTrip: true });
      expect(broken.notice).toMatch(/did not load: .*zstd\.linux-\w+-gnu\.node/);
    },
  );
});
