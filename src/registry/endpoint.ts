import { DEFAULT_REGISTRY, hostname, isLoopback } from '../oci/reference.ts';

export { isLoopback };

/** Docker Hub's API lives on another host than the name people write. */
const API_HOSTS: Record<string, string> = { [DEFAULT_REGISTRY]: 'registry-1.docker.io' };

/** The host (and port) that serves the registry API for a reference's registry. */
export function apiHost(registry: string): string {
  return API_HOSTS[registry] ?? registry;
}

/**
 * How to reach a registry: `https` only, or `https-then-http` for hosts the user listed as plain
 * HTTP and for loopback (tried with TLS first, as docker does, so a local registry with TLS still
 * gets it). A listed entry matches the host with or without its port.
 */
export function schemePolicy(
  host: string,
  plainHttpHosts: readonly string[] = [],
): 'https' | 'https-then-http' {
  return isLoopback(host) || isListed(host, plainHttpHosts) ? 'https-then-http' : 'https';
}

/** True when the user listed `host` (with or without its port) as one that may speak plain HTTP. */
export function isListed(host: string, plainHttpHosts: readonly string[]): boolean {
  const name = unbracket(hostname(host).toLowerCase());
  return plainHttpHosts.some((entry) => {
    const e = entry.trim().toLowerCase();
    // An IPv6 address may be listed with or without its brackets (`fd00::2` or `[fd00::2]`).
    return e === host.toLowerCase() || unbracket(e) === name;
  });
}

function unbracket(name: string): string {
  return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
}

/**
 * True for errors that mean "this server does not speak TLS" (it answered our ClientHello with
 * plain HTTP), as opposed to a certificate problem, which must never fall back to plain HTTP.
 */
export function isNotTlsError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return true;
    if (
      code === 'EPROTO' &&
      typeof message === 'string' &&
      /wrong version number|packet length/i.test(message)
    )
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
