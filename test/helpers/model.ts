import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSampleModel } from '../../scripts/sample-model.ts';
import { tempDir } from './tmp.ts';

/** A small sample model (bf16 safetensors shards + config, tokenizer, docs) in a temp dir. */
export async function sampleModel(options: { shards?: number; weightBytes?: number; seed?: number } = {}) {
  const dir = path.join(await tempDir(), 'model');
  const shards = await writeSampleModel(dir, {
    shards: options.shards ?? 4,
    weightBytes: options.weightBytes ?? 4 * 4 * 1024 * 1024,
    seed: options.seed ?? 1,
  });
  return { dir, shards };
}

/** A model directory made of exactly these files (relative path → content). */
export async function modelFromFiles(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = path.join(await tempDir(), 'model');
  await mkdir(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  return dir;
}
