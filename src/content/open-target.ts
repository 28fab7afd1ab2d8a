import { UserError } from '../util/errors.ts';
import { OciLayoutTarget } from './layout/oci-layout.ts';
import type { Target } from './target.ts';
import type { TargetRef } from './target-ref.ts';

/** Opens what a target reference names, checking it before anything is written. */
export async function openTarget(ref: TargetRef): Promise<Target> {
  if (ref.kind === 'oci-layout') return OciLayoutTarget.open(ref.path);
  throw new UserError(
    `${ref.text}: pushing to registries is not available yet; use oci-layout:PATH[:TAG] (the default is oci-layout:./oci-layout)`,
  );
}
