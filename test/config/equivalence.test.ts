// The CLI and the Action are two adapters over one config per command: equivalent flags and inputs
// (action.yml's defaults applied, as the runner applies them) must give the same config, defaults
// included. What differs on purpose is left out of the comparison and named here:
// - how each names its options in messages (`labels`, the registry's `hints` and `explicitSource`);
// - the digest cache, which the Action keeps in the Actions cache (a file under RUNNER_TEMP, matched
//   by size and mtime) and the CLI under the user's cache folder;
// - variables only one of them has in its environment (RUNNER_TEMP, TMPDIR, MODEL_OCI_PASSWORD).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { baseConfigFromInputs } from '../../src/action/base-command.ts';
import { actionEdge, rawIndexInputs, rawPullInputs } from '../../src/action/inputs.ts';
import { modelConfigFromInputs } from '../../src/action/model-command.ts';
import {
  baseBuildConfigFromArgs,
  indexRecordConfigFromArgs,
  resolveConfigFromArgs,
} from '../../src/cli/compat-commands.ts';
import { modelBuildConfigFromArgs } from '../../src/cli/model-build.ts';
import { modelPullConfigFromArgs } from '../../src/cli/model-pull.ts';
import { indexRecordConfig, resolveConfig } from '../../src/config/index-commands.ts';
import { pullConfig } from '../../src/config/pull.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const actionYaml = YAML.parse(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { default?: string }>;
};

/** Inputs as the runner passes them: what the step sets, else action.yml's default. */
function inputs(given: Record<string, string>): (name: string) => string {
  for (const name of Object.keys(given)) expect(actionYaml.inputs, `input ${name}`).toHaveProperty(name);
  return (name) =>
    given[name] ?? (name === 'github-token' ? '' : String(actionYaml.inputs[name]?.default ?? ''));
}

/** The config without what differs between the adapters on purpose (see the top of this file). */
function shared(config: object): unknown {
  const copy = structuredClone(config) as Record<string, unknown> & {
    storage?: { registry?: Record<string, unknown> };
    env?: Record<string, unknown>;
  };
  delete copy.labels;
  delete copy.digestCache;
  delete copy.digestCacheMatch;
  delete copy.storage?.registry?.hints;
  delete copy.storage?.registry?.explicitSource;
  for (const env of [copy.storage?.registry?.env, copy.env] as (Record<string, unknown> | undefined)[]) {
    delete env?.RUNNER_TEMP;
    delete env?.TMPDIR;
    delete env?.MODEL_OCI_PASSWORD;
  }
  return copy;
}

