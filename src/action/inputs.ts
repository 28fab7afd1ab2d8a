import { execFileSync } from 'node:child_process';
import * as core from '@actions/core';
import type { RawBaseBuild } from '../config/base-build.ts';
import type { RawIndexCommand } from '../config/index-commands.ts';
import { DEFAULT_TARGET, type RawModelBuild } from '../config/model-build.ts';
import type { RawPull } from '../config/pull.ts';
import type { RawRegistry } from '../config/registry.ts';
import type { Edge, OptionKey } from '../config/values.ts';
import { isHubRef } from '../hub/hub-ref.ts';
import { UsageError } from '../util/errors.ts';

/** action.yml's default of the `target` input: the embedded default layout. */
export const ACTION_DEFAULT_TARGET = DEFAULT_TARGET;

/** Reads one input as the runner passes it (INPUT_<NAME>); tests pass a map instead. */
export type InputReader = (name: string) => string;

export const coreInputs: InputReader = (name) => core.getInput(name);

/** The action.yml input behind each option, for messages (`input compression-level`). */
const INPUTS: Record<OptionKey, string> = {
  path: 'path',
  name: 'name',
  target: 'target',
  tags: 'tags',
  encoding: 'encoding',
  level: 'compression-level',
  frameSize: 'frame-size',
  concurrency: 'concurrency',
  include: 'include',
  exclude: 'exclude',
  annotations: 'annotations',
  runtime: 'runtime',
  force: 'force',
  dryRun: 'dry-run',
  mountFrom: 'mount-from',
  index: 'index',
  username: 'username',
  password: 'password',
  plainHttp: 'plain-http',
  caFiles: 'ca-file',
  upload: 'upload',
  chunkSize: 'chunk-size',
  maxLayerSize: 'max-layer-size',
  uploadTimeLimit: 'upload-time-limit',
  tempDir: 'temp-dir',
  context: 'context',
  dockerfile: 'dockerfile',
  buildArgs: 'build-args',
  buildTarget: 'build-target',
  platform: 'platform',
  builder: 'builder',
  image: 'target',
  from: 'target',
  model: 'name',
  to: 'path',
  verify: 'verify',
  connections: 'connections',
  partSize: 'part-size',
  imageForm: 'image-form',
  imagePlatforms: 'image-platforms',
  hfToken: 'hf-token',
};

/** The Action's edge: the step's environment and the inputs' names. */
export function actionEdge(env: NodeJS.ProcessEnv): Edge {
  return {
    env,
    name: (key) => `input ${INPUTS[key]}`,
    hints: { caFile: 'the ca-file input', plainHttp: 'the plain-http input (HOST)' },
  };
}

