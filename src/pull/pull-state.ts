import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DigestCache } from '../model/digest-cache.ts';
import { type Digest, isDigest } from '../oci/digest.ts';
import { acquireLongLock, type HeldLock } from '../util/dir-lock.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { STATE_FOLDER } from './entry-path.ts';

/**
 * Where a single-file layer stopped: the layer stream offsets of a frame start (compressed and
 * decompressed) up to which the file is written and synced, and the digest of that prefix, so a
 * resumed pull checks the bytes it keeps before it continues.
 */
export interface Journal {
  version: 1;
  layer: Digest;
  path: string;
  fileDigest: Digest;
  /** The layer's bytes before the file's content (its tar headers), base64; empty for raw layers. */
  header: string;
  checkpoint: { compressed: number; tar: number; fileBytes: number; prefixDigest: Digest };
}

function readJournal(value: unknown, layer: Digest): Journal | undefined {
  const j = value as Partial<Journal> | null;
  const c = j?.checkpoint;
  if (j?.version !== 1 || j.layer !== layer || typeof j.path !== 'string' || !c) return undefined;
  if (typeof j.fileDigest !== 'string' || !isDigest(j.fileDigest) || typeof j.header !== 'string')
    return undefined;
  const counts = [c.compressed, c.tar, c.fileBytes];
  if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0)) return undefined;
  if (typeof c.prefixDigest !== 'string' || !isDigest(c.prefixDigest)) return undefined;
  return j as Journal;
}

/**
 * A pull's state inside DIR (`.cache/model-oci/`, which `model build` never packages): the lock
 * that keeps two pulls from writing at once, the stat cache of the files it verified, the partial
 * files of interrupted layers and their journals, and temp files that become model files by rename
 * (same filesystem as their destination).
 */
export class PullState {
  readonly dir: string;
  readonly stateDir: string;
  readonly partialDir: string;
  readonly cache: DigestCache;
  private readonly lock: HeldLock;

  private constructor(dir: string, cache: DigestCache, lock: HeldLock) {
    this.dir = dir;
    this.stateDir = path.join(dir, STATE_FOLDER);
    this.partialDir = path.join(this.stateDir, 'partial');
    this.cache = cache;
    this.lock = lock;
  }

  /** Takes DIR's lock (waiting for another pull into it to finish) and clears what no journal keeps. */
  static async open(
    dir: string,
    options: { onWait?: (holder: string) => void; signal?: AbortSignal | undefined } = {},
  ): Promise<PullState> {
    const stateDir = path.join(dir, STATE_FOLDER);
    const partialDir = path.join(stateDir, 'partial');
    await mkdir(partialDir, { recursive: true });
    const lock = await acquireLongLock(path.join(stateDir, 'pull.lock'), options);
    try {
      const cache = await DigestCache.load(path.join(stateDir, 'files.json'), dir);
      const state = new PullState(dir, cache, lock);
      await state.clearStrays();
      return state;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Temp files of an attempt that died, and partial files without a journal, are of no use. */
  private async clearStrays(): Promise<void> {
    const names = await readdir(this.partialDir);
    const journals = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const name of names) {
      const keep = (name.endsWith('.part') && journals.has(name.slice(0, -5))) || name.endsWith('.json');
      if (!keep) await unlink(path.join(this.partialDir, name)).catch(() => {});
    }
  }

  /** The partial file of a single-file layer (kept across attempts). */
  partialPath(layer: Digest): string {
    return path.join(this.partialDir, `${layer.replace(':', '-')}.part`);
  }

  /** A fresh temp file name for a file of a layer (removed by the next pull if this one dies). */
  tempPath(): string {
    return path.join(this.partialDir, `${randomBytes(8).toString('hex')}.tmp`);
  }

  private journalPath(layer: Digest): string {
    return path.join(this.partialDir, `${layer.replace(':', '-')}.json`);
  }

  async readJournal(layer: Digest): Promise<Journal | undefined> {
    try {
      return readJournal(JSON.parse(await readFile(this.journalPath(layer), 'utf8')), layer);
    } catch {
      return undefined;
    }
  }

  async writeJournal(journal: Journal): Promise<void> {
    await writeFileAtomic(this.journalPath(journal.layer), `${JSON.stringify(journal)}\n`);
  }

  /** Forgets a layer's partial file and journal (it finished, or its bytes proved wrong). */
  async dropPartial(layer: Digest): Promise<void> {
    await unlink(this.journalPath(layer)).catch(() => {});
    await unlink(this.partialPath(layer)).catch(() => {});
  }

  private assemblyStem(file: string): string {
    return path.join(
      this.partialDir,
      `assembly-${createHash('sha256').update(file).digest('hex').slice(0, 32)}`,
    );
  }

  /** Where the part layers of `file` are written, each at its offset, before it is checked and renamed into place. */
  assemblyPath(file: string): string {
    return `${this.assemblyStem(file)}.part`;
  }

  /** Which parts of `file` (of this whole digest) an earlier run wrote and verified. */
  async readAssembly(file: string, fileDigest: Digest): Promise<Set<number>> {
    try {
      const o = JSON.parse(await readFile(`${this.assemblyStem(file)}.json`, 'utf8')) as {
        path?: unknown;
        fileDigest?: unknown;
        done?: unknown;
      };
      if (o.path !== file || o.fileDigest !== fileDigest || !Array.isArray(o.done)) return new Set();
      await stat(this.assemblyPath(file));
      return new Set(o.done.filter((n): n is number => Number.isSafeInteger(n)));
    } catch {
      return new Set();
    }
  }

  /** Records that these parts of `file` are written (synced) and verified. */
  async writeAssembly(file: string, fileDigest: Digest, done: ReadonlySet<number>): Promise<void> {
    const body = { path: file, fileDigest, done: [...done].sort((a, b) => a - b) };
    await writeFileAtomic(`${this.assemblyStem(file)}.json`, `${JSON.stringify(body)}\n`);
  }

  /** Forgets an assembly (placed, or its bytes proved wrong). */
  async dropAssembly(file: string): Promise<void> {
    await unlink(`${this.assemblyStem(file)}.json`).catch(() => {});
    await unlink(this.assemblyPath(file)).catch(() => {});
  }

  async close(): Promise<void> {
    try {
      await this.cache.save();
    } finally {
      await this.lock.release();
    }
  }
}
