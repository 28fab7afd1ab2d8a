import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { describe, expect, test } from 'vitest';
import { sourceDateEpoch } from '../../src/config/env.ts';
import { OciLayoutTarget } from '../../src/content/layout/oci-layout.ts';
import { scanModelDir } from '../../src/model/source.ts';
import { FramePool } from '../../src/pack/frame-pool.ts';
import { type PackContext, packTarLayer, type TarCompression } from '../../src/pack/layer-packer.ts';
import { encodeFileHeader, USTAR_MAX_SIZE } from '../../src/pack/tar-header.ts';
import { chooseCompressor } from '../../src/pack/zstd.ts';
import { HashWorker } from '../../src/util/hash-worker.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { tempDir } from '../helpers/tmp.ts';

const longDir = `${'deep/'.repeat(25)}`; // 125 bytes of folders: needs the ustar prefix field
const FILES: Record<string, string> = {
  'a.txt': 'alpha\n',
  'run.sh': '#!/bin/sh\necho hi\n',
  [`${longDir}nested.json`]: '{"x":1}\n',
  [`${'n'.repeat(120)}/${'f'.repeat(110)}.bin`]: 'no ustar split fits: pax path\n',
  'ünïcödé/файл.txt': 'utf-8 names go in a pax record\n',
  empty: '',
};

async function packDir(dir: string, compression: TarCompression, frameSize = 1 << 20, mtime = 0) {
  const layoutDir = path.join(await tempDir(), 'layout');
  const layout = await OciLayoutTarget.open(layoutDir);
  const { files } = await scanModelDir(dir);
  const hasher = new HashWorker();
  const ctx: PackContext = { pool: new FramePool(frameSize, 4), hasher, mtime };
  try {
    const packed = await packTarLayer(files, compression, await layout.openBlobWriter(), ctx);
    return { packed, blobPath: layout.blobPath(packed.digest), files };
  } finally {
    await hasher.close();
  }
}

async function readWithTarStream(tar: Buffer) {
  const entries: { header: tarStream.Header; body: Buffer }[] = [];
  const extract = tarStream.extract();
  Readable.from([tar]).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    entries.push({ header: entry.header, body: Buffer.concat(chunks) });
  }
  return entries;
}

