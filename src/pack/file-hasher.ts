import type { Digest } from '../oci/digest.ts';
import { throwIfAborted, UserError } from '../util/errors.ts';
import { HashWorker } from '../util/hash-worker.ts';
import { mapConcurrent } from '../util/limiter.ts';
import type { ByteRange, ReadableFile } from './source-reader.ts';

/** A file to hash; with `parts`, the sha256 of each of those consecutive ranges too (part layers). */
export type HashInput = ReadableFile & { parts?: readonly ByteRange[] };

export interface HashedFile {
  digest: Digest;
  /** One per range of `parts`, in order. */
  parts?: Digest[];
}

const CHUNK = 4 * 1024 * 1024;

/**
 * sha256 of one file on a worker thread: read into one shared buffer while the worker hashes the
 * other, so disk reads and hashing overlap and the main thread does neither.
 */
async function hashOne(
  file: HashInput,
  worker: HashWorker,
  buffers: [Buffer, Buffer],
  signal?: AbortSignal,
  onProgress?: (bytes: number) => void,
): Promise<HashedFile> {
  const id = worker.create();
  const ranges = file.parts ?? [];
  const partIds = ranges.map(() => worker.create());
  const handle = await file.open();
  try {
    let position = 0;
    let turn = 0;
    let part = 0;
    const inflight: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
    while (position < file.size) {
      throwIfAborted(signal);
      const buffer = buffers[turn]!;
      await inflight[turn]; // the worker is done with this buffer
      // Reads stop at part boundaries, so each read belongs to one part.
      while (part < ranges.length - 1 && position >= ranges[part]!.end) part++;
      const stop = ranges.length > 0 ? Math.min(ranges[part]!.end, file.size) : file.size;
      const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, stop - position), position);
      if (bytesRead === 0) break;
      const piece = buffer.subarray(0, bytesRead);
      const update = Promise.all([
        worker.update(id, [piece]),
        ...(ranges.length > 0 ? [worker.update(partIds[part]!, [piece])] : []),
      ]).then(() => {});
      update.catch(() => {}); // awaited before the buffer is reused, or below
      inflight[turn] = update;
      position += bytesRead;
      onProgress?.(bytesRead);
      turn = 1 - turn;
    }
    await Promise.all(inflight);
    if (position !== file.size) {
      throw new UserError(`${file.path} changed while it was being read; run again when it is stable`);
    }
    await handle.checkUnchanged();
  } finally {
    await handle.close();
  }
  const { digest } = await worker.digest(id);
  if (ranges.length === 0) return { digest };
  const parts: Digest[] = [];
  for (const partId of partIds) parts.push((await worker.digest(partId)).digest);
  return { digest, parts };
}

/** Hashes files on `lanes` worker threads at once (one per core is the useful most). */
export async function hashFiles(
  files: readonly HashInput[],
  lanes: number,
  signal?: AbortSignal,
  onProgress?: (bytes: number) => void,
): Promise<HashedFile[]> {
  const count = Math.max(1, Math.min(lanes, files.length));
  const workers = Array.from({ length: count }, () => ({
    worker: new HashWorker(),
    buffers: [Buffer.from(new SharedArrayBuffer(CHUNK)), Buffer.from(new SharedArrayBuffer(CHUNK))] as [
      Buffer,
      Buffer,
    ],
    busy: false,
  }));
  try {
    return await mapConcurrent(
      files,
      count,
      async (file, _i, laneSignal) => {
        const lane = workers.find((w) => !w.busy)!;
        lane.busy = true;
        try {
          return await hashOne(file, lane.worker, lane.buffers, laneSignal, onProgress);
        } finally {
          lane.busy = false;
        }
      },
      signal,
    );
  } finally {
    await Promise.all(workers.map((w) => w.worker.close()));
  }
}
