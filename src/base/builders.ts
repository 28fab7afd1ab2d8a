import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Digest, isDigest } from '../oci/digest.ts';
import { UserError } from '../util/errors.ts';
import { runOrFail, succeeds } from './run-tool.ts';

export type BuilderName = 'buildah' | 'buildx';

/** Where buildah keeps images; unset fields follow the machine's containers configuration. */
export interface BuildahOptions {
  /** `--root`: image storage (tests use a temp dir so the machine's storage is untouched). */
  root?: string;
  /** `--runroot`: runtime state. */
  runroot?: string;
  /** `--storage-driver`; default `vfs` when the machine has no containers storage.conf. */
  storageDriver?: string;
  /** `--isolation` for RUN; default $BUILDAH_ISOLATION, else `chroot` (works unprivileged in CI). */
  isolation?: string;
  /** Path of the buildah program (default `buildah` on PATH). */
  command?: string;
}

export interface BuildRequest {
  context: string;
  /** The Dockerfile to build (the pinned copy). */
  dockerfile: string;
  /** REGISTRY/REPO:TAG (buildx pushes there itself). */
  image: string;
  buildArgs: Record<string, string>;
  target?: string;
  platform?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** False when a FROM registry speaks plain HTTP (loopback or listed). */
  tlsVerify: boolean;
  /** The target registry speaks plain HTTP (buildx: registry.insecure). */
  insecurePush: boolean;
  /** auth.json with credentials for the registries involved (buildah only). */
  authFile?: string;
  /** A directory of extra CA certificates (`*.crt`) for buildah's --cert-dir. */
  certDir?: string;
  /** A private temp directory for the digest file, metadata and the OCI layout. */
  workDir: string;
  /** The environment the builder runs with. */
  env: NodeJS.ProcessEnv;
  buildah?: BuildahOptions;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

export type BuildOutcome =
  | { builder: 'buildah'; layoutDir: string; layoutTag: string; digest: Digest }
  | { builder: 'buildx'; digest: Digest };

/**
 * `auto`: buildah when it is installed (GitHub's Ubuntu runners have it; it is the builder every
 * test here runs), else docker buildx with a running engine. buildx only when asked, or as the
 * fallback: its zstd output needs the containerd image store or a docker-container builder.
 */
export async function chooseBuilder(
  wanted: 'auto' | BuilderName,
  env: NodeJS.ProcessEnv,
  buildah: BuildahOptions = {},
  signal?: AbortSignal,
): Promise<BuilderName> {
  if (wanted !== 'auto') return wanted;
  if (await succeeds(buildah.command ?? 'buildah', ['--version'], env, signal)) return 'buildah';
  if (
    (await succeeds('docker', ['buildx', 'version'], env, signal)) &&
    (await succeeds('docker', ['info'], env, signal))
  ) {
    return 'buildx';
  }
  throw new UserError('no image builder found: install buildah, or docker with buildx and a running engine');
}

export function runBuild(builder: BuilderName, req: BuildRequest): Promise<BuildOutcome> {
  return builder === 'buildah' ? buildWithBuildah(req) : buildWithBuildx(req);
}

function buildahGlobals(options: BuildahOptions, env: NodeJS.ProcessEnv): string[] {
  const args: string[] = [];
  const driver = options.storageDriver ?? (hasStorageConfig(env) ? undefined : 'vfs');
  if (driver) args.push('--storage-driver', driver);
  if (options.root) args.push('--root', options.root);
  if (options.runroot) args.push('--runroot', options.runroot);
  return args;
}

function hasStorageConfig(env: NodeJS.ProcessEnv): boolean {
  if (env.CONTAINERS_STORAGE_CONF || env.STORAGE_DRIVER) return true;
  const configHome = env.XDG_CONFIG_HOME ?? (env.HOME ? path.join(env.HOME, '.config') : undefined);
  const user = configHome ? path.join(configHome, 'containers', 'storage.conf') : undefined;
  return existsSync('/etc/containers/storage.conf') || (user !== undefined && existsSync(user));
}

const pairs = (flag: string, map: Record<string, string>) =>
  Object.entries(map).flatMap(([k, v]) => [flag, `${k}=${v}`]);

/**
 * buildah: `bud` into local storage (always pulling the FROM images, no layer cache), then `push`
 * to an OCI layout in the work dir with every layer compressed with zstd. The caller uploads that
 * layout with our registry client: buildah 1.28 (Debian 12) has no --force-compression, and a push
 * straight to a registry reuses the upstream's gzip layers when the registry already holds them.
 */
async function buildWithBuildah(req: BuildRequest): Promise<BuildOutcome> {
  const options = req.buildah ?? {};
  // containers/image copies whole layers to TMPDIR (else /var/tmp) while it pulls and pushes: keep
  // them in the work dir, which is under the temp dir the caller chose (RUNNER_TEMP in the Action).
  const env: NodeJS.ProcessEnv = { ...req.env, TMPDIR: req.workDir };
  const isolation = options.isolation ?? env.BUILDAH_ISOLATION ?? 'chroot';
  env.BUILDAH_ISOLATION = isolation;
  const buildah = options.command ?? 'buildah';
  const globals = buildahGlobals(options, env);
  const iidFile = path.join(req.workDir, 'iid');
  const bud = [
    ...globals,
    'bud',
    '--format=oci',
    '--pull=always',
    '--no-cache',
    '--layers=false',
    `--isolation=${isolation}`,
    '-f',
    req.dockerfile,
    '--iidfile',
    iidFile,
    ...pairs('--build-arg', req.buildArgs),
    ...(req.target ? ['--target', req.target] : []),
    ...(req.platform ? ['--platform', req.platform] : []),
    ...pairs('--label', req.labels),
    ...pairs('--annotation', req.annotations),
    ...(req.tlsVerify ? [] : ['--tls-verify=false']),
    ...(req.authFile ? ['--authfile', req.authFile] : []),
    ...(req.certDir ? ['--cert-dir', req.certDir] : []),
    req.context,
  ];
  const run = {
    env,
    ...(req.signal ? { signal: req.signal } : {}),
    ...(req.onLine ? { onLine: req.onLine } : {}),
  };
  req.onLine?.(`$ ${buildah} ${bud.join(' ')}`);
  await runOrFail('buildah bud', buildah, bud, run);
  const imageId = (await readFile(iidFile, 'utf8')).trim();
  const layoutDir = path.join(req.workDir, 'layout');
  const layoutTag = 'image';
  const digestFile = path.join(req.workDir, 'digest');
  const push = [
    ...globals,
    'push',
    '--format=oci',
    '--compression-format=zstd',
    '--digestfile',
    digestFile,
    imageId,
    `oci:${layoutDir}:${layoutTag}`,
  ];
  req.onLine?.(`$ ${buildah} ${push.join(' ')}`);
  await runOrFail('buildah push', buildah, push, run);
  const digest = (await readFile(digestFile, 'utf8')).trim();
  if (!isDigest(digest)) throw new Error(`buildah push wrote ${JSON.stringify(digest)} as the digest`);
  // The image is in the registry soon; the local copy would only fill the disk (vfs copies every layer).
  await runOrFail('buildah rmi', buildah, [...globals, 'rmi', imageId], run).catch(() => {});
  return { builder: 'buildah', layoutDir, layoutTag, digest };
}

/**
 * buildx: BuildKit builds and pushes in one go, every layer recompressed to zstd.
 * NOT TESTED: the test machines have no Docker engine. Credentials come from docker's own login
 * (docker/login-action); provenance is off so the result is one manifest, not an index.
 */
async function buildWithBuildx(req: BuildRequest): Promise<BuildOutcome> {
  const metadataFile = path.join(req.workDir, 'metadata.json');
  const output = [
    'type=image',
    `name=${req.image}`,
    'push=true',
    'oci-mediatypes=true',
    'compression=zstd',
    'force-compression=true',
    ...(req.insecurePush ? ['registry.insecure=true'] : []),
    ...Object.entries(req.annotations).map(([k, v]) => `annotation-manifest.${k}=${v}`),
  ]
    .map(csvField)
    .join(',');
  const args = [
    'buildx',
    'build',
    '--pull',
    '--no-cache',
    '--provenance=false',
    '-f',
    req.dockerfile,
    '--metadata-file',
    metadataFile,
    '--output',
    output,
    ...pairs('--build-arg', req.buildArgs),
    ...(req.target ? ['--target', req.target] : []),
    ...(req.platform ? ['--platform', req.platform] : []),
    ...pairs('--label', req.labels),
    req.context,
  ];
  req.onLine?.(`$ docker ${args.join(' ')}`);
  const run = {
    env: req.env,
    ...(req.signal ? { signal: req.signal } : {}),
    ...(req.onLine ? { onLine: req.onLine } : {}),
  };
  await runOrFail('docker buildx build', 'docker', args, run);
  const metadata = JSON.parse(await readFile(metadataFile, 'utf8')) as Record<string, unknown>;
  const digest = metadata['containerimage.digest'];
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new Error(`docker buildx build left no containerimage.digest in ${metadataFile}`);
  }
  return { builder: 'buildx', digest };
}

/** One field of buildx's CSV-style --output value. */
function csvField(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}