/** Items separated by commas or new lines, trimmed, empty ones dropped (as docker/build-push-action reads lists). */
export function listInput(read: InputReader, name: string): string[] {
  return read(name)
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** One item per line (KEY=VALUE inputs, whose values may hold commas). */
function linesInput(read: InputReader, name: string): string[] {
  return read(name)
    .split('\n')
    .filter((line) => line.trim() !== '');
}

/** `true` or `false` (empty is the default); anything else is a usage error naming the input. */
export function booleanInput(read: InputReader, name: string, fallback = false): boolean {
  const value = read(name).trim().toLowerCase();
  if (value === '') return fallback;
  if (value === 'false') return false;
  if (value === 'true') return true;
  throw new UsageError(`input ${name} must be true or false, not ${JSON.stringify(read(name))}`);
}

const text = (read: InputReader, name: string) => read(name).trim() || undefined;

/** A secret input, masked in the log before anything can print it. */
function secretInput(read: InputReader, name: string): string | undefined {
  const value = read(name).trim() || undefined;
  if (value) core.setSecret(value);
  return value;
}

/** The inputs every registry-facing command shares; secrets are masked before anything can print them. */
export function rawRegistryInputs(read: InputReader, env: NodeJS.ProcessEnv): RawRegistry {
  const password = read('password') || undefined;
  if (password) core.setSecret(password);
  const githubToken = read('github-token').trim() || undefined;
  if (githubToken) core.setSecret(githubToken);
  return {
    username: text(read, 'username'),
    password,
    githubToken,
    plainHttp: listInput(read, 'plain-http'),
    caFiles: listInput(read, 'ca-file'),
    upload: text(read, 'upload'),
    maxLayerSize: text(read, 'max-layer-size'),
    uploadTimeLimit: text(read, 'upload-time-limit'),
    // Single-PUT uploads spool a layer and base builds work here, not in /tmp (a RAM disk of ~7.8 GB
    // on Ubuntu 26.04 runners).
    tempDir: env.RUNNER_TEMP || undefined,
  };
}

/** `command: model`'s inputs as raw options (the digest cache is the Action's own: see model-command.ts). */
export function rawModelInputs(read: InputReader, env: NodeJS.ProcessEnv): RawModelBuild {
  const registry = rawRegistryInputs(read, env);
  return {
    ...registry,
    path: text(read, 'path'),
    name: text(read, 'name'),
    target: text(read, 'target'),
    tags: listInput(read, 'tags'),
    encoding: text(read, 'encoding'),
    level: text(read, 'compression-level'),
    concurrency: text(read, 'concurrency'),
    include: listInput(read, 'include'),
    exclude: listInput(read, 'exclude'),
    annotations: linesInput(read, 'annotations'),
    runtime: text(read, 'runtime'),
    index: text(read, 'index'),
    force: booleanInput(read, 'force'),
    dryRun: booleanInput(read, 'dry-run'),
    mountFrom: listInput(read, 'mount-from'),
    imageForm: booleanInput(read, 'image-form'),
    hfToken: secretInput(read, 'hf-token'),
    imagePlatforms: text(read, 'image-platforms'),
    // A Hub revision is dated by its own commit (src/commands/model-build.ts), not the workflow's.
    createdAt: isHubRef(text(read, 'path') ?? '') ? undefined : createdFromCommit(env),
  };
}

export function rawBaseInputs(read: InputReader, env: NodeJS.ProcessEnv): RawBaseBuild {
  return {
    ...rawRegistryInputs(read, env),
    context: text(read, 'context'),
    dockerfile: text(read, 'dockerfile'),
    image: text(read, 'target'),
    buildArgs: linesInput(read, 'build-args'),
    buildTarget: text(read, 'build-target'),
    platform: text(read, 'platform'),
    builder: text(read, 'builder'),
    runtime: text(read, 'runtime'),
    force: booleanInput(read, 'force'),
    index: text(read, 'index'),
  };
}

/** `command: index` and `command: resolve`: the index, and what to record or which model to resolve. */
export function rawIndexInputs(read: InputReader, env: NodeJS.ProcessEnv): RawIndexCommand {
  const target = text(read, 'target');
  return {
    ...rawRegistryInputs(read, env),
    index: text(read, 'index'),
    // `target` has action.yml's default; for index it names an artifact only when set to another.
    from: target && target !== ACTION_DEFAULT_TARGET ? target : undefined,
    model: text(read, 'name'),
    runtime: text(read, 'runtime'),
  };
}

/**
 * `command: pull`: the artifact in `target` (or, with `index`, the model `name` resolved through the
 * index), unpacked into `path`.
 */
export function rawPullInputs(read: InputReader, env: NodeJS.ProcessEnv): RawPull {
  const target = text(read, 'target');
  const index = text(read, 'index');
  return {
    ...rawRegistryInputs(read, env),
    // `target` has action.yml's default (the embedded layout): it names the artifact unless `index` does.
    from: index && target === ACTION_DEFAULT_TARGET ? undefined : target,
    index,
    model: index ? text(read, 'name') : undefined,
    runtime: index ? text(read, 'runtime') : undefined,
    to: text(read, 'path'),
    include: listInput(read, 'include'),
    exclude: listInput(read, 'exclude'),
    verify: booleanInput(read, 'verify'),
    platform: text(read, 'platform'),
    connections: text(read, 'connections'),
    partSize: text(read, 'part-size'),
  };
}

/**
 * The artifact's created date when SOURCE_DATE_EPOCH does not give one: the time of the commit the
 * workflow checked out. It is the same for every re-run of that commit (builds stay reproducible),
 * later for later commits, and lets `resolve` tell revisions of a model apart. None outside a
 * checkout.
 */
function createdFromCommit(env: NodeJS.ProcessEnv): string | undefined {
  const workspace = env.GITHUB_WORKSPACE;
  if (env.SOURCE_DATE_EPOCH || !workspace) return undefined;
  try {
    const iso = execFileSync('git', ['-C', workspace, 'log', '-1', '--format=%cI'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
      env,
    }).trim();
    return iso ? new Date(iso).toISOString().replace('.000Z', 'Z') : undefined;
  } catch {
    return undefined;
  }
}
