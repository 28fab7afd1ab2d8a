// Small runtime checks for JSON that comes from outside (a layout on disk, a registry).
// Every failure names the JSON path, so "index.json: manifests[2].digest: not a digest" tells
// the user exactly which byte of which document is wrong.

export class InvalidDocumentError extends Error {
  override readonly name = 'InvalidDocumentError';
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path ? `${path}: ` : ''}${problem}`);
    this.path = path;
  }
}

export type JsonObject = { readonly [key: string]: unknown };

export function parseJson(bytes: Uint8Array | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new InvalidDocumentError('', `${what} is not valid JSON (${reason})`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

export function expectObject(value: unknown, path: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidDocumentError(path, `expected an object, found ${describe(value)}`);
  }
  return value as JsonObject;
}

export function expectArray(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value))
    throw new InvalidDocumentError(path, `expected an array, found ${describe(value)}`);
  return value;
}

export function expectString(value: unknown, path: string, pattern?: RegExp, patternName?: string): string {
  if (typeof value !== 'string')
    throw new InvalidDocumentError(path, `expected a string, found ${describe(value)}`);
  if (pattern && !pattern.test(value)) {
    throw new InvalidDocumentError(
      path,
      `${JSON.stringify(value)} is not ${patternName ?? `matching ${pattern}`}`,
    );
  }
  return value;
}

export function expectSafeInteger(value: unknown, path: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidDocumentError(path, `expected an integer >= ${min}, found ${JSON.stringify(value)}`);
  }
  return value;
}

/** Reads `obj[key]` when present and sets it on `target`; an absent key leaves `target` without it. */
export function setOptional<T extends object, K extends keyof T & string>(
  target: T,
  obj: JsonObject,
  key: K,
  path: string,
  read: (v: unknown, p: string) => T[K],
): void {
  const v = obj[key];
  if (v !== undefined) target[key] = read(v, `${path}.${key}`);
}

export function expectStringMap(value: unknown, path: string): Record<string, string> {
  const obj = expectObject(value, path);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = expectString(v, `${path}[${JSON.stringify(k)}]`);
  return out;
}
