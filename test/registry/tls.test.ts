import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isLoopback, schemePolicy } from '../../src/registry/endpoint.ts';
import { RegistryAuthError, RegistryError } from '../../src/registry/errors.ts';
import { UserError } from '../../src/util/errors.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { createCaRoot } from '../helpers/test-ca.ts';
import { tempDir } from '../helpers/tmp.ts';
import { artifact, expectOneLine, expectPulled, open, push, SecretWatch } from './registry-kit.ts';

// Which scheme the client speaks to a registry and whether it trusts it, against a real CNCF
// Distribution (docker-registry): loopback falls back from https to plain HTTP, other hosts only when
// listed, and a registry that speaks TLS is never downgraded, whatever its certificate.

const watch = new SecretWatch();

describe('endpoint: which hosts may fall back to plain HTTP', () => {
  test('localhost, 127.0.0.0/8 and [::1] are loopback, with or without a port', () => {
    for (const host of [
      'localhost:5000',
      'localhost',
      'LOCALHOST:5000',
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.1.2.3:80',
    ])
      expect(isLoopback(host), host).toBe(true);
    for (const host of ['[::1]:5000', '[::1]']) expect(isLoopback(host), host).toBe(true);
    for (const host of [
      'registry.example.com',
      'registry.example.com:5000',
      '10.0.0.1:5000',
      'localhost.example.com',
      '127.0.0.1.nip.io',
      '[::2]:5000',
    ])
      expect(isLoopback(host), host).toBe(false);
  });

  test('loopback tries https first, then http; any other host is https only unless listed', () => {
    expect(schemePolicy('localhost:5000')).toBe('https-then-http');
    expect(schemePolicy('127.0.0.1')).toBe('https-then-http');
    expect(schemePolicy('[::1]:5000')).toBe('https-then-http');
    expect(schemePolicy('registry.example.com')).toBe('https');
    expect(schemePolicy('registry.example.com:5000')).toBe('https');
    expect(schemePolicy('registry.example.com', ['other.example.com'])).toBe('https');
    expect(schemePolicy('registry.example.com', ['registry.example.com'])).toBe('https-then-http');
    // A listed name covers every port; a listed host:port only that port.
    expect(schemePolicy('registry.example.com:5000', ['registry.example.com'])).toBe('https-then-http');
    expect(schemePolicy('registry.example.com:5000', ['Registry.Example.com:5000'])).toBe('https-then-http');
    expect(schemePolicy('registry.example.com:5000', ['registry.example.com:6000'])).toBe('https');
    // IPv6 addresses are listed with or without their brackets.
    for (const entry of ['fd00::2', '[fd00::2]', '[fd00::2]:5000'])
      expect(schemePolicy('[fd00::2]:5000', [entry]), entry).toBe('https-then-http');
    expect(schemePolicy('[fd00::2]:5000', ['fd00::3'])).toBe('https');
  });
});

/** An address of this machine that is not loopback (so https only unless listed), if it has one. */
function outsideAddress(family: 'IPv4' | 'IPv6' = 'IPv4'): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) {
      // Link-local IPv6 addresses need a zone to be reached: not those.
      if (a.family === family && !a.internal && !a.address.startsWith('fe80:')) return a.address;
    }
  }
  return undefined;
}

interface Forwarder {
  /** `address:PORT` or `[::1]:PORT`, as written in references. */
  host: string;
  close(): Promise<void>;
}

/**
 * A TCP forwarder from `address` to a registry on 127.0.0.1, so the same registry is reached under
 * another name ([::1], a non-loopback address). Undefined when the address cannot be bound here.
 */
async function forwarder(address: string, registry: TestRegistry): Promise<Forwarder | undefined> {
  const port = Number(new URL(registry.url).port);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, address, () => resolve(true));
  });
  if (!listening) return undefined;
  const bound = (server.address() as net.AddressInfo).port;
  return {
    host: address.includes(':') ? `[${address}]:${bound}` : `${address}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('endpoints under other names (TCP forwarders to the same registries)', () => {
  let plain: TestRegistry;
  let tls: TestRegistry;
  const forwarders: Forwarder[] = [];
  beforeAll(async () => {
    [plain, tls] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ tls: true })]);
  });
  afterAll(async () => {
    await Promise.all(forwarders.map((f) => f.close()));
    await Promise.all([plain?.stop(), tls?.stop()]);
  });

  async function forward(address: string, registry: TestRegistry): Promise<string | undefined> {
    const f = await forwarder(address, registry);
    if (f) forwarders.push(f);
    return f?.host;
  }

  test('localhost:PORT is loopback: plain HTTP without being told', async () => {
    const host = `localhost:${new URL(plain.url).port}`;
    const { target } = await open(host, 'org/model', 'push');
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(await target.baseUrl()).toBe(`http://${host}`);
  });

  test('localhost:PORT with TLS and the CA: https (the certificate names localhost)', async () => {
    const host = `localhost:${new URL(tls.url).port}`;
    const { target } = await open(host, 'org/model', 'push', { caFiles: [tls.caFile!] });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(await target.baseUrl()).toBe(`https://${host}`);
  });

  test('[::1]:PORT is loopback: plain HTTP without being told', async (context) => {
    const host = await forward('::1', plain);
    if (!host) return context.skip('no IPv6 loopback on this machine');
    const { target } = await open(host, 'org/model', 'push');
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(await target.baseUrl()).toBe(`http://${host}`);
  });

  test('a plain-HTTP registry at a non-loopback address: refused with the --plain-http hint, unless listed', async (context) => {
    const address = outsideAddress();
    const host = address && (await forward(address, plain));
    if (!address || !host) return context.skip('no non-loopback IPv4 address on this machine');
    const { target } = await open(host, 'org/model', 'push');
    const err = await watch.failure(push(target, artifact(), '1'));
    expect(err).toBeInstanceOf(RegistryError);
    expectOneLine(err.message);
    expect(err.message).toContain(`https://${host}/v2/`);
    expect(err.message).toMatch(/plain HTTP, not TLS/);
    expect(err.message).toContain('--plain-http');
    expect(err.message).not.toMatch(/openssl|\.c:\d+/);

    // Listed (by address, without the port): tried with TLS, then plain HTTP.
    const { target: listed } = await open(host, 'org/model', 'push', { plainHttp: [address] });
    const a = artifact();
    await push(listed, a, '1');
    await expectPulled(listed, a, '1');
    expect(await listed.baseUrl()).toBe(`http://${host}`);
  });

  test('a non-loopback IPv6 registry listed for plain HTTP by its bare address', async (context) => {
    const address = outsideAddress('IPv6');
    const host = address && (await forward(address, plain));
    if (!address || !host) return context.skip('no non-loopback IPv6 address on this machine');
    expect(schemePolicy(host)).toBe('https');
    const { target } = await open(host, 'org/model', 'push', { plainHttp: [address] });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(await target.baseUrl()).toBe(`http://${host}`);
  });

  test('a listed plain-HTTP host that speaks TLS with a bad certificate is not downgraded', async (context) => {
    const address = outsideAddress();
    const host = address && (await forward(address, tls));
    if (!address || !host) return context.skip('no non-loopback IPv4 address on this machine');
    // The certificate is for 127.0.0.1 and localhost, not for this address.
    const { target } = await open(host, 'org/model', 'push', { plainHttp: [host], caFiles: [tls.caFile!] });
    const err = await watch.failure(push(target, artifact(), '1'));
    expectOneLine(err.message);
    expect(err.message).toMatch(/certificate is not for this host/i);
    // The CA was given: hinting at --ca-file would send the user the wrong way.
    expect(err.message).not.toContain('--ca-file');
    expect((err as RegistryError).url).toMatch(/^https:/);
    expect(await target.baseUrl()).toBe(`https://${host}`);
  });
});