describe('model build: CLI flags and Action inputs give the same config', () => {
  test.each([
    ['defaults', [], {}, {}],
    [
      'to a registry, every option',
      [
        '--to',
        '127.0.0.1:5000/org/m:1',
        '--tag',
        'stable',
        '--tag',
        'v1',
        '--compression',
        'none',
        '--level',
        '9',
        '--concurrency',
        '3',
        '--include',
        '*.safetensors',
        '--include',
        '*.json',
        '--exclude',
        'onnx/**',
        '--annotation',
        'a=1',
        '--annotation',
        'b=x,y',
        '--runtime',
        'vllm >=0.8 <0.9',
        '--index',
        '127.0.0.1:5000/org/catalog:index',
        '--force',
        '--mount-from',
        'org/base',
        '--plain-http',
        'registry.lan',
        '--ca-file',
        '/etc/ca.pem',
        '--upload',
        'single',
        '--username',
        'octo',
      ],
      {
        target: '127.0.0.1:5000/org/m:1',
        tags: 'stable\nv1',
        encoding: 'tar',
        'compression-level': '9',
        concurrency: '3',
        include: '*.safetensors, *.json',
        exclude: 'onnx/**',
        annotations: 'a=1\nb=x,y',
        runtime: 'vllm >=0.8 <0.9',
        index: '127.0.0.1:5000/org/catalog:index',
        force: 'true',
        'mount-from': 'org/base',
        'plain-http': 'registry.lan',
        'ca-file': '/etc/ca.pem',
        upload: 'single',
        username: 'octo',
        password: 'secret',
      },
      { MODEL_OCI_PASSWORD: 'secret' },
    ],
    [
      'the image form for two platforms',
      ['--image-form', '--image-platforms', 'linux/amd64,linux/arm64/v8'],
      { 'image-form': 'true', 'image-platforms': 'linux/amd64,linux/arm64/v8' },
      {},
    ],
    [
      'raw blobs, a dry run, SOURCE_DATE_EPOCH',
      ['--encoding', 'raw', '--dry-run'],
      { encoding: 'raw', 'dry-run': 'true' },
      { SOURCE_DATE_EPOCH: '1700000000' },
    ],
  ] as const)('%s', async (_case, flags, given, extraEnv) => {
    const temp = await tempDir();
    const env = { PATH: process.env.PATH, HOME: temp, ...extraEnv };
    const cli = await modelBuildConfigFromArgs(
      ['./weights', '--name', 'phi', '--temp-dir', temp, ...flags],
      env,
    );
    const { MODEL_OCI_PASSWORD: _cliOnly, ...actionEnv } = env as Record<string, string>;
    const action = await modelConfigFromInputs(inputs({ path: './weights', name: 'phi', ...given }), {
      ...actionEnv,
      RUNNER_TEMP: temp,
    });
    expect(shared(action.config)).toEqual(shared(cli.config));
  });

  test('hf:// with a token and the layer limits', async () => {
    const temp = await tempDir();
    const env = { PATH: process.env.PATH, HOME: temp, HF_ENDPOINT: 'http://127.0.0.1:9/hub' };
    const cli = await modelBuildConfigFromArgs(
      [
        'hf://org/m@v1',
        '--name',
        'phi',
        '--temp-dir',
        temp,
        '--max-layer-size',
        '32GiB',
        '--upload-time-limit',
        '600',
      ],
      { ...env, HF_TOKEN: 'hf_x' },
    );
    const action = await modelConfigFromInputs(
      inputs({
        path: 'hf://org/m@v1',
        name: 'phi',
        'hf-token': 'hf_x',
        'max-layer-size': '32GiB',
        'upload-time-limit': '600',
      }),
      { ...env, RUNNER_TEMP: temp },
    );
    const named = (config: object) => {
      const copy = shared(config) as {
        hub?: { tokenHint?: string };
        storage: { registry: { upload: { maxLayer?: { source?: string } } } };
        createdAt?: string;
      };
      delete copy.hub?.tokenHint;
      delete copy.storage.registry.upload.maxLayer?.source;
      // The CLI reads the token from HF_TOKEN, the Action from its input.
      delete (copy.storage.registry as { env?: Record<string, string> }).env?.HF_TOKEN;
      return copy;
    };
    expect(named(action.config)).toEqual(named(cli.config));
    expect(cli.config.hub).toMatchObject({ ref: { repo: 'org/m', revision: 'v1' }, token: 'hf_x' });
    expect(cli.config.storage.registry.upload).toMatchObject({
      maxLayer: { bytes: 32 * 1024 ** 3 },
      sessionLimitMs: 600_000,
    });
  });

  test('the defaults are the documented ones, for both', async () => {
    const temp = await tempDir();
    const { config } = await modelBuildConfigFromArgs(['./weights', '--name', 'phi', '--temp-dir', temp], {
      HOME: temp,
    });
    expect(config).toMatchObject({
      target: { kind: 'oci-layout', path: './oci-layout', tag: 'latest' },
      tag: 'latest',
      encoding: 'tar+zstd',
      level: 3,
      frameSize: 4 * 1024 * 1024,
      concurrency: 2,
      mtime: 0,
      progressMs: 2000,
      zstd: 'native',
    });
    expect(config.createdAt).toBeUndefined();
    const registry = await modelBuildConfigFromArgs(
      ['./w', '--name', 'p', '--to', 'ghcr.io/o/m:1', '--temp-dir', temp],
      {
        HOME: temp,
      },
    );
    expect(registry.config.concurrency).toBe(4);
  });
});

