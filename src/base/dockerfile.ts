import { formatReference, parseReference } from '../oci/reference.ts';
import { UserError } from '../util/errors.ts';

// What the base builder needs from a Dockerfile: its FROM lines, with the ARGs declared before the
// first FROM substituted (build args override their defaults), so every upstream image can be
// resolved — and pinned — before the build. Only what docker's parser does for FROM is modelled:
// the `# escape=` directive, line continuations, comments, heredoc bodies (skipped), `FROM
// [--flag=…] image [AS name]`, `ARG a[=b] …`, `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`,
// `${VAR:+x}`, `${VAR+x}`, quotes.

export interface FromStage {
  /** The image word after substitution (`ubuntu:22.04`, a stage name, `scratch`). */
  image: string;
  kind: 'image' | 'stage' | 'scratch';
  /** The `AS` name, lowercased as docker does. */
  name?: string;
  /** `--platform=…` and other flags, as written. */
  flags: string[];
  /** 0-based first physical line of the instruction and how many lines it spans. */
  line: number;
  lineCount: number;
}

interface Instruction {
  keyword: string;
  args: string;
  line: number;
  lineCount: number;
}

export interface ParseOptions {
  buildArgs?: Record<string, string>;
  /** The target platform (`os/arch[/variant]`) for BuildKit's automatic platform ARGs. */
  platform?: string;
}

export function parseDockerfile(text: string, options: ParseOptions = {}): FromStage[] {
  const instructions = instructionsOf(text);
  const vars = platformArgs(options.platform);
  const stages: FromStage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'ARG' && stages.length === 0) {
      for (const word of splitWords(ins.args)) {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        const given = options.buildArgs?.[name];
        if (given !== undefined) vars.set(name, given);
        else if (eq >= 0) vars.set(name, expandWord(word.slice(eq + 1), vars));
        else if (!vars.has(name)) vars.set(name, '');
      }
    } else if (ins.keyword === 'FROM') {
      stages.push(fromStage(ins, vars, stages));
    }
  }
  if (stages.length === 0) throw new UserError('the Dockerfile has no FROM instruction');
  return stages;
}

function fromStage(ins: Instruction, vars: Map<string, string>, earlier: FromStage[]): FromStage {
  const words = splitWords(ins.args);
  const flags: string[] = [];
  while (words[0]?.startsWith('--')) flags.push(words.shift() as string);
  const [rawImage, as, name, ...extra] = words;
  if (!rawImage || (as !== undefined && (as.toLowerCase() !== 'as' || !name)) || extra.length > 0) {
    throw new UserError(`line ${ins.line + 1}: FROM must be "FROM [--platform=…] image [AS name]"`);
  }
  const image = expandWord(rawImage, vars);
  if (image === '') throw new UserError(`line ${ins.line + 1}: FROM ${rawImage} names no image (empty ARG?)`);
  const isStage = earlier.some((s) => s.name === image.toLowerCase());
  const kind = isStage ? 'stage' : image.toLowerCase() === 'scratch' ? 'scratch' : 'image';
  const stage: FromStage = { image, kind, flags, line: ins.line, lineCount: ins.lineCount };
  if (name) stage.name = name.toLowerCase();
  return stage;
}

/** The stage that is built (`target`, else the last) followed back to the image it starts from. */
export function finalBase(stages: FromStage[], target?: string): FromStage | undefined {
  let stage = target ? stages.find((s) => s.name === target.toLowerCase()) : stages.at(-1);
  if (!stage) throw new UserError(`the Dockerfile has no stage named ${JSON.stringify(target)}`);
  while (stage?.kind === 'stage') {
    const from: string = stage.image.toLowerCase();
    stage = stages.find((s) => s.name === from);
  }
  return stage?.kind === 'image' ? stage : undefined;
}

/** The Dockerfile with every image FROM pinned to `registry/repo@digest` (one line per FROM). */
export function pinDockerfile(text: string, stages: FromStage[], digests: Map<string, string>): string {
  const lines = text.split('\n');
  for (const s of stages) {
    const digest = digests.get(s.image);
    if (s.kind !== 'image' || !digest) continue;
    const { registry, repository } = parseReference(s.image);
    const pinned = formatReference({ registry, repository, digest: digest as `sha256:${string}` });
    const words = ['FROM', ...s.flags, pinned, ...(s.name ? ['AS', s.name] : [])];
    lines.splice(s.line, s.lineCount, words.join(' '), ...Array(s.lineCount - 1).fill(''));
  }
  return lines.join('\n');
}

