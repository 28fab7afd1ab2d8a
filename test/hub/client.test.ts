// The Hub client against the local Hub server (test/helpers/hub-server.ts).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HubClient, HubError } from '../../src/hub/client.ts';
import { parseHubRef } from '../../src/hub/hub-ref.ts';
import { type HubServer, startHubServer } from '../helpers/hub-server.ts';

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer();
});
afterAll(async () => {
  await hub?.stop();
});

const client = (token?: string) =>
  new HubClient({
    endpoint: hub.url,
    token,
    tokenHint: 'HF_TOKEN',
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
  });

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('HubClient', () => {
  test('revision → commit; the recursive listing over pages; small files; ranges of LFS files from the CDN', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const { sha } = hub.setRepo('org/listing', ['main'], {
      files: [
        { path: 'config.json', content: Buffer.from('{"model_type":"llama"}') },
        { path: 'model.safetensors', content: big },
        { path: 'sub/dir/tokenizer.json', content: Buffer.from('{}') },
      ],
    });
    hub.pageSize = 2;
    const c = client();
    try {
      expect((await c.revision('org/listing', 'main')).sha).toBe(sha);
      const files = [];
      for await (const f of c.tree('org/listing', sha)) files.push(f);
      expect(files.map((f) => f.path)).toEqual([
        'config.json',
        'model.safetensors',
        'sub/dir/tokenizer.json',
      ]);
      expect(files[1]!.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(files[0]!.sha256).toBeUndefined();
      expect((await c.fetchSmall('org/listing', sha, 'config.json', 1 << 20)).toString()).toBe(
        '{"model_type":"llama"}',
      );
      const part = await collect(c.fileRange('org/listing', sha, 'model.safetensors', 1000, 2_000_000));
      expect(part.equals(big.subarray(1000, 2_000_000))).toBe(true);
      // The token goes to the Hub only.
      const withToken = client(hub.token);
      await collect(withToken.fileRange('org/listing', sha, 'model.safetensors', 0, 10));
      await withToken.close();
      expect(hub.log.filter((e) => e.host === 'cdn' && e.authorization)).toEqual([]);
      expect(hub.log.filter((e) => e.host === 'hub' && e.authorization).length).toBeGreaterThan(0);
    } finally {
      hub.pageSize = 50;
      await c.close();
    }
  });

  test('a reset mid-file resumes from the byte it reached; 429 with Retry-After is waited out', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const { sha } = hub.setRepo('org/faults', ['main'], { files: [{ path: 'w.safetensors', content: big }] });
    const c = client();
    try {
      hub.resetCdnAfter(300_000, 2);
      const whole = await collect(c.fileRange('org/faults', sha, 'w.safetensors', 0, big.length));
      expect(whole.equals(big)).toBe(true);
      // Three requests: the first, then one from each byte a reset left the client at (a reset drops
      // what was in flight, so that is at most 300 000 bytes further each time).
      const starts = hub.log
        .filter((e) => e.host === 'cdn')
        .slice(-3)
        .map((e) => Number(/^bytes=(\d+)-/.exec(e.range ?? '')?.[1]));
      expect(starts[0]).toBe(0);
      expect(starts[1]).toBeGreaterThan(0);
      expect(starts[2]).toBeGreaterThan(starts[1]!);
      expect(starts[2]! - starts[1]!).toBeLessThanOrEqual(300_000);
      hub.failNext(2, 429, 1);
      const started = performance.now();
      expect((await c.revision('org/faults', 'main')).sha).toBe(sha);
      expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    } finally {
      await c.close();
    }
  });

  test('gated repositories, unknown revisions and bad references are one-line errors that say what to do', async () => {
    hub.setRepo('org/gated', ['main'], {
      files: [{ path: 'a.json', content: Buffer.from('{}') }],
      gated: true,
    });
    const c = client();
    await expect(c.revision('org/gated', 'main')).rejects.toThrow(
      new HubError(
        'hf://org/gated@main is gated or private: set HF_TOKEN to a token that has access (huggingface.co/settings/tokens)',
      ),
    );
    const wrong = client('hf_wrong');
    await expect(wrong.revision('org/gated', 'main')).rejects.toThrow(/refused the token \(HF_TOKEN\)/);
    const right = client(hub.token);
    expect((await right.revision('org/gated', 'main')).sha).toMatch(/^[0-9a-f]{40}$/);
    await expect(c.revision('org/gated', 'nope')).rejects.toThrow(HubError);
    await expect(c.revision('org/missing', 'main')).rejects.toThrow(/no such repository/);
    for (const x of [c, wrong, right]) await x.close();
    expect(() => parseHubRef('hf://just-one-part', '--from')).toThrow(/is not hf:\/\/ORG\/NAME/);
    expect(parseHubRef('hf://Qwen/Qwen2.5-0.5B@v1.0', 'x')).toMatchObject({
      repo: 'Qwen/Qwen2.5-0.5B',
      revision: 'v1.0',
    });
    expect(parseHubRef('hf://Qwen/Qwen2.5-0.5B', 'x').revision).toBe('main');
  });
});
