import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Target } from '../../src/content/target.ts';
import { describeJson, encodeJson } from '../../src/oci/manifest.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { apiHost } from '../../src/registry/endpoint.ts';
import { openRegistryTarget } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import { uploadPolicyFor } from '../../src/registry/upload-policy.ts';
import { type FaultProxy, isBlobGet, startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

let registry: TestRegistry;
let proxy: FaultProxy;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.url });
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

async function open(repository: string): Promise<RegistryTarget> {
  return openRegistryTarget(parseReference(`${proxy.host}/${repository}`), 'push', {
    env: { PATH: process.env.PATH },
    homeDir: await tempDir(),
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
  });
}

/** A small image manifest whose config is the empty JSON, pushed with its blob. */
async function pushSmallManifest(target: Target, extra: Record<string, unknown> = {}) {
  const config = encodeJson({ note: 'config' });
  const configDesc = describeJson('application/vnd.oci.empty.v1+json', config);
  await target.putBlob(configDesc, config);
  const bytes = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers: [],
    ...extra,
  });
  const desc = describeJson(OCI_MANIFEST, bytes);
  return { desc, bytes, configDesc, config };
}

describe('manifests, tags and blob reads on a real registry', () => {
  test('PUT stores the exact bytes; HEAD and GET by tag and digest send the full Accept list', async () => {
    const target = await open('org/docs');
    try {
      const { desc, bytes } = await pushSmallManifest(target, { annotations: { b: '2', a: '1' } });
      await target.putManifest(desc, bytes, ['v1', 'latest']);
      const start = proxy.log.length;
      for (const ref of ['v1', 'latest', desc.digest]) {
        const resolved = await target.resolve(ref);
        expect(resolved).toEqual({ mediaType: OCI_MANIFEST, digest: desc.digest, size: desc.size });
      }
      expect(Buffer.from(await target.fetchManifest(desc)).equals(Buffer.from(bytes))).toBe(true);
      await proxy.idle();
      const reads = proxy.log.slice(start).filter((e) => e.url.includes('/manifests/'));
      expect(reads.length).toBeGreaterThan(0);
      for (const e of reads) {
        for (const type of [
          OCI_MANIFEST,
          OCI_INDEX,
          'application/vnd.docker.distribution.manifest.v2+json',
        ]) {
          expect(e.requestHeaders.accept).toContain(type);
        }
      }
      expect(await target.resolve('missing')).toBeUndefined();
    } finally {
      await target.close();
    }
  });

  test('tag() writes only tags that do not point at the manifest yet', async () => {
    const target = await open('org/tags');
    try {
      const { desc, bytes } = await pushSmallManifest(target);
      await target.putManifest(desc, bytes, ['a']);
      await proxy.idle();
      const start = proxy.log.length;
      await target.tag(desc, ['a', 'b']);
      await proxy.idle();
      const puts = proxy.log.slice(start).filter((e) => e.method === 'PUT');
      expect(puts.map((e) => e.url)).toEqual(['/v2/org/tags/manifests/b']);
      expect((await target.resolve('b'))?.digest).toBe(desc.digest);
    } finally {
      await target.close();
    }
  });

  test('a manifest over 4 MiB is refused before it is sent, and when a registry serves one', async () => {
    const target = await open('org/big');
    try {
      const { configDesc } = await pushSmallManifest(target);
      const big = encodeJson({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: configDesc,
        layers: [],
        annotations: { padding: 'x'.repeat(4 * 1024 * 1024) },
      });
      const desc = describeJson(OCI_MANIFEST, big);
      await expect(target.putManifest(desc, big, ['big'])).rejects.toThrow(/at most 4 MiB/);
      // Distribution 2.8.2 refuses it too; a registry that serves one anyway (played by the proxy)
      // is refused by the reader.
      const rule = proxy.addRule({
        match: (req) => req.method === 'GET' && req.url.endsWith(`/manifests/${desc.digest}`),
        fault: {
          kind: 'respond',
          status: 200,
          headers: { 'content-type': OCI_MANIFEST },
          body: new TextDecoder().decode(big),
        },
        times: 1,
      });
      await expect(target.fetchManifest(desc)).rejects.toThrow(/over the 4194304-byte limit/);
      rule.remove();
    } finally {
      await target.close();
    }
  });

  test('a blob whose bytes were changed on the way is refused, not returned', async () => {
    const target = await open('org/tamper');
    try {
      const data = Buffer.alloc(100_000, 7);
      const desc = describeJson('application/octet-stream', data);
      await target.putBlob(desc, data);
      const chunks: Uint8Array[] = [];
      for await (const c of await target.fetchBlob(desc)) chunks.push(c);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);

      const rule = proxy.addRule({
        match: isBlobGet,
        fault: { kind: 'respond', status: 200, body: 'y'.repeat(data.byteLength) },
        times: 1,
      });
      const read = async () => {
        for await (const _ of await target.fetchBlob(desc));
      };
      await expect(read()).rejects.toThrow(/does not match its digest \(its bytes hash to sha256:/);
      rule.remove();
    } finally {
      await target.close();
    }
  });
});

