import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  type CredentialOptions,
  describeCredential,
  type FoundCredential,
  findCredential,
} from '../../src/registry/credentials.ts';
import { UserError } from '../../src/util/errors.ts';
import { tempDir } from '../helpers/tmp.ts';

// Every secret used here contains S3CR3T, so that the last test can check that none of them leaked
// into an error message or a describeCredential line.
const PASSWORD = 'hunter2-S3CR3T-pw';
const TOKEN = 'ghp_S3CR3T0123456789abcdefghijklmnop';
const IDENTITY_TOKEN = 'refresh-S3CR3T-9f8e7d6c5b4a';
const REGISTRY_TOKEN = 'bearer-S3CR3T-1a2b3c4d5e6f';
const HELPER_SECRET = 'helper-S3CR3T-0a1b2c3d4e5f';
const b64 = (text: string) => Buffer.from(text).toString('base64');
const AUTH = b64(`octo:${PASSWORD}`);

/** Every message and description the tests saw, checked for secrets at the end. */
const seen: string[] = [];

interface World {
  home: string;
  bin: string;
  env: NodeJS.ProcessEnv;
  /** ~/.docker/config.json */
  configFile: string;
  find(host: string, extra?: Partial<CredentialOptions>): Promise<FoundCredential | undefined>;
  fail(host: string, extra?: Partial<CredentialOptions>): Promise<string>;
}

/**
 * A home directory and a bin directory for helper programs. The env holds only PATH, so that the
 * machine's DOCKER_CONFIG, DOCKER_AUTH_CONFIG or GITHUB_TOKEN cannot change what the tests find.
 */
async function world(): Promise<World> {
  const home = await tempDir();
  const bin = await tempDir();
  const env: NodeJS.ProcessEnv = { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
  const options = (extra: Partial<CredentialOptions> = {}): CredentialOptions => ({
    env,
    homeDir: home,
    ...extra,
  });
  return {
    home,
    bin,
    env,
    configFile: path.join(home, '.docker', 'config.json'),
    async find(host, extra) {
      const found = await findCredential(host, options(extra));
      if (found) seen.push(describeCredential(found), found.source);
      return found;
    },
    async fail(host, extra) {
      const err = await findCredential(host, options(extra)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UserError);
      const message = (err as Error).message;
      seen.push(message);
      expect(message).not.toContain('\n');
      return message;
    },
  };
}

async function writeConfig(file: string, config: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config));
}

/**
 * A real `docker-credential-NAME` program. It saves its arguments and stdin next to itself, then runs
 * `body` (shell) with the server URL in $url.
 */
async function writeHelper(bin: string, name: string, body: string): Promise<{ input(): Promise<string> }> {
  const file = path.join(bin, `docker-credential-${name}`);
  const script = `#!/bin/sh\nurl=$(cat)\nprintf '%s|%s' "$*" "$url" > "$0.input"\n${body}\n`;
  await writeFile(file, script);
  await chmod(file, 0o755);
  return { input: () => readFile(`${file}.input`, 'utf8') };
}

/** Whether the process is alive: a zombie (killed, not yet reaped by whoever inherited it) is not. */
async function isRunning(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined || !/\) Z /.test(stat);
}

const answers = (username: string, secret: string) =>
  `printf '{"ServerURL":"%s","Username":"${username}","Secret":"${secret}"}' "$url"`;
const NOT_FOUND = `echo 'credentials not found in native keychain'; exit 1`;

describe('explicit credentials', () => {
  test('win over every other source', async () => {
    const w = await world();
    await writeConfig(w.configFile, { auths: { 'ghcr.io': { auth: AUTH } } });
    w.env.DOCKER_AUTH_CONFIG = JSON.stringify({ auths: { 'ghcr.io': { auth: AUTH } } });
    w.env.GITHUB_TOKEN = TOKEN;
    const found = await w.find('ghcr.io', { username: 'me', password: PASSWORD });
    expect(found).toEqual({
      credential: { kind: 'basic', username: 'me', password: PASSWORD },
      source: 'the username and password given',
    });
    expect(describeCredential(found!)).toBe('basic auth for user "me" from the username and password given');
  });

  test('need both halves; an empty string (an unset Action input) is not given', async () => {
    const w = await world();
    expect(await w.fail('ghcr.io', { password: PASSWORD })).toBe(
      'a registry password was given without a username',
    );
    expect(await w.fail('ghcr.io', { username: 'me', password: '' })).toBe(
      'a registry username was given without a password',
    );
    expect(await w.find('ghcr.io', { username: '', password: '' })).toBeUndefined();
  });
});

