import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeCredential, findCredential } from '../registry/credentials.ts';
import type { RegistryOptions } from '../registry/open-registry.ts';
import { optionsFor } from './upstream.ts';

/**
 * Writes an auth.json (containers-auth.json(5), docker's `auths` shape) for buildah with the
 * credentials our own client would use for each registry — explicit ones only for the target —
 * so buildah never gets them on its command line (where `ps` would show them) and never sends the
 * target's credentials to another registry. Returns undefined when no registry has credentials
 * (buildah then looks in its usual places).
 */
export async function writeAuthFile(
  dir: string,
  registries: readonly string[],
  targetRegistry: string,
  options: RegistryOptions,
  onLine?: (line: string) => void,
): Promise<string | undefined> {
  const auths: Record<string, { auth?: string; identitytoken?: string }> = {};
  for (const registry of new Set(registries)) {
    const o = optionsFor(registry, targetRegistry, options);
    const found = await findCredential(registry, {
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.env ? { env: o.env } : {}),
      ...(o.homeDir ? { homeDir: o.homeDir } : {}),
    });
    if (!found) continue;
    const c = found.credential;
    if (c.kind === 'basic') {
      const auth = Buffer.from(`${c.username}:${c.password}`).toString('base64');
      options.onSecret?.(c.password);
      options.onSecret?.(auth);
      auths[registry] = { auth };
    } else if (c.kind === 'identity-token') {
      options.onSecret?.(c.token);
      auths[registry] = { identitytoken: c.token };
    } else {
      continue; // buildah has no way to take a bare registry token
    }
    onLine?.(`${registry}: using ${describeCredential(found)}`);
  }
  if (Object.keys(auths).length === 0) return undefined;
  const file = path.join(dir, 'auth.json');
  await writeFile(file, JSON.stringify({ auths }), { mode: 0o600 });
  return file;
}

/** A --cert-dir with the extra CA files, or undefined when there are none. */
export async function writeCertDir(
  dir: string,
  caFiles: readonly string[] = [],
): Promise<string | undefined> {
  if (caFiles.length === 0) return undefined;
  const certDir = path.join(dir, 'certs');
  await mkdir(certDir, { recursive: true });
  for (const [i, file] of caFiles.entries()) await copyFile(file, path.join(certDir, `ca-${i}.crt`));
  return certDir;
}
