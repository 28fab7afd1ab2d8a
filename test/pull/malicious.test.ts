// Hand-made hostile artifacts: each is refused with a one-line error, nothing lands outside DIR,
// and nothing unverified stays inside it.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pack } from 'tar-stream';
import { describe, expect, test } from 'vitest';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { describeJson, encodeJson } from '../../src/oci/manifest.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { snapshotTree } from '../helpers/tree.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}` as const;

type Entry = {
  name: string;
  body?: Buffer;
  type?: 'file' | 'symlink' | 'link' | 'character-device' | 'fifo' | 'directory';
  linkname?: string;
  size?: number;
};

/** A tar of exactly these entries, by tar-stream's writer (which checks nothing). */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (d: unknown) => chunks.push(d as Buffer));
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? 'file',
      ...(e.linkname ? { linkname: e.linkname } : {}),
      mode: 0o644,
    };
    if (e.type === 'character-device') Object.assign(header, { devmajor: 1, devminor: 3 });
    await new Promise<void>((resolve, reject) =>
      p.entry({ ...header, size: e.body?.length ?? 0 }, e.body ?? Buffer.alloc(0), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

interface Crafted {
  tar: Buffer;
  /** The io.model-oci.files annotation: as computed from the entries, none, or as given. */
  files?: 'none' | { path: string; size: number; digest: string }[];
  zstd?: boolean;
  /** Replace the stored blob with other bytes of the same length after the manifest names the real ones. */
  blobLies?: boolean;
  diffIdLies?: boolean;
}

/** An OCI layout with one model artifact under tag `evil`, built from `layer` as told. */
async function craft(layer: Crafted): Promise<string> {
  const root = path.join(await tempDir(), 'layout');
  const target = await OciLayoutTarget.open(root);
  const blob = layer.zstd ? execFileSync('zstd', ['-q', '-c'], { input: layer.tar }) : layer.tar;
  const desc = {
    mediaType: `application/vnd.cncf.model.weight.v1.${layer.zstd ? 'tar+zstd' : 'tar'}`,
    digest: sha(blob),
    size: blob.length,
    annotations: {
      'org.opencontainers.image.title': 'evil.tar',
      ...(layer.files && layer.files !== 'none' ? { 'io.model-oci.files': JSON.stringify(layer.files) } : {}),
    },
  };
  await target.putBlob(desc, blob);
  const diffId = layer.diffIdLies ? sha(Buffer.from('something else')) : sha(layer.tar);
  const config = encodeJson({
    descriptor: { name: 'evil' },
    config: {},
    modelfs: { type: 'layers', diffIds: [diffId] },
  });
  const configDesc = describeJson('application/vnd.cncf.model.config.v1+json', config);
  await target.putBlob(configDesc, config);
  const manifest = encodeJson({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.cncf.model.manifest.v1+json',
    config: configDesc,
    layers: [desc],
  });
  await target.putManifest(describeJson('application/vnd.oci.image.manifest.v1+json', manifest), manifest, [
    'evil',
  ]);
  if (layer.blobLies) {
    const other = Buffer.from(blob);
    other[other.length >> 1]! ^= 0xff;
    await writeFile(path.join(root, 'blobs', 'sha256', desc.digest.slice(7)), other);
  }
  return root;
}

const listed = (entries: Entry[]) =>
  entries
    .filter((e) => (e.type ?? 'file') === 'file')
    .map((e) => ({ path: e.name, size: e.body!.length, digest: sha(e.body!) }));

/**
 * Pulls `layout:evil` into a fresh DIR whose parent also holds an `outside` folder links aim at;
 * expects exit 1 and a one-line error matching `why`, nothing new outside DIR and nothing in DIR
 * but pull's (empty) state folder — or what `prepare` put there.
 */
async function expectRefused(
  layout: string,
  why: RegExp,
  prepare?: (dir: string, outside: string) => Promise<void>,
) {
  const parent = await tempDir();
  const dir = path.join(parent, 'out');
  const outside = path.join(parent, 'outside');
  await mkdir(outside);
  await mkdir(dir);
  await prepare?.(dir, outside);
  const before = await snapshotTree(parent);
  const run = await runCli(['model', 'pull', `oci-layout:${layout}:evil`, '--to', dir]);
  expect(run.code).toBe(1);
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^model-oci: error: /);
  expect(lines[0]).toMatch(why);
  const after = await snapshotTree(parent);
  const added = Object.keys(after).filter((p) => !(p in before) && !p.startsWith('out/.cache/'));
  expect(added).toEqual([]);
  expect(await readdir(path.join(dir, '.cache/model-oci/partial')).catch(() => [])).toEqual([]);
  return run;
}

const body = (text: string) => Buffer.from(text);

describe('model pull refuses hostile artifacts', () => {
  test('(what is allowed) a tar of another tool: folders, links that stay inside, a hard link to an earlier file', async () => {
    const layout = await craft({
      tar: await tarOf([
        { name: 'weights', type: 'directory' },
        { name: 'weights/a.safetensors', body: body('AAAA') },
        { name: 'current', type: 'symlink', linkname: 'weights/a.safetensors' },
        { name: 'copy.safetensors', type: 'link', linkname: 'weights/a.safetensors' },
      ]),
      zstd: true,
    });
    const dir = path.join(await tempDir(), 'out');
    const run = await runCli(['model', 'pull', `oci-layout:${layout}:evil`, '--to', dir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(await readFile(path.join(dir, 'current'), 'utf8')).toBe('AAAA');
    expect(await readFile(path.join(dir, 'copy.safetensors'), 'utf8')).toBe('AAAA');
    expect(await readlink(path.join(dir, 'current'))).toBe('weights/a.safetensors');
  });

  test('a path that climbs out with ..', async () => {
    const layout = await craft({ tar: await tarOf([{ name: '../evil.txt', body: body('pwned') }]) });
    await expectRefused(layout, /refused entry "\.\.\/evil\.txt": the path climbs out with \.\./);
  });

  test('an absolute path', async () => {
    const layout = await craft({
      tar: await tarOf([{ name: '/tmp/evil.txt', body: body('pwned') }]),
      zstd: true,
    });
    await expectRefused(layout, /refused entry "\/tmp\/evil\.txt": the path is absolute/);
  });

  test('a symlink out of the directory, and a write through a symlink that stays inside', async () => {
    const out = await craft({
      tar: await tarOf([{ name: 'escape', type: 'symlink', linkname: '../outside' }]),
    });
    await expectRefused(out, /refused entry "escape": a symlink to "\.\.\/outside", outside the directory/);
    const through = await craft({
      tar: await tarOf([
        { name: 'sub', type: 'symlink', linkname: 'real' },
        { name: 'sub/evil.txt', body: body('pwned') },
      ]),
    });
    await expectRefused(through, /refused entry "sub\/evil\.txt": it would be written through the link sub/);
  });

  test('a symlink already in DIR is never written through', async () => {
    const files = [{ name: 'shards/model.safetensors', body: randomBytes(1000) }];
    const layout = await craft({ tar: await tarOf(files), files: listed(files) });
    await expectRefused(layout, /it would be written through the symlink shards/, async (dir, outside) => {
      await symlink(outside, path.join(dir, 'shards'));
    });
  });

  test('a hard link out of the directory', async () => {
    const layout = await craft({
      tar: await tarOf([{ name: 'passwd', type: 'link', linkname: '../../../etc/passwd' }]),
    });
    await expectRefused(layout, /refused entry "\.\.\/\.\.\/\.\.\/etc\/passwd": the path climbs out/);
    const absolute = await craft({
      tar: await tarOf([{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }]),
    });
    await expectRefused(absolute, /the path is absolute/);
  });

  test('device nodes and FIFOs', async () => {
    const device = await craft({ tar: await tarOf([{ name: 'null', type: 'character-device' }]) });
    await expectRefused(device, /refused entry "null": a character-device/);
    const fifo = await craft({ tar: await tarOf([{ name: 'pipe', type: 'fifo' }]) });
    await expectRefused(fifo, /refused entry "pipe": a fifo/);
  });

  test('a duplicate entry', async () => {
    const layout = await craft({
      tar: await tarOf([
        { name: 'config.json', body: body('{"a":1}') },
        { name: 'config.json', body: body('{"a":2}') },
      ]),
    });
    await expectRefused(layout, /refused entry "config\.json": a second entry of the same path/);
  });

  test('a blob whose digest lies', async () => {
    const files = [{ name: 'model.safetensors', body: randomBytes(200_000) }];
    for (const zstd of [false, true]) {
      const layout = await craft({ tar: await tarOf(files), files: listed(files), zstd, blobLies: true });
      await expectRefused(layout, /does not match its digest|does not decompress/);
    }
  });

  test('a diffID that lies', async () => {
    const files = [{ name: 'model.safetensors', body: randomBytes(200_000) }];
    const layout = await craft({
      tar: await tarOf(files),
      files: listed(files),
      zstd: true,
      diffIdLies: true,
    });
    await expectRefused(layout, /the content does not match the diffID/);
  });

  test('a file digest that lies, and a size that disagrees with the header', async () => {
    const files = [
      { name: 'model.safetensors', body: randomBytes(200_000) },
      { name: 'config.json', body: body('{}') },
    ];
    const lying = listed(files).map((f, i) => (i === 0 ? { ...f, digest: sha(body('other')) } : f));
    const layout = await craft({ tar: await tarOf(files), files: lying, zstd: true });
    await expectRefused(layout, /model\.safetensors does not match its digest/);
    const sized = listed(files).map((f, i) => (i === 1 ? { ...f, size: 99 } : f));
    const other = await craft({ tar: await tarOf(files), files: sized });
    await expectRefused(
      other,
      /refused entry "config\.json": its header says 2 bytes, the layer's file list 99/,
    );
  });

  test('a tar cut short inside a file', async () => {
    const whole = await tarOf([{ name: 'model.safetensors', body: randomBytes(100_000) }]);
    const layout = await craft({ tar: whole.subarray(0, 20_000) });
    await expectRefused(layout, /not a valid tar: Unexpected end of data/);
  });

  test('a manifest over 4 MiB', async () => {
    const layout = await craft({ tar: await tarOf([{ name: 'a.txt', body: body('a') }]) });
    // A manifest whose annotations make it 5 MiB, stored and tagged by hand (our layout refuses to write one).
    const huge = encodeJson({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(body('{}')), size: 2 },
      layers: [],
      annotations: { padding: 'x'.repeat(5 * 1024 * 1024) },
    });
    await writeFile(path.join(layout, 'blobs', 'sha256', sha(huge).slice(7)), huge);
    const indexFile = path.join(layout, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8'));
    index.manifests = [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(huge),
        size: huge.length,
        annotations: { 'org.opencontainers.image.ref.name': 'evil' },
      },
    ];
    await writeFile(indexFile, JSON.stringify(index));
    await expectRefused(layout, /is 5243\d\d\d bytes, over the 4194304-byte manifest limit/);
  });
});