describe('DOCKER_AUTH_CONFIG', () => {
  test('comes before the config file', async () => {
    const w = await world();
    await writeConfig(w.configFile, { auths: { 'registry.gitlab.com': { auth: b64(`file:${PASSWORD}`) } } });
    w.env.DOCKER_AUTH_CONFIG = JSON.stringify({ auths: { 'registry.gitlab.com': { auth: AUTH } } });
    const found = await w.find('registry.gitlab.com');
    expect(found).toEqual({
      credential: { kind: 'basic', username: 'octo', password: PASSWORD },
      source: 'DOCKER_AUTH_CONFIG',
    });
  });

  test('falls through to the config file when it has nothing for the registry', async () => {
    const w = await world();
    await writeConfig(w.configFile, { auths: { 'registry.gitlab.com': { auth: AUTH } } });
    w.env.DOCKER_AUTH_CONFIG = JSON.stringify({ auths: { 'other.example.com': { auth: AUTH } } });
    expect((await w.find('registry.gitlab.com'))?.source).toBe(w.configFile);
  });

  test('its credHelpers and credsStore apply too', async () => {
    const w = await world();
    const helper = await writeHelper(w.bin, 'ecr-login', answers('AWS', HELPER_SECRET));
    w.env.DOCKER_AUTH_CONFIG = JSON.stringify({
      credHelpers: { '123456789012.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login' },
    });
    const found = await w.find('123456789012.dkr.ecr.eu-west-1.amazonaws.com');
    expect(found).toEqual({
      credential: { kind: 'basic', username: 'AWS', password: HELPER_SECRET },
      source: 'DOCKER_AUTH_CONFIG (credHelpers: ecr-login)',
    });
    expect(await helper.input()).toBe('get|123456789012.dkr.ecr.eu-west-1.amazonaws.com');
  });

  test('that is not JSON is an error naming the variable, not its content', async () => {
    const w = await world();
    w.env.DOCKER_AUTH_CONFIG = `{"auths": {"ghcr.io": {"auth": "${AUTH}"}} oops ${PASSWORD}`;
    const message = await w.fail('ghcr.io');
    expect(message).toMatch(/^DOCKER_AUTH_CONFIG is not valid JSON \(line 1 column \d+\)$/);
  });
});

