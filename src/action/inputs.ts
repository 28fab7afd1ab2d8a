import * as core from '@actions/core';
import type { LayerEncoding } from '../oci/media-types.ts';
import type { UploadStrategy } from '../registry/upload-policy.ts';
import { UserError } from '../util/errors.ts';

/** The `model` command's inputs, checked: what action.yml declares, typed. */
export interface ModelInputs extends RegistryInputs {
  path: string;
  name: string;
  target: string;
  tags: string[];
  encoding: LayerEncoding;
  level: number;
  concurrency: number;
  include: string[];
  exclude: string[];
  annotations: Record<string, string>;
  force: boolean;
  dryRun: boolean;
  mountFrom: string[];
  upload: UploadStrategy | undefined;
  cache: boolean;
  runtime: string | undefined;
  index: string | undefined;
}

/** Items separated by commas or new lines, trimmed, empty ones dropped (as docker/build-push-action reads lists). */
export function listInput(name: string): string[] {
  return core
    .getInput(name)
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function booleanInput(name: string): boolean {
  const value = core.getInput(name).trim().toLowerCase();
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new UserError(`input ${name} must be true or false, not ${JSON.stringify(core.getInput(name))}`);
}

/** Empty means the default (the runner passes action.yml's defaults; a local run may pass nothing). */
function integerInput(name: string, min: number, max: number, fallback: number): number {
  const text = core.getInput(name).trim();
  if (text === '') return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new UserError(
      `input ${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`,
    );
  return n;
}

const ENCODINGS: Record<string, LayerEncoding> = { 'tar+zstd': 'tar+zstd', tar: 'tar', raw: 'raw' };

export function readModelInputs(): ModelInputs {
  const encoding = ENCODINGS[core.getInput('encoding').trim() || 'tar+zstd'];
  if (!encoding)
    throw new UserError(
      `input encoding must be tar+zstd, tar or raw, not ${JSON.stringify(core.getInput('encoding'))}`,
    );
  const upload = core.getInput('upload').trim() || 'auto';
  if (upload !== 'auto' && upload !== 'chunked' && upload !== 'single')
    throw new UserError(`input upload must be auto, chunked or single, not ${JSON.stringify(upload)}`);
  // Credentials first: they are masked before anything else can print them.
  const registry = readRegistryInputs();
  return {
    ...registry,
    path: requiredInput('path', 'model'),
    name: requiredInput('name', 'model'),
    target: core.getInput('target').trim() || 'oci-layout:./oci-layout:latest',
    tags: listInput('tags'),
    encoding,
    level: integerInput('compression-level', 1, 22, 3),
    concurrency: integerInput('concurrency', 1, 64, 4),
    include: listInput('include'),
    exclude: listInput('exclude'),
    annotations: keyValueInput('annotations'),
    force: booleanInput('force'),
    dryRun: booleanInput('dry-run'),
    mountFrom: listInput('mount-from'),
    upload: upload === 'auto' ? undefined : upload,
    cache: core.getInput('cache').trim() === '' ? true : booleanInput('cache'),
    runtime: core.getInput('runtime').trim() || undefined,
    index: core.getInput('index').trim() || undefined,
  };
}

/** Inputs every registry-facing command shares: credentials, plain-http hosts, CA files. */
export interface RegistryInputs {
  username: string | undefined;
  password: string | undefined;
  githubToken: string | undefined;
  plainHttp: string[];
  caFiles: string[];
}

export function readRegistryInputs(): RegistryInputs {
  const username = core.getInput('username').trim() || undefined;
  const password = core.getInput('password') || undefined;
  if (password) core.setSecret(password);
  if (password && !username) throw new UserError('input password is set but username is not');
  if (username && !password) throw new UserError('input username is set but password is not');
  const githubToken = core.getInput('github-token').trim() || undefined;
  if (githubToken) core.setSecret(githubToken);
  return {
    username,
    password,
    githubToken,
    plainHttp: listInput('plain-http'),
    caFiles: listInput('ca-file'),
  };
}

/** KEY=VALUE lines (build args, annotations) → a record; one-line error naming the input. */
export function keyValueInput(name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of core.getInput(name).split('\n')) {
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UserError(`input ${name}: ${JSON.stringify(line.trim())} is not KEY=VALUE`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

export function requiredInput(name: string, command: string): string {
  const value = core.getInput(name).trim();
  if (!value) throw new UserError(`input ${name} is required for command ${command}`);
  return value;
}

export { booleanInput };
