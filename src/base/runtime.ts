import { UsageError } from '../util/errors.ts';

/** `vllm 0.8.5` (a `v` before the version is allowed) → the runtime a base image provides. */
export function parseProvidedRuntime(text: string, what: string): { name: string; version: string } {
  const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s+v?(\d[\w.+-]*)\s*$/.exec(text);
  if (!m)
    throw new UsageError(`${what} ${JSON.stringify(text)}: expected "<name> <version>", e.g. "vllm 0.8.5"`);
  return { name: m[1]!, version: m[2]! };
}
