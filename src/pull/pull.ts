import { createHash } from 'node:crypto';
import { copyFile, type FileHandle, lstat, mkdir, open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError } from '../content/errors.ts';
import { fetchReference } from '../content/read.ts';
import type { Target } from '../content/target.ts';
import { matchesAny, statKeyOf } from '../model/source.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import { isDigest } from '../oci/digest.ts';
import { errnoCode, UserError } from '../util/errors.ts';
import { mapConcurrent, Semaphore } from '../util/limiter.ts';
import { HashPool } from '../util/off-thread-hash.ts';
import { commitEntries, type PlacedFile } from './commit.ts';
import { pullLayer } from './layer-pull.ts';
import { type AssembledFile, type LayerPlan, type PullPlan, planPull, withDiffIds } from './plan.ts';
import { PullState } from './pull-state.ts';

export type PullEvent =
  | { type: 'progress'; phase: 'pull' | 'verify'; done: number; total: number }
  | { type: 'phase'; message: string }
  | { type: 'warning'; message: string };

/** Bytes of fetched blob parts in memory at once, over all blobs (at least two parts). */
const PART_BUDGET = 32 * 1024 * 1024;

export interface PullTuning {
  /** Connections at once, over every blob. */
  connections: number;
  /** Bytes per ranged request of a large blob. */
  partSize: number;
  /** Layers fetched at once. */
  layers: number;
  /** zstd frames decompressed at once. */
  decodeParallel: number;
  /** Write files with O_DIRECT where the filesystem allows (MODEL_OCI_DIRECT_IO=0 turns it off). */
  directIo: boolean;
}

export interface PullOptions {
  target: Target;
  /** Tag or digest in the target. */
  reference: string;
  dir: string;
  include?: readonly string[];
  exclude?: readonly string[];
  /** Hash the files already in DIR instead of trusting the stat cache. */
  verify?: boolean;
  /** The image an image index stands for (`linux/amd64`); the layers are the same on every platform. */
  platform: string;
  tuning: PullTuning;
  signal?: AbortSignal | undefined;
  onEvent?: (event: PullEvent) => void;
}

export type LayerState = 'pulled' | 'resumed' | 'present' | 'excluded';

export interface PullResult {
  /** `target@digest` of what was pulled (for an image index: the index). */
  reference: string;
  manifest: Descriptor;
  index?: Descriptor;
  weightsDigest?: string;
  dir: string;
  layers: { name: string; digest: Digest; size: number; state: LayerState; fetched: number }[];
  files: { path: string; size: number; digest: Digest }[];
  /** Blob bytes transferred by this run. */
  fetchedBytes: number;
  durationMs: number;
}

/** sha256 of bytes `[start, end)` of an open file (fewer when it ends first). */
async function hashRange(handle: FileHandle, start: number, end: number): Promise<Digest> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(1, end - start)));
  for (let at = start; at < end; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, end - at), at);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return `sha256:${hash.digest('hex')}`;
}

async function hashFile(file: string): Promise<Digest> {
  const handle = await open(file, 'r');
  try {
    return await hashRange(handle, 0, (await handle.stat()).size);
  } finally {
    await handle.close();
  }
}

/** Whether DIR already holds this file, by the stat cache or (not cached, or `verify`) by hashing it. */
async function isPresent(
  state: PullState,
  file: { path: string; size: number; digest: Digest },
  verify: boolean,
): Promise<boolean> {
  const abs = path.join(state.dir, file.path);
  const info = await stat(abs, { bigint: true }).catch(() => undefined);
  if (!info?.isFile() || Number(info.size) !== file.size) return false;
  const key = statKeyOf(info);
  const cached = verify ? undefined : state.cache.lookup(file.path, key);
  if (cached) return cached === file.digest;
  const digest = await hashFile(abs);
  if (digest === file.digest) state.cache.record(file.path, key, digest);
  return digest === file.digest;
}

/** A file held as part layers, during a pull. */
interface Assembly {
  file: AssembledFile;
  /** DIR holds it already. */
  present: boolean;
  /** Parts written and verified (by this pull or an interrupted one). */
  done: Set<number>;
  /** The journal's writes, one after another. */
  saving: Promise<void>;
}

/**
 * The parts of a split file that DIR's older copy of it already holds (a re-pull after the file
 * changed in one place): each part's range of the old file is hashed and compared with the part's
 * digest; when any match, the old file is copied as the start of the assembly and those parts count
 * as written. The whole file is checked before it is placed, as always.
 */
