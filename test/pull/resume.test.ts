// An interrupted pull (the process killed) resumes: complete files are kept, the partial file
// continues from its journaled, re-verified prefix, and the result is the model.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { repoRoot } from '../helpers/cli.ts';
import { isBlobGet, startFaultProxy } from '../helpers/fault-proxy.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { build, expectSameFiles, pull } from './helpers.ts';

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
});

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/**
 * Starts `model pull REF --to OUT` in a child process and kills it (SIGKILL, as a node eviction
 * does) once its state folder holds a journal and `ready` says so (polled every 50 ms).
 */
async function pullAndKill(ref: string, out: string, ready: () => Promise<boolean> = async () => true) {
  const bin = path.join(repoRoot, 'src/cli/bin.ts');
  const child = spawn(process.execPath, [bin, 'model', 'pull', ref, '--to', out], {
    stdio: 'ignore',
    env: { ...process.env, MODEL_OCI_TUNED: '1' },
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const partial = path.join(out, '.cache/model-oci/partial');
  for (let waited = 0; ; waited += 50) {
    if (waited > 60_000) throw new Error('the pull never wrote a journal');
    const journals = (await readdir(partial).catch(() => [])).filter((n) => n.endsWith('.json'));
    if (journals.length > 0 && (await ready())) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  await exited;
  return partial;
}

describe('an interrupted pull', () => {
  test('killed mid-layer, it resumes from the journal without fetching the complete files again', async () => {
    const big = randomBytes(150 * 1024 * 1024);
    const dir = await modelFromFiles({
      'config.json': '{"model_type":"llama"}',
      'small.safetensors': randomBytes(3 * 1024 * 1024),
      'big.safetensors': big,
    });
    await build([dir, '--name', 'resume', '--to', `${registry.host}/pull/resume:1`]);
    const proxy = await startFaultProxy({ upstream: registry.url, bytesPerSecond: 25_000_000 });
    try {
      const out = path.join(await tempDir(), 'out');
      // Killed once the small file is in place and the big one has a checkpoint in the journal.
      const partial = await pullAndKill(`${proxy.host}/pull/resume:1`, out, () =>
        exists(path.join(out, 'small.safetensors')),
      );
      expect(await exists(path.join(out, 'big.safetensors'))).toBe(false);

      proxy.setBytesPerSecond(undefined);
      proxy.log.length = 0;
      const result = await pull([`${proxy.host}/pull/resume:1`, '--to', out]);
      const layer = (name: string) => result.layers.find((l) => l.name.startsWith(name))!;
      expect(layer('small').state).toBe('present');
      expect(layer('weight.config').state).toBe('present');
      expect(layer('big').state).toBe('resumed');
      expect(layer('big').fetched).toBeLessThan(layer('big').size - 60 * 1024 * 1024);
      await proxy.idle();
      // Every request for the big layer's blob starts past the part the first attempt kept.
      const ranges = proxy.log
        .filter((e) => isBlobGet({ ...e, headers: e.requestHeaders }) && e.url.endsWith(layer('big').digest))
        .map((e) => e.requestHeaders.range);
      expect(ranges.length).toBeGreaterThan(0);
      expect(ranges.every((r) => r !== undefined && !r.startsWith('bytes=0-'))).toBe(true);
      await expectSameFiles(out, dir);
      expect(await readdir(partial)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  test('a partial file that was changed meanwhile is not trusted: the layer starts over', async () => {
    const dir = await modelFromFiles({ 'big.safetensors': randomBytes(100 * 1024 * 1024) });
    await build([dir, '--name', 'tampered', '--to', `${registry.host}/pull/tampered:1`]);
    const proxy = await startFaultProxy({ upstream: registry.url, bytesPerSecond: 25_000_000 });
    try {
      const out = path.join(await tempDir(), 'out');
      const partial = await pullAndKill(`${proxy.host}/pull/tampered:1`, out);
      const part = (await readdir(partial)).find((n) => n.endsWith('.part'))!;
      // A byte inside the journaled prefix flips (a torn write, a disk error, a hand edit).
      const handle = await open(path.join(partial, part), 'r+');
      await handle.write(Buffer.from([0x42]), 0, 1, 1000);
      await handle.close();

      proxy.setBytesPerSecond(undefined);
      const result = await pull([`${proxy.host}/pull/tampered:1`, '--to', out]);
      expect(result.layers[0]!.state).toBe('pulled');
      expect(result.layers[0]!.fetched).toBe(result.layers[0]!.size);
      await expectSameFiles(out, dir);
    } finally {
      await proxy.stop();
    }
  });
});
