import { fetchReference } from '../content/read.ts';
import type { Target } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import { UserError } from '../util/errors.ts';
import { compareBases, compareModels, parseCatalogIndex } from './index-format.ts';
import type { BaseRecord, ModelRecord } from './schema.ts';
import { parseRequirement, satisfies } from './version.ts';

export interface ResolveQuery {
  /** The model name (`org.opencontainers.image.title` of the artifact). */
  model: string;
  /** A runtime constraint the base must meet too: `vllm >=0.8.2`, `vllm`, or a bare range `>=0.8.2`. */
  runtime?: string;
  /** Pick the model artifact with these weights (`io.model-oci.weights.digest`) instead of the newest. */
  weightsDigest?: string;
  /** Use this base image (its digest) if it is compatible, instead of the newest compatible one. */
  base?: string;
}

export interface Resolved {
  model: {
    digest: Digest;
    ref: string;
    name: string;
    requires: string;
    weightsDigest?: string;
    created?: string;
    /** Its image form (what containerd and Kubernetes image volumes load), when recorded. */
    image?: { digest: Digest; ref: string };
  };
  base: { digest: Digest; ref: string; runtime: string; version: string; created?: string };
  /** The digest of the index that answered. */
  index: Digest;
}

/**
 * Answers "which model artifact and which base image" from one GET of the index (no other request):
 * the newest artifact of the model (or the one with the given weights), and its newest compatible
 * base — highest runtime version, then latest created — that also meets the query's constraint.
 */
export async function resolveModel(
  catalog: Target,
  indexTag: string,
  query: ResolveQuery,
  signal?: AbortSignal,
): Promise<Resolved> {
  const where = `${catalog.displayName}:${indexTag}`;
  const fetched = await fetchReference(catalog, indexTag, signal);
  if (!fetched) throw new UserError(`there is no compatibility index at ${where}`);
  const index = parseCatalogIndex(fetched.bytes, where);
  if (!index) throw new UserError(`${where} is not a compatibility index (schema 1)`);
  const constraint = query.runtime === undefined ? undefined : parseRequirement(query.runtime);
  if (query.runtime !== undefined && !constraint) {
    throw new UserError(`"${query.runtime}" is not a runtime constraint (e.g. "vllm >=0.8.2")`);
  }

  let models = index.models.filter((m) => m.name === query.model).sort(compareModels);
  if (models.length === 0) {
    const names = [...new Set(index.models.map((m) => m.name))].sort();
    throw new UserError(
      `model "${query.model}" is not in ${where}; it has ${names.length === 0 ? 'no models' : names.join(', ')}`,
    );
  }
  if (query.weightsDigest !== undefined) {
    const all = models;
    models = models.filter((m) => m.weightsDigest === query.weightsDigest);
    if (models.length === 0) {
      const known = [...new Set(all.map((m) => m.weightsDigest ?? '(none)'))].join(', ');
      throw new UserError(
        `model "${query.model}" has no artifact with weights ${query.weightsDigest} in ${where}; its weights: ${known}`,
      );
    }
  }

  const bases = new Map(index.bases.map((b) => [b.descriptor.digest as string, b]));
  const choices = (m: ModelRecord): BaseRecord[] =>
    (index.compatible.get(m.descriptor.digest) ?? [])
      .map((c) => bases.get(c.digest))
      .filter((b): b is BaseRecord => b !== undefined)
      .filter((b) => !constraint || satisfies(b.version, constraint, b.runtime))
      .filter((b) => query.base === undefined || b.descriptor.digest === query.base)
      .sort(compareBases);

  const usable = models.filter((m) => choices(m).length > 0);
  const model = usable[0];
  if (!model) throw noBase(query, models, index.bases, where);
  const tied = usable.filter((m) => m.created === model.created);
  if (tied.length > 1) {
    throw new UserError(
      `model "${query.model}" has ${tied.length} artifacts in ${where} that ${model.created ? `were all created ${model.created}` : 'carry no created date'} ` +
        `(weights ${tied.map((m) => m.weightsDigest ?? m.descriptor.digest).join(', ')}): pick one by its weights digest, ` +
        'or build with SOURCE_DATE_EPOCH set so artifacts carry org.opencontainers.image.created',
    );
  }
  const base = choices(model)[0]!;
  const repo = catalog.displayName;
  return {
    model: {
      digest: model.descriptor.digest,
      ref: `${repo}@${model.descriptor.digest}`,
      name: model.name,
      requires: model.requires,
      ...(model.weightsDigest ? { weightsDigest: model.weightsDigest } : {}),
      ...(model.created ? { created: model.created } : {}),
      ...(model.image ? { image: { digest: model.image, ref: `${repo}@${model.image}` } } : {}),
    },
    base: {
      digest: base.descriptor.digest,
      ref: `${repo}@${base.descriptor.digest}`,
      runtime: base.runtime,
      version: base.version,
      ...(base.created ? { created: base.created } : {}),
    },
    index: fetched.descriptor.digest,
  };
}

function noBase(query: ResolveQuery, models: ModelRecord[], bases: BaseRecord[], where: string): UserError {
  const requires = [...new Set(models.map((m) => m.requires))].join('" or "');
  const also = [
    query.runtime !== undefined ? ` and matches "${query.runtime}"` : '',
    query.base !== undefined ? ` and is ${query.base}` : '',
  ].join('');
  const provided = [...new Set([...bases].sort(compareBases).map((b) => `${b.runtime} ${b.version}`))];
  return new UserError(
    `no base image in ${where} is compatible with model "${query.model}" (requires "${requires}")${also}; ` +
      `the bases provide ${provided.length === 0 ? 'nothing (no base images recorded)' : provided.join(', ')}`,
  );
}
