import { openRegistryTarget, type RegistryOptions } from '../registry/open-registry.ts';
import { OciLayoutTarget } from './layout/oci-layout.ts';
import type { Target } from './target.ts';
import type { TargetRef } from './target-ref.ts';

/** Opens what a target reference names, checking it before anything is written. */
export async function openTarget(
  ref: TargetRef,
  options: { access?: 'pull' | 'push'; registry?: RegistryOptions } = {},
): Promise<Target> {
  if (ref.kind === 'oci-layout') return OciLayoutTarget.open(ref.path);
  return openRegistryTarget(ref.reference, options.access ?? 'push', options.registry);
}
