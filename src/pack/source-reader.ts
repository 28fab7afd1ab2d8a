import { type FileHandle, open } from 'node:fs/promises';
import { IntegrityError } from '../content/errors.ts';
import type { Digest } from '../oci/digest.ts';

/**
 * Where a file's bytes are read from: a local file, or a download (a Hugging Face file streamed
 * into the packer). Reads come in increasing positions; a download may serve them only so.
 */
export interface SourceReader {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** Throws when the source changed while it was read (a local file rewritten); no-op otherwise. */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/** Bytes `[start, end)` of a file: what a part layer holds. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A reader over `[start, end)` of another (random-access) reader: positions are relative to
 * `start`, and nothing past `end` is read.
 */
export function windowed(reader: SourceReader, range: ByteRange): SourceReader {
  return {
    read: (buffer, offset, length, position) =>
      reader.read(
        buffer,
        offset,
        Math.max(0, Math.min(length, range.end - range.start - position)),
        range.start + position,
      ),
    checkUnchanged: () => reader.checkUnchanged(),
    close: () => reader.close(),
  };
}

/** A file to pack or hash, by whatever opens it. */
export interface ReadableFile {
  path: string;
  size: number;
  open(): Promise<SourceReader>;
}

/** A reader over an open local file; `check` compares the open file with what the scan saw. */
export function fileReader(handle: FileHandle, check: (handle: FileHandle) => Promise<void>): SourceReader {
  return {
    read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
    checkUnchanged: () => check(handle),
    close: () => handle.close(),
  };
}

/** Opens a local file for reading as a SourceReader. */
export async function openLocal(
  absPath: string,
  check: (handle: FileHandle) => Promise<void>,
): Promise<SourceReader> {
  return fileReader(await open(absPath, 'r'), check);
}

/** The digest a file's bytes had, checked against what its source promised (the Hub's sha256). */
export function checkPromised(path: string, got: Digest, promised: Digest | undefined): void {
  if (promised !== undefined && got !== promised)
    throw new IntegrityError(`${path}: its bytes hash to ${got}, not the ${promised} its source lists`);
}