describe('TLS', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true });
  });
  afterAll(() => registry?.stop());

  test('with the CA (--ca-file) it pushes and pulls over https', async () => {
    const { target } = await open(registry.host, 'org/model', 'push', { caFiles: [registry.caFile!] });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(await target.baseUrl()).toBe(`https://${registry.host}`);
  });

  async function expectUntrusted(caFiles: string[]) {
    const { target } = await open(registry.host, 'org/model', 'push', { caFiles });
    const err = await watch.failure(push(target, artifact(), 'untrusted'));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).not.toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toMatch(/certificate/i);
    expect(err.message).toContain('--ca-file');
    // Node's own advice (its --use-system-ca flag) would come first and send users elsewhere.
    expect(err.message).not.toContain('--use-system-ca');
    // A registry that speaks TLS is never spoken to in plain HTTP, whatever its certificate.
    expect((err as RegistryError).url).toMatch(/^https:\/\//);
    expect(await target.baseUrl()).toBe(`https://${registry.host}`);
  }

  test('without its CA: a one-line certificate error with the --ca-file hint, no fallback to http', async () => {
    await expectUntrusted([]);
  });

  test('with an unrelated CA: the same clear error', async () => {
    const other = createCaRoot(path.join(await tempDir(), 'other-ca'));
    await expectUntrusted([other.cert.file]);
  });

  test('a CA file that cannot be read is a UserError naming the file', async () => {
    const missing = path.join(await tempDir(), 'missing-ca.pem');
    const err = await watch.failure(open(registry.host, 'org/model', 'push', { caFiles: [missing] }));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(missing);
  });
});

describe('TLS with token auth (realm over https too)', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true, auth: 'token' });
    watch.addRegistry(registry);
  });
  afterAll(() => registry?.stop());

  test('the CA given for the registry is trusted for its token server as well', async () => {
    expect(registry.token!.realm).toMatch(/^https:/);
    const { target } = await open(registry.host, 'org/model', 'push', {
      caFiles: [registry.caFile!],
      username: registry.username,
      password: registry.password,
    });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(registry.token!.tokensIssued).toBe(1);
  });
});

describe('a TLS registry whose token realm is plain HTTP', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true, auth: 'token', plainHttpRealm: true });
    watch.addRegistry(registry);
  });
  afterAll(() => registry?.stop());

  test('gets no credentials: a one-line refusal naming the realm; listing the realm host allows it', async () => {
    const realm = new URL(registry.token!.realm);
    expect(realm.protocol).toBe('http:');
    const credentials = {
      caFiles: [registry.caFile!],
      username: registry.username,
      password: registry.password,
    };
    const { target } = await open(registry.host, 'org/model', 'push', credentials);
    const err = await watch.failure(push(target, artifact(), '1'));
    expectOneLine(err.message);
    expect(err.message).toBe(
      `${registry.host} sends its token requests to ${realm.origin}${realm.pathname} over plain HTTP; ` +
        `refusing to send credentials there in clear (allow it with --plain-http ${realm.host} if it is yours)`,
    );
    expect(registry.token!.requests).toEqual([]);

    const listed = await open(registry.host, 'org/model', 'push', {
      ...credentials,
      plainHttp: [realm.host],
    });
    const a = artifact();
    await push(listed.target, a, '1');
    await expectPulled(listed.target, a, '1');
    expect(registry.token!.tokensIssued).toBeGreaterThan(0);
  });
});

describe('secrets', () => {
  test('no error seen above holds a password or token', () => {
    expect(watch.seen.length).toBeGreaterThan(10);
    for (const text of watch.seen) watch.expectNone(text);
  });
});
