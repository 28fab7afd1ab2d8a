import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyGraph } from '../content/copy.ts';
import { declaredRuntime, readDocument, readImageFacts } from '../content/image-facts.ts';
import { OciLayoutTarget } from '../content/layout/oci-layout.ts';
import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { ANNOTATION } from '../oci/media-types.ts';
import { formatReference } from '../oci/reference.ts';
import { errnoCode, UserError } from '../util/errors.ts';
import { formatBytes } from '../util/format.ts';
import { mapConcurrent } from '../util/limiter.ts';
import { writeAuthFile, writeCertDir } from './builder-auth.ts';
import { type BuildahOptions, chooseBuilder, runBuild } from './builders.ts';
import { finalBase, parseDockerfile, pinDockerfile } from './dockerfile.ts';
import { inputDigest } from './input-digest.ts';
import type { RegistryAccess } from './registry-access.ts';
import { parseImage, resolveUpstream } from './upstream.ts';

export const BASE_ANNOTATION = {
  inputDigest: 'io.model-oci.base.input-digest',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  /** Which builder made the image (a skipped run reports it). */
  builder: 'io.model-oci.base.builder',
  runtimeName: ANNOTATION.runtimeName,
  runtimeVersion: ANNOTATION.runtimeVersion,
} as const;

export interface BaseBuildOptions {
  /** Build context directory. */
  context: string;
  /** Default: <context>/Dockerfile, else <context>/Containerfile. */
  dockerfile?: string;
  /** Where to push: REGISTRY/REPO:TAG. */
  image: string;
  buildArgs?: Record<string, string>;
  /** Build stage. */
  target?: string;
  /** e.g. linux/amd64 */
  platform?: string;
  builder?: 'auto' | 'buildx' | 'buildah';
  /** Rebuild even when an image with this input digest exists. */
  force?: boolean;
  /** What the image provides; else read from its labels io.model-oci.runtime.name / .version. */
  runtime?: { name: string; version: string };
  /** The registries: the image's repository, FROM images, builder credentials (src/connect/). */
  access: RegistryAccess;
  /**
   * Where the build works (pinned Dockerfile, the OCI layout buildah writes, its temp copies). The
   * Action passes RUNNER_TEMP: on some runners /tmp is a RAM disk too small for a CUDA image.
   */
  tempDir: string;
  /** The environment the builder runs with (PATH, BUILDAH_ISOLATION, CONTAINERS_STORAGE_CONF, …). */
  env: NodeJS.ProcessEnv;
  /** buildah's storage and isolation (tests keep storage in a temp dir). */
  buildah?: BuildahOptions;
  signal?: AbortSignal;
  /** Builder output and progress, line by line. */
  onLog?: (line: string) => void;
}

export interface BaseBuildResult {
  status: 'built' | 'skipped';
  reason?: string;
  /** REGISTRY/REPO:TAG as given. */
  image: string;
  digest: Digest;
  /** REGISTRY/REPO@sha256:… */
  ref: string;
  inputDigest: Digest;
  /** Every external FROM image, resolved, in Dockerfile order. */
  upstream: { image: string; digest: Digest }[];
  runtime?: { name: string; version: string };
  builder: 'buildah' | 'buildx';
  /** The tags that point at the image: the requested one and `input-<hex>`. */
  tags: string[];
}

/** The immutable tag that marks an image built from these inputs. */
export const inputTag = (digest: Digest) => `input-${digest.slice(digest.indexOf(':') + 1)}`;

