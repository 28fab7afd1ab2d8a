import { formatBytes } from '../util/format.ts';
import { WriteLostError } from './errors.ts';
import type { BlobWriter, Target } from './target.ts';

/**
 * Runs `write` into a new blob writer, and again into another when the target lost the write midway
 * (CNCF Distribution drops an upload session whose PATCH broke off or whose answer was lost; the
 * bytes are gone from our memory, so the caller produces them again — packing the layer again, or
 * reading the source blob again), as often as the target allows for the blob's size
 * (Target.writeAttempts). Running out names every loss and its cause.
 */
export async function writeWithRetries<T>(
  target: Target,
  blob: {
    /** How messages name it: `model-00001-of-00004.safetensors`, `blob sha256:…`. */
    what: string;
    /** `layer` (packed again after a loss) or `blob` (copied again). */
    kind: 'layer' | 'blob';
    bytes: number;
    signal?: AbortSignal;
    onWarning?: (message: string) => void;
  },
  write: (writer: BlobWriter) => Promise<T>,
): Promise<T> {
  const budget = target.writeAttempts?.(blob.bytes) ?? 1;
  const losses: string[] = [];
  for (;;) {
    const writer = await target.openBlobWriter(blob.signal);
    try {
      return await write(writer);
    } catch (err) {
      await writer.abort().catch(() => {});
      if (!(err instanceof WriteLostError) || blob.signal?.aborted) throw err;
      losses.push(`${losses.length + 1}) ${err.why} after ${formatBytes(err.confirmed)} confirmed`);
      if (losses.length >= budget) {
        throw new Error(
          `${blob.what}: the registry lost all ${budget} upload sessions a ${blob.kind} of ${formatBytes(blob.bytes)} may use: ${losses.join('; ')}`,
        );
      }
      blob.onWarning?.(
        `${blob.what}: upload session ${losses.length} of at most ${budget} lost (${err.why}); ${blob.kind === 'layer' ? 'packing the layer' : 'copying it'} again`,
      );
    }
  }
}
