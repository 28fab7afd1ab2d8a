import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry-server.ts';
import { createCaRoot } from '../helpers/test-ca.ts';
import { DISTRIBUTION_TOKEN_LEEWAY_SECONDS } from '../helpers/token-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Monolithic push: POST an upload, PUT the whole blob with its digest. Returns the PUT's answer. */
async function pushBlob(
  registry: TestRegistry,
  repo: string,
  data: Buffer,
  headers: Record<string, string> = {},
) {
  const post = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (post.status !== 202) return post;
  const location = new URL(post.headers.get('location')!, registry.url);
  location.searchParams.set('digest', sha256(data));
  const put = { ...headers, 'content-type': 'application/octet-stream' };
  return fetch(location, { method: 'PUT', headers: put, body: data });
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
function parseChallenge(header: string | null): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [, key, value] of (header ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[key!] = value!;
  return params;
}

async function fetchToken(registry: TestRegistry, scope: string, credentials = true): Promise<string> {
  const url = new URL(registry.token!.realm);
  url.searchParams.set('service', registry.token!.service);
  url.searchParams.set('scope', scope);
  const headers: Record<string, string> = credentials
    ? { authorization: basic(registry.username, registry.password) }
    : {};
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe('registry without auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(() => registry?.stop());

  test('pushes a blob anonymously and serves it back', async () => {
    const data = randomBytes(1000);
    const put = await pushBlob(registry, 'x', data);
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(data));
    const get = await fetch(`${registry.url}/v2/x/blobs/${sha256(data)}`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(data);
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test('deletes are enabled', async () => {
    const data = randomBytes(10);
    expect((await pushBlob(registry, 'x', data)).status).toBe(201);
    const del = await fetch(`${registry.url}/v2/x/blobs/${sha256(data)}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
  });
});

describe('registry with htpasswd', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(() => registry?.stop());

  test('asks for Basic credentials, takes the right ones, refuses wrong ones', async () => {
    const anonymous = await fetch(`${registry.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(`${registry.url}/v2/`, {
      headers: { authorization: basic(registry.username, 'no') },
    });
    expect(wrong.status).toBe(401);
    const auth = { authorization: basic(registry.username, registry.password) };
    expect((await fetch(`${registry.url}/v2/`, { headers: auth })).status).toBe(200);
    expect((await pushBlob(registry, 'x', randomBytes(100), auth)).status).toBe(201);
  });
});

describe('registry with token auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token', token: { publicRepositories: ['open/model'] } });
  });
  afterAll(() => registry?.stop());

  test('challenges with a Bearer realm, service and scope', async () => {
    const res = await fetch(`${registry.url}/v2/x/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(401);
    const header = res.headers.get('www-authenticate');
    expect(header).toMatch(/^Bearer /);
    const { scope, ...rest } = parseChallenge(header);
    expect(rest).toEqual({ realm: registry.token!.realm, service: registry.token!.service });
    // Distribution lists the actions in no fixed order (`pull,push` or `push,pull`).
    const [kind, name, actions] = String(scope).split(':');
    expect([kind, name, actions?.split(',').sort()]).toEqual(['repository', 'x', ['pull', 'push']]);
  });

  test('a token fetched with GET and Basic credentials lets the push through', async () => {
    registry.token!.resetLog();
    const token = await fetchToken(registry, 'repository:x:pull,push');
    expect(
      (await pushBlob(registry, 'x', randomBytes(100), { authorization: `Bearer ${token}` })).status,
    ).toBe(201);
    expect(registry.token!.tokensIssued).toBe(1);
    expect(registry.token!.requests).toEqual([
      expect.objectContaining({
        method: 'GET',
        status: 200,
        basicAuth: true,
        scopes: ['repository:x:pull,push'],
      }),
    ]);
    // The log is safe to print: no password in it.
    expect(JSON.stringify(registry.token!.requests)).not.toContain(registry.password);
  });

  test('several scopes in one GET, with account', async () => {
    const url = new URL(registry.token!.realm);
    url.search = `service=${registry.token!.service}&scope=repository:a:pull&scope=repository:b:pull,push&account=${registry.username}`;
    const res = await fetch(url, { headers: { authorization: basic(registry.username, registry.password) } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ expires_in: 300, token: body.access_token });
    expect(Date.parse(body.issued_at as string)).toBeGreaterThan(Date.now() - 5000);
    expect(body.refresh_token).toBeUndefined();
    expect(registry.token!.requests.at(-1)).toMatchObject({
      scopes: ['repository:a:pull', 'repository:b:pull,push'],
      account: registry.username,
    });
  });

  test('the OAuth2 POST: password grant with a refresh token, then the refresh grant', async () => {
    const form = (fields: Record<string, string>) =>
      fetch(registry.token!.realm, { method: 'POST', body: new URLSearchParams(fields) });
    const common = {
      service: registry.token!.service,
      scope: 'repository:y:pull,push',
      client_id: 'selftest',
    };
    const first = await form({
      ...common,
      grant_type: 'password',
      username: registry.username,
      password: registry.password,
      access_type: 'offline',
    });
    expect(first.status).toBe(200);
    const { refresh_token } = (await first.json()) as { refresh_token: string };
    expect(refresh_token).toBeTruthy();
    const second = await form({ ...common, grant_type: 'refresh_token', refresh_token });
    expect(second.status).toBe(200);
    const { access_token } = (await second.json()) as { access_token: string };
    const put = await pushBlob(registry, 'y', randomBytes(10), { authorization: `Bearer ${access_token}` });
    expect(put.status).toBe(201);
    expect(registry.token!.requests.at(-1)).toMatchObject({ method: 'POST', grantType: 'refresh_token' });
    const bad = await form({
      ...common,
      grant_type: 'password',
      username: registry.username,
      password: 'no',
    });
    expect(bad.status).toBe(401);
  });

  test('wrong password: 401 from the token server', async () => {
    const url = new URL(registry.token!.realm);
    url.searchParams.set('service', registry.token!.service);
    const res = await fetch(url, { headers: { authorization: basic(registry.username, 'wrong') } });
    expect(res.status).toBe(401);
  });

  test('anonymous tokens pull public repositories only', async () => {
    const auth = { authorization: `Bearer ${await fetchToken(registry, 'repository:open/model:pull,push')}` };
    const data = randomBytes(50);
    expect((await pushBlob(registry, 'open/model', data, auth)).status).toBe(201);
    const anon = {
      authorization: `Bearer ${await fetchToken(registry, 'repository:open/model:pull,push', false)}`,
    };
    expect(
      (await fetch(`${registry.url}/v2/open/model/blobs/${sha256(data)}`, { headers: anon })).status,
    ).toBe(200);
    expect((await pushBlob(registry, 'open/model', randomBytes(5), anon)).status).toBe(401);
    const secret = { authorization: `Bearer ${await fetchToken(registry, 'repository:x:pull', false)}` };
    expect((await fetch(`${registry.url}/v2/x/tags/list`, { headers: secret })).status).toBe(401);
  });

  test('settings change at run time: POST answers 404, expires_in left out', async () => {
    const settings = registry.token!.settings;
    settings.postAnswers404 = true;
    settings.omitExpiresIn = true;
    try {
      expect(
        (await fetch(registry.token!.realm, { method: 'POST', body: 'grant_type=password' })).status,
      ).toBe(404);
      const url = `${registry.token!.realm}?service=${registry.token!.service}`;
      const body = (await (await fetch(url)).json()) as Record<string, unknown>;
      expect(body.token).toBeTruthy();
      expect(body).not.toHaveProperty('expires_in');
    } finally {
      settings.postAnswers404 = false;
      settings.omitExpiresIn = false;
    }
  });

  test(`Distribution accepts tokens up to ${DISTRIBUTION_TOKEN_LEEWAY_SECONDS} s past exp (the leeway we undo)`, async () => {
    const access = [{ type: 'repository', name: 'x', actions: ['pull'] }];
    const check = async (lifetimeSeconds: number) => {
      const { token } = registry.token!.issueToken(access, { lifetimeSeconds });
      const res = await fetch(`${registry.url}/v2/x/tags/list`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return res.status;
    };
    // lifetime 30 puts `exp` 30 s in the past: still accepted, so there is a leeway of more than 30 s.
    expect(await check(30)).not.toBe(401);
    // lifetime -2 puts `exp` 62 s in the past: beyond the leeway.
    expect(await check(-2)).toBe(401);
  });
});

test('a token with a 2 s lifetime stops working after it', async () => {
  const registry = await startRegistry({ auth: 'token', tokenLifetimeSeconds: 2 });
  try {
    const url = new URL(registry.token!.realm);
    url.search = `service=${registry.token!.service}&scope=repository:x:pull`;
    const res = await fetch(url, { headers: { authorization: basic(registry.username, registry.password) } });
    const body = (await res.json()) as { token: string; expires_in: number };
    expect(body.expires_in).toBe(2);
    const list = () =>
      fetch(`${registry.url}/v2/x/tags/list`, { headers: { authorization: `Bearer ${body.token}` } });
    expect((await list()).status).toBe(404); // authorized; the repository just does not exist
    await sleep(3000);
    const late = await list();
    expect(late.status).toBe(401);
    expect(late.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  } finally {
    await registry.stop();
  }
});

describe('registry with TLS', () => {
  let registry: TestRegistry;
  let otherCaDir: string;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true, auth: 'token' });
    otherCaDir = mkdtempSync(path.join(tmpdir(), 'model-oci-other-ca-'));
  });
  afterAll(async () => {
    await registry?.stop();
    rmSync(otherCaDir, { recursive: true, force: true });
  });

  test('https works with the test CA, token realm included', async () => {
    expect(registry.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(registry.token!.realm).toMatch(/^https:/);
    const dispatcher = new Agent({ connect: { ca: registry.caPem } });
    try {
      const tokenUrl = `${registry.token!.realm}?service=${registry.token!.service}&scope=repository:x:pull`;
      const auth = { authorization: basic(registry.username, registry.password) };
      const tokenRes = await undiciFetch(tokenUrl, { headers: auth, dispatcher });
      const { token } = (await tokenRes.json()) as { token: string };
      const res = await undiciFetch(`${registry.url}/v2/`, {
        headers: { authorization: `Bearer ${token}` },
        dispatcher,
      });
      expect(res.status).toBe(200);
    } finally {
      await dispatcher.close();
    }
  });

  test('a wrong CA fails with a certificate error', async () => {
    const other = createCaRoot(otherCaDir);
    const dispatcher = new Agent({ connect: { ca: other.cert.pem } });
    try {
      const error = await undiciFetch(`${registry.url}/v2/`, { dispatcher }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      const code = ((error as Error).cause as NodeJS.ErrnoException).code;
      expect(code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/);
    } finally {
      await dispatcher.close();
    }
  });
});
