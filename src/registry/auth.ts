import type { Challenge } from './challenge.ts';
import type { Credential } from './credentials.ts';
import { RegistryAuthError } from './errors.ts';

/** What the authenticator needs from the HTTP layer to talk to a token server. */
/** May credentials go to this plain-HTTP token realm? (HttpClient.allowsPlainHttpRealm) */
export type RealmCheck = (realm: URL) => Promise<boolean>;

export type TokenTransport = (request: {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}) => Promise<{ status: number; text: string }>;

interface CachedToken {
  token: string;
  /** ms since epoch; refreshed before, so an upload never starts a request with a dying token. */
  expiresAt: number;
}

/** Docker's default when a token server says nothing of the lifetime. */
const DEFAULT_TOKEN_SECONDS = 60;

/**
 * Authorization for one registry: learns the scheme from the first challenge, then sends basic
 * credentials or bearer tokens up front. Tokens are cached per scope set until shortly before
 * they expire (`expires_in` from `issued_at`), so a long push refreshes them without a failed
 * request; a 401 anyway (revoked, clock skew) drops the token and fetches a new one.
 */
export class Authenticator {
  private scheme: 'unknown' | 'none' | 'basic' | 'bearer' = 'unknown';
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private credential: Credential | undefined;
  private readonly loadCredential: () => Promise<Credential | undefined>;
  private credentialLoad: Promise<void> | undefined;
  private readonly transport: TokenTransport;
  private readonly registry: string;
  private readonly allowsPlainHttpRealm: RealmCheck;
  private readonly plainHttpHint: string;

  constructor(
    registry: string,
    loadCredential: () => Promise<Credential | undefined>,
    transport: TokenTransport,
    allowsPlainHttpRealm: RealmCheck = async () => false,
    plainHttpHint = 'the plain-HTTP option for HOST',
  ) {
    this.plainHttpHint = plainHttpHint;
    this.registry = registry;
    this.loadCredential = loadCredential;
    this.transport = transport;
    this.allowsPlainHttpRealm = allowsPlainHttpRealm;
  }

  private async getCredential(): Promise<Credential | undefined> {
    // One lookup shared by the requests that meet their first 401 together: a credential helper
    // runs once, and where the credentials came from is reported once.
    this.credentialLoad ??= this.loadCredential().then((credential) => {
      this.credential = credential;
    });
    await this.credentialLoad;
    return this.credential;
  }

  /** The Authorization header for a request needing `scopes`, or undefined (not known yet / anonymous). */
  async header(scopes: readonly string[]): Promise<string | undefined> {
    if (this.scheme === 'basic') return basicHeader(await this.getCredential());
    if (this.scheme !== 'bearer') return undefined;
    const credential = await this.getCredential();
    if (credential?.kind === 'registry-token') return `Bearer ${credential.token}`;
    const token = await this.token(scopes, false);
    return `Bearer ${token.token}`;
  }

