import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, errorMessage, UserError } from '../util/errors.ts';
import {
  authsCredential,
  type DockerConfig,
  type HelperChoice,
  helperServerUrl,
  helpersFor,
  parseDockerConfig,
} from './docker-config.ts';

// Where the credentials for a registry come from, first hit wins:
//   1. explicit username + password (CLI flags / Action inputs)
//   2. DOCKER_AUTH_CONFIG (the content of a config.json, as GitLab CI sets it)
//   3. $DOCKER_CONFIG/config.json, else ~/.docker/config.json
//      (in each config: credHelpers[host], then credsStore, then auths[host])
//   4. GITHUB_TOKEN, for ghcr.io only
// No secret may reach an error message or FoundCredential.source: they name files, keys and programs.

export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker's identitytoken, or a helper's Username "<token>"). */
  | { kind: 'identity-token'; token: string; username?: string }
  /** A bearer token to send as is (docker's registrytoken). */
  | { kind: 'registry-token'; token: string };

export interface FoundCredential {
  credential: Credential;
  /** Where it came from, for logs: the flags or inputs, 'DOCKER_AUTH_CONFIG', a config file path (plus the helper), 'GITHUB_TOKEN'. */
  source: string;
}

export interface CredentialOptions {
  username?: string;
  password?: string;
  /**
   * Where DOCKER_AUTH_CONFIG, DOCKER_CONFIG, HOME and GITHUB_TOKEN are read, and the environment
   * (PATH) credential helpers run with: the process's, handed in by the config edge.
   */
  env: NodeJS.ProcessEnv;
  /** Default $HOME of `env`; ~/.docker/config.json is read from here unless DOCKER_CONFIG is set. */
  homeDir?: string;
  /** Where explicit credentials came from, for logs (`--username and --password-stdin`, `inputs username and password`). */
  explicitSource?: string;
  /** How long a credential helper may take; default 30 s. */
  helperTimeoutMs?: number;
}

const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
const GITHUB_REGISTRY = 'ghcr.io';
// A helper's output is a small JSON document; more than this is not worth keeping in memory.
const MAX_HELPER_OUTPUT = 64 * 1024;

export async function findCredential(
  registryHost: string,
  options: CredentialOptions,
): Promise<FoundCredential | undefined> {
  const host = registryHost.trim().toLowerCase();
  const { env } = options;
  const explicit = explicitCredential(options);
  if (explicit) return explicit;
  const timeoutMs = options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  for (const load of [() => envConfig(env), () => fileConfig(env, options.homeDir)]) {
    const config = await load();
    const found = config && (await fromConfig(config, host, env, timeoutMs));
    if (found) return found;
  }
  return githubToken(host, env);
}

/** One line for logs, e.g. `basic auth for user "octo" from /root/.docker/config.json`; never the secret. */
export function describeCredential(found: FoundCredential): string {
  const credential = found.credential;
  const user = (username: string | undefined) => (username ? ` for user ${JSON.stringify(username)}` : '');
  switch (credential.kind) {
    case 'basic':
      return `basic auth${user(credential.username)} from ${found.source}`;
    case 'identity-token':
      return `identity token${user(credential.username)} from ${found.source}`;
    case 'registry-token':
      return `registry token from ${found.source}`;
  }
}

// Action inputs that were not set arrive as empty strings: empty means not given.
function explicitCredential(options: CredentialOptions): FoundCredential | undefined {
  const { username, password } = options;
  if (!username && !password) return undefined;
  if (!username) throw new UserError('a registry password was given without a username');
  if (!password) throw new UserError('a registry username was given without a password');
  return {
    credential: { kind: 'basic', username, password },
    source: options.explicitSource ?? 'the username and password given',
  };
}

function envConfig(env: NodeJS.ProcessEnv): DockerConfig | undefined {
  const text = env.DOCKER_AUTH_CONFIG;
  if (!text?.trim()) return undefined;
  return parseDockerConfig(text, 'DOCKER_AUTH_CONFIG');
}

/** docker reads only $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set, else ~/.docker/config.json. */
async function fileConfig(
  env: NodeJS.ProcessEnv,
  homeDir: string | undefined,
): Promise<DockerConfig | undefined> {
  const home = homeDir ?? env.HOME;
  if (!env.DOCKER_CONFIG && !home) return undefined;
  const dir = env.DOCKER_CONFIG || path.join(home!, '.docker');
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UserError(`cannot read the docker config ${file}: ${code ?? errorMessage(err)}`);
  }
  return parseDockerConfig(text, file);
}

