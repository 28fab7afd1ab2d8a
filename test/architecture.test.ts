// The shape docs/architecture.md describes, checked: which folder of src/ may import which, where
// the environment is read, and that the packer keeps no state between calls.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { repoRoot } from './helpers/cli.ts';

const src = path.join(repoRoot, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const folderOf = (file: string) => path.relative(src, file).split(path.sep)[0]!;

/** Who may import whom (besides itself); a folder not listed here may import nothing of ours. */
// The CLI and the Action are the two edges: they may use everything.
const EDGES = [
  'oci',
  'content',
  'registry',
  'model',
  'pack',
  'base',
  'compat',
  'pull',
  'hub',
  'connect',
  'config',
  'commands',
  'util',
];

const ALLOWED: Record<string, readonly string[]> = {
  oci: [],
  util: [],
  content: ['oci', 'util'],
  registry: ['oci', 'content', 'util'],
  pack: ['oci', 'content', 'util'],
  model: ['oci', 'content', 'pack', 'util'],
  base: ['oci', 'content', 'util'],
  compat: ['oci', 'content', 'util'],
  pull: ['oci', 'content', 'model', 'util'],
  hub: ['oci', 'model', 'pack', 'util'],
  connect: ['oci', 'content', 'registry', 'base', 'util'],
  config: ['oci', 'content', 'registry', 'model', 'pack', 'base', 'pull', 'hub', 'connect', 'util'],
  commands: [
    'oci',
    'content',
    'registry',
    'model',
    'pack',
    'base',
    'compat',
    'pull',
    'hub',
    'connect',
    'config',
    'util',
  ],
  cli: EDGES,
  action: EDGES,
};

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)[^'"]*from\s+['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) =>
    path.resolve(path.dirname(file), m[1]!),
  );
}

describe('the folders of src/', () => {
  const all = files(src);

  test('every folder is one the rules know', () => {
    expect([...new Set(all.map(folderOf))].filter((f) => !(f in ALLOWED) && !f.endsWith('.ts'))).toEqual([]);
  });

  test('imports run only the allowed ways (compat/ and base/ never reach registry/ but through connect/)', () => {
    const wrong: string[] = [];
    for (const file of all) {
      const from = folderOf(file);
      for (const target of importsOf(file)) {
        if (!target.startsWith(src)) continue; // package.json, for the version
        const to = folderOf(target);
        if (to !== from && !ALLOWED[from]?.includes(to))
          wrong.push(`${path.relative(repoRoot, file)} imports ${path.relative(repoRoot, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('the environment is read only at the edge: config/, cli/ and action/', () => {
    const readers = all
      .filter((f) => !['config', 'cli', 'action'].includes(folderOf(f)))
      .filter((f) =>
        /process\.env\b(?!\)?\s*\.\s*$)/.test(
          readFileSync(f, 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''),
        ),
      )
      .map((f) => path.relative(repoRoot, f));
    expect(readers).toEqual([]);
  });

  test('pack/ keeps no module-level state', () => {
    const stateful = files(path.join(src, 'pack')).filter((f) =>
      /^(let|var)\s|^(export\s+)?const\s+\w+\s*(:[^=]+)?=\s*new\s+(Map|Set|WeakMap|Array)\b/m.test(
        readFileSync(f, 'utf8'),
      ),
    );
    expect(stateful.map((f) => path.relative(repoRoot, f))).toEqual([]);
  });
});
