import { readFile } from 'node:fs/promises';
import type { Reference } from '../oci/reference.ts';
import { UserError } from '../util/errors.ts';
import { Authenticator } from './auth.ts';
import { type Credential, describeCredential, findCredential } from './credentials.ts';
import { apiHost } from './endpoint.ts';
import { HttpClient, type HttpClientOptions, type OptionHints } from './http-client.ts';
import { RegistryTarget } from './registry-target.ts';
import { type UploadOverride, uploadPolicyFor } from './upload-policy.ts';

export interface RegistryOptions {
  /** Explicit credentials; otherwise the docker config, then GITHUB_TOKEN for ghcr.io. */
  username?: string;
  password?: string;
  /** Where username and password came from, for the log line that names the credentials' source. */
  explicitSource?: string;
  /** Hosts that may be spoken to over plain HTTP (loopback always may). */
  plainHttp?: readonly string[];
  /** PEM files with extra CA certificates to trust. */
  caFiles?: readonly string[];
  /** How errors name the options that fix them (the CLI's flags, the Action's inputs). */
  hints?: OptionHints;
  upload?: UploadOverride;
  /** Where the `single` strategy spools blobs before their PUT (default: the OS temp folder). */
  spoolDir?: string;
  retry?: HttpClientOptions['retry'];
  timeouts?: HttpClientOptions['timeouts'];
  /** Where credentials are looked up (DOCKER_AUTH_CONFIG, DOCKER_CONFIG, HOME, GITHUB_TOKEN) and helpers run. */
  env: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Told where credentials came from (never the secret). */
  onCredential?: (description: string) => void;
  /** Told every secret value before it is used (the Action masks them in its log). */
  onSecret?: (value: string) => void;
}

/** A registry repository as a Target, with its HTTP client, credentials and upload policy set up. */
export async function openRegistryTarget(
  reference: Reference,
  access: 'pull' | 'push',
  options: RegistryOptions,
): Promise<RegistryTarget> {
  const ca: string[] = [];
  for (const file of options.caFiles ?? []) {
    try {
      ca.push(await readFile(file, 'utf8'));
    } catch (err) {
      throw new UserError(`cannot read the CA file ${file}: ${(err as Error).message}`);
    }
  }
  const host = apiHost(reference.registry);
  const client = new HttpClient(host, {
    ...(options.plainHttp ? { plainHttp: options.plainHttp } : {}),
    ...(options.hints ? { hints: options.hints } : {}),
    ca,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  const loadCredential = async () => {
    const found = await findCredential(reference.registry, {
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.explicitSource ? { explicitSource: options.explicitSource } : {}),
      env: options.env,
      ...(options.homeDir ? { homeDir: options.homeDir } : {}),
    });
    if (found) {
      for (const secret of secretsOf(found.credential)) options.onSecret?.(secret);
      options.onCredential?.(describeCredential(found));
    }
    return found?.credential;
  };
  client.setAuthenticator(
    new Authenticator(
      reference.registry,
      loadCredential,
      client.tokenTransport,
      (realm) => client.allowsPlainHttpRealm(realm),
      client.hints.plainHttp,
    ),
  );
  return new RegistryTarget({
    client,
    registry: reference.registry,
    repository: reference.repository,
    policy: uploadPolicyFor(host, options.upload),
    access,
    ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
  });
}

/** The values of a credential that must never be shown, in every spelling a log could carry. */
function secretsOf(credential: Credential): string[] {
  if (credential.kind === 'basic') {
    return [
      credential.password,
      Buffer.from(`${credential.username}:${credential.password}`).toString('base64'),
    ];
  }
  return [credential.token];
}
