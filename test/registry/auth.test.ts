import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { describeJson } from '../../src/oci/manifest.ts';
import { MODEL_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.ts';
import { RegistryAuthError, RegistryError } from '../../src/registry/errors.ts';
import { clientOf, type RegistryTarget } from '../../src/registry/registry-target.ts';
import { UploadSession } from '../../src/registry/upload-session.ts';
import { runCli } from '../helpers/cli.ts';
import { type FaultProxy, isBlobGet, startFaultProxy } from '../helpers/fault-proxy.ts';
import { modelFromFiles } from '../helpers/model.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';
import { skopeoJson } from '../helpers/tools.ts';
import {
  artifact,
  b64,
  concat,
  expectOneLine,
  expectPulled,
  open,
  push,
  SecretWatch,
  writeDockerConfig,
} from './registry-kit.ts';

// Authentication against a real CNCF Distribution (docker-registry) on 127.0.0.1: none, htpasswd
// (basic) and token auth, as a user sets them up, through the library API and once through the CLI.
// TLS and which hosts may speak plain HTTP are in tls.test.ts.

/** A password no registry accepts; like every secret here it must never appear in an error. */
const WRONG_PASSWORD = 'wrong-S3CR3T-pw-42';
const watch = new SecretWatch();
watch.add(WRONG_PASSWORD);

describe('registry without auth (plain HTTP on 127.0.0.1)', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'none' });
  });
  afterAll(() => registry?.stop());

  test('pushes and pulls anonymously, over http after the https probe fails', async () => {
    const { target, credentialSources } = await open(registry.host, 'org/model', 'push');
    const a = artifact();
    await push(target, a, '1');
    expect(await target.baseUrl()).toBe(`http://${registry.host}`);

    const { target: reader } = await open(registry.host, 'org/model', 'pull');
    await expectPulled(reader, a, '1');
    expect(await reader.hasBlob(a.config.digest)).toBe(true);
    // Nobody asked for credentials, so none were looked up.
    expect(credentialSources).toEqual([]);
  });

  test('a broken docker config does not matter to a registry that asks for no credentials', async () => {
    const homeDir = await tempDir();
    await mkdir(path.join(homeDir, '.docker'));
    await writeFile(path.join(homeDir, '.docker', 'config.json'), '{ not json');
    const { target } = await open(registry.host, 'org/broken-config', 'push', { homeDir });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
  });
});

