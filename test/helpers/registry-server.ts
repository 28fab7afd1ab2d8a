import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestCa, type TestCa } from './test-ca.ts';
import {
  startTokenServer,
  TEST_PASSWORD,
  TEST_USERNAME,
  type TokenServer,
  type TokenServerOptions,
} from './token-server.ts';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  /** Default 'none': anyone may push and pull. */
  auth?: RegistryAuth;
  /** Serve HTTPS with a certificate from a fresh test CA (caFile/caPem in the result). */
  tls?: boolean;
  /** Token mode: how long tokens work (really, Distribution's leeway compensated). Default 300. */
  tokenLifetimeSeconds?: number;
  /**
   * Token mode with TLS: serve the token realm over plain HTTP anyway, as a misconfigured (or
   * hostile) registry could, to check that credentials never go there in clear.
   */
  plainHttpRealm?: boolean;
  /** Token mode: further token server options (public repositories, omitExpiresIn, postAnswers404, users). */
  token?: Omit<TokenServerOptions, 'signingKeyPem' | 'signingCertPem' | 'tls' | 'lifetimeSeconds'>;
  /** The registry's log level; logs are kept for logs(), never printed. Default 'warn'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Where the registry's config and storage go (default the OS temp folder; the bench uses tmpfs). */
  parentDir?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the host part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…` */
  url: string;
  /** Credentials accepted in htpasswd and token mode. */
  username: string;
  password: string;
  /** TLS only: the CA that signed the server certificate. */
  caFile?: string;
  caPem?: string;
  /** TLS or token mode: the whole test CA (server and JWT signing keys). */
  ca?: TestCa;
  /** Token mode: the running token server (request log, settings, issued count). */
  token?: TokenServer;
  storageDir: string;
  /** The temporary folder holding config, keys and storage; removed by stop(). */
  dir: string;
  /** The registry's process (the bench reads its CPU time). */
  pid: number | undefined;
  /** Everything the registry printed so far. */
  logs(): string;
  /** Kills the registry, stops its token server and removes its files. */
  stop(): Promise<void>;
}

// bcrypt (cost 5) of TEST_PASSWORD, made once with libxcrypt (`perl -e 'print crypt(PASSWORD, "$2y$05$SALT")'`):
// Node has no bcrypt and Distribution accepts no other htpasswd hash.
const TEST_PASSWORD_BCRYPT = '$2y$05$vcDLZjg2Z9MHCOPnjdXgDeh93.zKpEjq62ADvA9vM3zSL/LdsWDKW';

const READY_TIMEOUT_MS = 20_000;
const START_ATTEMPTS = 5;

// Registries a test forgot to stop must not outlive the test process.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}

/** A port that was free a moment ago; the caller retries if someone takes it first. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Setup {
  dir: string;
  storageDir: string;
  options: RegistryOptions;
  ca?: TestCa;
  token?: TokenServer;
  htpasswdFile?: string;
}

function authConfig(setup: Setup): object | undefined {
  if (setup.token && setup.ca) {
    const { realm, service, issuer } = setup.token;
    return { token: { realm, service, issuer, rootcertbundle: setup.ca.signingCert.file } };
  }
  if (setup.htpasswdFile) return { htpasswd: { realm: 'model-oci test registry', path: setup.htpasswdFile } };
  return undefined;
}

// JSON is YAML too, and spares us quoting rules.
function writeConfig(setup: Setup, port: number): string {
  const config = {
    version: '0.1',
    log: { level: setup.options.logLevel ?? 'warn', formatter: 'text', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: setup.storageDir },
      delete: { enabled: true },
      // Partial uploads stay put: tests of resumed uploads look at them.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: randomBytes(16).toString('hex'),
      ...(setup.options.tls && setup.ca
        ? { tls: { certificate: setup.ca.serverCert.file, key: setup.ca.serverKey.file } }
        : {}),
    },
    auth: authConfig(setup),
  };
  const file = path.join(setup.dir, 'config.yml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

// REGISTRY_* variables override the config file; a stray one in the environment must not change the test.
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('REGISTRY_')));
}

/**
 * Any answer on /v2/ (200, or 401 with auth) that comes from a Distribution means the registry serves.
 * The header check keeps a foreign server that holds the port from passing for ours.
 */
function probe(url: string, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(`${url}/v2/`, { ca, timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(res.headers['docker-distribution-api-version'] === 'registry/2.0');
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

interface Started {
  child: ChildProcess;
  output: { text: string };
}

/** Spawns the registry and waits until it answers; rejects with its output if it exits first. */
function launch(configFile: string, url: string, ca: string | undefined): Promise<Started> {
  const child = spawn('docker-registry', ['serve', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: registryEnv(),
  });
  killOnExit(child);
  const output = { text: '' };
  const collect = (chunk: Buffer) => {
    output.text += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(error);
    };
    child.once('error', (error) => {
      fail(new Error(`cannot run docker-registry (install it: sh scripts/test-deps.sh): ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      fail(new Error(`docker-registry exited (${signal ?? code}) before serving:\n${output.text}`));
    });
    waitReady(url, ca, () => settled).then(
      () => {
        if (settled) return;
        settled = true;
        resolve({ child, output });
      },
      (error: Error) => fail(new Error(`${error.message}\n${output.text}`)),
    );
  });
}