async function seedFromOldCopy(state: PullState, file: AssembledFile): Promise<Set<number>> {
  const done = new Set<number>();
  const old = path.join(state.dir, file.path);
  const info = await lstat(old).catch(() => undefined);
  if (!info?.isFile()) return done;
  const handle = await open(old, 'r');
  try {
    for (const layer of file.parts) {
      const part = layer.part!;
      if (part.offset + part.size > info.size) continue;
      if ((await hashRange(handle, part.offset, part.offset + part.size)) === layer.files?.[0]?.digest)
        done.add(part.index);
    }
  } finally {
    await handle.close();
  }
  if (done.size === 0) return done;
  const assembly = state.assemblyPath(file.path);
  await copyFile(old, assembly);
  await truncate(assembly, file.size);
  await state.writeAssembly(file.path, file.digest, done);
  return done;
}

/** Records a verified part (synced by its writer) in the file's journal: a later pull skips it. */
async function partWritten(state: PullState, assembly: Assembly, index: number): Promise<PlacedFile[]> {
  assembly.done.add(index);
  assembly.saving = assembly.saving.then(() =>
    state.writeAssembly(assembly.file.path, assembly.file.digest, assembly.done),
  );
  await assembly.saving;
  return [];
}

/**
 * A file whose parts are all written: hashed whole (each part was checked, the whole file's
 * sha256 is what the artifact promises), then renamed into place like any file. One that does not
 * match is dropped, so the next pull starts it over.
 */
async function placeAssembled(state: PullState, file: AssembledFile): Promise<PlacedFile[]> {
  const assembled = state.assemblyPath(file.path);
  const size = (await stat(assembled)).size;
  const digest = size === file.size ? await hashFile(assembled) : undefined;
  if (digest !== file.digest) {
    await state.dropAssembly(file.path);
    throw new IntegrityError(
      `${file.path}: its ${file.parts.length} parts put together ${digest ? `hash to ${digest}` : `are ${size} bytes`}, not ${file.digest}`,
    );
  }
  const placed = await commitEntries(
    [{ kind: 'file', path: file.path, staged: { tempPath: assembled }, digest, size, mode: file.mode }],
    state,
    `file ${file.path}`,
  );
  await state.dropAssembly(file.path);
  return placed;
}

function selector(include: readonly string[] | undefined, exclude: readonly string[] | undefined) {
  return (file: string) =>
    (!include?.length || matchesAny(file, include)) && !(exclude?.length && matchesAny(file, exclude));
}

/**
 * `model pull`: the artifact (or image) REF into DIR, the build run backwards — resolve, plan,
 * skip what DIR already holds, fetch the other layers in parallel (large blobs over several ranged
 * connections), decompress frames on every core, verify blob, diffID and every file, and rename
 * files into place. One pull at a time per DIR (a lock); an interrupted one resumes.
 */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const started = performance.now();
  const { target, signal } = options;
  const where = `${target.displayName}${isDigest(options.reference) ? '@' : ':'}${options.reference}`;
  const fetched = await fetchReference(target, options.reference, signal);
  if (!fetched) throw new UserError(`${where} not found`);
  const plan = await planPull(target, fetched, { platform: options.platform, signal });

  const dir = path.resolve(options.dir);
  const info = await stat(dir).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  if (info && !info.isDirectory()) throw new UserError(`--to ${options.dir}: not a directory`);
  await mkdir(dir, { recursive: true });
  const state = await PullState.open(dir, {
    signal,
    onWait: (holder) =>
      options.onEvent?.({
        type: 'phase',
        message: `waiting for another pull into ${dir} (${holder}) to finish`,
      }),
  });
  try {
    return await pullPlanned(options, plan, state, started);
  } finally {
    await state.close();
  }
}

