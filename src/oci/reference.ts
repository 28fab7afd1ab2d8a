import { type Digest, InvalidDigestError, parseDigest } from './digest.ts';

// Grammar of distribution/reference (the one docker, containerd and the registries share):
//   reference := [domain '/'] path [':' tag] ['@' digest]
// with docker.io as the default domain and `library/` for one-component names on docker.io.

export const DEFAULT_REGISTRY = 'docker.io';
const LEGACY_DEFAULT_REGISTRIES = new Set(['index.docker.io', 'registry-1.docker.io']);

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST_LABEL = /^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;
const MAX_NAME_LENGTH = 255;

export class InvalidReferenceError extends Error {
  override readonly name = 'InvalidReferenceError';
  constructor(input: string, problem: string) {
    super(`invalid reference ${JSON.stringify(input)}: ${problem}`);
  }
}

export interface Reference {
  /** Registry host with optional port, normalised (docker.io for Docker Hub). */
  registry: string;
  /** Repository path inside the registry, e.g. library/ubuntu or org/models/phi. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new Error(
      `invalid tag ${JSON.stringify(tag)}: a tag is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with '.' or '-'`,
    );
  }
  return tag;
}

function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function checkRegistry(input: string, registry: string): void {
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    host = registry.slice(0, end + 1);
    const rest = registry.slice(end + 1);
    if (rest) {
      if (!rest.startsWith(':'))
        throw new InvalidReferenceError(input, `registry ${JSON.stringify(registry)} is malformed`);
      port = rest.slice(1);
    }
    if (!IPV6.test(host))
      throw new InvalidReferenceError(input, `registry ${JSON.stringify(registry)} is malformed`);
  } else {
    const colon = registry.lastIndexOf(':');
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (!host.split('.').every((label) => HOST_LABEL.test(label))) {
      throw new InvalidReferenceError(
        input,
        `registry host ${JSON.stringify(host)} is not a valid host name`,
      );
    }
  }
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) {
    throw new InvalidReferenceError(input, `registry port ${JSON.stringify(port)} is not a number`);
  }
}

/** Parses `[registry[:port]/]repo[:tag][@sha256:…]` with docker's normalisation rules. */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw new InvalidReferenceError(input, 'it is empty');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (err) {
      if (err instanceof InvalidDigestError) throw new InvalidReferenceError(input, err.message);
      throw err;
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const tagColon = rest.indexOf(':', lastSlash + 1);
  if (tagColon >= 0) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG.test(tag)) {
      throw new InvalidReferenceError(
        input,
        `tag ${JSON.stringify(tag)} must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'`,
      );
    }
  }
  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash >= 0 && looksLikeRegistry(rest.slice(0, firstSlash))) {
    registry = rest.slice(0, firstSlash);
    path = rest.slice(firstSlash + 1);
    checkRegistry(input, registry);
  }
  if (LEGACY_DEFAULT_REGISTRIES.has(registry)) registry = DEFAULT_REGISTRY;
  if (path.length === 0) throw new InvalidReferenceError(input, 'the repository name is missing');
  const components = path.split('/');
  for (const component of components) {
    if (PATH_COMPONENT.test(component)) continue;
    if (component.toLowerCase() !== component && PATH_COMPONENT.test(component.toLowerCase())) {
      throw new InvalidReferenceError(input, `repository name ${JSON.stringify(path)} must be lowercase`);
    }
    throw new InvalidReferenceError(
      input,
      component === ''
        ? `repository name ${JSON.stringify(path)} has an empty path component`
        : `repository path component ${JSON.stringify(component)} may only hold [a-z0-9] separated by '.', '_', '__' or '-'`,
    );
  }
  if (registry === DEFAULT_REGISTRY && components.length === 1) path = `library/${path}`;
  if (path.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(input, `repository name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  const ref: Reference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

export function formatReference(ref: Reference): string {
  let out = `${ref.registry}/${ref.repository}`;
  if (ref.tag) out += `:${ref.tag}`;
  if (ref.digest) out += `@${ref.digest}`;
  return out;
}

/** The host of `host[:port]` (an IPv6 address keeps its brackets). */
export function hostname(hostAndPort: string): string {
  if (hostAndPort.startsWith('[')) return hostAndPort.slice(0, hostAndPort.indexOf(']') + 1);
  const colon = hostAndPort.lastIndexOf(':');
  return colon >= 0 ? hostAndPort.slice(0, colon) : hostAndPort;
}

/** localhost, 127.0.0.0/8 and ::1: docker lets these speak plain HTTP without being told. */
export function isLoopback(hostAndPort: string): boolean {
  const name = hostname(hostAndPort).toLowerCase();
  return name === 'localhost' || name === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(name);
}