/** Logical instructions: directives read, comments dropped, continuations joined, heredocs skipped. */
function instructionsOf(text: string): Instruction[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  let escapeChar = '\\';
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(.*?)\s*$/.exec(lines[i] as string);
    if (!m) break;
    if (m[1]?.toLowerCase() === 'escape') escapeChar = m[2] === '`' ? '`' : '\\';
  }
  const out: Instruction[] = [];
  while (i < lines.length) {
    const start = i;
    const first = (lines[i++] as string).trim();
    if (first === '' || first.startsWith('#')) continue;
    let joined = first;
    while (joined.endsWith(escapeChar) && i < lines.length) {
      joined = joined.slice(0, -1);
      let next = (lines[i++] as string).trim();
      // Comment and empty lines inside a continuation are dropped; the instruction goes on.
      while ((next === '' || next.startsWith('#')) && i < lines.length) next = (lines[i++] as string).trim();
      if (!next.startsWith('#')) joined += ` ${next}`;
    }
    const m = /^(\S+)\s*(.*)$/s.exec(joined) as RegExpExecArray;
    const keyword = (m[1] as string).toUpperCase();
    out.push({ keyword, args: m[2] as string, line: start, lineCount: i - start });
    // Heredoc bodies (RUN <<EOF … EOF) are not instructions.
    for (const h of (m[2] as string).matchAll(/<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g)) {
      const word = h[3] as string;
      while (i < lines.length) {
        const body = lines[i++] as string;
        if ((h[1] ? body.replace(/^\t+/, '') : body) === word) break;
      }
    }
  }
  return out;
}

/** Splits on unquoted whitespace, keeping quotes (expandWord removes them). */
function splitWords(args: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote = '';
  for (let i = 0; i < args.length; i++) {
    const ch = args[i] as string;
    if (quote) {
      if (ch === quote) quote = '';
      else if (ch === '\\' && quote === '"' && i + 1 < args.length) word += ch + args[++i];
      else word += ch;
      if (!quote) word += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (word) words.push(word);
      word = '';
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word += ch;
    } else if (ch === '\\' && i + 1 < args.length) {
      word += ch + args[++i];
    } else {
      word += ch;
    }
  }
  if (quote) throw new UserError(`unterminated quote in ${JSON.stringify(args)}`);
  if (word) words.push(word);
  return words;
}

/** Shell-like expansion of one word: quotes removed, `$VAR` and `${VAR…}` replaced (not in '…'). */
export function expandWord(word: string, vars: Map<string, string>): string {
  let out = '';
  let quote = '';
  for (let i = 0; i < word.length; i++) {
    const ch = word[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = '';
      else out += ch;
    } else if (ch === '"' || (ch === "'" && !quote)) {
      quote = quote === ch ? '' : ch;
    } else if (ch === '\\' && i + 1 < word.length) {
      out += word[++i];
    } else if (ch === '$') {
      const [value, next] = expandVar(word, i + 1, vars);
      out += value;
      i = next - 1;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Expands the variable starting after `$` at `pos`; returns the value and the index after it. */
function expandVar(word: string, pos: number, vars: Map<string, string>): [string, number] {
  if (word[pos] !== '{') {
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(word.slice(pos))?.[0];
    return name ? [vars.get(name) ?? '', pos + name.length] : ['$', pos];
  }
  let depth = 1;
  let end = pos + 1;
  for (; end < word.length && depth > 0; end++) {
    if (word[end] === '{') depth++;
    else if (word[end] === '}') depth--;
  }
  if (depth > 0) throw new UserError(`missing "}" in ${JSON.stringify(word)}`);
  const body = word.slice(pos + 1, end - 1);
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?$/s.exec(body);
  if (!m) throw new UserError(`unsupported substitution \${${body}} in ${JSON.stringify(word)}`);
  const name = m[1] as string;
  const op = m[2];
  const value = vars.get(name);
  const set = op?.startsWith(':') ? Boolean(value) : value !== undefined;
  if (op?.endsWith('-')) return [set ? (value as string) : expandWord(m[3] ?? '', vars), end];
  if (op?.endsWith('+')) return [set ? expandWord(m[3] ?? '', vars) : '', end];
  return [value ?? '', end];
}

/** BuildKit's automatic platform ARGs, usable in FROM without being declared. */
function platformArgs(platform: string | undefined): Map<string, string> {
  const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }[
    process.arch as string
  ];
  const build = `linux/${arch ?? process.arch}`;
  const target = platform ?? build;
  const [os, targetArch = '', variant = ''] = target.split('/');
  return new Map([
    ['BUILDPLATFORM', build],
    ['BUILDOS', 'linux'],
    ['BUILDARCH', arch ?? process.arch],
    ['TARGETPLATFORM', target],
    ['TARGETOS', os ?? 'linux'],
    ['TARGETARCH', targetArch],
    ['TARGETVARIANT', variant],
  ]);
}
