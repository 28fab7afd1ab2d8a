// The README and the workflow examples against action.yml, the source of truth for the action's
// inputs and outputs: the README's tables must list exactly what action.yml declares, and the
// examples may only pass inputs and read outputs that exist.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { BASE_BUILD_HELP, INDEX_HELP, RESOLVE_HELP } from '../../src/cli/compat-commands.ts';
import { MODEL_BUILD_HELP } from '../../src/cli/model-build.ts';
import { MODEL_INSPECT_HELP } from '../../src/cli/model-inspect.ts';
import { MODEL_PULL_HELP } from '../../src/cli/model-pull.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const examplesDir = path.join(repoRoot, 'workflows-examples');

interface ActionInput {
  description?: string;
  required?: boolean;
  default?: string | number | boolean;
}

interface ActionYaml {
  inputs: Record<string, ActionInput>;
  outputs: Record<string, { description?: string }>;
}

const action: ActionYaml = YAML.parse(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8'));
const inputNames = Object.keys(action.inputs);
const outputNames = Object.keys(action.outputs);
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

const exampleFiles = readdirSync(examplesDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

// ---------------------------------------------------------------------------------------------
// Markdown tables

/** The cells of a Markdown table row; `\|` inside a cell is a literal bar. */
function splitRow(line: string): string[] {
  const inner = line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '');
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The rows (header included) of the first table under `heading`, which must occur exactly once. */
function tableUnder(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const at = lines.flatMap((line, i) => (line.trim() === heading ? [i] : []));
  if (at.length !== 1) throw new Error(`README.md has ${at.length} "${heading}" headings, expected 1`);
  const rows: string[][] = [];
  for (const line of lines.slice(at[0]! + 1)) {
    const text = line.trim();
    if (text.startsWith('|')) rows.push(splitRow(text));
    else if (rows.length > 0 || text.startsWith('#')) break;
  }
  if (rows.length < 2) throw new Error(`README.md has no table under "${heading}"`);
  return rows;
}

/** The table's body rows, after checking its header and separator. */
function bodyRows(rows: string[][], header: string[], heading: string): string[][] {
  expect(rows[0], `the header of the table under "${heading}"`).toEqual(header);
  expect(
    rows[1]?.every((cell) => /^:?-{3,}:?$/.test(cell)),
    `the second row under "${heading}" is a separator row`,
  ).toBe(true);
  return rows.slice(2);
}

/** `` `x` `` → x; anything else is returned as it is, to show up as a difference. */
function unquote(cell: string): string {
  const m = /^`([^`]+)`$/.exec(cell);
  return m ? m[1]! : cell;
}

/** What differs between the names a table lists and the names action.yml declares, in words. */
function nameDifferences(what: string, listed: string[], declared: string[]): string[] {
  const problems: string[] = [];
  const missing = declared.filter((n) => !listed.includes(n));
  const extra = listed.filter((n) => !declared.includes(n));
  const duplicated = listed.filter((n, i) => listed.indexOf(n) !== i);
  if (missing.length) problems.push(`${what} missing from README.md: ${missing.join(', ')}`);
  if (extra.length)
    problems.push(`${what} in README.md that action.yml does not declare: ${extra.join(', ')}`);
  if (duplicated.length) problems.push(`${what} listed twice in README.md: ${duplicated.join(', ')}`);
  if (problems.length === 0 && listed.join() !== declared.join())
    problems.push(
      `${what} in another order: README.md has ${listed.join(', ')}; action.yml has ${declared.join(', ')}`,
    );
  return problems;
}

/** How the README writes a default: `value` in backticks, or an empty cell for ''. */
const defaultCell = (input: ActionInput): string => {
  const value = String(input.default ?? '');
  return value === '' ? '' : `\`${value}\``;
};