async function waitReady(url: string, ca: string | undefined, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!gaveUp()) {
    if (await probe(url, ca)) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}/v2/ in time`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function launchOnFreePort(setup: Setup): Promise<Started & { port: number; url: string }> {
  const scheme = setup.options.tls ? 'https' : 'http';
  const ca = setup.options.tls ? setup.ca?.cert.pem : undefined;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `${scheme}://127.0.0.1:${port}`;
    try {
      return { ...(await launch(writeConfig(setup, port), url, ca)), port, url };
    } catch (error) {
      // Another process may grab the port between our probe and the registry's bind.
      const taken = error instanceof Error && /address already in use/i.test(error.message);
      if (!taken || attempt >= START_ATTEMPTS) throw error;
    }
  }
}

/** Keys, password file and token server the registry's config points at. */
async function prepare(setup: Setup): Promise<void> {
  const { dir, options } = setup;
  mkdirSync(setup.storageDir);
  const auth = options.auth ?? 'none';
  if (options.tls || auth === 'token') setup.ca = createTestCa(path.join(dir, 'ca'));
  if (auth === 'htpasswd') {
    setup.htpasswdFile = path.join(dir, 'htpasswd');
    writeFileSync(setup.htpasswdFile, `${TEST_USERNAME}:${TEST_PASSWORD_BCRYPT}\n`);
  }
  if (auth === 'token' && setup.ca) {
    setup.token = await startTokenServer({
      ...options.token,
      lifetimeSeconds: options.tokenLifetimeSeconds,
      signingKeyPem: setup.ca.signingKey.pem,
      signingCertPem: setup.ca.signingCert.pem,
      tls:
        options.tls && !options.plainHttpRealm
          ? { certPem: setup.ca.serverCert.pem, keyPem: setup.ca.serverKey.pem }
          : undefined,
    });
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function cleanUp(setup: Setup): Promise<void> {
  await setup.token?.close();
  rmSync(setup.dir, { recursive: true, force: true });
}

/**
 * Starts CNCF Distribution (docker-registry) on a free loopback port with throwaway filesystem storage
 * (deletes enabled). Resolves once /v2/ answers. Call stop() when done (e.g. in afterAll).
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(options.parentDir ?? tmpdir(), 'model-oci-registry-'));
  const setup: Setup = { dir, storageDir: path.join(dir, 'storage'), options };
  let started: Awaited<ReturnType<typeof launchOnFreePort>>;
  try {
    await prepare(setup);
    started = await launchOnFreePort(setup);
  } catch (error) {
    await cleanUp(setup);
    throw error;
  }
  const tlsCa = options.tls ? setup.ca : undefined;
  // Token mode with its own accounts: report the first one.
  const [username, password] = Object.entries(options.token?.users ?? {})[0] ?? [
    TEST_USERNAME,
    TEST_PASSWORD,
  ];
  return {
    host: `127.0.0.1:${started.port}`,
    url: started.url,
    username,
    password,
    caFile: tlsCa?.cert.file,
    caPem: tlsCa?.cert.pem,
    ca: setup.ca,
    token: setup.token,
    storageDir: setup.storageDir,
    dir: setup.dir,
    pid: started.child.pid,
    logs: () => started.output.text,
    async stop() {
      await stopChild(started.child);
      await cleanUp(setup);
    },
  };
}
