import type { LayerKind } from '../oci/media-types.ts';

export interface Classification {
  kind: LayerKind;
  /** True when the kind is a guess from an unknown file type (ModelPack's mediatype.untested). */
  untested: boolean;
}

/** Files this large get a layer of their own whatever their type, so they are reused on their own. */
export const OWN_LAYER_THRESHOLD = 10 * 1024 * 1024;

const WEIGHT_EXTENSIONS = new Set(['.safetensors', '.bin', '.gguf', '.pt', '.pth', '.ckpt', '.onnx', '.h5']);
const CONFIG_EXTENSIONS = new Set([
  '.json',
  '.jinja',
  '.tiktoken',
  '.model',
  '.yaml',
  '.yml',
  '.toml',
  '.ini',
]);
const CONFIG_NAMES = new Set([
  'vocab.txt',
  'merges.txt',
  'tokenizer.model',
  'spiece.model',
  'sentencepiece.bpe.model',
]);
const DOC_EXTENSIONS = new Set([
  '.md',
  '.markdown',
  '.rst',
  '.txt',
  '.pdf',
  '.html',
  '.png',
  '.jpg',
  '.jpeg',
  '.gif',
  '.svg',
]);
const DOC_STEMS =
  /^(readme|license|licence|notice|copying|authors|changelog|use_policy|model_card|citation)\b/i;
const CODE_EXTENSIONS = new Set([
  '.py',
  '.ipynb',
  '.sh',
  '.js',
  '.mjs',
  '.ts',
  '.go',
  '.rs',
  '.c',
  '.cc',
  '.cpp',
  '.h',
  '.hpp',
  '.cu',
  '.java',
  '.rb',
  '.lua',
]);
const DATASET_EXTENSIONS = new Set([
  '.parquet',
  '.csv',
  '.tsv',
  '.jsonl',
  '.arrow',
  '.tfrecord',
  '.npy',
  '.npz',
]);

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

/** The ModelPack kind of a file, from its name (weights by extension, tokenizer/config files, docs, code, data). */
export function classify(relPath: string): Classification {
  const name = relPath.slice(relPath.lastIndexOf('/') + 1);
  const ext = extensionOf(name);
  if (WEIGHT_EXTENSIONS.has(ext)) return { kind: 'weight', untested: false };
  if (CONFIG_NAMES.has(name.toLowerCase()) || CONFIG_EXTENSIONS.has(ext))
    return { kind: 'weight.config', untested: false };
  if (DOC_STEMS.test(name) || DOC_EXTENSIONS.has(ext)) return { kind: 'doc', untested: false };
  if (CODE_EXTENSIONS.has(ext)) return { kind: 'code', untested: false };
  if (DATASET_EXTENSIONS.has(ext)) return { kind: 'dataset', untested: false };
  return { kind: 'doc', untested: true };
}
