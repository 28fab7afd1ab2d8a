// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${VAR}
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type BaseBuildOptions, buildBase } from '../../src/base/build-base.ts';
import { inputListing } from '../../src/base/input-digest.ts';
import { UserError } from '../../src/util/errors.ts';
import { baseBuildEnvironment, isolatedBuildah } from '../helpers/buildah.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { skopeoJson } from '../helpers/tools.ts';

// Real buildah (vfs storage in a temp dir, chroot isolation) against a real CNCF Distribution.

let registry: TestRegistry;
let work: string;
let storage: { root: string; runroot: string; storageDriver: string };

/** A busybox image pushed as <host>/upstream/busybox:1; `version` makes each one different. */
let pushUpstream: (version: string) => void;

const inspect = (ref: string) => skopeoJson('inspect', '--raw', '--tls-verify=false', `docker://${ref}`);
const config = (ref: string) =>
  skopeoJson('inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}`);

async function makeContext(): Promise<string> {
  const dir = await mkdtemp(path.join(work, 'ctx-'));
  await writeFile(
    path.join(dir, 'Dockerfile'),
    [
      `ARG BASE=${registry.host}/upstream/busybox:1`,
      'FROM ${BASE}',
      'RUN echo hi > /hello',
      'COPY app.txt /app.txt',
      'LABEL io.model-oci.runtime.name=vllm io.model-oci.runtime.version=0.8.5',
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'app.txt'), 'app v1\n');
  await writeFile(path.join(dir, '.dockerignore'), 'notes\n*.log\n');
  await mkdir(path.join(dir, 'notes'));
  await writeFile(path.join(dir, 'notes', 'todo.txt'), 'one\n');
  await writeFile(path.join(dir, 'debug.log'), 'x\n');
  return dir;
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(path.join(tmpdir(), 'model-oci-base-test-'));
  const buildah = isolatedBuildah(work);
  storage = buildah.storage;
  pushUpstream = (version) => buildah.pushBusybox(`${registry.host}/upstream/busybox:1`, version);
  pushUpstream('1');
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('buildBase with buildah', () => {
  let context: string;
  const image = () => `${registry.host}/bases/vllm:0.8.5`;
  const build = (extra: Partial<BaseBuildOptions> = {}) =>
    buildBase({
      context,
      image: image(),
      builder: 'buildah',
      buildah: storage,
      ...baseBuildEnvironment(image(), work),
      ...extra,
    });
  const runs: Record<string, Awaited<ReturnType<typeof buildBase>>> = {};

  test('builds and pushes: zstd layers, input digest, base and runtime on labels and annotations', async () => {
    context = await makeContext();
    const lines: string[] = [];
    const r = await build({ onLog: (l) => lines.push(l) });
    runs.first = r;
    expect(r.status).toBe('built');
    expect(r.builder).toBe('buildah');
    expect(r.ref).toBe(`${registry.host}/bases/vllm@${r.digest}`);
    expect(r.tags).toEqual(['0.8.5', `input-${r.inputDigest.slice(7)}`]);
    expect(r.runtime).toEqual({ name: 'vllm', version: '0.8.5' });
    const upstream = inspect(`${registry.host}/upstream/busybox:1`);
    expect(r.upstream).toHaveLength(1);
    expect(r.upstream[0]?.image).toBe(`${registry.host}/upstream/busybox:1`);
    expect(lines.some((l) => l.includes('STEP'))).toBe(true);

    const manifest = inspect(image());
    // buildah without --layers commits the whole stage as one layer on top of the upstream's.
    expect(manifest.layers.length).toBe(upstream.layers.length + 1);
    for (const layer of manifest.layers)
      expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(manifest.annotations).toMatchObject({
      'io.model-oci.base.input-digest': r.inputDigest,
      'org.opencontainers.image.base.name': `${registry.host}/upstream/busybox:1`,
      'org.opencontainers.image.base.digest': r.upstream[0]?.digest,
    });
    const labels = config(image()).config.Labels;
    expect(labels).toMatchObject({
      'io.model-oci.base.input-digest': r.inputDigest,
      'io.model-oci.runtime.name': 'vllm',
      'io.model-oci.runtime.version': '0.8.5',
    });
    expect(inspect(`${registry.host}/bases/vllm:input-${r.inputDigest.slice(7)}`).layers).toEqual(
      manifest.layers,
    );
  });

  test('the same inputs are skipped in seconds, also after an excluded file changed', async () => {
    const started = Date.now();
    const again = await build();
    expect(again).toMatchObject({
      status: 'skipped',
      digest: runs.first?.digest,
      inputDigest: runs.first?.inputDigest,
    });
    expect(again.reason).toMatch(/already holds an image built from these inputs/);
    expect(again.runtime).toEqual({ name: 'vllm', version: '0.8.5' });
    expect(Date.now() - started).toBeLessThan(5_000);
    await writeFile(path.join(context, 'notes', 'todo.txt'), 'two\n');
    await writeFile(path.join(context, 'debug.log'), 'y\n');
    expect((await build()).status).toBe('skipped');
  });

  test('a changed context file rebuilds; the earlier image stays addressable by its input tag', async () => {
    await writeFile(path.join(context, 'app.txt'), 'app v2\n');
    const r = await build();
    runs.second = r;
    expect(r.status).toBe('built');
    expect(r.inputDigest).not.toBe(runs.first?.inputDigest);
    expect(r.reason).toMatch(/inputs changed/);
    expect(inspect(image()).config.digest).not.toBe(
      inspect(`${registry.host}/bases/vllm:input-${runs.first?.inputDigest.slice(7)}`).config.digest,
    );
    expect(
      inspect(`${registry.host}/bases/vllm@${runs.first?.digest}`).annotations[
        'io.model-oci.base.input-digest'
      ],
    ).toBe(runs.first?.inputDigest);
  });

  test('a changed upstream image under the same tag rebuilds (scheduled security rebuild)', async () => {
    pushUpstream('2');
    const r = await build();
    expect(r.status).toBe('built');
    expect(r.upstream[0]?.digest).not.toBe(runs.second?.upstream[0]?.digest);
    expect(r.reason).toMatch(/^upstream .*upstream\/busybox:1 changed/);
    expect(inspect(image()).annotations['org.opencontainers.image.base.digest']).toBe(r.upstream[0]?.digest);
    expect((await build()).status).toBe('skipped');
    runs.third = r;
  });

  test('force rebuilds regardless; explicit runtime goes on the image', async () => {
    const r = await build({ force: true, runtime: { name: 'vllm', version: '0.8.6' } });
    expect(r.status).toBe('built');
    expect(r.reason).toBe('forced');
    expect(r.runtime).toEqual({ name: 'vllm', version: '0.8.6' });
    expect(inspect(image()).annotations).toMatchObject({
      'io.model-oci.runtime.name': 'vllm',
      'io.model-oci.runtime.version': '0.8.6',
    });
    expect(config(image()).config.Labels['io.model-oci.runtime.version']).toBe('0.8.6');
  });

  test('a missing Dockerfile and an unresolvable FROM are one-line errors', async () => {
    const empty = await tempDir();
    const options = {
      image: image(),
      builder: 'buildah' as const,
      buildah: storage,
      ...baseBuildEnvironment(image(), work),
    };
    const missing = buildBase({ context: empty, ...options });
    await expect(missing).rejects.toThrow(UserError);
    await expect(missing).rejects.toThrow(/^no Dockerfile or Containerfile in \S+$/);
    await writeFile(path.join(empty, 'Dockerfile'), `FROM ${registry.host}/upstream/nope:1\n`);
    const unresolvable = buildBase({ context: empty, ...options });
    await expect(unresolvable).rejects.toThrow(
      new RegExp(`^cannot resolve FROM image ${registry.host}/upstream/nope:1: [^\\n]+$`),
    );
  });

  test('a failing RUN names the exit code and the last lines', async () => {
    const dir = await tempDir();
    await writeFile(
      path.join(dir, 'Containerfile'),
      `FROM ${registry.host}/upstream/busybox:1\nRUN echo boom >&2; exit 3\n`,
    );
    const failing = buildBase({
      context: dir,
      image: `${registry.host}/bases/broken:1`,
      builder: 'buildah',
      buildah: storage,
      ...baseBuildEnvironment(`${registry.host}/bases/broken:1`, work),
    });
    await expect(failing).rejects.toThrow(/^buildah bud failed \(exit code \d+\): .*boom/);
  });
});

describe('input listing', () => {
  test('lists included entries with mode, size and digest; excluded ones not', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(path.join(dir, '.dockerignore'), '*\n!keep\n');
    await writeFile(path.join(dir, 'keep'), 'k', { mode: 0o755 });
    await writeFile(path.join(dir, 'drop'), 'd');
    await symlink('keep', path.join(dir, 'link'));
    const listing = await inputListing({
      dockerfileBytes: Buffer.from('FROM scratch\n'),
      dockerfileInContext: 'Dockerfile',
      context: dir,
      buildArgs: { B: '2', A: '1' },
      platform: 'linux/amd64',
      from: [],
    });
    const digest = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
    expect(listing.split('\n')).toEqual([
      'model-oci base input v1',
      `dockerfile ${digest('FROM scratch\n')}`,
      `file 644 8 ${digest('*\n!keep\n')} ".dockerignore"`,
      `file 644 13 ${digest('FROM scratch\n')} "Dockerfile"`,
      `file 755 1 ${digest('k')} "keep"`,
      'arg "A" "1"',
      'arg "B" "2"',
      'target ""',
      'platform "linux/amd64"',
      '',
    ]);
  });
});
