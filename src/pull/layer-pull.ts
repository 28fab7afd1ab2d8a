import { createGunzip } from 'node:zlib';
import { IntegrityError } from '../content/errors.ts';
import type { Target } from '../content/target.ts';
import type { Digest } from '../oci/digest.ts';
import type { HashPool, OffThreadHash } from '../util/off-thread-hash.ts';
import type { LayerPlan } from './plan.ts';
import type { Journal, PullState } from './pull-state.ts';
import { type FetchOptions, fetchBlobBytes } from './ranged-fetch.ts';
import { type ExtractedEntry, extractTar } from './safe-extract.ts';
import { StagedFile } from './staged-file.ts';
import { type DecodedPiece, decodeZstd } from './zstd-decode.ts';
import { ZstdFormatError } from './zstd-frames.ts';

/** A resume point is written at most every this many bytes of a file (each costs a data sync). */
const CHECKPOINT_EVERY = 64 * 1024 * 1024;
/** Tar headers before a file's content that a journal keeps; larger ones (huge pax records) do not resume. */
const MAX_HEADER_BYTES = 1024 * 1024;

export interface LayerContext {
  target: Target;
  state: PullState;
  fetch: FetchOptions;
  /** zstd frames decompressed at once by this layer. */
  decodeParallel: number;
  directIo: boolean;
  /** Where blob, diffID and file digests are computed (worker threads). */
  hashes: HashPool;
  /** Files the user asked for (include/exclude). */
  wanted: (path: string) => boolean;
  signal?: AbortSignal | undefined;
}

export interface LayerOutcome {
  /** What the layer holds, verified, written to staged files: `commit` puts them in place. */
  entries: ExtractedEntry[];
  /** Blob bytes transferred for it. */
  fetched: number;
  /** Where in the blob this attempt began (0 unless an interrupted pull's partial file was kept). */
  resumedAt: number;
}

/** What an earlier attempt left of a single-file layer, checked. */
interface Resumption {
  journal: Journal;
  staged: StagedFile;
  /** The diffID's hash, already fed the layer's bytes up to the checkpoint. */
  diffHash: OffThreadHash;
}

/** A layer of one file whose bytes can be picked up mid-way (every encoding but gzip). */
function resumable(layer: LayerPlan): boolean {
  // A part layer resumes by part: it starts over at its offset.
  return layer.files?.length === 1 && layer.encoding !== 'tar+gzip' && !layer.part;
}

/** Where a layer's one file goes: a part into its range of the file's assembly, else a file of its own. */
function stageFor(
  layer: LayerPlan,
  state: PullState,
  path: string,
  direct: { direct: boolean; hashes: HashPool },
) {
  return layer.part
    ? StagedFile.region(state.assemblyPath(layer.part.path), layer.part.offset, direct)
    : StagedFile.create(path, direct);
}

async function openResumption(
  layer: LayerPlan,
  state: PullState,
  options: { direct: boolean; hashes: HashPool },
): Promise<Resumption | undefined> {
  const digest = layer.descriptor.digest;
  const journal = await state.readJournal(digest);
  const file = layer.files?.[0];
  if (!journal || !file || journal.path !== file.path || journal.fileDigest !== file.digest) {
    if (journal) await state.dropPartial(digest);
    return undefined;
  }
  const header = Buffer.from(journal.header, 'base64');
  const { compressed, tar, fileBytes, prefixDigest } = journal.checkpoint;
  const consistent =
    tar === header.byteLength + fileBytes &&
    fileBytes <= file.size &&
    compressed <= layer.descriptor.size &&
    (layer.encoding === 'tar+zstd' || compressed === tar);
  const diffHash = options.hashes.stream();
  await diffHash.update(header);
  const staged = consistent
    ? await StagedFile.resume(state.partialPath(digest), fileBytes, prefixDigest, diffHash, options)
    : undefined;
  if (!staged) {
    await state.dropPartial(digest);
    return undefined;
  }
  return { journal, staged, diffHash };
}

async function* bytesOf(pieces: AsyncIterable<DecodedPiece>): AsyncGenerator<Uint8Array> {
  for await (const piece of pieces) yield piece.bytes;
}

/** Passes items on as `see` makes them (it may replace one, and may wait). */
async function* tap<T>(source: AsyncIterable<T>, see: (item: T) => Promise<T>): AsyncGenerator<T> {
  for await (const item of source) yield await see(item);
}

