import type { ModelFacts } from './artifact.ts';
import type { SourceFile } from './source.ts';

const FORMAT_BY_EXTENSION: Record<string, string> = {
  '.safetensors': 'safetensors',
  '.gguf': 'gguf',
  '.onnx': 'onnx',
  '.bin': 'pytorch',
  '.pt': 'pytorch',
  '.pth': 'pytorch',
  '.ckpt': 'pytorch',
  '.h5': 'h5',
};

const MAX_CONFIG_BYTES = 1024 * 1024;

function formatOf(files: readonly SourceFile[]): string | undefined {
  const bytesByFormat = new Map<string, number>();
  for (const f of files) {
    const dot = f.path.lastIndexOf('.');
    const format = dot >= 0 ? FORMAT_BY_EXTENSION[f.path.slice(dot).toLowerCase()] : undefined;
    if (format) bytesByFormat.set(format, (bytesByFormat.get(format) ?? 0) + f.size);
  }
  // The format holding most bytes is the model's; a stray training_args.bin does not make it pytorch.
  return [...bytesByFormat].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0];
}

/** A small file's bytes, through whatever opens it. */
async function readWhole(file: SourceFile): Promise<Buffer> {
  const reader = await file.open();
  try {
    const buffer = Buffer.alloc(file.size);
    let at = 0;
    while (at < file.size) {
      const { bytesRead } = await reader.read(buffer, at, file.size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return buffer.subarray(0, at);
  } finally {
    await reader.close();
  }
}

/**
 * Facts for ModelPack's `config.config`, read from the files themselves: the weight format, and the
 * architecture and precision from a Hugging Face `config.json` when there is one.
 */
export async function modelFacts(files: readonly SourceFile[]): Promise<ModelFacts> {
  const facts: ModelFacts = {};
  const format = formatOf(files);
  if (format) facts.format = format;
  const configFile = files.find((f) => f.path === 'config.json');
  if (configFile && configFile.size <= MAX_CONFIG_BYTES) {
    try {
      const config = JSON.parse((await readWhole(configFile)).toString('utf8')) as Record<string, unknown>;
      const architectures = config.architectures;
      if (Array.isArray(architectures) && typeof architectures[0] === 'string')
        facts.architecture = architectures[0];
      else if (typeof config.model_type === 'string') facts.architecture = config.model_type;
      const dtype = config.torch_dtype ?? config.dtype;
      if (typeof dtype === 'string') facts.precision = dtype;
    } catch {
      // A config.json that is not JSON is still packaged; it just tells us nothing.
    }
  }
  return facts;
}
