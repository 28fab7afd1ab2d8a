import type { RegistryOptions } from '../registry/open-registry.ts';
import type { UploadStrategy } from '../registry/upload-policy.ts';
import { UserError } from '../util/errors.ts';
import { parseSize } from '../util/format.ts';
import type { CliIo } from './main.ts';

/** The flags every command that talks to a registry takes (parseArgs options). */
export const REGISTRY_FLAGS = {
  username: { type: 'string' as const },
  'password-stdin': { type: 'boolean' as const, default: false },
  'plain-http': { type: 'string' as const, multiple: true as const, default: [] as string[] },
  'ca-file': { type: 'string' as const, multiple: true as const, default: [] as string[] },
  upload: { type: 'string' as const, default: 'auto' },
  'chunk-size': { type: 'string' as const },
};

export interface RegistryFlagValues {
  username?: string | undefined;
  'password-stdin'?: boolean | undefined;
  'plain-http'?: string[] | undefined;
  'ca-file'?: string[] | undefined;
  upload?: string | undefined;
  'chunk-size'?: string | undefined;
  quiet?: boolean | undefined;
}

export const REGISTRY_HELP = `Registry options:
  --username USER        with the password from --password-stdin or MODEL_OCI_PASSWORD; otherwise the
                         docker config (credHelpers, credsStore, auths), then GITHUB_TOKEN for ghcr.io
  --password-stdin       read the password (or token) from standard input
  --plain-http HOST      allow plain HTTP to HOST (repeatable; localhost and 127.0.0.1 always may)
  --ca-file FILE         trust the CA certificates in FILE too (repeatable)
  --upload auto|chunked|single  upload strategy (auto: by registry, see docs/registries.md)
  --chunk-size SIZE      bytes per PATCH for chunked uploads (default 8MiB; ghcr.io at most 4MiB)
`;

/** Registry flags → options; the password comes from stdin or MODEL_OCI_PASSWORD, never from argv. */
export async function registryOptions(values: RegistryFlagValues, io: CliIo): Promise<RegistryOptions> {
  let password = process.env.MODEL_OCI_PASSWORD || undefined;
  if (values['password-stdin']) password = (await readStdin()).replace(/\r?\n$/, '');
  if (password !== undefined && values.username === undefined)
    throw new UserError('a password was given without --username');
  if (values.username !== undefined && !password)
    throw new UserError('--username needs a password: --password-stdin or MODEL_OCI_PASSWORD');
  const upload = values.upload;
  if (upload !== 'auto' && upload !== 'chunked' && upload !== 'single')
    throw new UserError(`--upload must be auto, chunked or single, not ${JSON.stringify(upload)}`);
  let chunkSize: number | undefined;
  if (values['chunk-size'] !== undefined) {
    try {
      chunkSize = parseSize(values['chunk-size']);
    } catch (err) {
      throw new UserError(`--chunk-size: ${err instanceof Error ? err.message : err}`);
    }
  }
  return {
    ...(values.username !== undefined ? { username: values.username } : {}),
    ...(password !== undefined ? { password } : {}),
    plainHttp: values['plain-http'] ?? [],
    caFiles: values['ca-file'] ?? [],
    upload: {
      ...(upload !== 'auto' ? { strategy: upload as UploadStrategy } : {}),
      ...(chunkSize !== undefined ? { chunkSize } : {}),
    },
    onCredential: values.quiet ? undefined : (description) => io.stderr(`using ${description}\n`),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