describe('README.md tables match action.yml', () => {
  test('### Inputs lists every input, in order, with its default', () => {
    const rows = bodyRows(
      tableUnder(readme, '### Inputs'),
      ['input', 'default', 'description'],
      '### Inputs',
    );
    const listed = rows.map((row) => unquote(row[0] ?? ''));
    const problems = nameDifferences('inputs', listed, inputNames);
    for (const row of rows) {
      const name = unquote(row[0] ?? '');
      const input = action.inputs[name];
      if (!input) continue;
      if (row.length !== 3) problems.push(`input ${name}: ${row.length} cells, expected 3`);
      if (input.required)
        problems.push(`input ${name} is required in action.yml; the README's table has no column for that`);
      const expected = defaultCell(input);
      if ((row[1] ?? '') !== expected)
        problems.push(
          `input ${name}: default in README.md is ${JSON.stringify(row[1])}, action.yml says ${JSON.stringify(String(input.default ?? ''))} (write ${expected ? JSON.stringify(expected) : 'an empty cell'})`,
        );
      if (!row[2]) problems.push(`input ${name} has no description in README.md`);
    }
    expect(problems, `README.md ### Inputs vs action.yml:\n  ${problems.join('\n  ')}`).toEqual([]);
  });

  test('### Outputs lists every output, in order', () => {
    const rows = bodyRows(tableUnder(readme, '### Outputs'), ['output', 'description'], '### Outputs');
    const listed = rows.map((row) => unquote(row[0] ?? ''));
    const problems = nameDifferences('outputs', listed, outputNames);
    for (const row of rows) {
      if (row.length !== 2) problems.push(`output ${row[0]}: ${row.length} cells, expected 2`);
      else if (!row[1]) problems.push(`output ${row[0]} has no description in README.md`);
    }
    expect(problems, `README.md ### Outputs vs action.yml:\n  ${problems.join('\n  ')}`).toEqual([]);
  });

  test('the checks see a difference', () => {
    expect(nameDifferences('inputs', ['a', 'c', 'b'], ['a', 'b', 'c'])).toEqual([
      'inputs in another order: README.md has a, c, b; action.yml has a, b, c',
    ]);
    expect(nameDifferences('inputs', ['a', 'x'], ['a', 'b'])).toEqual([
      'inputs missing from README.md: b',
      'inputs in README.md that action.yml does not declare: x',
    ]);
    expect(splitRow('| `a` | `x\\|y` | text |')).toEqual(['`a`', '`x|y`', 'text']);
    expect(defaultCell({ default: '3' })).toBe('`3`');
    expect(defaultCell({ default: '' })).toBe('');
  });
});

// ---------------------------------------------------------------------------------------------
// Workflow examples (and the README's YAML snippets)

type Yaml = unknown;

