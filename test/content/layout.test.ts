import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { parseTargetRef } from '../../src/content/target-ref.ts';
import { sha256Digest } from '../../src/oci/digest.ts';
import { describeJson, encodeJson, parseImageIndex } from '../../src/oci/manifest.ts';
import { ANNOTATION, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { repoRoot } from '../helpers/cli.ts';
import { validateIndex } from '../helpers/schemas.ts';
import { tempDir } from '../helpers/tmp.ts';

function manifestBytes(n: number): Uint8Array {
  const config = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest('{}'), size: 2 };
  return encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: [config],
    annotations: { n: String(n) },
  });
}

async function tagsIn(layout: string): Promise<Map<string, string>> {
  const index = parseImageIndex(await readFile(path.join(layout, 'index.json')), 'index.json');
  return new Map(index.manifests.map((m) => [m.annotations?.[ANNOTATION.refName] ?? '', m.digest]));
}

describe('target references', () => {
  test.each([
    ['oci-layout:./out', { kind: 'oci-layout', path: './out' }],
    ['oci-layout:./out:v1', { kind: 'oci-layout', path: './out', tag: 'v1' }],
    ['oci:/abs/dir:latest', { kind: 'oci-layout', path: '/abs/dir', tag: 'latest' }],
    [
      `oci-layout:out@sha256:${'a'.repeat(64)}`,
      { kind: 'oci-layout', path: 'out', digest: `sha256:${'a'.repeat(64)}` },
    ],
  ])('%s', (text, expected) => {
    expect(parseTargetRef(text)).toMatchObject(expected);
  });

  test('anything else is a registry reference', () => {
    expect(parseTargetRef('ghcr.io/acme/phi:1')).toMatchObject({
      kind: 'registry',
      reference: { registry: 'ghcr.io', repository: 'acme/phi', tag: '1' },
    });
    expect(() => parseTargetRef('oci-layout:')).toThrow('the layout path is empty');
  });
});

describe('OCI layout target', () => {
  test('tags move between manifests; index.json keeps one entry per tag and validates', async () => {
    const dir = path.join(await tempDir(), 'layout');
    const layout = await OciLayoutTarget.open(dir);
    const one = manifestBytes(1);
    const two = manifestBytes(2);
    const d1 = describeJson(OCI_MANIFEST, one);
    const d2 = describeJson(OCI_MANIFEST, two);
    await layout.putManifest(d1, one, ['a', 'b']);
    await layout.putManifest(d2, two, ['b', 'c']);
    const tags = await tagsIn(dir);
    expect(Object.fromEntries(tags)).toEqual({ a: d1.digest, b: d2.digest, c: d2.digest });
    expect(validateIndex(JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')))).toEqual([]);
    expect(await layout.resolve('b')).toEqual(d2);
    expect(await layout.resolve(d1.digest)).toEqual(d1);
    expect(await layout.resolve('missing')).toBeUndefined();
    expect(await layout.fetchManifest(d1)).toEqual(Buffer.from(one));
  });

  test('a blob whose bytes do not match the expected digest is not stored', async () => {
    const dir = path.join(await tempDir(), 'layout');
    const layout = await OciLayoutTarget.open(dir);
    const claimed = describeJson('application/octet-stream', new TextEncoder().encode('right'));
    const writer = await layout.openBlobWriter();
    await writer.write(new TextEncoder().encode('wrong'));
    await expect(writer.commit(claimed)).rejects.toThrow('blob verification failed');
    expect(await layout.hasBlob(claimed.digest)).toBe(false);
  });

  test('a manifest damaged on disk is reported, not returned', async () => {
    const dir = path.join(await tempDir(), 'layout');
    const layout = await OciLayoutTarget.open(dir);
    const bytes = manifestBytes(3);
    const desc = describeJson(OCI_MANIFEST, bytes);
    await layout.putManifest(desc, bytes, ['t']);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(layout.blobPath(desc.digest), manifestBytes(4));
    await expect(layout.fetchManifest(desc)).rejects.toThrow('is damaged on disk');
  });

  test('many processes tagging one layout at once lose nothing', async () => {
    const dir = path.join(await tempDir(), 'layout');
    const writers = 8;
    const script = `
      import { OciLayoutTarget } from ${JSON.stringify(path.join(repoRoot, 'src/content/layout/oci-layout.ts'))};
      import { describeJson, encodeJson } from ${JSON.stringify(path.join(repoRoot, 'src/oci/manifest.ts'))};
      import { sha256Digest } from ${JSON.stringify(path.join(repoRoot, 'src/oci/digest.ts'))};
      const n = Number(process.argv[1]);
      const layout = await OciLayoutTarget.open(${JSON.stringify(dir)});
      const config = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest('{}'), size: 2 };
      for (let i = 0; i < 5; i++) {
        const bytes = encodeJson({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [config], annotations: { n: n + '-' + i } });
        await layout.putManifest(describeJson('application/vnd.oci.image.manifest.v1+json', bytes), bytes, ['w' + n + '-' + i]);
      }`;
    await Promise.all(
      Array.from(
        { length: writers },
        (_, n) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(n)], {
              stdio: 'inherit',
            });
            child.on('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`writer ${n} exited ${code}`)),
            );
          }),
      ),
    );
    const tags = await tagsIn(dir);
    expect(tags.size).toBe(writers * 5);
    for (let n = 0; n < writers; n++) for (let i = 0; i < 5; i++) expect(tags.has(`w${n}-${i}`)).toBe(true);
  });
});
