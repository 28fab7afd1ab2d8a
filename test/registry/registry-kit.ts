import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, onTestFinished } from 'vitest';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { describeJson, encodeJson } from '../../src/oci/manifest.ts';
import { MODEL_ARTIFACT_TYPE, MODEL_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { parseReference } from '../../src/oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../../src/registry/open-registry.ts';
import type { RegistryTarget } from '../../src/registry/registry-target.ts';
import type { TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

// What the auth and TLS tests share: opening a target the way the CLI does (but with a clean env and
// a temp home, so the machine's docker config or GITHUB_TOKEN never leak in), a small artifact to
// push and pull, and a watch that no error ever carries a secret.

export const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Collects the secrets a test file uses and every error it caught, to check none holds one. */
export class SecretWatch {
  readonly secrets = new Set<string>();
  /** Every error caught: message, String(), JSON, stack and cause. */
  readonly seen: string[] = [];

  add(...secrets: string[]): void {
    for (const secret of secrets) this.secrets.add(secret);
  }

  /** A registry's password, also as the base64 a Basic header carries. */
  addRegistry(registry: TestRegistry): void {
    this.add(registry.password, b64(`${registry.username}:${registry.password}`));
  }

  /** The error a promise rejects with, checked and recorded for the final check. */
  async failure(promise: Promise<unknown>): Promise<Error> {
    const outcome = await promise.then(
      () => undefined,
      (err: unknown) => err,
    );
    if (!(outcome instanceof Error)) throw new Error(`expected a failure, got ${String(outcome)}`);
    this.seen.push(outcome.message, String(outcome), JSON.stringify(outcome), outcome.stack ?? '');
    if (outcome.cause !== undefined) this.seen.push(String(outcome.cause), safeJson(outcome.cause));
    for (const text of [outcome.message, String(outcome), JSON.stringify(outcome)]) this.expectNone(text);
    return outcome;
  }

  expectNone(text: string): void {
    for (const secret of this.secrets) expect(text).not.toContain(secret);
    // A JWT (the test token server's tokens) starts with base64url of `{"typ":"JWT"…`.
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
  }
}

/** A TLS error's cause holds the peer certificate, which refers to itself: no JSON for that one. */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** A one-line message a user can read: no newline, not empty. */
export function expectOneLine(message: string): void {
  expect(message.length).toBeGreaterThan(10);
  expect(message).not.toContain('\n');
}

export interface Artifact {
  config: Descriptor;
  configBytes: Uint8Array;
  layer: Descriptor;
  layerBytes: Uint8Array;
  manifest: Descriptor;
  manifestBytes: Uint8Array;
}

/** A small model artifact: a ModelPack config, one raw weight layer (unique bytes), its manifest. */
export function artifact(name = 'm'): Artifact {
  const layerBytes = new Uint8Array(randomBytes(4096));
  const layer = describeJson('application/vnd.cncf.model.weight.v1.raw', layerBytes, {
    annotations: { 'org.opencontainers.image.title': 'model.safetensors' },
  });
  const configBytes = encodeJson({
    descriptor: { name },
    config: {},
    modelfs: { type: 'layers', diffIds: [] },
  });
  const config = describeJson(MODEL_CONFIG, configBytes);
  const manifestBytes = encodeJson({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: MODEL_ARTIFACT_TYPE,
    config,
    layers: [layer],
  });
  return {
    config,
    configBytes,
    layer,
    layerBytes,
    manifest: describeJson(OCI_MANIFEST, manifestBytes),
    manifestBytes,
  };
}

export async function push(target: RegistryTarget, a: Artifact, tag: string): Promise<void> {
  await target.putBlob(a.config, a.configBytes);
  await target.putBlob(a.layer, a.layerBytes);
  await target.putManifest(a.manifest, a.manifestBytes, [tag]);
}

export async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Reads the artifact back by tag and checks every byte. */
export async function expectPulled(target: RegistryTarget, a: Artifact, tag: string): Promise<void> {
  const desc = await target.resolve(tag);
  expect(desc?.digest).toBe(a.manifest.digest);
  expect(Buffer.from(await target.fetchManifest(desc!)).equals(Buffer.from(a.manifestBytes))).toBe(true);
  expect((await concat(await target.fetchBlob(a.layer))).equals(Buffer.from(a.layerBytes))).toBe(true);
}

export interface Opened {
  target: RegistryTarget;
  /** What onCredential was told (where credentials came from; never the secret). */
  credentialSources: string[];
  homeDir: string;
}

/**
 * Opens `host/repo` like the CLI does (its flags named in hints), with a temp home and an env
 * holding only PATH (plus `env`), and short retry delays. Closed when the test ends.
 */
export async function open(
  host: string,
  repo: string,
  access: 'pull' | 'push',
  options: Partial<RegistryOptions> & { homeDir?: string } = {},
): Promise<Opened> {
  const credentialSources: string[] = [];
  const homeDir = options.homeDir ?? (await tempDir());
  const target = await openRegistryTarget(parseReference(`${host}/${repo}:1`), access, {
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    hints: { caFile: '--ca-file FILE', plainHttp: '--plain-http HOST' },
    ...options,
    env: { PATH: process.env.PATH, ...options.env },
    homeDir,
    onCredential: (description) => credentialSources.push(description),
  });
  onTestFinished(() => target.close());
  return { target, credentialSources, homeDir };
}

/** Writes `~/.docker/config.json` under `homeDir`; returns its path. */
export async function writeDockerConfig(homeDir: string, config: object): Promise<string> {
  const file = path.join(homeDir, '.docker', 'config.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(config));
  return file;
}
