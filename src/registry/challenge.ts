/** One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `key=value` or `key="quoted \" value"` parameters. Schemes are lower-cased.
 * A server may also send the header several times (one challenge each): pass all the values.
 */
export function parseChallenges(value: string | readonly string[] | undefined): Challenge[] {
  const header = typeof value === 'string' ? value : value?.join(', ');
  if (!header) return [];
  const challenges: Challenge[] = [];
  let i = 0;
  const skip = (re: RegExp) => {
    while (i < header.length && re.test(header[i]!)) i++;
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const schemeStart = i;
    skip(/[^\s,=]/);
    if (i === schemeStart) break;
    const challenge: Challenge = { scheme: header.slice(schemeStart, i).toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const save = i;
      const keyStart = i;
      skip(/[^\s,=]/);
      const key = header.slice(keyStart, i).toLowerCase();
      skip(/\s/);
      if (!key || header[i] !== '=') {
        i = save; // the next token is a new scheme
        break;
      }
      i++;
      skip(/\s/);
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i++];
        }
        i++;
      } else {
        const valueStart = i;
        skip(/[^,]/);
        value = header.slice(valueStart, i).trim();
      }
      challenge.params[key] = value;
      if (i >= header.length) break;
    }
  }
  return challenges;
}