  /**
   * Learns from a 401's challenges and gets what the next attempt should send (a new token).
   * Throws a RegistryAuthError when no new attempt can work: no credentials for basic auth, or a
   * token that lacks the scope. The HTTP layer bounds how often a request goes round this loop.
   */
  async onUnauthorized(
    challenges: readonly Challenge[],
    scopes: readonly string[],
    sentHeader: string | undefined,
    where: { method: string; url: URL },
  ): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const credential = await this.getCredential();
    if (bearer?.params.realm) {
      const realm = parseRealm(bearer.params.realm, where);
      if (realm.protocol === 'http:' && !(await this.allowsPlainHttpRealm(realm))) {
        throw new RegistryAuthError(
          `${this.registry} sends its token requests to ${realm.origin}${realm.pathname} over plain HTTP; ` +
            `refusing to send credentials there in clear (allow it with ${this.plainHttpHint.replace('HOST', realm.host)} if it is yours)`,
          { method: where.method, url: where.url, status: 401 },
        );
      }
      this.scheme = 'bearer';
      this.realm = realm;
      this.service = bearer.params.service;
      if (credential?.kind === 'registry-token') {
        if (sentHeader) throw this.refused(where, bearer.params.scope, bearer.params.error);
        return;
      }
      if (sentHeader && bearer.params.error === 'insufficient_scope')
        throw this.refused(where, bearer.params.scope, bearer.params.error);
      const cached = this.tokens.get(scopeKey(scopes));
      // Another request may have refreshed the token meanwhile; then just send the new one.
      const stale = !cached || !sentHeader || sentHeader === `Bearer ${cached.token}`;
      if (stale) await this.token(scopes, sentHeader !== undefined);
      return;
    }
    if (basic) {
      if (credential?.kind !== 'basic') {
        throw new RegistryAuthError(
          `${this.registry} wants a username and password: ${where.method} ${where.url.pathname} was refused (401); log in (docker login ${this.registry}) or pass credentials`,
          { method: where.method, url: where.url, status: 401, code: 'UNAUTHORIZED' },
        );
      }
      if (this.scheme === 'basic' && sentHeader) throw this.refused(where, undefined, undefined);
      this.scheme = 'basic';
      return;
    }
    throw new RegistryAuthError(
      `${this.registry} answered 401 to ${where.method} ${where.url.pathname} without a challenge this client understands`,
      { method: where.method, url: where.url, status: 401 },
    );
  }

  /** The error for a request still refused after new authorization. */
  refused(where: { method: string; url: URL }, scope?: string, error?: string): RegistryAuthError {
    const who = !this.credential
      ? 'anonymous access (log in or pass credentials)'
      : this.credential.kind === 'basic'
        ? `user ${JSON.stringify(this.credential.username)}`
        : 'the token given';
    const what = scope ? ` for ${scope}` : '';
    const why = error ? ` (${error})` : '';
    return new RegistryAuthError(
      `${this.registry} refused ${who}${what}${why}: ${where.method} ${where.url.pathname} answered 401`,
      { method: where.method, url: where.url, status: 401, code: 'DENIED' },
    );
  }

  private async token(scopes: readonly string[], force: boolean): Promise<CachedToken> {
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (!force && cached && Date.now() < cached.expiresAt) return cached;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(scopes).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return token;
  }

  private async fetchToken(scopes: readonly string[]): Promise<CachedToken> {
    const realm = this.realm!;
    const credential = await this.getCredential();
    const refreshToken = credential?.kind === 'identity-token' ? credential.token : undefined;
    if (refreshToken) {
      const body = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: 'model-oci',
        ...(this.service ? { service: this.service } : {}),
        scope: scopes.join(' '),
      });
      const res = await this.transport({
        method: 'POST',
        url: realm,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: body.toString(),
      });
      // Token servers without the OAuth2 endpoint answer 404 (or 405): fall back to GET.
      if (res.status !== 404 && res.status !== 405) return this.readToken(res, 'POST', realm);
    }
    const url = new URL(realm);
    if (this.service) url.searchParams.set('service', this.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    const basic =
      credential?.kind === 'basic'
        ? basicHeader(credential)
        : refreshToken
          ? basicHeader({
              kind: 'basic',
              username:
                credential?.kind === 'identity-token' ? (credential.username ?? '<token>') : '<token>',
              password: refreshToken,
            })
          : undefined;
    if (basic) headers.authorization = basic;
    if (credential?.kind === 'basic') url.searchParams.set('account', credential.username);
    return this.readToken(await this.transport({ method: 'GET', url, headers }), 'GET', url);
  }

  private readToken(res: { status: number; text: string }, method: string, url: URL): CachedToken {
    if (res.status === 401 || res.status === 403) {
      const who = !this.credential
        ? 'refused anonymous access'
        : this.credential.kind === 'basic'
          ? `refused user ${JSON.stringify(this.credential.username)}`
          : 'refused the credentials given';
      throw new RegistryAuthError(`token server ${url.host} ${who} (${res.status})`, {
        method,
        url,
        status: res.status,
        code: 'UNAUTHORIZED',
      });
    }
    if (res.status < 200 || res.status > 299) {
      throw new RegistryAuthError(`token server ${url.host} answered ${res.status} to ${method}`, {
        method,
        url,
        status: res.status,
      });
    }
    let body: {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
      issued_at?: unknown;
      refresh_token?: unknown;
    };
    try {
      body = JSON.parse(res.text);
    } catch {
      throw new RegistryAuthError(`token server ${url.host} answered something that is not JSON`, {
        method,
        url,
      });
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) {
      throw new RegistryAuthError(`token server ${url.host} answered without a token`, { method, url });
    }
    if (
      typeof body.refresh_token === 'string' &&
      body.refresh_token &&
      this.credential?.kind !== 'registry-token'
    ) {
      this.credential = {
        kind: 'identity-token',
        token: body.refresh_token,
        ...(this.credential?.kind === 'basic' ? { username: this.credential.username } : {}),
      };
    }
    const seconds =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : Number.NaN;
    const now = Date.now();
    // A token server's clock may be off from ours: trust issued_at only when it is not in the future.
    const start = Number.isNaN(issued) || issued > now ? now : issued;
    // Refresh early: a tenth of the lifetime, at most 10 s, so a request never leaves with a token
    // that dies on its way.
    const margin = Math.min(10_000, seconds * 100);
    return { token, expiresAt: start + seconds * 1000 - margin };
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

function basicHeader(credential: Credential | undefined): string | undefined {
  if (credential?.kind !== 'basic') return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

function parseRealm(realm: string, where: { method: string; url: URL }): URL {
  try {
    return new URL(realm);
  } catch {
    throw new RegistryAuthError(`the registry named an invalid token realm ${JSON.stringify(realm)}`, {
      method: where.method,
      url: where.url,
      status: 401,
    });
  }
}