describe('htpasswd (basic auth)', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
    watch.addRegistry(registry);
  });
  afterAll(() => registry?.stop());

  test('without credentials: a RegistryAuthError that says to log in', async () => {
    const { target } = await open(registry.host, 'org/model', 'push');
    const err = await watch.failure(push(target, artifact(), '1'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toContain(registry.host);
    expect(err.message).toMatch(/username and password/);
    expect(err.message).toContain(`docker login ${registry.host}`);
    expect((err as RegistryAuthError).status).toBe(401);
  });

  test('a wrong password is refused; the message names the user, never the password', async () => {
    const { target } = await open(registry.host, 'org/model', 'push', {
      username: registry.username,
      password: WRONG_PASSWORD,
    });
    const a = artifact();
    const err = await watch.failure(push(target, a, 'wrong'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toContain(`user "${registry.username}"`);
    expect(err.message).toContain('refused');

    // Nothing was pushed.
    const { target: reader } = await open(registry.host, 'org/model', 'pull', {
      username: registry.username,
      password: registry.password,
    });
    expect(await reader.resolve('wrong')).toBeUndefined();
    expect(await reader.hasBlob(a.layer.digest)).toBe(false);
  });

  test('parallel first requests look the credentials up once', async () => {
    const homeDir = await tempDir();
    await writeDockerConfig(homeDir, {
      auths: { [registry.host]: { auth: b64(`${registry.username}:${registry.password}`) } },
    });
    const { target, credentialSources } = await open(registry.host, 'org/parallel', 'push', { homeDir });
    // Like a build uploading four layers at once: every first request meets the 401 together.
    const digests = Array.from({ length: 6 }, () => artifact().layer.digest);
    expect(await Promise.all(digests.map((d) => target.hasBlob(d)))).toEqual(digests.map(() => false));
    // One lookup (a credential helper runs once, "using …" is printed once).
    expect(credentialSources).toHaveLength(1);
  });

  test('explicit credentials push and pull', async () => {
    const { target, credentialSources } = await open(registry.host, 'org/model', 'push', {
      username: registry.username,
      password: registry.password,
    });
    const a = artifact();
    await push(target, a, 'explicit');
    await expectPulled(target, a, 'explicit');
    expect(credentialSources).toEqual([
      `basic auth for user "${registry.username}" from the username and password given`,
    ]);
  });

  test('credentials from ~/.docker/config.json (auths, base64 auth)', async () => {
    const homeDir = await tempDir();
    const file = await writeDockerConfig(homeDir, {
      auths: { [registry.host]: { auth: b64(`${registry.username}:${registry.password}`) } },
    });
    const { target, credentialSources } = await open(registry.host, 'org/from-config', 'push', { homeDir });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(credentialSources).toEqual([`basic auth for user "${registry.username}" from ${file}`]);
  });

  test('credentials from DOCKER_AUTH_CONFIG win over a config file with a wrong password', async () => {
    const homeDir = await tempDir();
    await writeDockerConfig(homeDir, {
      auths: { [registry.host]: { auth: b64(`${registry.username}:${WRONG_PASSWORD}`) } },
    });
    const authConfig = JSON.stringify({
      auths: { [`http://${registry.host}`]: { username: registry.username, password: registry.password } },
    });
    const { target, credentialSources } = await open(registry.host, 'org/from-env', 'push', {
      homeDir,
      env: { DOCKER_AUTH_CONFIG: authConfig },
    });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(credentialSources).toEqual([`basic auth for user "${registry.username}" from DOCKER_AUTH_CONFIG`]);
  });

  test('a redirect to another host (blob storage) does not carry the Authorization header there', async () => {
    const a = artifact();
    const { target: pusher } = await open(registry.host, 'org/redirect', 'push', {
      username: registry.username,
      password: registry.password,
    });
    await push(pusher, a, '1');
    // A "storage backend" on another port (another origin) that serves the blob and notes the headers.
    const storageHeaders: http.IncomingHttpHeaders[] = [];
    const storage = http.createServer((req, res) => {
      storageHeaders.push(req.headers);
      res.writeHead(200, { 'content-length': String(a.layerBytes.byteLength) }).end(a.layerBytes);
    });
    await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
    const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}/blob?signature=S1GNED`;
    const proxy = await startFaultProxy({ upstream: registry.url });
    onTestFinished(async () => {
      await proxy.stop();
      storage.closeAllConnections();
      await new Promise<void>((resolve) => storage.close(() => resolve()));
    });
    // The registry redirects authorized blob GETs to storage, as S3- or GCS-backed registries do.
    proxy.addRule({
      match: (req) => isBlobGet(req) && req.headers.authorization !== undefined,
      fault: { kind: 'respond', status: 307, headers: { location: storageUrl } },
    });
    const { target } = await open(proxy.host, 'org/redirect', 'pull', {
      username: registry.username,
      password: registry.password,
    });
    expect((await concat(await target.fetchBlob(a.layer))).equals(Buffer.from(a.layerBytes))).toBe(true);
    expect(storageHeaders).toHaveLength(1);
    expect(storageHeaders[0]!.authorization).toBeUndefined();
    // The registry itself did get the credentials (the redirect came after them).
    expect(
      proxy.log.some((e) => e.status === 307 && e.requestHeaders.authorization?.startsWith('Basic ')),
    ).toBe(true);
  });

  test('a refused upload URL is reported without its query string (signed upload state)', async () => {
    const { target } = await open(registry.host, 'org/model', 'push', {
      username: registry.username,
      password: registry.password,
    });
    const session = (await UploadSession.start(
      clientOf(target),
      'org/model',
      ['repository:org/model:pull,push'],
      undefined,
    ))!;
    expect(session.location.search).not.toBe('');
    // The same upload finished by a client without credentials: refused, at a URL with a query.
    const { target: anonymous } = await open(registry.host, 'org/model', 'push');
    const stranger = new UploadSession(
      clientOf(anonymous),
      ['repository:org/model:pull,push'],
      session.location,
      0,
    );
    const bytes = new Uint8Array(randomBytes(16));
    const err = await watch.failure(
      stranger.finish(describeJson('application/octet-stream', bytes).digest, undefined, {
        data: bytes,
        size: 16,
      }),
    );
    expect(err).toBeInstanceOf(RegistryAuthError);
    const url = (err as RegistryError).url;
    expect(url).toBe(`http://${registry.host}${session.location.pathname}`);
    expect(url).not.toContain('?');
    expect(err.message).not.toContain('_state');
    expect(err.message).not.toContain('digest=');
    await session.cancel();
  });
});

/** A refresh token from the token server's OAuth2 endpoint, as `docker login` stores one (identitytoken). */
async function refreshToken(registry: TestRegistry): Promise<string> {
  const token = registry.token!;
  const res = await fetch(token.realm, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      username: registry.username,
      password: registry.password,
      access_type: 'offline',
      client_id: 'test',
      service: token.service,
      scope: '',
    }).toString(),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { refresh_token?: string };
  expect(body.refresh_token).toBeTruthy();
  watch.add(body.refresh_token!);
  return body.refresh_token!;
}

