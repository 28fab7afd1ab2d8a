// The job summary of every command, rendered from results as the action renders them: what a user
// reads on the run's page, for success and for failure.
import { describe, expect, test } from 'vitest';
import {
  baseSummary,
  failureSummary,
  indexSummary,
  modelSummary,
  resolveSummary,
} from '../../src/action/summary.ts';
import type { BaseBuildResult } from '../../src/base/build-base.ts';
import type { Resolved } from '../../src/compat/resolve.ts';
import type { BuildResult } from '../../src/model/build-types.ts';

const D = (c: string) => `sha256:${c.repeat(64)}` as const;

const model: BuildResult = {
  status: 'built',
  name: 'phi-4-mini',
  target: 'ghcr.io/org/phi',
  digest: D('a'),
  manifestSize: 1200,
  weightsDigest: D('b'),
  encoding: 'tar+zstd',
  tags: ['1.0', `weights-${'b'.repeat(64)}.tar-zstd`],
  layers: [
    {
      title: 'weight.config.tar.zst',
      kind: 'weight.config',
      mediaType: 'application/vnd.cncf.model.weight.config.v1.tar+zstd',
      digest: D('c'),
      size: 2000,
      uncompressedSize: 20_480,
      status: 'reused',
      files: ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'].map(
        (p) => ({
          path: p,
          size: 100,
          digest: D('d'),
        }),
      ),
    },
    {
      title: 'model.safetensors.tar.zst',
      kind: 'weight',
      mediaType: 'application/vnd.cncf.model.weight.v1.tar+zstd',
      digest: D('e'),
      size: 7_000_000,
      uncompressedSize: 8_000_000,
      status: 'new',
      files: [{ path: 'model.safetensors', size: 7_999_000, digest: D('f') }],
    },
  ],
  bytesRead: 8_000_000,
  bytesWritten: 7_001_500,
  durationMs: 2000,
  created: '2026-11-30T12:00:00Z',
  runtime: 'vllm >=0.8 <0.9',
};

const index = {
  where: 'ghcr.io/org/catalog:index',
  index: { digest: D('9'), models: 3, bases: 2, pairs: 4 },
  recorded: { kind: 'model' as const, tag: 'model-aaaaaaaaaaaa', digest: D('a'), written: true },
};

/** Markdown tables whose header row has no text: GitHub draws those as an empty grey bar. */
function emptyHeaderRows(markdown: string): string[] {
  const lines = markdown.split('\n');
  return lines.filter(
    (line, i) =>
      /^\|[\s|]*\|$/.test(line) &&
      /^\|[\s|:-]+\|$/.test(lines[i + 1] ?? '') &&
      (lines[i + 1] ?? '').includes('-'),
  );
}

describe('model', () => {
  test('built: artifact, weights, runtime requirement, created date, index, grouped files named', () => {
    const md = modelSummary(model, `ghcr.io/org/phi@${D('a')}`, false, index);
    expect(md).toContain('### model-oci model: phi-4-mini built');
    expect(md).toContain(`- **artifact**: \`ghcr.io/org/phi@${D('a')}\``);
    expect(md).toContain('- **runtime requirement**: `vllm >=0.8 <0.9`');
    expect(md).toContain('- **created**: 2026-11-30T12:00:00Z');
    expect(md).toContain(
      `- **compatibility index**: \`ghcr.io/org/catalog:index\` → \`${D('9')}\` (3 model artifacts, 2 base images, 4 compatible pairs)`,
    );
    expect(md).toContain(
      '| weight.config (5 files): config.json, tokenizer.json, tokenizer_config.json, vocab.json, … | 20.0 KiB | 2.0 KiB | 0.10 | reused |',
    );
    expect(md).toContain('| model.safetensors | 7.6 MiB | 6.7 MiB | 0.88 | uploaded |');
    expect(md).toContain('Read 7.6 MiB, uploaded 6.7 MiB in 2.0 s, 4 MB/s.');
    expect(emptyHeaderRows(md)).toEqual([]);
  });

  test('skipped and dry run say so, row by row', () => {
    const skipped = modelSummary(
      {
        ...model,
        status: 'skipped',
        reason: 'these weights and this metadata are already in x as sha256:aaaa…',
      },
      'r',
      false,
    );
    expect(skipped).toContain('### model-oci model: phi-4-mini skipped');
    expect(skipped).toContain(
      'Nothing was built: these weights and this metadata are already in x as sha256:aaaa….',
    );
    expect(skipped).toMatch(/\| skipped \|\n/);
    expect(skipped).not.toContain('compatibility index');
    const dry = modelSummary(model, 'r', true);
    expect(dry).toContain('Dry run: the layers were packed and hashed; nothing was pushed.');
    expect(dry).toContain('| would upload |');
    expect(dry).toContain('would upload 0 B');
  });
});

