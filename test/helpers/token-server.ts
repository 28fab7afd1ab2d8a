import { createHash, createSign, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * CNCF Distribution 2.8 accepts a token up to 60 s after its `exp` (and 60 s before its `nbf`): its
 * registry/auth/token.Leeway, checked as `now.After(exp + Leeway)`. The token server moves `exp` that far
 * back, so a token really stops working `lifetimeSeconds` after it was issued, the time `expires_in` says.
 */
export const DISTRIBUTION_TOKEN_LEEWAY_SECONDS = 60;

/** Accounts every test server knows unless told otherwise. */
export const TEST_USERNAME = 'tester';
export const TEST_PASSWORD = 's3cret-Pa55';

/** What a token grants on one resource: the `access` claim entries the registry checks. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** Behaviour a test may change while the server runs (e.g. one server started in beforeAll). */
export interface TokenSettings {
  /** How long a token works, and what `expires_in` says. Default 300. */
  lifetimeSeconds: number;
  /** Leave `expires_in` out of answers (clients must then assume the spec's default of 60 s). */
  omitExpiresIn: boolean;
  /** Answer the OAuth2 `POST /token` with 404, the way servers without it do, so clients fall back to GET. */
  postAnswers404: boolean;
  /** Repositories anonymous clients may pull; nothing else is granted without credentials. */
  publicRepositories: string[];
}

export interface TokenServerOptions extends Partial<TokenSettings> {
  signingKeyPem: string;
  /** The certificate of the signing key, the one the registry has in its rootcertbundle. */
  signingCertPem: string;
  /** The registry's service name: the JWT audience. */
  service?: string;
  issuer?: string;
  /** Accepted username → password. Default: TEST_USERNAME → TEST_PASSWORD. */
  users?: Record<string, string>;
  /** Serve HTTPS with this certificate (the registry's own), so clients use their CA for the realm too. */
  tls?: { certPem: string; keyPem: string };
}

/** One request the server answered, without any secret, for tests to assert on. */
export interface TokenRequest {
  method: string;
  path: string;
  status: number;
  service?: string;
  scopes: string[];
  account?: string;
  /** `password` or `refresh_token` for the OAuth2 POST; absent for GET. */
  grantType?: string;
  clientId?: string;
  accessType?: string;
  /** Whether the request carried `Authorization: Basic`. */
  basicAuth: boolean;
  /** The user name sent (basic auth or form), never the password or refresh token. */
  username?: string;
}

export interface IssuedToken {
  token: string;
  /** Whole seconds since the epoch: what `issued_at` says and the base of `exp`. */
  issuedAt: number;
  lifetimeSeconds: number;
}

export interface TokenServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The token endpoint the registry names in its challenge: `${url}/token`. */
  realm: string;
  service: string;
  issuer: string;
  settings: TokenSettings;
  requests: TokenRequest[];
  /** Tokens handed out by the endpoint (not those made with issueToken). */
  readonly tokensIssued: number;
  /** Signs a token directly, e.g. to test what the registry does with odd lifetimes. */
  issueToken(access: AccessEntry[], options?: { subject?: string; lifetimeSeconds?: number }): IssuedToken;
  /** Forgets the request log and the issued count. */
  resetLog(): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  status: number;
  body: object;
  constructor(status: number, body: object) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

// libtrust's key ID, which Distribution uses to find the key a JWT's `kid` names: the SHA-256 of the DER
// public key, cut to 240 bits, base32 in twelve groups of four.
function libtrustKeyId(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const bytes = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let encoded = '';
  for (let i = 0; i < bits.length; i += 5) encoded += alphabet[Number.parseInt(bits.slice(i, i + 5), 2)];
  return encoded.match(/.{4}/g)!.join(':');
}

function signJwt(claims: object, keyPem: string, kid: string): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid }));
  const payload = base64url(JSON.stringify(claims));
  const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(keyPem);
  return `${header}.${payload}.${base64url(signature)}`;
}

/** `repository:NAME:pull,push` → entry; names may hold no colon but the type may (`repository(plugin)`). */
function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || first === last) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { username: decoded, password: '' };
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: object,
  headers: http.OutgoingHttpHeaders = {},
) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The token endpoint's state and logic, apart from the HTTP plumbing. */
class TokenIssuer {
  options: TokenServerOptions;
  settings: TokenSettings;
  service: string;
  issuer: string;
  users: Record<string, string>;
  kid: string;
  refreshTokens = new Map<string, string>();
  requests: TokenRequest[] = [];
  tokensIssued = 0;

  constructor(options: TokenServerOptions) {
    this.options = options;
    this.settings = {
      lifetimeSeconds: options.lifetimeSeconds ?? 300,
      omitExpiresIn: options.omitExpiresIn ?? false,
      postAnswers404: options.postAnswers404 ?? false,
      publicRepositories: options.publicRepositories ?? [],
    };
    this.service = options.service ?? 'model-oci-test-registry';
    this.issuer = options.issuer ?? 'model-oci-test-token-server';
    this.users = options.users ?? { [TEST_USERNAME]: TEST_PASSWORD };
    this.kid = libtrustKeyId(options.signingCertPem);
  }