describe('deterministic tar', () => {
  test('GNU tar and tar-stream read back every file with normalised metadata', async () => {
    const dir = await modelFromFiles(FILES);
    await chmod(path.join(dir, 'run.sh'), 0o700);
    const { packed, blobPath } = await packDir(dir, { kind: 'none' });
    const tar = await readFile(blobPath);
    expect(packed.diffId).toBe(packed.digest); // plain tar: the blob is the uncompressed layer

    const listing = execFileSync('tar', ['--list', '--verbose', '--numeric-owner', '--file', blobPath], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' },
    });
    const lines = listing.trim().split('\n');
    expect(lines).toHaveLength(Object.keys(FILES).length);
    for (const line of lines) expect(line).toMatch(/^-rw[-x]r-[-x]r-[-x] 0\/0 +\d+ 1970-01-01 00:00 /);
    expect(lines.find((l) => l.endsWith(' run.sh'))).toMatch(/^-rwxr-xr-x /);
    expect(lines.find((l) => l.endsWith(' a.txt'))).toMatch(/^-rw-r--r-- /);

    const out = path.join(await tempDir(), 'x');
    await mkdir(out);
    execFileSync('tar', ['--extract', '--file', blobPath, '--directory', out]);
    for (const [rel, content] of Object.entries(FILES)) {
      expect(await readFile(path.join(out, rel), 'utf8')).toBe(content);
    }

    const entries = await readWithTarStream(tar);
    expect(entries.map((e) => e.header.name)).toEqual(
      Object.keys(FILES).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    for (const { header } of entries) {
      expect(header).toMatchObject({ uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
      expect(header.mtime.getTime()).toBe(0);
    }
  });

  test('pax records appear only for names that need them', async () => {
    const plain = encodeFileHeader({ path: `${longDir}nested.json`, size: 8, executable: false }, 0);
    expect(plain.length).toBe(512); // fits ustar name + prefix
    const nonAscii = encodeFileHeader({ path: 'ünïcödé.txt', size: 8, executable: false }, 0);
    expect(nonAscii.length).toBeGreaterThan(512);
    expect(nonAscii.subarray(0, 512).toString('latin1', 156, 157)).toBe('x');
    expect(nonAscii.toString('utf8')).toContain(' path=ünïcödé.txt\n');
  });

  test('sizes over 8 GiB - 1 get a pax size record that GNU tar and tar-stream read', async () => {
    const size = USTAR_MAX_SIZE + 2;
    const header = encodeFileHeader({ path: 'huge.gguf', size, executable: false }, 0);
    expect(header.toString('latin1')).toContain(` size=${size}\n`);
    const headerOnly = path.join(await tempDir(), 'header.tar');
    await writeFile(headerOnly, header);
    // The archive stops after the header; tar lists the member before reaching its missing data.
    const listed = spawnSync('tar', ['-tvf', headerOnly], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC' },
    });
    expect(listed.stdout).toContain(` ${size} 1970-01-01 00:00 huge.gguf`);
    const extract = tarStream.extract();
    const seen = new Promise<tarStream.Header>((resolve) => extract.on('entry', (h) => resolve(h)));
    extract.write(Buffer.concat([header, Buffer.alloc(512)]));
    expect((await seen).size).toBe(size);
  });

  test('SOURCE_DATE_EPOCH sets the mtime of every entry', async () => {
    const mtime = sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' })!;
    expect(mtime).toBe(1700000000);
    expect(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: 'yesterday' })).toThrow('SOURCE_DATE_EPOCH');
    expect(sourceDateEpoch({})).toBeUndefined();
    const dir = await modelFromFiles({ 'a.txt': 'a' });
    const { blobPath } = await packDir(dir, { kind: 'none' }, 1 << 20, mtime);
    const entries = await readWithTarStream(await readFile(blobPath));
    expect(entries[0]?.header.mtime.getTime()).toBe(1700000000 * 1000);
  });
});

describe('framed zstd', () => {
  test('the layer is a series of zstd frames that zstd -d turns back into the tar', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const dir = await modelFromFiles({ 'w.bin': big, 'config.json': '{}' });
    const zstd = { kind: 'zstd', level: 3, compressor: chooseCompressor().compressor } as const;
    const { packed, blobPath } = await packDir(dir, zstd, 1 << 20);
    const { blobPath: plainPath, packed: plain } = await packDir(dir, { kind: 'none' });

    const decompressed = execFileSync('zstd', ['-d', '-c', blobPath], { maxBuffer: 64 << 20 });
    expect(decompressed.equals(await readFile(plainPath))).toBe(true);
    expect(packed.diffId).toBe(plain.digest);
    expect(packed.uncompressedSize).toBe(plain.size);

    const frames = execFileSync('zstd', ['-l', '-v', blobPath], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(frames).toMatch(new RegExp(`# Zstandard Frames: ${Math.ceil(plain.size / (1 << 20))}\\b`));
  });

  test('same files, same bytes; the frame size changes the blob but not the diffID', async () => {
    const dir = await modelFromFiles({ 'w.bin': Buffer.alloc(3 << 20, 7), 'README.md': '# x' });
    const zstd = { kind: 'zstd', level: 3, compressor: chooseCompressor().compressor } as const;
    const a = await packDir(dir, zstd, 1 << 20);
    const b = await packDir(dir, zstd, 1 << 20);
    const c = await packDir(dir, zstd, 2 << 20);
    expect(b.packed.digest).toBe(a.packed.digest);
    expect(c.packed.digest).not.toBe(a.packed.digest);
    expect(c.packed.diffId).toBe(a.packed.diffId);
    expect(a.packed.files.map((f) => f.path)).toEqual(['README.md', 'w.bin']);
  });
});
