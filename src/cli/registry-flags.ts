import type { RawRegistry } from '../config/registry.ts';
import { UsageError } from '../util/errors.ts';
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
  'max-layer-size'?: string | undefined;
  'upload-time-limit'?: string | undefined;
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

/** model build's layer limits (a file over them becomes part layers). */
export const LAYER_LIMIT_FLAGS = {
  'max-layer-size': { type: 'string' as const },
  'upload-time-limit': { type: 'string' as const },
};

export const LAYER_LIMIT_HELP = `Layer limits:
  --max-layer-size SIZE  the most one layer may be (default: the registry's, see docs/registries.md);
                         a larger file becomes part layers, which model pull reassembles
  --upload-time-limit SECONDS  how long the registry lets one upload run (ghcr.io: 600); parts are
                         sized to upload in 80% of it at 12.5 MB/s
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

/**
 * The registry flags as raw options. The password comes from stdin or MODEL_OCI_PASSWORD, never
 * from argv; which one, and that it goes with --username, is the CLI's own business, checked here.
 * Returns the name the password was given by, for messages and the credential note.
 */
export async function rawRegistry(
  values: RegistryFlagValues,
  env: NodeJS.ProcessEnv,
): Promise<{ raw: RawRegistry; passwordFrom: string }> {
  let password = env.MODEL_OCI_PASSWORD || undefined;
  let passwordFrom = 'MODEL_OCI_PASSWORD';
  if (values['password-stdin']) {
    password = (await readStdin()).replace(/\r?\n$/, '');
    passwordFrom = '--password-stdin';
    if (!password) throw new UsageError('--password-stdin read an empty password from standard input');
  }
  if (password !== undefined && values.username === undefined)
    throw new UsageError(`a password was given (${passwordFrom}) without --username`);
  if (values.username !== undefined && !password)
    throw new UsageError(
      '--username needs a password: pipe it to --password-stdin, or set MODEL_OCI_PASSWORD',
    );
  return {
    raw: {
      username: values.username,
      password,
      plainHttp: values['plain-http'] ?? [],
      caFiles: values['ca-file'] ?? [],
      upload: values.upload,
      chunkSize: values['chunk-size'],
      maxLayerSize: values['max-layer-size'],
      uploadTimeLimit: values['upload-time-limit'],
      tempDir: values['temp-dir'],
    },
    passwordFrom,
  };
}

/** Where credentials came from, on stderr, unless --quiet. */
export function credentialNote(values: { quiet?: boolean | undefined }, io: CliIo) {
  return values.quiet ? {} : { onCredential: (description: string) => io.stderr(`using ${description}\n`) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