const isObject = (v: Yaml): v is Record<string, Yaml> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `uses: ./` (this repository's action) or `<owner>/model-oci-action@<ref>`. */
const isThisAction = (uses: Yaml): boolean =>
  uses === './' || (typeof uses === 'string' && /^[\w.-]+\/model-oci-action@\S+$/.test(uses));

/** Every object in the tree (depth first), e.g. every step of a job. */
function* objects(node: Yaml): Generator<Record<string, Yaml>> {
  if (Array.isArray(node)) for (const item of node) yield* objects(item);
  else if (isObject(node)) {
    yield node;
    for (const value of Object.values(node)) yield* objects(value);
  }
}

/** Every string in the tree: where expressions live. */
function* strings(node: Yaml): Generator<string> {
  if (typeof node === 'string') yield node;
  else if (Array.isArray(node)) for (const item of node) yield* strings(item);
  else if (isObject(node)) for (const value of Object.values(node)) yield* strings(value);
}

/** `steps.<id>.outputs.<name>` and `steps.<id>.outputs['<name>']` in expressions. */
function outputReads(text: string): { id: string; name: string }[] {
  const reads: { id: string; name: string }[] = [];
  const re =
    /\bsteps\.([A-Za-z_][\w-]*)\.outputs(?:\.([A-Za-z_][\w-]*)|\[\s*'([^']+)'\s*\]|\[\s*"([^"]+)"\s*\])/g;
  for (const m of text.matchAll(re)) reads.push({ id: m[1]!, name: (m[2] ?? m[3] ?? m[4])! });
  return reads;
}

interface ScopeReport {
  problems: string[];
  /** How many steps use this action. */
  steps: number;
}

/**
 * Checks one scope in which step ids are visible (a job, or a README snippet): the steps that use
 * this action pass only declared inputs, and every `steps.<id>.outputs.<name>` read names a step of
 * the scope and, for a step of this action, a declared output.
 */
function checkScope(scope: Yaml, where: string): ScopeReport {
  const problems: string[] = [];
  const stepIds = new Set<string>();
  const ourIds = new Set<string>();
  let steps = 0;
  for (const node of objects(scope)) {
    if (!('uses' in node) && !('run' in node)) continue;
    if (typeof node.id === 'string') stepIds.add(node.id);
    if (!isThisAction(node.uses)) continue;
    steps++;
    const label = `${where}: step ${typeof node.id === 'string' ? `"${node.id}"` : `uses: ${String(node.uses)}`}`;
    if (typeof node.id === 'string') ourIds.add(node.id);
    if (node.with === undefined || node.with === null) continue;
    if (!isObject(node.with)) {
      problems.push(`${label}: with: is not a mapping`);
      continue;
    }
    for (const key of Object.keys(node.with))
      if (!inputNames.includes(key))
        problems.push(`${label} passes input "${key}", which action.yml does not declare`);
  }
  for (const text of strings(scope))
    for (const { id, name } of outputReads(text)) {
      if (!stepIds.has(id))
        problems.push(`${where}: reads steps.${id}.outputs.${name}, but no step has id "${id}"`);
      else if (ourIds.has(id) && !outputNames.includes(name))
        problems.push(
          `${where}: reads steps.${id}.outputs.${name}, which action.yml does not declare as an output`,
        );
    }
  return { problems, steps };
}

/** A workflow: every job is a scope of its own (step ids do not cross jobs). */
function checkWorkflow(workflow: Yaml, where: string): ScopeReport {
  if (!isObject(workflow) || !isObject(workflow.jobs)) return { problems: [`${where}: no jobs`], steps: 0 };
  const reports = Object.entries(workflow.jobs).map(([job, body]) =>
    checkScope(body, `${where} jobs.${job}`),
  );
  return {
    problems: reports.flatMap((r) => r.problems),
    steps: reports.reduce((n, r) => n + r.steps, 0),
  };
}

describe('workflow examples use only what action.yml declares', () => {
  test('the three examples are there', () => {
    expect(exampleFiles).toEqual(
      expect.arrayContaining(['matrix-models.yml', 'pr-dry-run.yml', 'scheduled-base-rebuild.yml']),
    );
  });

  test.each(exampleFiles)('%s', (file) => {
    const workflow = YAML.parse(readFileSync(path.join(examplesDir, file), 'utf8'));
    const report = checkWorkflow(workflow, file);
    expect(report.steps, `${file} has no step that uses the action`).toBeGreaterThan(0);
    expect(report.problems, `${file}:\n  ${report.problems.join('\n  ')}`).toEqual([]);
  });

  test("README.md's YAML snippets", () => {
    const snippets = [...readme.matchAll(/^```ya?ml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    let steps = 0;
    const problems: string[] = [];
    for (const [i, snippet] of snippets.entries()) {
      const report = checkScope(YAML.parse(snippet), `README.md yaml snippet ${i + 1}`);
      steps += report.steps;
      problems.push(...report.problems);
    }
    expect(steps, 'README.md has YAML snippets that use the action').toBeGreaterThan(0);
    expect(problems, `README.md snippets:\n  ${problems.join('\n  ')}`).toEqual([]);
  });

  test('the checks see a wrong input and a wrong output', () => {
    const workflow = YAML.parse(`
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - id: m
        uses: someone/model-oci-action@v1
        with: { path: ., no-such-input: x }
      - run: echo "\${{ steps.m.outputs.digest }} \${{ steps.m.outputs['no-such-output'] }} \${{ steps.gone.outputs.x }}"
  b:
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ steps.m.outputs.digest }}"
`);
    const report = checkWorkflow(workflow, 'w.yml');
    expect(report.steps).toBe(1);
    expect(report.problems).toEqual([
      'w.yml jobs.a: step "m" passes input "no-such-input", which action.yml does not declare',
      'w.yml jobs.a: reads steps.m.outputs.no-such-output, which action.yml does not declare as an output',
      'w.yml jobs.a: reads steps.gone.outputs.x, but no step has id "gone"',
      'w.yml jobs.b: reads steps.m.outputs.digest, but no step has id "m"',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI section of the README against the CLI's own help

describe("README.md's CLI section lists every flag the CLI's help does", () => {
  test.each([
    ['model build', MODEL_BUILD_HELP],
    ['model inspect', MODEL_INSPECT_HELP],
    ['model pull', MODEL_PULL_HELP],
    ['base build', BASE_BUILD_HELP],
    ['index record / update', INDEX_HELP],
    ['resolve', RESOLVE_HELP],
  ])('%s', (_command, help) => {
    const section = readme.slice(readme.indexOf('## The CLI'), readme.indexOf('## Performance'));
    const flags = [...new Set(help.match(/--[a-z][a-z-]*/g) ?? [])].filter((f) => f !== '--help');
    expect(flags.length).toBeGreaterThan(3);
    const missing = flags.filter((flag) => !new RegExp(`\`${flag}[\\s\`=]`).test(section));
    expect(missing, 'flags in the help that README.md does not list (as `--flag…`)').toEqual([]);
  });
});
