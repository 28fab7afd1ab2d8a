import { UsageError } from '../util/errors.ts';
import { parseSize } from '../util/format.ts';

/**
 * The options of every command, by one name each, whatever the caller calls them. A Namer says how
 * the caller's user spells one (`--level` for the CLI, `input compression-level` for the Action), so
 * every message speaks the user's language.
 */
export type OptionKey =
  | 'path'
  | 'name'
  | 'target'
  | 'tags'
  | 'encoding'
  | 'level'
  | 'frameSize'
  | 'concurrency'
  | 'include'
  | 'exclude'
  | 'annotations'
  | 'runtime'
  | 'force'
  | 'dryRun'
  | 'mountFrom'
  | 'index'
  | 'username'
  | 'password'
  | 'plainHttp'
  | 'caFiles'
  | 'upload'
  | 'chunkSize'
  | 'maxLayerSize'
  | 'uploadTimeLimit'
  | 'tempDir'
  | 'context'
  | 'dockerfile'
  | 'buildArgs'
  | 'buildTarget'
  | 'platform'
  | 'builder'
  | 'image'
  | 'from'
  | 'model'
  | 'to'
  | 'verify'
  | 'connections'
  | 'partSize'
  | 'imageForm'
  | 'imagePlatforms'
  | 'hfToken';

export type Namer = (key: OptionKey) => string;

/** What a config is built with besides the raw values: the environment and the caller's names. */
export interface Edge {
  env: Readonly<Record<string, string | undefined>>;
  name: Namer;
  /** How errors below name the options that fix them (CA file, plain HTTP; `HOST` is filled in). */
  hints: { caFile: string; plainHttp: string };
}

/** A required value, or a usage error naming it. */
export function required(value: string | undefined, key: OptionKey, edge: Edge): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${edge.name(key)} is required`);
  return value.trim();
}

/** A whole number from `min` to `max`, or `fallback` when not given. */
export function integer(
  text: string | undefined,
  key: OptionKey,
  edge: Edge,
  range: { min: number; max: number; fallback: number },
): number {
  if (text === undefined || text.trim() === '') return range.fallback;
  const n = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || n < range.min || n > range.max)
    throw new UsageError(
      `${edge.name(key)} must be a whole number from ${range.min} to ${range.max}, not ${JSON.stringify(text)}`,
    );
  return n;
}

/** A size such as 8MiB or 1048576 within a range (the range's words say it as people write it). */
export function size(
  text: string | undefined,
  key: OptionKey,
  edge: Edge,
  range: { min: number; max: number; words: string },
): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (err) {
    throw new UsageError(`${edge.name(key)}: ${err instanceof Error ? err.message : err}`);
  }
  if (bytes < range.min || bytes > range.max)
    throw new UsageError(`${edge.name(key)} must be ${range.words}, not ${JSON.stringify(text)}`);
  return bytes;
}

/** One of `choices`, or `fallback` when not given. */
export function choice<T extends string>(
  text: string | undefined,
  key: OptionKey,
  edge: Edge,
  choices: readonly T[],
  fallback: T,
): T {
  const value = text?.trim() || fallback;
  if (!(choices as readonly string[]).includes(value)) {
    const list =
      choices.length === 2 ? choices.join(' or ') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
    throw new UsageError(`${edge.name(key)} must be ${list}, not ${JSON.stringify(text)}`);
  }
  return value as T;
}

/** KEY=VALUE items (annotations, build args) → a record; a usage error naming the option for anything else. */
export function keyValues(items: readonly string[], key: OptionKey, edge: Edge): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    if (!item.trim()) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${edge.name(key)}: ${JSON.stringify(item.trim())} is not KEY=VALUE`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** Optional text: trimmed, undefined when empty. */
export function optional(text: string | undefined): string | undefined {
  return text?.trim() || undefined;
}
