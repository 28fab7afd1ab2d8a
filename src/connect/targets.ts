// The composition root: the one place that knows which Target implementation a reference needs,
// above content/ (the interface and the layout) and registry/ (the registry client). Commands open
// what they read and write here; compat/, base/ and model/ only ever see Targets.
import { type LayoutOptions, OciLayoutTarget } from '../content/layout/oci-layout.ts';
import type { Target } from '../content/target.ts';
import { parseTargetRef, type TargetRef } from '../content/target-ref.ts';
import type { Reference } from '../oci/reference.ts';
import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import { RegistryTarget } from '../registry/registry-target.ts';
import { UsageError } from '../util/errors.ts';

/** How targets are opened: registry settings (credentials, TLS, uploads) and layout settings. */
export interface StorageOptions {
  registry: RegistryOptions;
  layout?: LayoutOptions;
}

/** Opens what a target reference names, checking it before anything is written. */
export async function openTarget(
  ref: TargetRef | Reference,
  access: 'pull' | 'push',
  storage: StorageOptions,
): Promise<Target> {
  if ('kind' in ref) {
    if (ref.kind === 'oci-layout') return OciLayoutTarget.open(ref.path, storage.layout);
    return openRegistryTarget(ref.reference, access, storage.registry);
  }
  return openRegistryTarget(ref, access, storage.registry);
}

/** The repositories `repos` of the target's registry, as mount sources; `what` names the flag or input. */
export function mountSources(target: Target, repos: readonly string[], what: string): Target[] {
  if (repos.length === 0) return [];
  if (!(target instanceof RegistryTarget)) {
    throw new UsageError(`${what} needs a registry target (REGISTRY/REPO:TAG)`);
  }
  return repos.map((repo) => target.sibling(repo, what));
}

/**
 * Runs `work` on the catalog an index reference names — a registry repository `REGISTRY/REPO[:TAG]`
 * or a layout `oci-layout:PATH[:TAG]`, the tag defaulting to `index` — and closes it after. `what`
 * names the reference in errors (`--index`, `input index`); `access: 'pull'` for readers (resolve).
 */
export async function withCatalog<T>(
  indexRef: string,
  what: string,
  storage: StorageOptions,
  work: (catalog: Target, tag: string) => Promise<T>,
  access: 'pull' | 'push' = 'push',
): Promise<T> {
  let ref: TargetRef;
  try {
    ref = parseTargetRef(indexRef);
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`);
  }
  const digest = ref.kind === 'registry' ? ref.reference.digest : ref.digest;
  if (digest) throw new UsageError(`${what} names a tag the index is written to, not a digest`);
  const tag = (ref.kind === 'registry' ? ref.reference.tag : ref.tag) ?? 'index';
  const catalog = await openTarget(ref, access, storage);
  try {
    return await work(catalog, tag);
  } finally {
    await catalog.close?.();
  }
}