const base: BaseBuildResult = {
  status: 'built',
  reason: 'upstream ghcr.io/os:1 changed (sha256:1… → sha256:2…)',
  image: 'ghcr.io/org/vllm:0.8.5',
  digest: D('1'),
  ref: `ghcr.io/org/vllm@${D('1')}`,
  inputDigest: D('2'),
  upstream: [{ image: 'ghcr.io/os:1', digest: D('3') }],
  runtime: { name: 'vllm', version: '0.8.5' },
  builder: 'buildah',
  tags: ['0.8.5', `input-${'2'.repeat(64)}`],
};

describe('base', () => {
  test('built: why, image, input digest, runtime, index, FROM table', () => {
    const md = baseSummary(base, {
      ...index,
      recorded: { ...index.recorded, kind: 'base', tag: 'base-111111111111' },
    });
    expect(md).toContain('### model-oci base: ghcr.io/org/vllm:0.8.5 built');
    expect(md).toContain('Built: upstream ghcr.io/os:1 changed');
    expect(md).toContain('- **runtime**: `vllm 0.8.5`');
    expect(md).toContain('- **recorded**: `base-111111111111`');
    expect(md).toContain(`| \`ghcr.io/os:1\` | \`${D('3')}\` |`);
    expect(emptyHeaderRows(md)).toEqual([]);
  });

  test('FROM scratch: no header-only FROM table', () => {
    const md = baseSummary({ ...base, upstream: [], status: 'skipped', reason: 'already there' });
    expect(md).toContain('Nothing was built: already there.');
    expect(md).not.toContain('| FROM image');
    expect(md).toContain('No FROM image: built `FROM scratch`.');
  });
});

describe('index and resolve', () => {
  test('index: recorded, where the index stands, what was left out', () => {
    const md = indexSummary(index, [{ tag: 'model-bbbbbbbbbbbb', reason: 'holds something else' }]);
    expect(md).toContain('### model-oci index: ghcr.io/org/catalog:index');
    expect(md).toContain('- **recorded**: `model-aaaaaaaaaaaa`');
    expect(md).toContain('| `model-bbbbbbbbbbbb` | holds something else |');
    expect(emptyHeaderRows(md)).toEqual([]);
  });

  test('resolve: the model artifact and base image chosen, and the index that answered', () => {
    const found: Resolved = {
      model: {
        digest: D('a'),
        ref: `r/c@${D('a')}`,
        name: 'phi',
        requires: 'vllm >=0.8',
        created: '2026-01-01T00:00:00Z',
      },
      base: { digest: D('1'), ref: `r/c@${D('1')}`, runtime: 'vllm', version: '0.8.5' },
      index: D('9'),
    };
    const md = resolveSummary(found, 'r/c:index');
    expect(md).toContain('### model-oci resolve: phi');
    expect(md).toContain(`- **model artifact**: \`r/c@${D('a')}\``);
    expect(md).toContain(`- **base image**: \`r/c@${D('1')}\``);
    expect(md).toContain('- **base runtime**: `vllm 0.8.5`');
    expect(md).toContain(`- **index**: \`r/c:index\` at \`${D('9')}\``);
  });
});

describe('failure', () => {
  test('every command: what it worked on and the one-line error', () => {
    for (const command of ['model', 'base', 'index', 'resolve']) {
      const md = failureSummary(command, 'ghcr.io/org/x:1', 'the registry refused user "octo" (401) | retry');
      expect(md).toBe(
        `### model-oci ${command}: failed\n\n- **on**: \`ghcr.io/org/x:1\`\n- **error**: the registry refused user "octo" (401) \\| retry\n`,
      );
    }
  });
});