describe('token auth', () => {
  let registry: TestRegistry;
  const PUBLIC = 'public/model';
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token', token: { publicRepositories: [PUBLIC] } });
    watch.addRegistry(registry);
  });
  afterAll(() => registry?.stop());

  test('basic credentials get a token by GET (service, scope, account), cached for the whole push', async () => {
    const token = registry.token!;
    token.resetLog();
    const { target } = await open(registry.host, 'org/model', 'push', {
      username: registry.username,
      password: registry.password,
    });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    // About a dozen registry requests (HEADs, POSTs, PUTs, GETs) and one token.
    expect(token.tokensIssued).toBe(1);
    expect(token.requests).toEqual([
      expect.objectContaining({
        method: 'GET',
        path: '/token',
        status: 200,
        basicAuth: true,
        username: registry.username,
        account: registry.username,
        service: token.service,
        scopes: ['repository:org/model:pull,push'],
      }),
    ]);
  });

  test('parallel first requests share one token', async () => {
    const token = registry.token!;
    token.resetLog();
    const { target } = await open(registry.host, 'org/parallel', 'push', {
      username: registry.username,
      password: registry.password,
    });
    const digests = Array.from({ length: 6 }, () => artifact().layer.digest);
    expect(await Promise.all(digests.map((d) => target.hasBlob(d)))).toEqual(digests.map(() => false));
    expect(token.tokensIssued).toBe(1);
  });

  test('a cross-repository mount gets one token for both repositories, and mounts', async () => {
    const { target: base } = await open(registry.host, 'org/base', 'push', {
      username: registry.username,
      password: registry.password,
    });
    const a = artifact();
    await push(base, a, '1');
    const token = registry.token!;
    token.resetLog();
    const derived = base.withRepository('org/derived', 'push');
    expect(await derived.mountBlob(a.layer, base.withRepository('org/base', 'pull'))).toBe('mounted');
    expect(await derived.hasBlob(a.layer.digest)).toBe(true);
    expect(token.requests.map((r) => [...r.scopes].sort())).toContainEqual([
      'repository:org/base:pull',
      'repository:org/derived:pull,push',
    ]);
  });

  test('a pull-only target asks for pull only', async () => {
    const token = registry.token!;
    token.resetLog();
    const { target } = await open(registry.host, 'org/model', 'pull', {
      username: registry.username,
      password: registry.password,
    });
    expect(await target.resolve('does-not-exist')).toBeUndefined();
    expect(token.requests.map((r) => r.scopes)).toEqual([['repository:org/model:pull']]);
  });

  test('an identity token (docker config identitytoken) is traded by POST grant_type=refresh_token', async () => {
    const refresh = await refreshToken(registry);
    const token = registry.token!;
    token.resetLog();
    const homeDir = await tempDir();
    await writeDockerConfig(homeDir, {
      auths: { [registry.host]: { auth: b64(`${registry.username}:`), identitytoken: refresh } },
    });
    const { target, credentialSources } = await open(registry.host, 'org/identity', 'push', { homeDir });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(credentialSources).toEqual([
      `identity token for user "${registry.username}" from ${path.join(homeDir, '.docker', 'config.json')}`,
    ]);
    expect(token.tokensIssued).toBe(1);
    expect(token.requests).toEqual([
      expect.objectContaining({
        method: 'POST',
        status: 200,
        grantType: 'refresh_token',
        username: registry.username,
        service: token.service,
        scopes: ['repository:org/identity:pull,push'],
        basicAuth: false,
      }),
    ]);
  });

  test('a token server without the OAuth2 POST (404): the identity token goes by GET instead', async () => {
    const refresh = await refreshToken(registry);
    const token = registry.token!;
    token.resetLog();
    token.settings.postAnswers404 = true;
    onTestFinished(() => {
      token.settings.postAnswers404 = false;
    });
    const homeDir = await tempDir();
    await writeDockerConfig(homeDir, {
      auths: { [registry.host]: { auth: b64(`${registry.username}:`), identitytoken: refresh } },
    });
    const { target } = await open(registry.host, 'org/identity', 'pull', { homeDir });
    // This token server takes only passwords on GET, so the refresh token sent as the basic-auth
    // password is refused there; what counts is that the client went on to GET and said so clearly.
    const err = await watch.failure(target.resolve('1'));
    expect(token.requests.map((r) => [r.method, r.status])).toEqual([
      ['POST', 404],
      ['GET', 401],
    ]);
    expect(token.requests[1]).toMatchObject({
      basicAuth: true,
      username: registry.username,
      service: token.service,
      scopes: ['repository:org/identity:pull'],
    });
    expect(err).toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toMatch(/token server .* refused/);
    expect((err as RegistryError).url).not.toContain('?');
  });

  test('a registry token (docker config registrytoken) is sent as is: no token server involved', async () => {
    const token = registry.token!;
    const issued = token.issueToken(
      [{ type: 'repository', name: 'org/regtoken', actions: ['pull', 'push'] }],
      {
        subject: registry.username,
      },
    );
    watch.add(issued.token);
    token.resetLog();
    const homeDir = await tempDir();
    await writeDockerConfig(homeDir, { auths: { [registry.host]: { registrytoken: issued.token } } });
    const { target } = await open(registry.host, 'org/regtoken', 'push', { homeDir });
    const a = artifact();
    await push(target, a, '1');
    await expectPulled(target, a, '1');
    expect(token.requests).toEqual([]);

    // The same token for another repository: refused, without sending the token anywhere else.
    const { target: other } = await open(registry.host, 'org/elsewhere', 'push', { homeDir });
    const err = await watch.failure(push(other, artifact(), '1'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(err.message).toContain('the token given');
    expect(token.requests).toEqual([]);
  });

  test('a wrong password: the token server refuses, the message has no secret', async () => {
    const { target } = await open(registry.host, 'org/model', 'push', {
      username: registry.username,
      password: WRONG_PASSWORD,
    });
    const err = await watch.failure(push(target, artifact(), '2'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toMatch(/token server 127\.0\.0\.1:\d+ refused/);
    expect(err.message).toContain(`user "${registry.username}"`);
    // The token URL carried service, scope and account: none of it in the error's URL.
    expect((err as RegistryError).url).toBe(registry.token!.realm);
  });

  test('anonymous push to a private repository: refused, and the message says to log in', async () => {
    const token = registry.token!;
    token.resetLog();
    const { target } = await open(registry.host, 'org/private', 'push');
    const err = await watch.failure(push(target, artifact(), '1'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expectOneLine(err.message);
    expect(err.message).toContain('anonymous');
    expect(err.message).toMatch(/log in/);
    expect(token.requests.length).toBeGreaterThan(0);
    expect(token.requests.every((r) => !r.basicAuth && r.username === undefined)).toBe(true);
  });

  test('anonymous pull of a public repository works; anonymous push to it does not', async () => {
    const { target: pusher } = await open(registry.host, PUBLIC, 'push', {
      username: registry.username,
      password: registry.password,
    });
    const a = artifact();
    await push(pusher, a, 'latest');

    const { target: reader, credentialSources } = await open(registry.host, PUBLIC, 'pull');
    await expectPulled(reader, a, 'latest');
    expect(credentialSources).toEqual([]);

    const { target: anonymousPusher } = await open(registry.host, PUBLIC, 'push');
    const err = await watch.failure(push(anonymousPusher, artifact(), 'anonymous'));
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(err.message).toMatch(/log in/);
  });
});

describe('token auth: tokens that expire during a push', () => {
  // Tokens work 3 s: shorter than the pushes below.
  const LIFETIME = 3;
  let registry: TestRegistry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token', tokenLifetimeSeconds: LIFETIME });
    watch.addRegistry(registry);
    // Only to watch the exchanges: it passes everything through unchanged.
    proxy = await startFaultProxy({ upstream: registry.url });
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  /** Writes `chunks` chunks of 256 KiB (the smallest PATCH) through a blob writer, pausing in between. */
  async function slowUpload(target: RegistryTarget, chunks: number, pauseMs: number) {
    const writer = await target.openBlobWriter();
    const parts: Buffer[] = [];
    for (let i = 0; i < chunks; i++) {
      const part = randomBytes(256 * 1024);
      parts.push(part);
      await writer.write(part);
      await sleep(pauseMs);
    }
    const committed = await writer.commit();
    return { committed, bytes: Buffer.concat(parts) };
  }

  test('a push longer than the token lifetime gets new tokens on the way, ahead of expiry', async () => {
    const token = registry.token!;
    token.resetLog();
    const { target } = await open(proxy.host, 'org/slow', 'push', {
      username: registry.username,
      password: registry.password,
      upload: { strategy: 'chunked', chunkSize: 256 * 1024 },
    });
    const started = Date.now();
    const { committed, bytes } = await slowUpload(target, 4, 1300);
    expect(Date.now() - started).toBeGreaterThan(LIFETIME * 1000);
    const desc = { mediaType: 'application/octet-stream', digest: committed.digest, size: committed.size };
    expect((await concat(await target.fetchBlob(desc))).equals(bytes)).toBe(true);
    expect(token.tokensIssued).toBeGreaterThan(1);
    await proxy.idle();
    const unauthorized = proxy.log.filter((e) => e.status === 401);
    // The first request learns that a token is needed; later tokens are fetched before the old
    // ones die, so no upload request is refused on the way (one late one is tolerated on a busy machine).
    expect(unauthorized.length).toBeGreaterThanOrEqual(1);
    expect(unauthorized.length).toBeLessThanOrEqual(2);
  });

  test('a token that dies earlier than the client was told (no expires_in) is replaced after a 401', async () => {
    const token = registry.token!;
    token.resetLog();
    // Without expires_in the client assumes 60 s; the token really dies after 3 s.
    token.settings.omitExpiresIn = true;
    onTestFinished(() => {
      token.settings.omitExpiresIn = false;
    });
    proxy.log.length = 0;
    const { target } = await open(proxy.host, 'org/revoked', 'push', {
      username: registry.username,
      password: registry.password,
      upload: { strategy: 'chunked', chunkSize: 256 * 1024 },
    });
    const { committed, bytes } = await slowUpload(target, 3, 2000);
    const desc = { mediaType: 'application/octet-stream', digest: committed.digest, size: committed.size };
    expect((await concat(await target.fetchBlob(desc))).equals(bytes)).toBe(true);
    expect(token.tokensIssued).toBeGreaterThan(1);
    await proxy.idle();
    // A PATCH was refused with an expired token, and went again with a new one.
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    expect(patches.some((e) => e.status === 401)).toBe(true);
    expect(patches.filter((e) => e.status === 202)).toHaveLength(3);
  });
});

describe('a server that sends one WWW-Authenticate header per scheme', () => {
  // Distribution sends one challenge; servers behind IIS or some proxies send Negotiate first and
  // Basic in a second header. A small stand-in for such a registry: basic auth, no manifests.
  test('the Basic challenge in the second header is found and answered', async () => {
    const expected = `Basic ${b64(`tester:${WRONG_PASSWORD}`)}`;
    const seenAuthorization: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      seenAuthorization.push(req.headers.authorization);
      res.setHeader('docker-distribution-api-version', 'registry/2.0');
      if (req.headers.authorization === expected) {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('www-authenticate', ['Negotiate', 'Basic realm="stand-in"']);
      res.writeHead(401).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { target } = await open(host, 'org/model', 'pull', {
      username: 'tester',
      password: WRONG_PASSWORD,
    });
    expect(await target.resolve('1')).toBeUndefined();
    expect(seenAuthorization).toEqual([undefined, expected]);
  });
});

describe('CLI: model build to a registry with htpasswd', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
    watch.addRegistry(registry);
  });
  afterAll(() => registry?.stop());

  /** A home without docker config and no credentials from the environment. */
  async function cleanEnv(): Promise<NodeJS.ProcessEnv> {
    return {
      HOME: await tempDir(),
      DOCKER_CONFIG: '',
      DOCKER_AUTH_CONFIG: '',
      GITHUB_TOKEN: '',
      MODEL_OCI_PASSWORD: '',
    };
  }

  test('--username with --password-stdin pushes; skopeo reads the manifest back', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': randomBytes(2048), 'config.json': '{}' });
    const run = await runCli(
      [
        'model',
        'build',
        dir,
        '--name',
        'm',
        '--to',
        `${registry.host}/org/m:1`,
        '--username',
        registry.username,
        '--password-stdin',
      ],
      { env: await cleanEnv(), input: `${registry.password}\n` },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      `using basic auth for user "${registry.username}" from --username and --password-stdin`,
    );
    watch.expectNone(run.stderr + run.stdout);
    const manifest = skopeoJson(
      'inspect',
      '--raw',
      '--creds',
      `${registry.username}:${registry.password}`,
      '--tls-verify=false',
      `docker://${registry.host}/org/m:1`,
    );
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: MODEL_CONFIG },
    });
    expect(manifest.layers.length).toBeGreaterThan(0);
  });

  test('without credentials: exit 1 and one line on stderr', async () => {
    const dir = await modelFromFiles({ 'model.safetensors': randomBytes(2048), 'config.json': '{}' });
    const run = await runCli(['model', 'build', dir, '--name', 'm', '--to', `${registry.host}/org/m:2`], {
      env: await cleanEnv(),
    });
    expect(run.code).toBe(1);
    watch.expectNone(run.stderr + run.stdout);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^model-oci: error: .*username and password.*docker login/);
  });
});

describe('secrets', () => {
  test('no error message, String() or JSON of an error seen above holds a password or token', () => {
    expect(watch.seen.length).toBeGreaterThan(20);
    for (const text of watch.seen) watch.expectNone(text);
  });

  test('RegistryError.url never keeps a query string or user info', () => {
    const err = new RegistryError('x', {
      method: 'PUT',
      url: 'https://user:pw@registry.example.com/v2/x/blobs/uploads/abc?_state=SIGNED&digest=sha256:00',
    });
    expect(err.url).toBe('https://registry.example.com/v2/x/blobs/uploads/abc');
  });
});
