// Validators built from the upstream JSON schemas in test/fixtures/schemas (OCI image-spec,
// CNCF ModelPack): what the project writes is checked against the specs, not against itself.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import AjvDraft04Module from 'ajv-draft-04';
import addFormats from 'ajv-formats';

const schemasDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'schemas');

type Validate = (value: unknown) => string[];

// CommonJS packages: under Node's ESM loader the class is on `.default`.
const AjvDraft04 = (AjvDraft04Module as unknown as { default: typeof AjvDraft04Module.default }).default;

function stripIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripIds);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (k !== 'id') out[k] = stripIds(v);
  return out;
}

function ociValidator(file: string): Validate {
  // The image-spec files reference each other by relative file name from two different base ids
  // (…/schema/image/ and …/schema/); register every file under both, with the ids removed.
  const ajv = new AjvDraft04({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const dir = path.join(schemasDir, 'oci-image-spec');
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const schema = stripIds(JSON.parse(readFileSync(path.join(dir, name), 'utf8'))) as object;
    for (const base of ['https://opencontainers.org/schema/image/', 'https://opencontainers.org/schema/']) {
      ajv.addSchema(schema, `${base}${name}`);
    }
  }
  const validate = ajv.getSchema(`https://opencontainers.org/schema/image/${file}`);
  if (!validate) throw new Error(`no schema ${file}`);
  return (value) =>
    validate(value) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath} ${e.message}`);
}

function modelPackValidator(): Validate {
  const ajv = new Ajv2020.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const validate = ajv.compile(
    JSON.parse(readFileSync(path.join(schemasDir, 'modelpack', 'config-schema.json'), 'utf8')),
  );
  return (value) =>
    validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

export const validateManifest = ociValidator('image-manifest-schema.json');
export const validateIndex = ociValidator('image-index-schema.json');
export const validateLayoutMarker = ociValidator('image-layout-schema.json');
export const validateModelConfig = modelPackValidator();