/** The layer's content (tar, or a raw file) from its blob bytes, with resume points where it has them. */
function decode(
  layer: LayerPlan,
  blob: AsyncIterable<Uint8Array>,
  base: { compressed: number; decompressed: number },
  parallel: number,
): AsyncIterable<DecodedPiece> {
  switch (layer.encoding) {
    case 'tar+zstd':
      return decodeZstd(blob, { parallel, base });
    case 'tar+gzip':
      return (async function* () {
        const gunzip = createGunzip({ chunkSize: 1 << 20 });
        const input = (async () => {
          try {
            for await (const chunk of blob)
              if (!gunzip.write(chunk)) await new Promise((r) => gunzip.once('drain', r));
            gunzip.end();
          } catch (err) {
            gunzip.destroy(err as Error);
          }
        })();
        for await (const bytes of gunzip as AsyncIterable<Buffer>) yield { bytes };
        await input;
      })();
    default:
      // Plain bytes: every chunk boundary is a place to resume from.
      return (async function* () {
        let at = base.compressed;
        for await (const bytes of blob) {
          yield { bytes, frameStart: { compressed: at, decompressed: at } };
          at += bytes.byteLength;
        }
      })();
  }
}

/**
 * Fetches one layer, verifies it and writes what it holds to staged files: the blob's digest (not
 * re-checkable for the part an interrupted attempt kept — the diffID and file digest still cover
 * it), the diffID from the config, each file's size and digest from the layer's list, and the
 * tar's safety rules (safe-extract.ts). A single-file layer writes journal checkpoints as it goes,
 * so a pull that is killed continues from the last one.
 */
export async function pullLayer(layer: LayerPlan, ctx: LayerContext): Promise<LayerOutcome> {
  const { state } = ctx;
  const desc = layer.descriptor;
  const where = `layer ${layer.name}`;
  const single = resumable(layer) ? layer.files![0]! : undefined;
  const direct = { direct: ctx.directIo, hashes: ctx.hashes };
  const resume = single ? await openResumption(layer, state, direct) : undefined;
  const from = resume?.journal.checkpoint.compressed ?? 0;
  const staged: StagedFile[] = resume ? [resume.staged] : [];

  let fetched = 0;
  let blobSize = from;
  // A raw layer's blob is the file: the file's own hash checks it, whole, even when resumed.
  const blobHash = from === 0 && layer.encoding !== 'raw' ? ctx.hashes.stream() : undefined;
  const blob = tap(
    fetchBlobBytes(ctx.target, desc, from, { ...ctx.fetch, signal: ctx.signal }),
    async (chunk) => {
      await blobHash?.update(chunk);
      blobSize += chunk.byteLength;
      fetched += chunk.byteLength;
      return chunk;
    },
  );
  const tarBase = resume ? resume.journal.checkpoint.tar : 0;
  const diffHash = layer.encoding === 'raw' ? undefined : (resume?.diffHash ?? ctx.hashes.stream());

  // Resume points: frame starts (compressed and content offsets), kept at least CHECKPOINT_EVERY apart.
  const checkpoints: { compressed: number; decompressed: number }[] = [];
  let head: Buffer[] = [];
  let headBytes = 0;
  let lastCheckpoint = tarBase;
  let onCheckpoint: ((c: { compressed: number; decompressed: number }) => void) | undefined;
  const content = tap(
    decode(layer, blob, { compressed: from, decompressed: tarBase }, ctx.decodeParallel),
    async (piece) => {
      await diffHash?.update(piece.bytes);
      if (headBytes < MAX_HEADER_BYTES && !resume) {
        head.push(Buffer.from(piece.bytes.subarray(0, MAX_HEADER_BYTES - headBytes)));
        headBytes += Math.min(piece.bytes.byteLength, MAX_HEADER_BYTES - headBytes);
      }
      const start = piece.frameStart;
      if (single && start && start.decompressed - lastCheckpoint >= CHECKPOINT_EVERY) {
        lastCheckpoint = start.decompressed;
        if (onCheckpoint) onCheckpoint(start);
        else checkpoints.push(start);
      }
      return piece;
    },
  );

  /** Journals each checkpoint once the file's bytes before it are written and synced. */
  const journalInto = (file: StagedFile, dataOffset: number, header: Buffer) => {
    onCheckpoint = (c) =>
      file.markAt(c.decompressed - dataOffset, (prefixDigest) =>
        state.writeJournal({
          version: 1,
          layer: desc.digest,
          path: single!.path,
          fileDigest: single!.digest,
          header: header.toString('base64'),
          checkpoint: {
            compressed: c.compressed,
            tar: c.decompressed,
            fileBytes: c.decompressed - dataOffset,
            prefixDigest,
          },
        }),
      );
    for (const c of checkpoints.splice(0)) if (c.decompressed > dataOffset) onCheckpoint(c);
  };

  let entries: ExtractedEntry[];
  try {
    if (layer.encoding === 'raw' || resume) {
      const file = resume?.staged ?? (await stageFor(layer, state, state.partialPath(desc.digest), direct));
      if (!resume) staged.push(file);
      const header = resume ? Buffer.from(resume.journal.header, 'base64') : Buffer.alloc(0);
      // A raw layer is one file: resumable, or a part (which starts over).
      const one = single ?? layer.files![0]!;
      if (single) journalInto(file, header.byteLength, header);
      await writeSingle(content, file, one.size, where);
      const { digest, size } = await file.finish();
      entries = [{ kind: 'file', path: one.path, staged: file, digest, size, mode: layer.mode }];
    } else {
      entries = await extractTar(bytesOf(content), {
        where,
        expected: layer.files ? new Map(layer.files.map((f) => [f.path, f])) : undefined,
        wanted: ctx.wanted,
        stage: async () => {
          const file = await stageFor(
            layer,
            state,
            single ? state.partialPath(desc.digest) : state.tempPath(),
            direct,
          );
          staged.push(file);
          return file;
        },
        onFileStart: (_path, dataOffset, file) => {
          if (!single || dataOffset < 0 || dataOffset > MAX_HEADER_BYTES || dataOffset > headBytes) return;
          journalInto(file, dataOffset, Buffer.concat(head).subarray(0, dataOffset));
          head = [];
        },
        signal: ctx.signal,
      });
    }
    await verifyLayer(layer, where, { blobHash, blobSize, diffHash, entries });
  } catch (err) {
    const broken = err instanceof IntegrityError || err instanceof ZstdFormatError;
    for (const file of staged) {
      if (!broken && single && file.tempPath === state.partialPath(desc.digest)) await file.keep();
      else await file.discard();
    }
    if (broken) await state.dropPartial(desc.digest);
    throw err;
  }
  return { entries, fetched, resumedAt: from };
}