async function pullPlanned(
  options: PullOptions,
  plan: PullPlan,
  state: PullState,
  started: number,
): Promise<PullResult> {
  const wanted = selector(options.include, options.exclude);
  const layers: PullResult['layers'] = [];
  const files: PullResult['files'] = [];
  const todo: LayerPlan[] = [];
  // Files held as part layers: already in DIR whole, or parts an interrupted pull wrote.
  const assemblies = new Map<string, Assembly>();
  for (const file of plan.assembled) {
    if (!wanted(file.path)) continue;
    const present = await isPresent(state, file, options.verify ?? false);
    if (present) files.push({ path: file.path, size: file.size, digest: file.digest });
    let done = present ? new Set<number>() : await state.readAssembly(file.path, file.digest);
    if (!present && done.size === 0) {
      await state.dropAssembly(file.path);
      done = await seedFromOldCopy(state, file);
    }
    assemblies.set(file.path, { file, present, done, saving: Promise.resolve() });
  }
  for (const layer of plan.layers) {
    const entry = {
      name: layer.name,
      digest: layer.descriptor.digest,
      size: layer.descriptor.size,
      fetched: 0,
    };
    if (layer.part) {
      const assembly = assemblies.get(layer.part.path);
      if (!assembly) layers.push({ ...entry, state: 'excluded' });
      else if (assembly.present) layers.push({ ...entry, state: 'present' });
      else if (assembly.done.has(layer.part.index)) layers.push({ ...entry, state: 'resumed' });
      else todo.push(layer);
      continue;
    }
    const mine = layer.files?.filter((f) => wanted(f.path));
    if (mine && mine.length === 0) {
      layers.push({ ...entry, state: 'excluded' });
      continue;
    }
    let present = mine !== undefined;
    for (const file of mine ?? []) {
      if (!(await isPresent(state, file, options.verify ?? false))) {
        present = false;
        break;
      }
    }
    if (present) {
      layers.push({ ...entry, state: 'present' });
      files.push(...mine!);
    } else todo.push(layer);
  }

  if (todo.length > 0) {
    const diffIds = new Map(
      (await withDiffIds(options.target, plan, options.signal)).layers.map((l) => [
        l.descriptor.digest,
        l.diffId,
      ]),
    );
    for (const layer of todo) layer.diffId = diffIds.get(layer.descriptor.digest);
  }
  const total = todo.reduce((sum, l) => sum + l.descriptor.size, 0);
  let done = 0;
  const connections = new Semaphore(options.tuning.connections);
  // The pull's memory: fetched parts, PART_BUDGET bytes over all blobs (frames in flight are
  // bounded per layer by decodeParallel).
  const buffers = new Semaphore(Math.max(2, Math.floor(PART_BUDGET / options.tuning.partSize)));
  const hashes = new HashPool({ workers: 2 });
  const pulled = await mapConcurrent(
    todo,
    options.tuning.layers,
    async (layer, _i, signal) => {
      const outcome = await pullLayer(layer, {
        target: options.target,
        state,
        fetch: {
          partSize: options.tuning.partSize,
          connections,
          buffers,
          window: options.tuning.connections,
          onBytes: (n) => {
            done += n;
            options.onEvent?.({ type: 'progress', phase: 'pull', done, total });
          },
        },
        decodeParallel: options.tuning.decodeParallel,
        directIo: options.tuning.directIo,
        hashes,
        // A part's entry is named after the part; the file it belongs to was chosen above.
        wanted: layer.part ? () => true : wanted,
        signal,
      });
      let placed: Awaited<ReturnType<typeof commitEntries>>;
      try {
        placed = layer.part
          ? await partWritten(state, assemblies.get(layer.part.path)!, layer.part.index)
          : await commitEntries(outcome.entries, state, `layer ${layer.name}`);
      } finally {
        // Renamed files are gone from their temp names; what is left there was not placed.
        for (const entry of outcome.entries) if (entry.kind === 'file') await entry.staged.discard();
        await state.dropPartial(layer.descriptor.digest);
      }
      if (outcome.resumedAt > 0)
        options.onEvent?.({
          type: 'phase',
          message: `${layer.name}: resumed at byte ${outcome.resumedAt} of ${layer.descriptor.size}`,
        });
      return { layer, outcome, placed };
    },
    options.signal,
  ).finally(() => hashes.close());
  for (const assembly of assemblies.values()) {
    if (assembly.present) continue;
    if (assembly.done.size !== assembly.file.parts.length)
      throw new Error(
        `${assembly.file.path}: ${assembly.done.size} of ${assembly.file.parts.length} parts written`,
      );
    options.onEvent?.({
      type: 'phase',
      message: `${assembly.file.path}: checking the ${assembly.file.parts.length} parts put together`,
    });
    files.push(...(await placeAssembled(state, assembly.file)));
  }
  let fetchedBytes = 0;
  for (const { layer, outcome, placed } of pulled) {
    fetchedBytes += outcome.fetched;
    layers.push({
      name: layer.name,
      digest: layer.descriptor.digest,
      size: layer.descriptor.size,
      state: outcome.resumedAt > 0 ? 'resumed' : 'pulled',
      fetched: outcome.fetched,
    });
    files.push(...placed);
  }
  const order = new Map(plan.layers.map((l, i) => [l.descriptor.digest, i]));
  layers.sort((a, b) => order.get(a.digest)! - order.get(b.digest)!);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const top = plan.index ?? plan.manifest;
  return {
    reference: `${options.target.displayName}@${top.digest}`,
    manifest: plan.manifest,
    ...(plan.index ? { index: plan.index } : {}),
    ...(plan.weightsDigest ? { weightsDigest: plan.weightsDigest } : {}),
    dir: state.dir,
    layers,
    files,
    fetchedBytes,
    durationMs: Math.round(performance.now() - started),
  };
}
