import type { RegistryAccess } from '../base/registry-access.ts';
import { describeCredential, findCredential } from '../registry/credentials.ts';
import { apiHost, schemePolicy } from '../registry/endpoint.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';

/** Registry options for a registry other than the target's: never the target's explicit credentials. */
function optionsFor(registry: string, targetRegistry: string, options: RegistryOptions): RegistryOptions {
  if (registry === targetRegistry) return options;
  const { username: _u, password: _p, ...rest } = options;
  return rest;
}

/**
 * What a base build of an image on `targetRegistry` may use of the registries: its repository and
 * the FROM images' through our client, and credentials for the builder — explicit ones only for
 * the target's registry, so they never go to an upstream registry.
 */
export function registryAccess(targetRegistry: string, options: RegistryOptions): RegistryAccess {
  return {
    open: (image, access) =>
      openRegistryTarget(image, access, optionsFor(image.registry, targetRegistry, options)),
    async builderCredential(registry) {
      const o = optionsFor(registry, targetRegistry, options);
      const found = await findCredential(registry, {
        env: o.env,
        ...(o.username !== undefined ? { username: o.username } : {}),
        ...(o.password !== undefined ? { password: o.password } : {}),
        ...(o.explicitSource ? { explicitSource: o.explicitSource } : {}),
        ...(o.homeDir ? { homeDir: o.homeDir } : {}),
      });
      if (!found) return undefined;
      const c = found.credential;
      if (c.kind === 'basic') {
        options.onSecret?.(c.password);
        const auth = Buffer.from(`${c.username}:${c.password}`).toString('base64');
        return { credential: { auth }, source: describeCredential(found) };
      }
      if (c.kind === 'identity-token')
        return { credential: { identitytoken: c.token }, source: describeCredential(found) };
      return undefined; // a builder has no way to take a bare registry token
    },
    plainHttp: (registry) => schemePolicy(apiHost(registry), options.plainHttp) === 'https-then-http',
    explicitCredentials: options.username !== undefined || options.password !== undefined,
    caFiles: options.caFiles ?? [],
    ...(options.onSecret ? { onSecret: options.onSecret } : {}),
  };
}
