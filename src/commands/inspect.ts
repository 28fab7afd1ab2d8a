import type { InspectConfig } from '../config/index-commands.ts';
import { openTarget } from '../connect/targets.ts';
import { targetTag } from '../content/target-ref.ts';
import type { PartInfo } from '../model/parts.ts';
import { loadPreviousArtifact } from '../model/previous.ts';
import type { DigestedFile } from '../model/weights-digest.ts';
import { UserError } from '../util/errors.ts';
import { type RegistryHooks, withHooks } from './hooks.ts';

export interface InspectedArtifact {
  reference: string;
  digest: string;
  weightsDigest: string | undefined;
  encoding: string | undefined;
  annotations: Record<string, string>;
  layers: {
    mediaType: string;
    digest: string;
    size: number;
    diffId: string;
    files: DigestedFile[];
    /** A part layer: which bytes of which file. */
    part?: PartInfo;
  }[];
}

/** `model inspect`: a model artifact read back, verified, with the files of its layers. */
export async function runInspect(
  config: InspectConfig,
  hooks: RegistryHooks = {},
  signal?: AbortSignal,
): Promise<InspectedArtifact> {
  const { from } = config;
  const reference =
    from.kind === 'registry'
      ? (from.reference.digest ?? from.reference.tag ?? 'latest')
      : (from.digest ?? targetTag(from) ?? 'latest');
  const target = await openTarget(from, 'pull', withHooks(config.storage, hooks));
  try {
    const artifact = await loadPreviousArtifact(target, reference, signal);
    if (!artifact) {
      const found = await target.resolve(reference, signal);
      throw new UserError(
        found
          ? `${config.text} is not a model artifact built by model-oci (${found.mediaType} ${found.digest})`
          : `${config.text}: nothing there`,
      );
    }
    return {
      reference: config.text,
      digest: artifact.descriptor.digest,
      weightsDigest: artifact.weightsDigest,
      encoding: artifact.encoding,
      annotations: artifact.manifest.annotations ?? {},
      layers: artifact.layers.map((l) => ({
        mediaType: l.descriptor.mediaType,
        digest: l.descriptor.digest,
        size: l.descriptor.size,
        diffId: l.diffId,
        files: l.files,
        ...(l.part ? { part: l.part } : {}),
      })),
    };
  } finally {
    await target.close?.();
  }
}