async function fromConfig(
  config: DockerConfig,
  host: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<FoundCredential | undefined> {
  for (const helper of helpersFor(config, host)) {
    const credential = await askHelper(helper, helperServerUrl(host), env, timeoutMs);
    if (credential) return { credential, source: `${config.origin} (${helper.field}: ${helper.name})` };
  }
  const credential = authsCredential(config, host);
  return credential && { credential, source: config.origin };
}

function githubToken(host: string, env: NodeJS.ProcessEnv): FoundCredential | undefined {
  const token = env.GITHUB_TOKEN;
  if (host !== GITHUB_REGISTRY || !token) return undefined;
  // ghcr.io accepts any user name with a GITHUB_TOKEN; the actor makes its audit log readable.
  const username = env.GITHUB_ACTOR || 'x-access-token';
  return { credential: { kind: 'basic', username, password: token }, source: 'GITHUB_TOKEN' };
}

// ---- credential helpers: `docker-credential-NAME get`, server URL on stdin, JSON on stdout ----

interface HelperRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** The helper's credential, or undefined when it has none for this server (then the next source is asked). */
async function askHelper(
  helper: HelperChoice,
  serverUrl: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper.name}`;
  let run: HelperRun;
  try {
    run = await runHelper(program, serverUrl, env, timeoutMs);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT')
      throw new UserError(`${program} not found in PATH (${helper.askedBy} asks for it)`);
    throw new UserError(`${program} could not be started: ${code ?? errorMessage(err)} (${helper.askedBy})`);
  }
  if (run.timedOut)
    throw new UserError(`${program} did not answer within ${timeoutMs / 1000} s (${helper.askedBy})`);
  if (run.code === 0) return helperCredential(run.stdout, program, helper.askedBy);
  // The helper protocol's "no credential" is an error exit with this message (on stdout, by the protocol).
  if (/credentials not found/i.test(run.stdout) || /credentials not found/i.test(run.stderr))
    return undefined;
  const how = run.signal ? `was killed by ${run.signal}` : `failed with exit code ${run.code}`;
  throw new UserError(`${program} get ${how}${helperReason(run)} (${helper.askedBy})`);
}

function runHelper(
  program: string,
  serverUrl: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<HelperRun> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout also ends whatever the helper started (aws, gcloud …).
    const group = process.platform !== 'win32';
    const child = spawn(program, ['get'], { env, stdio: 'pipe', detached: group, windowsHide: true });
    const out = { stdout: '', stderr: '' };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk: string) => {
        if (out[stream].length < MAX_HELPER_OUTPUT) out[stream] += chunk;
      });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killHelper(child.pid, group, () => child.kill('SIGKILL'));
      // Something that left the group may still hold the pipes; 'close' must not wait for it.
      child.stdout.destroy();
      child.stderr.destroy();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, ...out });
    });
    // A helper may exit without reading its input; that EPIPE is not our error.
    child.stdin.on('error', () => {});
    // As docker sends it: the bare URL, no newline.
    child.stdin.end(serverUrl);
  });
}

function killHelper(pid: number | undefined, group: boolean, fallback: () => void): void {
  if (pid === undefined || !group) {
    fallback();
    return;
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    fallback();
  }
}

function helperCredential(stdout: string, program: string, askedBy: string): Credential | undefined {
  if (!stdout.trim()) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null)
    throw new UserError(
      `${program} get printed something that is not JSON with Username and Secret (${askedBy})`,
    );
  const { Username: username, Secret: secret } = json as Record<string, unknown>;
  if (typeof secret !== 'string' || !secret) return undefined;
  const user = typeof username === 'string' ? username : '';
  if (user === '<token>') return { kind: 'identity-token', token: secret };
  return { kind: 'basic', username: user, password: secret };
}

/**
 * Why the helper failed, for the message: the first line of its stderr or, as docker-credential-helpers
 * print their errors on stdout, of a stdout that is not a JSON credential; scrubbed either way.
 */
function helperReason(run: HelperRun): string {
  const looksLikeJson = /^\s*[{["]/.test(run.stdout);
  const line = firstLine(run.stderr) ?? (looksLikeJson ? undefined : firstLine(run.stdout));
  if (line === undefined) return '';
  return `: ${scrub(line, secretsIn(run.stdout))}`;
}

function firstLine(text: string): string | undefined {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => line.length > 0);
}

/** The Secret a helper printed even though it failed, so that its stderr cannot echo it. */
function secretsIn(stdout: string): string[] {
  try {
    const json: unknown = JSON.parse(stdout);
    const secret =
      typeof json === 'object' && json !== null ? (json as Record<string, unknown>).Secret : undefined;
    return typeof secret === 'string' && secret ? [secret] : [];
  } catch {
    return [];
  }
}

/**
 * A helper's message may carry a token (an expired one, a request dump). Redact what looks like one:
 * known secrets, `Bearer …`/`Basic …`, `password=…`-style values, and runs of 20+ token characters
 * mixing letters and digits (tokens, base64, JWT parts; words and paths stay readable).
 */
function scrub(line: string, secrets: readonly string[]): string {
  let text = line;
  for (const secret of secrets) text = text.split(secret).join('[redacted]');
  text = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(/\b(bearer|basic)\s+[^\s",;}]+/gi, '$1 [redacted]')
    .replace(/\b(password|passwd|secret|token|auth)(\w*)(\s*[:=]\s*)("?)[^\s",;}]+/gi, '$1$2$3$4[redacted]')
    .replace(/[A-Za-z0-9+_=-]{20,}/g, (run) =>
      /[0-9]/.test(run) && /[A-Za-z]/.test(run) ? '[redacted]' : run,
    );
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