describe('the docker config file', () => {
  test('$DOCKER_CONFIG/config.json replaces ~/.docker/config.json', async () => {
    const w = await world();
    const dir = await tempDir();
    await writeConfig(w.configFile, { auths: { 'ghcr.io': { auth: b64(`home:${PASSWORD}`) } } });
    await writeConfig(path.join(dir, 'config.json'), { auths: { 'ghcr.io': { auth: AUTH } } });
    w.env.DOCKER_CONFIG = dir;
    expect(await w.find('ghcr.io')).toEqual({
      credential: { kind: 'basic', username: 'octo', password: PASSWORD },
      source: path.join(dir, 'config.json'),
    });
    // An empty DOCKER_CONFIG dir means no file: home is not read instead.
    w.env.DOCKER_CONFIG = await tempDir();
    expect(await w.find('ghcr.io')).toBeUndefined();
  });

  test('an empty file is an empty config, as docker reads it', async () => {
    const w = await world();
    await writeConfig(w.configFile, '\n');
    expect(await w.find('ghcr.io')).toBeUndefined();
  });

  test('auths entries: auth, username/password, identitytoken, registrytoken', async () => {
    const w = await world();
    await writeConfig(w.configFile, {
      auths: {
        'a.example.com': { auth: AUTH },
        'b.example.com': { username: 'bob', password: PASSWORD },
        'c.example.com': { auth: b64('carol:'), identitytoken: IDENTITY_TOKEN },
        'd.example.com': { registrytoken: REGISTRY_TOKEN, auth: AUTH },
        'e.example.com': {},
      },
    });
    const credential = async (host: string) => (await w.find(host))?.credential;
    expect(await credential('a.example.com')).toEqual({
      kind: 'basic',
      username: 'octo',
      password: PASSWORD,
    });
    expect(await credential('b.example.com')).toEqual({ kind: 'basic', username: 'bob', password: PASSWORD });
    expect(await credential('c.example.com')).toEqual({
      kind: 'identity-token',
      token: IDENTITY_TOKEN,
      username: 'carol',
    });
    expect(await credential('d.example.com')).toEqual({ kind: 'registry-token', token: REGISTRY_TOKEN });
    // Docker Desktop's `{}` placeholder holds nothing: anonymous.
    expect(await credential('e.example.com')).toBeUndefined();
    expect(await credential('f.example.com')).toBeUndefined();
  });

  test('describeCredential names the kind, the user and the source', async () => {
    const w = await world();
    await writeConfig(w.configFile, {
      auths: {
        'c.example.com': { identitytoken: IDENTITY_TOKEN },
        'd.example.com': { registrytoken: REGISTRY_TOKEN },
      },
    });
    expect(describeCredential((await w.find('c.example.com'))!)).toBe(`identity token from ${w.configFile}`);
    expect(describeCredential((await w.find('d.example.com'))!)).toBe(`registry token from ${w.configFile}`);
  });

  test.each([
    'https://index.docker.io/v1/',
    'index.docker.io',
    'docker.io',
    'registry-1.docker.io',
    'https://registry-1.docker.io/v2/',
  ])('Docker Hub is found under %s', async (key) => {
    const w = await world();
    await writeConfig(w.configFile, {
      auths: { 'ghcr.io': { auth: b64(`gh:${PASSWORD}`) }, [key]: { auth: AUTH } },
    });
    expect((await w.find('docker.io'))?.credential).toEqual({
      kind: 'basic',
      username: 'octo',
      password: PASSWORD,
    });
    expect((await w.find('index.docker.io'))?.credential).toMatchObject({ username: 'octo' });
    expect((await w.find('quay.io'))?.credential).toBeUndefined();
  });

  test("docker's own Hub key wins over the other spellings", async () => {
    const w = await world();
    await writeConfig(w.configFile, {
      auths: {
        'docker.io': { auth: b64(`other:${PASSWORD}`) },
        'https://index.docker.io/v1/': { auth: AUTH },
      },
    });
    expect((await w.find('docker.io'))?.credential).toMatchObject({ username: 'octo' });
  });

  test('keys with a scheme, port and path match on host:port only', async () => {
    const w = await world();
    await writeConfig(w.configFile, {
      auths: {
        'http://localhost:5000': { auth: AUTH },
        'https://127.0.0.1:5000/v2/': { auth: b64(`ip:${PASSWORD}`) },
        'registry.example.com/some/path': { auth: b64(`path:${PASSWORD}`) },
      },
    });
    const user = async (host: string) => {
      const credential = (await w.find(host))?.credential;
      return credential?.kind === 'basic' ? credential.username : undefined;
    };
    expect(await user('localhost:5000')).toBe('octo');
    expect(await user('127.0.0.1:5000')).toBe('ip');
    expect(await user('registry.example.com')).toBe('path');
    expect(await user('localhost:5001')).toBeUndefined();
    expect(await user('localhost')).toBeUndefined();
    expect(await user('127.0.0.1')).toBeUndefined();
  });

  test('that is not JSON is an error naming the file, not its content', async () => {
    const w = await world();
    const line3 = `    "ghcr.io": { "auth": "${AUTH}" ${PASSWORD} }`;
    await writeConfig(w.configFile, `{\n  "auths": {\n${line3}\n  }\n}`);
    // Where the problem is, but not the text around it (V8's own message quotes that).
    const column = line3.indexOf(PASSWORD) + 1;
    expect(await w.fail('ghcr.io')).toBe(`${w.configFile} is not valid JSON (line 3 column ${column})`);
    await writeConfig(w.configFile, `{"auths": {"ghcr.io": {"password": "${PASSWORD}`);
    expect(await w.fail('ghcr.io')).toBe(`${w.configFile} is not valid JSON (line 1 column 54)`);
    await writeConfig(w.configFile, `{"auths": {"ghcr.io": {"password": `);
    expect(await w.fail('ghcr.io')).toBe(`${w.configFile} is not valid JSON (it ends too early)`);
    await writeConfig(w.configFile, PASSWORD);
    expect(await w.fail('ghcr.io')).toBe(`${w.configFile} is not valid JSON`);
  });

  test('an auth that is not base64 of user:password is an error without the value', async () => {
    const w = await world();
    const bad = {
      'a.example.com': { auth: `${PASSWORD}!` }, // not base64 at all
      'b.example.com': { auth: b64(PASSWORD) }, // base64, but no colon
      'c.example.com': { auth: b64(`:${PASSWORD}`) }, // no user name
    };
    await writeConfig(w.configFile, { auths: { ...bad, 'ok.example.com': { auth: AUTH } } });
    for (const host of Object.keys(bad)) {
      expect(await w.fail(host)).toBe(
        `"auth" of auths["${host}"] in ${w.configFile} is not base64 of "username:password"`,
      );
    }
    // A broken entry for another registry does not stop this one.
    expect((await w.find('ok.example.com'))?.credential).toMatchObject({ username: 'octo' });
  });

  test('entries and sections of the wrong type are errors naming where', async () => {
    const w = await world();
    await writeConfig(w.configFile, { auths: { 'ghcr.io': PASSWORD, 'quay.io': { password: 42 } } });
    expect(await w.fail('ghcr.io')).toBe(`auths["ghcr.io"] in ${w.configFile} is not an object`);
    expect(await w.fail('quay.io')).toBe(`"password" of auths["quay.io"] in ${w.configFile} is not a string`);
    await writeConfig(w.configFile, { credHelpers: ['gcloud'] });
    expect(await w.fail('ghcr.io')).toBe(`"credHelpers" in ${w.configFile} is not an object`);
  });
});

