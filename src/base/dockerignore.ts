import path from 'node:path';

// .dockerignore semantics as docker and BuildKit implement them (moby/patternmatcher):
// - one pattern per line; `#` lines are comments; surrounding whitespace is trimmed; empty lines skipped;
// - a leading `!` makes an exception (re-includes what earlier lines excluded);
// - patterns are cleaned like a path (`./a//b/` → `a/b`) and are relative to the context root
//   (a leading `/` is dropped);
// - `*` matches any run of characters except `/`, `?` one character except `/`, `[...]` a class,
//   `\` escapes the next character; `**` matches any number of directories (including none);
// - a path is excluded when the LAST pattern matching it — or matching one of its parent
//   directories — is an exclusion, so a matching directory excludes everything below it.

interface Pattern {
  regex: RegExp;
  exception: boolean;
  text: string;
}

export interface IgnoreMatcher {
  /** True when `relPath` (context-relative, `/`-separated) is excluded from the build context. */
  excludes(relPath: string): boolean;
  /** True when some exception pattern exists, so an excluded directory may still hold included files. */
  readonly hasExceptions: boolean;
}

export function parseDockerignore(text: string): IgnoreMatcher {
  const patterns: Pattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let exception = false;
    if (line.startsWith('!')) {
      exception = true;
      line = line.slice(1).trim();
    }
    const cleaned = cleanPattern(line);
    if (cleaned === '') continue;
    patterns.push({ regex: compilePattern(cleaned), exception, text: cleaned });
  }
  return {
    hasExceptions: patterns.some((p) => p.exception),
    excludes(relPath: string): boolean {
      const parts = relPath.split('/');
      let excluded = false;
      for (const p of patterns) {
        if (p.exception !== excluded) continue; // it could not change the outcome
        let match = p.regex.test(relPath);
        for (let i = 1; !match && i < parts.length; i++) match = p.regex.test(parts.slice(0, i).join('/'));
        if (match) excluded = !p.exception;
      }
      return excluded;
    },
  };
}

function cleanPattern(pattern: string): string {
  const cleaned = path.posix.normalize(pattern).replace(/\/+$/, '');
  const relative = cleaned.replace(/^\/+/, '');
  return relative === '.' ? '' : relative;
}

/** The pattern as an anchored regular expression over a `/`-separated relative path. */
export function compilePattern(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++; // `**/` is `**`
        re += i + 1 >= pattern.length ? '.*' : '(?:.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      i++;
      re += escapeRegex(pattern[i] ?? '\\');
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\(?!\])/g, '\\\\')}]`;
      i = end;
    } else {
      re += escapeRegex(ch);
    }
  }
  return new RegExp(`${re}$`, 's');
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
