import { type ParseArgsConfig, parseArgs } from 'node:util';
import { errnoCode, UsageError } from '../util/errors.ts';

/** The `--flag` names a parseArgs configuration declares. */
function flagNames(config: ParseArgsConfig): string[] {
  return Object.keys(config.options ?? {}).map((name) => `--${name}`);
}

/** Edit distance, for "did you mean": a typo is one or two keystrokes away. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The declared flag closest to `given` (a prefix of one, or within two edits), if any. */
export function suggestFlag(given: string, known: readonly string[]): string | undefined {
  const name = given.split('=')[0]!;
  const prefixed = known.filter((k) => k.startsWith(name) && name.length >= 4);
  if (prefixed.length === 1) return prefixed[0];
  const ranked = known
    .map((k) => ({ k, d: distance(name, k) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d || (a.k < b.k ? -1 : 1));
  return ranked[0]?.k;
}

/**
 * node:util parseArgs (strict), with its errors turned into one-line usage errors that name the
 * flag, suggest the nearest declared one and point to the command's help: Node's own messages
 * quote half the flag and explain `--` instead.
 */
export function parseFlags<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, strict: true });
  } catch (err) {
    const code = errnoCode(err);
    if (!code?.startsWith('ERR_PARSE_ARGS')) throw err;
    const help = `see "model-oci ${command} --help"`;
    const quoted = /'([^']*)'/.exec((err as Error).message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const near = suggestFlag(quoted, flagNames(config));
      throw new UsageError(
        `unknown option ${quoted} for "${command}"${near ? ` (did you mean ${near}?)` : ''}; ${help}`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = quoted.split(' ')[0]!;
      const takesValue = /argument missing/.test((err as Error).message);
      throw new UsageError(takesValue ? `${flag} needs a value; ${help}` : `${flag} takes no value; ${help}`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(`unexpected argument ${JSON.stringify(quoted)} for "${command}"; ${help}`);
    }
    throw new UsageError(`${(err as Error).message.split('\n')[0]}; ${help}`);
  }
}
