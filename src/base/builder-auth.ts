import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RegistryAccess } from './registry-access.ts';

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
  access: RegistryAccess,
  onLine?: (line: string) => void,
): Promise<string | undefined> {
  const auths: Record<string, { auth?: string; identitytoken?: string }> = {};
  for (const registry of new Set(registries)) {
    const found = await access.builderCredential(registry);
    if (!found) continue;
    const secret = 'auth' in found.credential ? found.credential.auth : found.credential.identitytoken;
    access.onSecret?.(secret);
    auths[registry] = found.credential;
    onLine?.(`${registry}: using ${found.source}`);
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
