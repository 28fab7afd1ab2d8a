import type { RegistryOptions } from '../registry/open-registry.ts';
import type { UploadStrategy } from '../registry/upload-policy.ts';
import { UsageError } from '../util/errors.ts';
import { parseSize } from '../util/format.ts';
import { checkTempDir } from '../util/temp-dir.ts';
import type { CliIo } from './io.ts';

/** The flags every command that reads from a registry takes (parseArgs options). */
export const REGISTRY_FLAGS = {
  username: { type: 'string' as const },
  'password-stdin': { type: 'boolean' as const, default: false },
  'plain-http': { type: 'string' as const, multiple: true as const, default: [] as string[] },
  'ca-file': { type: 'string' as const, multiple: true as const, default: [] as string[] },
};

/** The flags of commands that upload blobs (model build, base build, index record). */
export const UPLOAD_FLAGS = {
  upload: { type: 'string' as const, default: 'auto' },
  'chunk-size': { type: 'string' as const },
  'temp-dir': { type: 'string' as const },
};

export interface RegistryFlagValues {
  username?: string | undefined;
  'password-stdin'?: boolean | undefined;
  'plain-http'?: string[] | undefined;
  'ca-file'?: string[] | undefined;
  upload?: string | undefined;
  'chunk-size'?: string | undefined;
  'temp-dir'?: string | undefined;
  quiet?: boolean | undefined;
}

export const REGISTRY_HELP = `Registry options:
  --username USER        with the password from --password-stdin or MODEL_OCI_PASSWORD; otherwise the
                         docker config (credHelpers, credsStore, auths), then GITHUB_TOKEN for ghcr.io
  --password-stdin       read the password (or token) from standard input
  --plain-http HOST      allow plain HTTP to HOST (repeatable; localhost and 127.0.0.1 always may)
  --ca-file FILE         trust the CA certificates in FILE too (repeatable)
`;

export const UPLOAD_HELP = `Upload options:
  --upload auto|chunked|single  upload strategy (auto: by registry, see docs/registries.md)
  --chunk-size SIZE      bytes per PATCH for chunked uploads (default 8MiB; ghcr.io at most 4MiB)
  --temp-dir DIR         where single-PUT uploads spool a layer and base builds work (default: $TMPDIR)
`;

export const OUTPUT_HELP = `Output:
  --json                 print the result as JSON on stdout
  --quiet                no progress lines or credential notes on stderr
`;

/** Registry flags → options; the password comes from stdin or MODEL_OCI_PASSWORD, never from argv. */
export async function registryOptions(values: RegistryFlagValues, io: CliIo): Promise<RegistryOptions> {
  let password = process.env.MODEL_OCI_PASSWORD || undefined;
  let explicitSource = 'MODEL_OCI_PASSWORD';
  if (values['password-stdin']) {
    password = (await readStdin()).replace(/\r?\n$/, '');
    explicitSource = '--password-stdin';
    if (!password) throw new UsageError('--password-stdin read an empty password from standard input');
  }
  if (password !== undefined && values.username === undefined)
    throw new UsageError(`a password was given (${explicitSource}) without --username`);
  if (values.username !== undefined && !password)
    throw new UsageError(
      '--username needs a password: pipe it to --password-stdin, or set MODEL_OCI_PASSWORD',
    );
  const upload = values.upload ?? 'auto';
  if (upload !== 'auto' && upload !== 'chunked' && upload !== 'single')
    throw new UsageError(`--upload must be auto, chunked or single, not ${JSON.stringify(upload)}`);
  let chunkSize: number | undefined;
  if (values['chunk-size'] !== undefined) {
    try {
      chunkSize = parseSize(values['chunk-size']);
    } catch (err) {
      throw new UsageError(`--chunk-size: ${err instanceof Error ? err.message : err}`);
    }
  }
  const tempDir = values['temp-dir'] && (await checkTempDir(values['temp-dir'], '--temp-dir'));
  return {
    ...(values.username !== undefined ? { username: values.username } : {}),
    ...(password !== undefined ? { password, explicitSource: `--username and ${explicitSource}` } : {}),
    plainHttp: values['plain-http'] ?? [],
    caFiles: values['ca-file'] ?? [],
    upload: {
      ...(upload !== 'auto' ? { strategy: upload as UploadStrategy } : {}),
      ...(chunkSize !== undefined ? { chunkSize } : {}),
    },
    ...(tempDir ? { spoolDir: tempDir } : {}),
    onCredential: values.quiet ? undefined : (description) => io.stderr(`using ${description}\n`),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
