import { DEFAULT_REGISTRY } from '../oci/reference.ts';

/** Docker Hub's API lives on another host than the name people write. */
const API_HOSTS: Record<string, string> = { [DEFAULT_REGISTRY]: 'registry-1.docker.io' };

/** The host (and port) that serves the registry API for a reference's registry. */
export function apiHost(registry: string): string {
  return API_HOSTS[registry] ?? registry;
}

function hostname(hostAndPort: string): string {
  if (hostAndPort.startsWith('[')) return hostAndPort.slice(0, hostAndPort.indexOf(']') + 1);
  const colon = hostAndPort.lastIndexOf(':');
  return colon >= 0 ? hostAndPort.slice(0, colon) : hostAndPort;
}

/** localhost, 127.0.0.0/8 and ::1: docker lets these speak plain HTTP without being told. */
export function isLoopback(hostAndPort: string): boolean {
  const name = hostname(hostAndPort).toLowerCase();
  return name === 'localhost' || name === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(name);
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
  if (isLoopback(host)) return 'https-then-http';
  const name = unbracket(hostname(host).toLowerCase());
  const listed = plainHttpHosts.some((entry) => {
    const e = entry.trim().toLowerCase();
    // An IPv6 address may be listed with or without its brackets (`fd00::2` or `[fd00::2]`).
    return e === host.toLowerCase() || unbracket(e) === name;
  });
  return listed ? 'https-then-http' : 'https';
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
