import { UserError } from '../util/errors.ts';
import type { Credential } from './credentials.ts';

// The parts of a docker config.json (or of DOCKER_AUTH_CONFIG, which holds the same JSON) that say
// where credentials are, and docker's rules for finding the entry of a registry in them.
// Nothing here may put a secret into an error message: messages name the origin and the key only.

/** The registry docker keeps Docker Hub credentials under, and the server URL its helpers are asked for. */
export const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

// A helper name becomes part of a program name looked up in PATH: no path separators.
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface DockerConfig {
  /** Where the JSON came from, for messages and FoundCredential.source: a file path or 'DOCKER_AUTH_CONFIG'. */
  origin: string;
  auths: Record<string, unknown>;
  credHelpers: Record<string, unknown>;
  /** The default helper; docker treats an empty string as none. */
  credsStore?: string;
}

/** A credential helper the config asks for, and `askedBy` (which key in which file) for messages. */
export interface HelperChoice {
  name: string;
  /** 'credHelpers' or 'credsStore', for FoundCredential.source. */
  field: 'credHelpers' | 'credsStore';
  askedBy: string;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quote(key: string): string {
  return JSON.stringify(key.length > 100 ? `${key.slice(0, 100)}…` : key);
}

/**
 * V8's JSON errors quote the text around the problem, which could be a password: keep only where it is.
 */
function jsonErrorLocation(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const lineColumn = /line (\d+) column (\d+)/.exec(message);
  if (lineColumn) return ` (line ${lineColumn[1]} column ${lineColumn[2]})`;
  if (/end of JSON input/i.test(message)) return ' (it ends too early)';
  return '';
}

function optionalObject(config: JsonObject, field: string, origin: string): JsonObject {
  const value = config[field];
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new UserError(`"${field}" in ${origin} is not an object`);
  return value;
}

/** Parses the JSON of a docker config; `origin` names it in errors (never its content). */
export function parseDockerConfig(text: string, origin: string): DockerConfig {
  // docker reads an empty file as an empty config.
  if (!text.trim()) return { origin, auths: {}, credHelpers: {} };
  let json: unknown;
  try {
    // A BOM is what some Windows editors write first; JSON.parse refuses it.
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new UserError(`${origin} is not valid JSON${jsonErrorLocation(err)}`);
  }
  if (!isObject(json)) throw new UserError(`${origin} is not a JSON object`);
  const credsStore = json.credsStore;
  if (credsStore !== undefined && credsStore !== null && typeof credsStore !== 'string')
    throw new UserError(`"credsStore" in ${origin} is not a string`);
  return {
    origin,
    auths: optionalObject(json, 'auths', origin),
    credHelpers: optionalObject(json, 'credHelpers', origin),
    credsStore: credsStore || undefined,
  };
}

export function isDockerHub(registryHost: string): boolean {
  return DOCKER_HUB_HOSTS.has(registryHost.toLowerCase());
}

/** What a credential helper is asked for: docker's Hub URL for Docker Hub, else the host itself. */
export function helperServerUrl(registryHost: string): string {
  return isDockerHub(registryHost) ? DOCKER_HUB_SERVER_URL : registryHost.toLowerCase();
}

/**
 * The host[:port] a config key names (docker's ConvertToHostname): keys may carry a scheme and a path,
 * as in `https://index.docker.io/v1/` or `http://localhost:5000`.
 */
export function keyHost(key: string): string {
  const trimmed = key.trim();
  if (trimmed.includes('://')) {
    try {
      const url = new URL(trimmed);
      if (url.host) return url.host.toLowerCase();
    } catch {
      // Not a URL after all: fall back to cutting at the first slash, as docker does.
    }
  }
  return (trimmed.split('/')[0] ?? '').toLowerCase();
}

function keyMatches(key: string, registryHost: string): boolean {
  const host = keyHost(key);
  return isDockerHub(registryHost) ? DOCKER_HUB_HOSTS.has(host) : host === registryHost.toLowerCase();
}

/** The keys of `map` that name the registry: the key docker itself writes first, then the others in file order. */
function matchingKeys(map: JsonObject, registryHost: string): string[] {
  const exact = helperServerUrl(registryHost);
  const keys = Object.keys(map).filter((key) => keyMatches(key, registryHost));
  return [...keys.filter((key) => key === exact), ...keys.filter((key) => key !== exact)];
}

function checkHelperName(name: unknown, askedBy: string): string {
  if (typeof name !== 'string' || !HELPER_NAME.test(name))
    throw new UserError(`${askedBy} is not a credential helper name (letters, digits, '.', '_', '-')`);
  return name;
}

/** The helpers to ask for this registry, in order: its credHelpers entry, then the credsStore. */
export function helpersFor(config: DockerConfig, registryHost: string): HelperChoice[] {
  const choices: HelperChoice[] = [];
  const key = matchingKeys(config.credHelpers, registryHost)[0];
  if (key !== undefined) {
    const askedBy = `credHelpers[${quote(key)}] in ${config.origin}`;
    const name = checkHelperName(config.credHelpers[key], askedBy);
    choices.push({ name, field: 'credHelpers', askedBy });
  }
  if (config.credsStore !== undefined) {
    const askedBy = `credsStore in ${config.origin}`;
    const name = checkHelperName(config.credsStore, askedBy);
    // Asking the same helper twice would only repeat its "not found".
    if (!choices.some((choice) => choice.name === name)) choices.push({ name, field: 'credsStore', askedBy });
  }
  return choices;
}

function optionalString(entry: JsonObject, field: string, where: string): string {
  const value = entry[field];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new UserError(`"${field}" of ${where} is not a string`);
  return value;
}

/** `auth` is base64 of `username:password` (docker's decodeAuth); the value never goes into the message. */
function decodeAuth(auth: string, where: string): { username: string; password: string } {
  const bad = () => new UserError(`"auth" of ${where} is not base64 of "username:password"`);
  const compact = auth.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw bad();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64'));
  } catch {
    throw bad();
  }
  const colon = text.indexOf(':');
  if (colon <= 0) throw bad();
  // docker trims NULs from the password: some old tools padded it.
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
}

/** One auths entry as a credential: registrytoken, then identitytoken, then basic, as the docker daemon uses them. */
function entryCredential(entry: unknown, where: string): Credential | undefined {
  if (!isObject(entry)) throw new UserError(`${where} is not an object`);
  const auth = optionalString(entry, 'auth', where);
  const decoded = auth ? decodeAuth(auth, where) : undefined;
  const username = decoded?.username ?? optionalString(entry, 'username', where);
  const password = decoded?.password ?? optionalString(entry, 'password', where);
  const registryToken = optionalString(entry, 'registrytoken', where);
  if (registryToken) return { kind: 'registry-token', token: registryToken };
  const identityToken = optionalString(entry, 'identitytoken', where);
  if (identityToken)
    return { kind: 'identity-token', token: identityToken, ...(username ? { username } : {}) };
  // Docker Desktop leaves `{}` (or only an email) under auths when a credsStore holds the secret.
  if (!username) return undefined;
  return { kind: 'basic', username, password };
}

/** The credential the `auths` section holds for the registry; the first matching key that has one wins. */
export function authsCredential(config: DockerConfig, registryHost: string): Credential | undefined {
  for (const key of matchingKeys(config.auths, registryHost)) {
    const credential = entryCredential(config.auths[key], `auths[${quote(key)}] in ${config.origin}`);
    if (credential) return credential;
  }
  return undefined;
}