describe('endpoints and upload policy', () => {
  test('Docker Hub names map to its API host; others stay as written', () => {
    expect(apiHost(parseReference('ubuntu').registry)).toBe('registry-1.docker.io');
    expect(parseReference('ubuntu').repository).toBe('library/ubuntu');
    expect(apiHost(parseReference('index.docker.io/org/m').registry)).toBe('registry-1.docker.io');
    expect(apiHost(parseReference('ghcr.io/org/m').registry)).toBe('ghcr.io');
  });

  test('the policy table picks the strategy per registry, and an override wins within its limits', () => {
    expect(uploadPolicyFor('ghcr.io')).toMatchObject({ strategy: 'chunked', chunkSize: 4 * 1024 * 1024 });
    expect(uploadPolicyFor('ghcr.io', { chunkSize: 64 * 1024 * 1024 }).chunkSize).toBe(4 * 1024 * 1024);
    expect(uploadPolicyFor('us-docker.pkg.dev').strategy).toBe('single');
    expect(uploadPolicyFor('123456789012.dkr.ecr.eu-west-1.amazonaws.com').strategy).toBe('single');
    expect(uploadPolicyFor('public.ecr.aws').strategy).toBe('single');
    expect(uploadPolicyFor('registry.example.com')).toMatchObject({
      strategy: 'chunked',
      chunkSize: 8 * 1024 * 1024,
    });
    expect(uploadPolicyFor('us-docker.pkg.dev', { strategy: 'chunked' }).strategy).toBe('chunked');
  });

  test('layer limits: the documented size limits, ghcr.io held to what its 10-minute cap lets through at 12.5 MB/s, overrides', () => {
    const MiB = 1024 * 1024;
    expect(uploadPolicyFor('ghcr.io').layerLimit).toMatchObject({ bytes: 6_000_000_000 });
    expect(uploadPolicyFor('ghcr.io').layerLimit!.why).toMatch(/upload time limit of ghcr\.io, 600 s/);
    expect(uploadPolicyFor('public.ecr.aws').layerLimit!.bytes).toBe(10_000 * MiB);
    expect(uploadPolicyFor('123456789012.dkr.ecr.eu-west-1.amazonaws.com').layerLimit!.bytes).toBe(
      52_000 * MiB,
    );
    expect(uploadPolicyFor('quay.io').layerLimit!.bytes).toBe(20_000_000_000);
    expect(uploadPolicyFor('registry.example.com').layerLimit).toBeUndefined();
    const harbor = uploadPolicyFor('harbor.lan', {
      maxLayer: { bytes: 32 * 1024 * MiB, source: '--max-layer-size' },
    });
    expect(harbor.layerLimit).toEqual({
      bytes: 32 * 1024 * MiB,
      why: 'the layer limit of harbor.lan, 34.4 GB (--max-layer-size)',
    });
    // A tighter time limit wins over the size limit.
    expect(uploadPolicyFor('quay.io', { sessionLimitMs: 60_000 }).layerLimit!.bytes).toBe(600_000_000);
  });
});
