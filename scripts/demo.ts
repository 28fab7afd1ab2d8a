// `npm run demo`: the main job on the embedded default target, with no registry and no network.
// Generates a ~100 MiB safetensors sample model, builds it into ./oci-layout, builds it again
// (skipped: the weights are already there), then changes one shard and builds once more (only that
// shard's layer is new).
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shardName, writeSampleModel, writeShard } from './sample-model.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelDir = path.join(repo, 'demo-model');
const layout = 'oci-layout:./oci-layout:demo';
const bin = path.join(repo, 'src', 'cli', 'bin.ts');
const SHARDS = 4;

function run(title: string, args: string[]): void {
  console.log(`\n$ model-oci ${args.join(' ')}    # ${title}`);
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: repo, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// The demo owns ./demo-model and ./oci-layout (both git-ignored) and starts them afresh.
await rm(modelDir, { recursive: true, force: true });
await rm(path.join(repo, 'oci-layout'), { recursive: true, force: true });
console.log(`writing a ${SHARDS}-shard bf16 sample model (~100 MiB) to ./demo-model`);
await writeSampleModel(modelDir, { weightBytes: 100 * 1024 * 1024, shards: SHARDS, seed: 1 });

const build = ['model', 'build', './demo-model', '--name', 'demo-llm', '--to', layout];
run('first build into an empty layout', build);
run('same weights again: nothing is written', build);

const perShard = Math.round((100 * 1024 * 1024) / SHARDS / (1024 * 2048 * 2));
await writeShard(
  path.join(modelDir, shardName(SHARDS - 1, SHARDS)),
  (SHARDS - 1) * perShard,
  perShard,
  424242,
);
run(`after changing ${shardName(SHARDS - 1, SHARDS)}: one new layer, the rest reused`, build);

console.log('\nInspect it with: skopeo inspect --raw oci:./oci-layout:demo');
