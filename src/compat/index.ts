// The compatibility index: records of model artifacts and base images in a catalog repository, and
// the OCI index over them that says which base runs which model (docs/compat-index.md).
export { type UpdateOptions, type UpdateResult, updateIndex } from './index-update.ts';
export { type RecordResult, recordArtifact } from './record.ts';
export { type Resolved, type ResolveQuery, resolveModel } from './resolve.ts';
export { CATALOG_ARTIFACT_TYPE, CATALOG_SCHEMA_VERSION, KEY as CATALOG_KEY, recordTag } from './schema.ts';
export { listTags } from './tags.ts';