  issueToken(access: AccessEntry[], options: { subject?: string; lifetimeSeconds?: number } = {}) {
    const lifetimeSeconds = options.lifetimeSeconds ?? this.settings.lifetimeSeconds;
    const issuedAt = Math.floor(Date.now() / 1000);
    const claims = {
      iss: this.issuer,
      sub: options.subject ?? '',
      aud: this.service,
      exp: issuedAt + lifetimeSeconds - DISTRIBUTION_TOKEN_LEEWAY_SECONDS,
      nbf: issuedAt,
      iat: issuedAt,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    return { token: signJwt(claims, this.options.signingKeyPem, this.kid), issuedAt, lifetimeSeconds };
  }

  checkPassword(username: string, password: string): void {
    const expected = this.users[username];
    if (expected === undefined || !sameSecret(password, expected)) {
      throw new HttpError(401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong username or password' }] });
    }
  }

  checkService(service: string | undefined): void {
    // A client that sends another service than the challenge named has a bug worth seeing.
    if (service !== undefined && service !== this.service) {
      throw new HttpError(400, { errors: [{ code: 'DENIED', message: `unknown service ${service}` }] });
    }
  }

  /** Authenticated users get what they ask for; anonymous ones pull public repositories, nothing else. */
  grant(scopes: string[], user: string | undefined): AccessEntry[] {
    const granted: AccessEntry[] = [];
    for (const entry of scopes.map(parseScope)) {
      if (!entry) continue;
      if (user !== undefined) {
        granted.push(entry);
        continue;
      }
      const isPublic = entry.type === 'repository' && this.settings.publicRepositories.includes(entry.name);
      if (isPublic && entry.actions.includes('pull')) granted.push({ ...entry, actions: ['pull'] });
    }
    return granted;
  }

  answer(scopes: string[], user: string | undefined, offline: boolean): Record<string, unknown> {
    const granted = this.grant(scopes, user);
    const issued = this.issueToken(granted, { subject: user });
    this.tokensIssued++;
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      issued_at: new Date(issued.issuedAt * 1000).toISOString(),
    };
    if (!this.settings.omitExpiresIn) body.expires_in = issued.lifetimeSeconds;
    if (offline && user !== undefined) {
      const refresh = randomBytes(24).toString('base64url');
      this.refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    return body;
  }

  /** Docker's token GET: scopes as repeated `scope` parameters, credentials as HTTP Basic. */
  handleGet(url: URL, req: http.IncomingMessage, log: TokenRequest): Record<string, unknown> {
    const basic = parseBasic(req.headers.authorization);
    log.username = basic?.username;
    log.service = url.searchParams.get('service') ?? undefined;
    log.account = url.searchParams.get('account') ?? undefined;
    log.scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
    this.checkService(log.service);
    if (basic) this.checkPassword(basic.username, basic.password);
    return this.answer(log.scopes, basic?.username, url.searchParams.get('offline_token') === 'true');
  }

  /** OAuth2 password and refresh_token grants, form-encoded. */
  handlePost(form: URLSearchParams, log: TokenRequest): Record<string, unknown> {
    log.grantType = form.get('grant_type') ?? undefined;
    log.service = form.get('service') ?? undefined;
    log.clientId = form.get('client_id') ?? undefined;
    log.accessType = form.get('access_type') ?? undefined;
    log.scopes = form.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
    this.checkService(log.service);
    const user = this.postUser(form, log);
    const body = this.answer(log.scopes, user, log.accessType === 'offline');
    body.scope = log.scopes.join(' ');
    return body;
  }

  postUser(form: URLSearchParams, log: TokenRequest): string {
    if (log.grantType === 'password') {
      const username = form.get('username');
      const password = form.get('password');
      log.username = username ?? undefined;
      if (username === null || password === null) throw new HttpError(400, { error: 'invalid_request' });
      this.checkPassword(username, password);
      return username;
    }
    if (log.grantType === 'refresh_token') {
      const user = this.refreshTokens.get(form.get('refresh_token') ?? '');
      if (user === undefined) throw new HttpError(401, { error: 'invalid_grant' });
      log.username = user;
      return user;
    }
    throw new HttpError(400, { error: 'unsupported_grant_type' });
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const log: TokenRequest = {
      method: req.method ?? '',
      path: url.pathname,
      status: 0,
      scopes: [],
      basicAuth: /^Basic\s/i.test(req.headers.authorization ?? ''),
    };
    this.requests.push(log);
    try {
      const body = await this.route(req, url, log);
      log.status = 200;
      sendJson(res, 200, body);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      log.status = error.status;
      const challenge = error.status === 401 ? { 'www-authenticate': 'Basic realm="model-oci test"' } : {};
      sendJson(res, error.status, error.body, challenge);
    }
  }

  async route(req: http.IncomingMessage, url: URL, log: TokenRequest): Promise<Record<string, unknown>> {
    if (url.pathname !== '/token') throw new HttpError(404, { error: 'not found' });
    if (req.method === 'GET') return this.handleGet(url, req, log);
    if (req.method !== 'POST') throw new HttpError(405, { error: 'method not allowed' });
    const form = new URLSearchParams(await readBody(req));
    if (this.settings.postAnswers404) throw new HttpError(404, { error: 'not found' });
    return this.handlePost(form, log);
  }
}

/** Starts a Docker token-auth server on 127.0.0.1 (a free port). */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const issuer = new TokenIssuer(options);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    issuer.handle(req, res).catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    realm: `${url}/token`,
    service: issuer.service,
    issuer: issuer.issuer,
    settings: issuer.settings,
    requests: issuer.requests,
    get tokensIssued() {
      return issuer.tokensIssued;
    },
    issueToken: (access, tokenOptions) => issuer.issueToken(access, tokenOptions),
    resetLog() {
      issuer.requests.length = 0;
      issuer.tokensIssued = 0;
    },
    close: () => closeServer(server),
  };
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections from clients under test would otherwise hold close() open.
    server.closeAllConnections();
  });
}