describe('credential helpers', () => {
  test('credHelpers beats credsStore beats auths', async () => {
    const w = await world();
    const pass = await writeHelper(w.bin, 'pass', answers('from-helper', HELPER_SECRET));
    await writeHelper(w.bin, 'desktop', answers('from-store', HELPER_SECRET));
    await writeConfig(w.configFile, {
      auths: { 'ghcr.io': { auth: AUTH }, 'quay.io': { auth: AUTH } },
      credHelpers: { 'ghcr.io': 'pass' },
      credsStore: 'desktop',
    });
    expect(await w.find('ghcr.io')).toEqual({
      credential: { kind: 'basic', username: 'from-helper', password: HELPER_SECRET },
      source: `${w.configFile} (credHelpers: pass)`,
    });
    expect(await pass.input()).toBe('get|ghcr.io');
    expect(await w.find('quay.io')).toEqual({
      credential: { kind: 'basic', username: 'from-store', password: HELPER_SECRET },
      source: `${w.configFile} (credsStore: desktop)`,
    });
    await writeConfig(w.configFile, { auths: { 'quay.io': { auth: AUTH } } });
    expect((await w.find('quay.io'))?.source).toBe(w.configFile);
  });

  test('are asked for https://index.docker.io/v1/ for Docker Hub, whatever the credHelpers key', async () => {
    const w = await world();
    const hub = await writeHelper(w.bin, 'hub', answers('octo', HELPER_SECRET));
    await writeConfig(w.configFile, { credHelpers: { 'docker.io': 'hub' } });
    expect((await w.find('docker.io'))?.source).toBe(`${w.configFile} (credHelpers: hub)`);
    expect(await hub.input()).toBe('get|https://index.docker.io/v1/');
  });

  test('a helper answering Username "<token>" gives an identity token', async () => {
    const w = await world();
    await writeHelper(w.bin, 'acr', answers('<token>', IDENTITY_TOKEN));
    await writeConfig(w.configFile, { credHelpers: { 'myreg.azurecr.io': 'acr' } });
    const found = await w.find('myreg.azurecr.io');
    expect(found?.credential).toEqual({ kind: 'identity-token', token: IDENTITY_TOKEN });
    expect(describeCredential(found!)).toBe(`identity token from ${w.configFile} (credHelpers: acr)`);
  });

  test('"credentials not found" falls through: credHelpers → credsStore → auths → GITHUB_TOKEN', async () => {
    const w = await world();
    await writeHelper(w.bin, 'none', NOT_FOUND);
    await writeHelper(w.bin, 'empty', 'exit 0'); // no output at all: nothing either
    await writeHelper(w.bin, 'store', answers('from-store', HELPER_SECRET));
    await writeConfig(w.configFile, { credHelpers: { 'ghcr.io': 'none' }, credsStore: 'store' });
    expect((await w.find('ghcr.io'))?.source).toBe(`${w.configFile} (credsStore: store)`);

    await writeConfig(w.configFile, {
      credHelpers: { 'ghcr.io': 'none' },
      credsStore: 'empty',
      auths: { 'ghcr.io': { auth: AUTH } },
    });
    expect((await w.find('ghcr.io'))?.source).toBe(w.configFile);

    await writeConfig(w.configFile, { credHelpers: { 'ghcr.io': 'none' }, credsStore: 'none' });
    w.env.GITHUB_TOKEN = TOKEN;
    expect((await w.find('ghcr.io'))?.source).toBe('GITHUB_TOKEN');
    expect(await w.find('quay.io')).toBeUndefined();
  });

  test('a missing helper is a one-line error naming the program, the file and the key', async () => {
    const w = await world();
    await writeConfig(w.configFile, { credHelpers: { 'ghcr.io': 'nope' } });
    expect(await w.fail('ghcr.io')).toBe(
      `docker-credential-nope not found in PATH (credHelpers["ghcr.io"] in ${w.configFile} asks for it)`,
    );
    w.env.DOCKER_AUTH_CONFIG = JSON.stringify({ credsStore: 'osxkeychain' });
    expect(await w.fail('quay.io')).toBe(
      'docker-credential-osxkeychain not found in PATH (credsStore in DOCKER_AUTH_CONFIG asks for it)',
    );
  });

  test('a helper name that is not a plain name is refused, not run', async () => {
    const w = await world();
    await writeConfig(w.configFile, { credsStore: '../../tmp/evil' });
    expect(await w.fail('ghcr.io')).toBe(
      `credsStore in ${w.configFile} is not a credential helper name (letters, digits, '.', '_', '-')`,
    );
  });

  test('a failing helper: exit code and the first line of its stderr, scrubbed', async () => {
    const w = await world();
    await writeHelper(
      w.bin,
      'broken',
      `echo "token expired: Bearer ${TOKEN} password=${PASSWORD} id ${IDENTITY_TOKEN}" >&2; echo second line >&2; exit 3`,
    );
    await writeConfig(w.configFile, { credHelpers: { 'ghcr.io': 'broken' } });
    expect(await w.fail('ghcr.io')).toBe(
      'docker-credential-broken get failed with exit code 3: token expired: Bearer [redacted] ' +
        `password=[redacted] id [redacted] (credHelpers["ghcr.io"] in ${w.configFile})`,
    );
  });

  test('a failing helper with its message on stdout (as docker-credential-helpers do)', async () => {
    const w = await world();
    await writeHelper(w.bin, 'gcr', 'echo "error: gcloud not logged in"; exit 1');
    await writeConfig(w.configFile, { credsStore: 'gcr' });
    expect(await w.fail('gcr.io')).toBe(
      `docker-credential-gcr get failed with exit code 1: error: gcloud not logged in (credsStore in ${w.configFile})`,
    );
  });

  test('a helper that prints a credential and fails does not get it echoed', async () => {
    const w = await world();
    await writeHelper(
      w.bin,
      'leaky',
      `${answers('octo', HELPER_SECRET)}; echo "secret was ${HELPER_SECRET}" >&2; exit 2`,
    );
    await writeConfig(w.configFile, { credsStore: 'leaky' });
    const message = await w.fail('ghcr.io');
    expect(message).toBe(
      `docker-credential-leaky get failed with exit code 2: secret was [redacted] (credsStore in ${w.configFile})`,
    );
    await writeHelper(w.bin, 'leaky', `${answers('octo', HELPER_SECRET)}; exit 2`);
    expect(await w.fail('ghcr.io')).toBe(
      `docker-credential-leaky get failed with exit code 2 (credsStore in ${w.configFile})`,
    );
  });

  test('a helper printing something other than a credential is an error that does not echo it', async () => {
    const w = await world();
    await writeHelper(w.bin, 'odd', `echo "Secret: ${HELPER_SECRET}"`);
    await writeConfig(w.configFile, { credsStore: 'odd' });
    expect(await w.fail('ghcr.io')).toBe(
      `docker-credential-odd get printed something that is not JSON with Username and Secret (credsStore in ${w.configFile})`,
    );
  });

  test('a helper that hangs is stopped after the timeout, with whatever it started', async () => {
    const w = await world();
    const pidFile = path.join(w.bin, 'child.pid');
    await writeHelper(w.bin, 'slow', `sleep 30 & echo $! > "${pidFile}"; wait`);
    await writeConfig(w.configFile, { credsStore: 'slow' });
    const started = Date.now();
    expect(await w.fail('ghcr.io', { helperTimeoutMs: 300 })).toBe(
      `docker-credential-slow did not answer within 0.3 s (credsStore in ${w.configFile})`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    const child = Number((await readFile(pidFile, 'utf8')).trim());
    // The sleep it started is gone too: it was killed with the helper's process group.
    await expect.poll(() => isRunning(child), { timeout: 2000 }).toBe(false);
  });
});

describe('GITHUB_TOKEN', () => {
  test('is used for ghcr.io only, with GITHUB_ACTOR or x-access-token as the user', async () => {
    const w = await world();
    w.env.GITHUB_TOKEN = TOKEN;
    expect(await w.find('ghcr.io')).toEqual({
      credential: { kind: 'basic', username: 'x-access-token', password: TOKEN },
      source: 'GITHUB_TOKEN',
    });
    w.env.GITHUB_ACTOR = 'octocat';
    const found = await w.find('GHCR.io');
    expect(found?.credential).toEqual({ kind: 'basic', username: 'octocat', password: TOKEN });
    expect(describeCredential(found!)).toBe('basic auth for user "octocat" from GITHUB_TOKEN');
    for (const host of ['docker.io', 'ghcr.io:443', 'ghcr.io.example.com', 'docker.pkg.github.com'])
      expect(await w.find(host)).toBeUndefined();
  });

  test('comes after the docker config', async () => {
    const w = await world();
    w.env.GITHUB_TOKEN = TOKEN;
    await writeConfig(w.configFile, { auths: { 'ghcr.io': { auth: AUTH } } });
    expect((await w.find('ghcr.io'))?.source).toBe(w.configFile);
  });
});

test('nothing configured: anonymous', async () => {
  const w = await world();
  expect(await w.find('ghcr.io')).toBeUndefined();
  expect(await w.find('docker.io')).toBeUndefined();
});

// Runs last (vitest runs a file's tests in order): every message and description collected above.
test('no secret ever appears in an error message, a source or a description', () => {
  expect(seen.length).toBeGreaterThan(40);
  const secrets = [PASSWORD, TOKEN, IDENTITY_TOKEN, REGISTRY_TOKEN, HELPER_SECRET, AUTH, 'S3CR3T'];
  for (const text of seen) for (const secret of secrets) expect(text).not.toContain(secret);
});
