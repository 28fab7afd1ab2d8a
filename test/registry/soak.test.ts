// A bounded soak: 20 model pushes through a link that resets 15% of requests (mid-body, or after the
// registry handled them so the answer is lost) and truncates 10% of responses, in front of CNCF
// Distribution, which drops an upload session whenever a PATCH breaks off. At least 19 must land and
// read back verified; one that fails must say how many upload sessions it tried and why each was lost.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildModel } from '../../src/model/build.ts';
import { parseImageManifest } from '../../src/oci/manifest.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import { errorMessage } from '../../src/util/errors.ts';
import { type Fault, type FaultProxy, type ProxyRequest, startFaultProxy } from '../helpers/fault-proxy.ts';
import { sampleModel } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';

const MiB = 1024 * 1024;
const PUSHES = 20;
const RESET_RATE = 0.15;
const TRUNCATE_RATE = 0.1;
// SOAK_SEED=<n> repeats a run; the seed is in the test's name.
const SEED = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : Math.floor(Math.random() * 2 ** 31);

/** mulberry32: a small seeded generator, so a failing run can be repeated exactly. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let registry: TestRegistry;
let proxy: FaultProxy;
let home: string;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
  home = await mkdtemp(path.join(tmpdir(), 'model-oci-soak-'));
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await rm(home, { recursive: true, force: true });
});

/** Rolls the dice for every request: a reset (mid-body, or of the answer) or a truncated answer. */
function addRandomFaults(roll: () => number): void {
  const reset = { kind: 'reset-request', afterBytes: 0 } as Extract<Fault, { kind: 'reset-request' }>;
  const bodyLength = (req: ProxyRequest) => Number(req.headers['content-length'] ?? 0);
  proxy.addRule({
    match: (req) => {
      if (bodyLength(req) === 0 || roll() >= RESET_RATE) return false;
      reset.afterBytes = Math.floor(roll() * bodyLength(req)); // cut somewhere in the body
      return true;
    },
    fault: reset,
  });
  proxy.addRule({
    match: (req) => bodyLength(req) === 0 && roll() < RESET_RATE,
    fault: { kind: 'drop-response' },
  });
  const truncate = { kind: 'truncate-response', afterBytes: 0 } as Extract<
    Fault,
    { kind: 'truncate-response' }
  >;
  proxy.addRule({
    match: () => {
      if (roll() >= TRUNCATE_RATE) return false;
      truncate.afterBytes = Math.floor(roll() * 2048);
      return true;
    },
    fault: truncate,
  });
}

/** Reads the pushed artifact straight from the registry (not through the faults), verifying every blob. */
async function verify(repository: string, digest: string): Promise<void> {
  const target = await openRegistryTarget(parseReference(`${registry.host}/${repository}`), 'pull', {
    env: { PATH: process.env.PATH },
    homeDir: home,
  });
  try {
    const desc = await target.resolve('1');
    expect(desc?.digest).toBe(digest);
    const manifest = parseImageManifest(await target.fetchManifest(desc!));
    for (const blob of [manifest.config, ...manifest.layers]) {
      let size = 0;
      for await (const chunk of await target.fetchBlob(blob)) size += chunk.byteLength; // verified as it streams
      expect(size).toBe(blob.size);
    }
  } finally {
    await target.close();
  }
}

describe('soak', () => {
  test(`${PUSHES} pushes at ${RESET_RATE * 100}% resets and ${TRUNCATE_RATE * 100}% truncations (SOAK_SEED=${SEED})`, {
    timeout: 600_000,
  }, async () => {
    const { dir } = await sampleModel({ shards: 3, weightBytes: 12 * MiB, seed: 51 });
    addRandomFaults(random(SEED));
    const outcomes: { ok: boolean; detail: string }[] = [];
    for (let i = 0; i < PUSHES; i++) {
      const repository = `soak/push-${i}`;
      let target: RegistryTarget | undefined;
      try {
        target = await openRegistryTarget(parseReference(`${proxy.host}/${repository}:1`), 'push', {
          env: { PATH: process.env.PATH },
          homeDir: home,
          retry: { baseDelayMs: 10, maxDelayMs: 200 },
          // 1 MiB PATCHes: each shard layer takes four or five, each a chance to lose the session.
          upload: { chunkSize: MiB },
        });
        const result = await buildModel({
          source: dir,
          name: 'soak',
          target,
          tag: '1',
          digestCache: false,
          concurrency: 4,
        });
        await verify(repository, result.digest);
        outcomes.push({ ok: true, detail: result.digest });
      } catch (err) {
        outcomes.push({ ok: false, detail: errorMessage(err) });
      } finally {
        await target?.close();
      }
    }
    await proxy.idle();
    const faults = proxy.log.filter((e) => e.fault !== undefined).length;
    const failed = outcomes.filter((o) => !o.ok);
    console.log(
      `soak: ${PUSHES - failed.length}/${PUSHES} landed verified; ${faults} of ${proxy.log.length} requests faulted (seed ${SEED})`,
    );
    expect(faults).toBeGreaterThan(proxy.log.length * 0.1);
    expect(failed.length, failed.map((f) => f.detail).join('\n')).toBeLessThanOrEqual(1);
    for (const f of failed) {
      expect(f.detail).toMatch(/the registry lost all \d+ upload sessions a layer of .* may use: 1\) .+/);
    }
  });
});
