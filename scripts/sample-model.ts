// A synthetic Hugging Face–style model: bf16 safetensors shards whose values are normally
// distributed (σ = 0.02, like trained LLM weights), so they compress the way real weights do,
// plus the usual config, tokenizer and doc files. Deterministic for a given seed.
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface SampleModelOptions {
  /** Total bytes of weights, split evenly over the shards. */
  weightBytes: number;
  shards: number;
  seed?: number;
}

const SIGMA = 0.02;
const TENSOR_ROWS = 1024;
const TENSOR_COLS = 2048;
const TENSOR_BYTES = TENSOR_ROWS * TENSOR_COLS * 2;

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
function inverseNormal(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - low) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** 65536 bf16 quantiles of N(0, σ): picking one uniformly at random samples the distribution. */
function bf16NormalTable(): Uint16Array {
  const table = new Uint16Array(65536);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < table.length; i++) {
    f32[0] = SIGMA * inverseNormal((i + 0.5) / table.length);
    // Round to nearest even when dropping the low 16 bits, as frameworks convert to bf16.
    const bits = u32[0]!;
    table[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
  return table;
}

let table: Uint16Array | undefined;

/** Fills `out` with bf16 values from N(0, σ), driven by an xorshift32 state; returns the new state. */
function fillNormal(out: Uint16Array, state: number): number {
  table ??= bf16NormalTable();
  let s = state >>> 0 || 1;
  for (let i = 0; i < out.length; i += 2) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = table[s & 0xffff]!;
    out[i + 1] = table[s >>> 16]!;
  }
  return s;
}

function safetensorsHeader(names: readonly string[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  names.forEach((name, i) => {
    header[name] = {
      dtype: 'BF16',
      shape: [TENSOR_ROWS, TENSOR_COLS],
      data_offsets: [i * TENSOR_BYTES, (i + 1) * TENSOR_BYTES],
    };
  });
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // data starts 8-byte aligned
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'latin1');
  return out;
}

export function shardName(index: number, shards: number): string {
  const w = Math.max(5, String(shards).length);
  return `model-${String(index + 1).padStart(w, '0')}-of-${String(shards).padStart(w, '0')}.safetensors`;
}

/** Writes one shard of `tensors` tensors; `seed` picks its values. */
export async function writeShard(
  file: string,
  firstTensor: number,
  tensors: number,
  seed: number,
): Promise<string[]> {
  const names = Array.from({ length: tensors }, (_, i) => `model.layers.${firstTensor + i}.mlp.weight`);
  const handle = await open(file, 'w');
  try {
    await handle.write(safetensorsHeader(names));
    const data = new Uint16Array(TENSOR_BYTES / 2);
    let state = (seed * 2654435761) >>> 0 || 1;
    for (let i = 0; i < tensors; i++) {
      state = fillNormal(data, state);
      await handle.write(new Uint8Array(data.buffer));
    }
  } finally {
    await handle.close();
  }
  return names;
}

/** Writes a complete sample model into `dir` and returns the shard file names. */
export async function writeSampleModel(dir: string, options: SampleModelOptions): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const perShard = Math.max(1, Math.round(options.weightBytes / options.shards / TENSOR_BYTES));
  const seed = options.seed ?? 1;
  const weightMap: Record<string, string> = {};
  const shards: string[] = [];
  for (let s = 0; s < options.shards; s++) {
    const name = shardName(s, options.shards);
    const tensors = await writeShard(path.join(dir, name), s * perShard, perShard, seed * 1000 + s);
    for (const t of tensors) weightMap[t] = name;
    shards.push(name);
  }
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
  await writeFile(
    path.join(dir, 'config.json'),
    json({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: TENSOR_COLS,
      num_hidden_layers: perShard * options.shards,
      torch_dtype: 'bfloat16',
      vocab_size: 32000,
    }),
  );
  await writeFile(
    path.join(dir, 'generation_config.json'),
    json({ bos_token_id: 1, eos_token_id: 2, temperature: 0.7 }),
  );
  await writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    json({ metadata: { total_size: perShard * options.shards * TENSOR_BYTES }, weight_map: weightMap }),
  );
  const vocab: Record<string, number> = {};
  for (let i = 0; i < 2000; i++) vocab[`tok${i}`] = i;
  await writeFile(path.join(dir, 'tokenizer.json'), json({ version: '1.0', model: { type: 'BPE', vocab } }));
  await writeFile(
    path.join(dir, 'tokenizer_config.json'),
    json({ bos_token: '<s>', eos_token: '</s>', model_max_length: 4096 }),
  );
  await writeFile(
    path.join(dir, 'README.md'),
    '# Sample model\n\nSynthetic bf16 weights for demos and benchmarks.\n',
  );
  await writeFile(path.join(dir, 'LICENSE'), 'Public domain sample data.\n');
  return shards;
}
