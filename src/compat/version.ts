import semver from 'semver';

// Runtime versions are compared as semver. Runtimes publish PEP 440 versions too (vLLM `0.8.5.post1`,
// `0.9.0rc1`): those are read as the nearest semver (`0.8.5+post.1`, `0.9.0-rc.1`), so a release
// candidate never satisfies a range meant for releases.

const LOOSE =
  /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*(?:[-.]?(a|alpha|b|beta|c|rc|pre|preview|dev)\.?(\d*))?(?:[-.]?(post|rev|r)\.?(\d*))?(?:\+[0-9A-Za-z.-]+)?$/i;

/** The semver form of a runtime version, or undefined when it is not a version. */
export function normalizeVersion(version: string): string | undefined {
  const s = version.trim().replace(/^v/i, '');
  const strict = semver.valid(s);
  if (strict) return strict;
  const m = LOOSE.exec(s);
  if (!m) return undefined;
  const [, major, minor = '0', patch = '0', pre, preN, post, postN] = m;
  let out = `${Number(major)}.${Number(minor)}.${Number(patch)}`;
  if (pre) out += `-${pre.toLowerCase()}.${Number(preN || 0)}`;
  if (post) out += `+post.${Number(postN || 0)}`;
  return semver.valid(out) ?? undefined;
}

export interface Requirement {
  /** The runtime name; undefined matches any runtime (a bare range). */
  name: string | undefined;
  /** A semver range (`*` when only a name was given). */
  range: string;
}

/**
 * `vllm >=0.8 <0.9` → { name: 'vllm', range: '>=0.8 <0.9' }; `vllm` → any version; `>=0.8.2` → any
 * runtime. Undefined when the range is not a semver range.
 */
export function parseRequirement(text: string): Requirement | undefined {
  const s = text.trim();
  const m = /^([A-Za-z][A-Za-z0-9._/-]*)(?:\s+(.*))?$/.exec(s);
  const name = m ? m[1] : undefined;
  const range = (m ? (m[2] ?? '') : s).trim() || '*';
  if (!s || semver.validRange(range) === null) return undefined;
  return { name, range };
}

export function satisfies(version: string, requirement: Requirement, runtime: string): boolean {
  if (requirement.name !== undefined && requirement.name !== runtime) return false;
  const v = normalizeVersion(version);
  return v !== undefined && semver.satisfies(v, requirement.range);
}

/** Descending by version (newest first); equal versions keep their order. */
export function compareVersionsDesc(a: string, b: string): number {
  const va = normalizeVersion(a);
  const vb = normalizeVersion(b);
  if (va && vb) return semver.rcompare(va, vb);
  return va ? -1 : vb ? 1 : 0;
}