describe('base build, index record and resolve: the same config too', () => {
  test('base build', async () => {
    const temp = await tempDir();
    const env = { PATH: process.env.PATH, HOME: temp };
    const cli = await baseBuildConfigFromArgs(
      [
        'runtime/vllm',
        '--image',
        'ghcr.io/o/vllm:0.8.5',
        '--file',
        'runtime/vllm/Containerfile',
        '--build-arg',
        'CUDA=12.4',
        '--build-arg',
        'X=a,b',
        '--target',
        'runtime',
        '--platform',
        'linux/amd64',
        '--builder',
        'buildah',
        '--runtime',
        'vllm 0.8.5',
        '--force',
        '--index',
        'ghcr.io/o/catalog:index',
        '--temp-dir',
        temp,
      ],
      env,
    );
    const action = await baseConfigFromInputs(
      inputs({
        command: 'base',
        context: 'runtime/vllm',
        target: 'ghcr.io/o/vllm:0.8.5',
        dockerfile: 'runtime/vllm/Containerfile',
        'build-args': 'CUDA=12.4\nX=a,b',
        'build-target': 'runtime',
        platform: 'linux/amd64',
        builder: 'buildah',
        runtime: 'vllm 0.8.5',
        force: 'true',
        index: 'ghcr.io/o/catalog:index',
      }),
      { ...env, RUNNER_TEMP: temp },
    );
    expect(shared(action)).toEqual(shared(cli.config));
    expect(action.env.RUNNER_TEMP).toBe(temp);
  });

  test('index record and resolve', async () => {
    const temp = await tempDir();
    const env = { HOME: temp };
    const actionEnv = { ...env, RUNNER_TEMP: temp };
    const record = await indexRecordConfigFromArgs(
      [
        '--index',
        'ghcr.io/o/catalog:index',
        '--from',
        `ghcr.io/o/m@sha256:${'a'.repeat(64)}`,
        '--temp-dir',
        temp,
      ],
      env,
    );
    const recordInputs = inputs({
      command: 'index',
      index: 'ghcr.io/o/catalog:index',
      target: `ghcr.io/o/m@sha256:${'a'.repeat(64)}`,
    });
    expect(
      shared(await indexRecordConfig(rawIndexInputs(recordInputs, actionEnv), actionEdge(actionEnv))),
    ).toEqual(shared(record.config));
    // resolve only reads: no --temp-dir; the CLI's temp dir is then $TMPDIR.
    const resolve = await resolveConfigFromArgs(
      ['--index', 'ghcr.io/o/catalog', '--model', 'phi', '--runtime', 'vllm >=0.8.2'],
      { ...env, TMPDIR: temp },
    );
    const resolveInputs = inputs({
      command: 'resolve',
      index: 'ghcr.io/o/catalog',
      name: 'phi',
      runtime: 'vllm >=0.8.2',
    });
    expect(
      shared(await resolveConfig(rawIndexInputs(resolveInputs, actionEnv), actionEdge(actionEnv))),
    ).toEqual(shared(resolve.config));
  });
});

describe('model pull: CLI flags and Action inputs give the same config', () => {
  test.each([
    [
      'a reference, defaults',
      ['ghcr.io/o/m:1', '--to', '/models/m'],
      { target: 'ghcr.io/o/m:1', path: '/models/m' },
    ],
    [
      'through the index, every option',
      [
        '--index',
        'ghcr.io/o/catalog:index',
        '--model',
        'phi',
        '--runtime',
        'vllm >=0.8',
        '--to',
        '/models/phi',
        '--include',
        '*.gguf',
        '--exclude',
        'Q2*',
        '--verify',
        '--platform',
        'linux/arm64',
        '--connections',
        '12',
        '--part-size',
        '32MiB',
        '--plain-http',
        'registry.lan',
      ],
      {
        index: 'ghcr.io/o/catalog:index',
        name: 'phi',
        runtime: 'vllm >=0.8',
        path: '/models/phi',
        include: '*.gguf',
        exclude: 'Q2*',
        verify: 'true',
        platform: 'linux/arm64',
        connections: '12',
        'part-size': '32MiB',
        'plain-http': 'registry.lan',
      },
    ],
  ] as const)('%s', async (_case, flags, given) => {
    const temp = await tempDir();
    const env = { HOME: temp, TMPDIR: temp };
    const cli = await modelPullConfigFromArgs([...flags], env);
    const actionEnv = { HOME: temp, RUNNER_TEMP: temp };
    const action = await pullConfig(
      rawPullInputs(inputs({ command: 'pull', ...given }), actionEnv),
      actionEdge(actionEnv),
    );
    const strip = (config: object) => {
      const copy = shared(config) as { source?: { label?: string; text?: string } };
      delete copy.source?.label;
      delete copy.source?.text;
      return copy;
    };
    expect(strip(action)).toEqual(strip(cli.config));
  });
});
