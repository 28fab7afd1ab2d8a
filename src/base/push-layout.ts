import { OciLayoutTarget } from '../content/layout/oci-layout.ts';
import type { Target } from '../content/target.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { parseImageManifest } from '../oci/manifest.ts';
import { formatBytes } from '../util/format.ts';
import { mapConcurrent } from '../util/limiter.ts';

/**
 * Uploads the image tagged `layoutTag` in an OCI layout to `target` (blobs the registry has are
 * skipped), then its manifest byte for byte under every tag. Returns the manifest descriptor.
 */
export async function pushLayoutImage(
  layoutDir: string,
  layoutTag: string,
  target: Target,
  tags: readonly string[],
  options: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<Descriptor> {
  const { signal } = options;
  const layout = await OciLayoutTarget.open(layoutDir);
  const found = await layout.resolve(layoutTag);
  if (!found) throw new Error(`the builder left no image tagged ${layoutTag} in ${layoutDir}`);
  const bytes = await layout.fetchManifest(found);
  const manifest = parseImageManifest(bytes);
  const desc: Descriptor = { mediaType: found.mediaType, digest: found.digest, size: found.size };
  await mapConcurrent(
    [manifest.config, ...manifest.layers],
    4,
    async (blob, _i, innerSignal) => {
      if (await target.hasBlob(blob.digest, innerSignal)) return;
      const writer = await target.openBlobWriter(innerSignal);
      try {
        for await (const chunk of await layout.fetchBlob(blob)) await writer.write(chunk);
        await writer.commit({ digest: blob.digest, size: blob.size });
      } catch (err) {
        await writer.abort();
        throw err;
      }
      options.onLine?.(`uploaded ${blob.digest} (${formatBytes(blob.size)}, ${blob.mediaType})`);
    },
    signal,
  );
  await target.putManifest(desc, bytes, tags, signal);
  return desc;
}
