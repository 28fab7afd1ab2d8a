// action.yml and the workflow examples through the real action-validator CLI (@action-validator/cli
// 0.6.0), the JSON schemas of GitHub's action and workflow syntax.
//
// Its bundled schemas are older than two things GitHub supports today, so each gets a temp copy
// with the one line changed and a test of its own that the original says what it should:
// - `runs.using: node24` (the only value this action may use: GitHub runs Node 24 actions, and the
//   code targets Node 24) is not in its `using` enum, which stops at node20. The copy says node20;
//   every other key of action.yml is validated as it is.
// - the `attestations` permission (needed by actions/attest) is not in its list of
//   permissions. The copy leaves the `attestations: write` lines out.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { tempDir } from '../helpers/tmp.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const validatorBin = path.join(repoRoot, 'node_modules', '.bin', 'action-validator');
const examplesDir = path.join(repoRoot, 'workflows-examples');
const actionText = readFileSync(path.join(repoRoot, 'action.yml'), 'utf8');
const exampleFiles = readdirSync(examplesDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

interface Run {
  code: number | null;
  output: string;
}

/**
 * Runs the validator CLI on `file`. It tells an action from a workflow by the file name (one ending
 * in action.yml or action.yaml is an action), so copies keep their names.
 */
function validate(file: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [validatorBin, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const USING_NODE24 = /^(\s*using:\s*)node24(\s*(?:#.*)?)$/m;

/** action.yml as the validator's schema can take it: `using: node24` → `using: node20`. */
function actionForValidator(text: string): string {
  expect(text, 'action.yml has a `using: node24` line').toMatch(USING_NODE24);
  return text.replace(USING_NODE24, '$1node20$2');
}

/** A workflow as the validator's schema can take it: without the `attestations: write` permission lines. */
const workflowForValidator = (text: string): string =>
  text.replace(/^[ \t]+attestations:[ \t]*write[ \t]*(?:#.*)?\n/gm, '');

async function writeCopy(name: string, text: string): Promise<string> {
  const file = path.join(await tempDir('model-oci-validate-'), name);
  await writeFile(file, text);
  return file;
}

interface Job {
  permissions?: Record<string, string>;
  steps?: { uses?: string }[];
}

const failure = (run: Run) => `action-validator exited ${run.code}:\n${run.output}`;

describe('action.yml', () => {
  test('runs on node24', () => {
    const action = YAML.parse(actionText);
    expect(action.runs).toMatchObject({ using: 'node24', main: 'dist/index.js' });
  });

  test('is valid (validated with using: node20, see the top of this file)', async () => {
    const run = await validate(await writeCopy('action.yml', actionForValidator(actionText)));
    expect(run.code, failure(run)).toBe(0);
  });

  test('the validator still rejects node24 (when this fails, validate action.yml as it is)', async () => {
    const run = await validate(await writeCopy('action.yml', actionText));
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('/runs/using');
  });

  test('a copy without runs is refused', async () => {
    const doc = YAML.parseDocument(actionForValidator(actionText));
    doc.delete('runs');
    const run = await validate(await writeCopy('action.yml', doc.toString()));
    expect(run.code, failure(run)).toBe(1);
    expect(run.output).toContain('/runs');
  });
});

describe('workflow examples', () => {
  test.each(exampleFiles)('%s is valid', async (file) => {
    const text = readFileSync(path.join(examplesDir, file), 'utf8');
    const run = await validate(await writeCopy(file, workflowForValidator(text)));
    expect(run.code, failure(run)).toBe(0);
  });

  test('jobs that attest build provenance have the permissions for it', () => {
    let attesting = 0;
    for (const file of exampleFiles) {
      const workflow = YAML.parse(readFileSync(path.join(examplesDir, file), 'utf8'));
      for (const [name, job] of Object.entries<Job>(workflow.jobs)) {
        if (!(job.steps ?? []).some((s) => /^actions\/attest(-build-provenance)?@/.test(s.uses ?? '')))
          continue;
        attesting++;
        // A job's permissions replace the workflow's; they are not merged.
        expect(job.permissions ?? workflow.permissions, `${file} jobs.${name}`).toMatchObject({
          'id-token': 'write',
          attestations: 'write',
        });
      }
    }
    expect(attesting, 'jobs that use actions/attest').toBeGreaterThan(0);
  });

  test('a workflow with an unknown top-level key is refused', async () => {
    const text = workflowForValidator(readFileSync(path.join(examplesDir, 'matrix-models.yml'), 'utf8'));
    const run = await validate(await writeCopy('broken.yml', `${text}\nnot-a-workflow-key: true\n`));
    expect(run.code, failure(run)).toBe(1);
    expect(run.output).toContain('not-a-workflow-key');
  });

  test('the attestations permission is left out of the copy only', () => {
    const text = 'permissions:\n  contents: read\n  attestations: write # store it\n  id-token: write\n';
    expect(workflowForValidator(text)).toBe('permissions:\n  contents: read\n  id-token: write\n');
  });
});