export async function buildBase(options: BaseBuildOptions): Promise<BaseBuildResult> {
  const { signal } = options;
  const log = options.onLog ?? (() => {});
  const { access } = options;
  const context = path.resolve(options.context);
  if (!(await isDirectory(context))) throw new UserError(`build context ${context} is not a directory`);
  const dockerfile = await findDockerfile(context, options.dockerfile);
  const dockerfileBytes = await readFile(dockerfile);
  const ref = parseImage(options.image, 'image');
  if (ref.digest) throw new UserError(`image ${options.image}: give a tag to push to, not a digest`);
  const tag = ref.tag ?? 'latest';
  const buildArgs = options.buildArgs ?? {};
  checkRuntime(options.runtime);

  const stages = parseDockerfile(dockerfileBytes.toString('utf8'), {
    buildArgs,
    ...(options.platform ? { platform: options.platform } : {}),
  });
  const finalFrom = finalBase(stages, options.target);
  const images = [...new Set(stages.filter((s) => s.kind === 'image').map((s) => s.image))];
  const upstream = await mapConcurrent(images, 4, (image) => resolveUpstream(image, access, signal), signal);
  const rel = path.relative(context, dockerfile);
  const { digest: input } = await inputDigest({
    dockerfileBytes,
    ...(rel.startsWith('..') || path.isAbsolute(rel)
      ? {}
      : { dockerfileInContext: rel.split(path.sep).join('/') }),
    context,
    buildArgs,
    ...(options.target ? { target: options.target } : {}),
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.runtime ? { runtime: options.runtime } : {}),
    from: upstream,
    ...(signal ? { signal } : {}),
  });
  const base = finalFrom && upstream.find((u) => u.image === finalFrom.image);
  log(`input digest ${input} (${upstream.length} upstream image${upstream.length === 1 ? '' : 's'})`);
  const tags = [tag, inputTag(input)];
  const repo = `${ref.registry}/${ref.repository}`;
  const result = (status: 'built' | 'skipped', digest: Digest, builder: 'buildah' | 'buildx') => ({
    status,
    image: options.image,
    digest,
    ref: formatReference({ registry: ref.registry, repository: ref.repository, digest }),
    inputDigest: input,
    upstream,
    builder,
    tags,
  });

  const target = await access.open(ref, 'push');
  let workDir: string | undefined;
  try {
    const existing = options.force ? undefined : await target.resolve(inputTag(input), signal);
    if (existing) {
      await target.tag(existing, [tag], signal);
      const facts = await imageFacts(target, existing, signal);
      const runtime = options.runtime ?? facts.runtime;
      const reason = `${repo}:${inputTag(input)} already holds an image built from these inputs`;
      log(`skipped: ${reason}`);
      return {
        ...result('skipped', existing.digest, facts.builder ?? 'buildah'),
        reason,
        ...(runtime ? { runtime } : {}),
      };
    }
    const reason = options.force ? 'forced' : await whyBuild(target, tag, base, signal);
    log(`building: ${reason}`);
    const builder = await chooseBuilder(options.builder ?? 'auto', options.env, options.buildah, signal);
    if (builder === 'buildx' && access.explicitCredentials) {
      throw new UserError(
        'buildx pushes with docker\'s own login: run "docker login" instead of passing credentials',
      );
    }
    workDir = await mkdtemp(path.join(options.tempDir, 'model-oci-base-'));
    const pinned = path.join(workDir, 'Dockerfile');
    const digests = new Map(upstream.map((u) => [u.image, u.digest]));
    await writeFile(pinned, pinDockerfile(dockerfileBytes.toString('utf8'), stages, digests));
    const meta: Record<string, string> = {
      [BASE_ANNOTATION.inputDigest]: input,
      [BASE_ANNOTATION.builder]: builder,
    };
    if (base) {
      meta[BASE_ANNOTATION.baseName] = base.image;
      meta[BASE_ANNOTATION.baseDigest] = base.digest;
    }
    if (options.runtime) {
      meta[BASE_ANNOTATION.runtimeName] = options.runtime.name;
      meta[BASE_ANNOTATION.runtimeVersion] = options.runtime.version;
    }
    const fromRegistries = upstream.map((u) => parseImage(u.image, 'FROM').registry);
    const authFile =
      builder === 'buildah' ? await writeAuthFile(workDir, fromRegistries, access, log) : undefined;
    const certDir = await writeCertDir(workDir, access.caFiles);
    const outcome = await runBuild(builder, {
      context,
      dockerfile: pinned,
      image: `${repo}:${tag}`,
      buildArgs,
      ...(options.target ? { target: options.target } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
      labels: meta,
      annotations: meta,
      tlsVerify: !fromRegistries.some((r) => access.plainHttp(r)),
      insecurePush: access.plainHttp(ref.registry),
      ...(authFile ? { authFile } : {}),
      ...(certDir ? { certDir } : {}),
      workDir,
      env: options.env,
      ...(options.buildah ? { buildah: options.buildah } : {}),
      ...(signal ? { signal } : {}),
      onLine: log,
    });
    const desc =
      outcome.builder === 'buildah'
        ? await pushLayout(outcome.layoutDir, outcome.layoutTag, target, tags, log, signal)
        : await target.resolve(outcome.digest, signal);
    if (!desc) throw new Error(`${repo}@${outcome.digest} is not in the registry after the push`);
    if (outcome.builder === 'buildx') await target.tag(desc, tags, signal);
    const runtime = options.runtime ?? (await imageFacts(target, desc, signal)).runtime;
    log(`pushed ${repo}@${desc.digest} as ${tags.join(', ')}`);
    return { ...result('built', desc.digest, builder), reason, ...(runtime ? { runtime } : {}) };
  } finally {
    await target.close?.();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * Uploads the image tagged `layoutTag` in the OCI layout the builder wrote to `target` (blobs the
 * registry has are skipped), then its manifest byte for byte under every tag.
 */
async function pushLayout(
  layoutDir: string,
  layoutTag: string,
  target: Target,
  tags: readonly string[],
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<Descriptor> {
  const layout = await OciLayoutTarget.open(layoutDir);
  const found = await layout.resolve(layoutTag);
  if (!found) throw new Error(`the builder left no image tagged ${layoutTag} in ${layoutDir}`);
  const desc: Descriptor = { mediaType: found.mediaType, digest: found.digest, size: found.size };
  await copyGraph(layout, target, desc, {
    tags,
    ...(signal ? { signal } : {}),
    onBlob: (blob, how) => {
      if (how === 'copied') log(`uploaded ${blob.digest} (${formatBytes(blob.size)}, ${blob.mediaType})`);
    },
  });
  return desc;
}

/** What a pushed base image says about itself: what it was built from, by which builder, its runtime. */
async function imageFacts(target: Target, desc: Descriptor, signal?: AbortSignal) {
  const facts = await readImageFacts(target, await readDocument(target, desc, signal), signal);
  const a = facts.annotations;
  const builder = a[BASE_ANNOTATION.builder];
  return {
    baseName: a[BASE_ANNOTATION.baseName],
    baseDigest: a[BASE_ANNOTATION.baseDigest],
    builder: builder === 'buildah' || builder === 'buildx' ? (builder as 'buildah' | 'buildx') : undefined,
    runtime: declaredRuntime(facts),
  };
}

/** Why a build is needed: an upstream image moved under the tag, or the inputs changed. */
async function whyBuild(
  target: Target,
  tag: string,
  base: { image: string; digest: Digest } | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const current = await target.resolve(tag, signal);
  if (!current) return `no image with these inputs yet`;
  const facts = await imageFacts(target, current, signal);
  if (base && facts.baseDigest && facts.baseName === base.image && facts.baseDigest !== base.digest) {
    return `upstream ${base.image} changed (${facts.baseDigest} → ${base.digest})`;
  }
  return `the inputs changed since the image now tagged ${tag}`;
}

async function findDockerfile(context: string, given: string | undefined): Promise<string> {
  if (given) {
    const file = path.resolve(given);
    if (!(await isFile(file))) throw new UserError(`Dockerfile ${file} does not exist`);
    return file;
  }
  for (const name of ['Dockerfile', 'Containerfile']) {
    if (await isFile(path.join(context, name))) return path.join(context, name);
  }
  throw new UserError(`no Dockerfile or Containerfile in ${context}`);
}

function checkRuntime(runtime: BaseBuildOptions['runtime']): void {
  if (!runtime) return;
  for (const [key, value] of Object.entries(runtime)) {
    if (!value || /[\s,"=]/.test(value)) {
      throw new UserError(
        `runtime ${key} ${JSON.stringify(value)} must be non-empty, without spaces, commas, quotes or "="`,
      );
    }
  }
}

async function isFile(file: string): Promise<boolean> {
  return statOr(file).then((s) => s?.isFile() ?? false);
}
async function isDirectory(dir: string): Promise<boolean> {
  return statOr(dir).then((s) => s?.isDirectory() ?? false);
}
async function statOr(p: string) {
  try {
    return await stat(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}
