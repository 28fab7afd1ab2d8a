// What the registry and pull benchmarks share: their inputs, samples with medians, a registry on
// tmpfs, and an OCI layout written by hand (for the baseline images skopeo pushes).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { cp, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../test/helpers/registry-server.ts';

export interface BenchRow {
  what: string;
  seconds: number;
  bytes: number;
  note?: string;
  rssKiB?: number;
}

export interface BenchInput {
  modelDir: string;
  bytes: number;
  rounds: number;
  work: string;
  /** Runs the CLI with these arguments; JSON result, wall seconds, peak RSS. */
  runCli: (
    args: string[],
    env?: NodeJS.ProcessEnv,
  ) => Promise<{ result: Record<string, unknown>; wall: number; rssKiB?: number }>;
  /** Seconds for a shell script (run asynchronously: the registry lives in this process). */
  shell: (script: string) => Promise<number>;
}

/** Measurements by name; the median of each (the rounds are interleaved: the machine is noisy). */
export function samples() {
  const all = new Map<string, number[]>();
  return {
    add(name: string, value: number | undefined): void {
      if (value !== undefined && !Number.isNaN(value)) all.set(name, [...(all.get(name) ?? []), value]);
    },
    median(name: string): number {
      const v = [...(all.get(name) ?? [Number.NaN])].sort((a, b) => a - b);
      return v[Math.floor((v.length - 1) / 2)]!;
    },
  };
}

/**
 * CNCF Distribution on loopback, its storage on tmpfs where there is one: the registry shares this
 * machine's cores with us, and page-cache writeback of its files would be charged to the client (a
 * remote registry costs the client nothing).
 */
export function benchRegistryServer(): Promise<TestRegistry> {
  const parentDir = existsSync('/dev/shm') ? '/dev/shm' : undefined;
  return startRegistry({ logLevel: 'error', ...(parentDir ? { parentDir } : {}) });
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** An OCI layout holding one image (tag `v1`) of `layers`, each file copied in as a blob. */
export async function writeImageLayout(
  layout: string,
  layers: { file: string; mediaType: string; diffId: string }[],
): Promise<void> {
  const blobs = path.join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await writeFile(path.join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.byteLength };
  };
  const descriptors = [];
  for (const layer of layers) {
    const digest = await sha256File(layer.file);
    const blob = path.join(blobs, digest.slice(7));
    if (!existsSync(blob)) await cp(layer.file, blob);
    const { size } = await stat(layer.file);
    descriptors.push({ mediaType: layer.mediaType, digest, size });
  }
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: descriptors,
      }),
    ),
  );
  await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
}
