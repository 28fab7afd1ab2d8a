// One concurrent writer of test/compat/concurrent.test.ts, run as its own process:
//   node writer.ts HOST CATALOG_REPO INDEX_TAG N HOME
// Pushes one distinct tiny artifact (even N: a vllm base image 0.8.N; odd N: a model that requires
// vllm >=0.8 <0.9) to its own repository, records it in the catalog and updates the index.

import { updateIndex } from '../../src/compat/index-update.ts';
import { recordArtifact } from '../../src/compat/record.ts';
import { openRepo, pushBase, pushTinyModel } from './kit.ts';

const [host, catalogRepo, indexTag, nText, home] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const n = Number(nText);
const source = await openRepo(host, `org/writer-${n}`, home);
const catalog = source.withRepository(catalogRepo);
try {
  if (n % 2 === 0) {
    await pushBase(source, 'v', {
      runtime: 'vllm',
      version: `0.8.${n}`,
      created: `2025-01-${String(n + 1).padStart(2, '0')}T00:00:00Z`,
    });
  } else {
    await pushTinyModel(source, 'v', `model-${n}`, { 'io.model-oci.runtime.requires': 'vllm >=0.8 <0.9' });
  }
  const recorded = await recordArtifact(catalog, source, 'v');
  const updated = await updateIndex(catalog, indexTag, { maxRounds: 40, backoffMs: 50 });
  process.stdout.write(`${JSON.stringify({ recorded, updated })}\n`);
} finally {
  await source.close();
}