/**
 * The rest of a single-file layer's content: the file's bytes, then (for a tar) only the zero
 * padding and end-of-archive blocks; the tar's header was checked by the attempt that wrote the
 * journal, and the diffID covers the whole.
 */
async function writeSingle(
  content: AsyncIterable<DecodedPiece>,
  file: StagedFile,
  size: number,
  where: string,
) {
  for await (const { bytes } of content) {
    const take = Math.min(bytes.byteLength, size - file.written);
    if (take > 0) await file.write(bytes.subarray(0, take));
    for (let i = take; i < bytes.byteLength; i++)
      if (bytes[i] !== 0) throw new IntegrityError(`${where}: the tar holds more after its one file`);
  }
  if (file.written !== size)
    throw new IntegrityError(`${where}: the content ended after ${file.written} of the file's ${size} bytes`);
}

async function verifyLayer(
  layer: LayerPlan,
  where: string,
  got: {
    blobHash: OffThreadHash | undefined;
    blobSize: number;
    diffHash: OffThreadHash | undefined;
    entries: ExtractedEntry[];
  },
): Promise<void> {
  const desc = layer.descriptor;
  if (got.blobSize !== desc.size)
    throw new IntegrityError(`${where}: blob ${desc.digest} is ${got.blobSize} bytes, not ${desc.size}`);
  const blobDigest: Digest | undefined = got.blobHash ? await got.blobHash.digest() : undefined;
  if (blobDigest && blobDigest !== desc.digest)
    throw new IntegrityError(
      `${where}: blob ${desc.digest} does not match its digest (its bytes hash to ${blobDigest})`,
    );
  const diffId: Digest | undefined = got.diffHash ? await got.diffHash.digest() : undefined;
  if (!layer.diffId) throw new Error(`${where}: no diffID to check it against`);
  if (diffId && diffId !== layer.diffId)
    throw new IntegrityError(
      `${where}: the content does not match the diffID ${layer.diffId} (it hashes to ${diffId})`,
    );
  const promised = new Map((layer.files ?? []).map((f) => [f.path, f]));
  for (const entry of got.entries) {
    if (entry.kind !== 'file') continue;
    const expected = promised.get(entry.path);
    if (expected && (entry.digest !== expected.digest || entry.size !== expected.size))
      throw new IntegrityError(
        `${where}: ${entry.path} does not match its digest ${expected.digest} (it hashes to ${entry.digest})`,
      );
  }
}
