import type { LayerLimit } from '../content/target.ts';
import { expectDigest } from '../oci/descriptor.ts';
import type { Digest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';
import {
  expectObject,
  expectSafeInteger,
  expectString,
  InvalidDocumentError,
  parseJson,
} from '../oci/validate.ts';
import { END_OF_ARCHIVE, entrySize } from '../pack/tar-header.ts';
import { UserError } from '../util/errors.ts';
import type { SourceFile } from './source.ts';

/** Part lengths are multiples of this (so are their offsets): whole O_DIRECT blocks for pull. */
export const PART_ALIGN = 64 * 1024;

export type { LayerLimit };

/** Where a part layer's bytes sit in the file it is a part of (the `io.model-oci.part` annotation). */
export interface PartInfo {
  /** The whole file's path in the model. */
  path: string;
  /** 1-based, in file order. */
  index: number;
  count: number;
  offset: number;
  /** Bytes of the file in this part. */
  size: number;
  fileSize: number;
  /** The whole file's sha256 (known once the file is hashed or packed). */
  fileDigest?: Digest;
}

/** `model.gguf.part-00002-of-00005`: the part's own name (its tar entry and title); sorts in file order. */
export function partName(path: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${path}.part-${pad(index)}-of-${pad(count)}`;
}

/** What zstd guarantees a frame of `n` bytes never exceeds (ZSTD_COMPRESSBOUND), plus room for our framing. */
function zstdFrameBound(n: number): number {
  const small = n < 128 * 1024 ? (128 * 1024 - n) >> 11 : 0;
  return n + (n >> 8) + small + 64;
}

/**
 * The largest a one-file layer of `bytes` can be, whatever the data: the tar (header with the
 * part name, content, padding, end of archive) and, for zstd, every frame at zstd's bound —
 * incompressible data is what a split must survive.
 */
export function worstLayerSize(
  name: string,
  bytes: number,
  encoding: LayerEncoding,
  frameSize: number,
  mtime: number,
): number {
  if (encoding === 'raw') return bytes;
  const tar = entrySize({ path: name, size: bytes, executable: false }, mtime) + END_OF_ARCHIVE;
  if (encoding === 'tar') return tar;
  const full = Math.floor(tar / frameSize);
  const rest = tar - full * frameSize;
  return full * zstdFrameBound(frameSize) + (rest > 0 ? zstdFrameBound(rest) : 0);
}

/** What a layer may use of the limit: 1% and 64 KiB are left as margin. */
function usable(limit: LayerLimit): number {
  return Math.floor(limit.bytes * 0.99) - 64 * 1024;
}

/** Whether `file` needs splitting under `limit`. */
export function needsSplit(
  file: Pick<SourceFile, 'path' | 'size'>,
  limit: LayerLimit,
  encoding: LayerEncoding,
  frameSize: number,
  mtime: number,
): boolean {
  return worstLayerSize(file.path, file.size, encoding, frameSize, mtime) > usable(limit);
}

/**
 * Bytes of the file per part: the largest multiple of PART_ALIGN whose layer fits the limit even
 * for incompressible data. The same file, limit, encoding and frame size always give the same
 * split (the count goes into the name, so the widest name is assumed). Throws when not even one
 * PART_ALIGN of data fits with its headers.
 */
export function partLength(
  file: Pick<SourceFile, 'path' | 'size'>,
  limit: LayerLimit,
  encoding: LayerEncoding,
  frameSize: number,
  mtime: number,
): number {
  const room = usable(limit);
  const widest = partName(file.path, 99_999, 99_999);
  let length = Math.floor(Math.max(0, room) / (1 + 1 / 256) / PART_ALIGN) * PART_ALIGN;
  while (length >= PART_ALIGN && worstLayerSize(widest, length, encoding, frameSize, mtime) > room)
    length -= PART_ALIGN;
  if (length < PART_ALIGN)
    throw new UserError(
      `${file.path} (${file.size} bytes) cannot be split to fit ${limit.why}: a layer of at most ${limit.bytes} bytes cannot hold even a ${PART_ALIGN / 1024} KiB part with its tar and zstd headers`,
    );
  if (Math.ceil(file.size / length) > 99_999)
    throw new UserError(`${file.path} would need more than 99999 parts to fit ${limit.why}`);
  return length;
}

/** The parts of a file of `size` bytes in parts of `length`: offsets and sizes, in order. */
export function splitRanges(size: number, length: number): { offset: number; size: number }[] {
  const count = Math.max(1, Math.ceil(size / length));
  return Array.from({ length: count }, (_, i) => ({
    offset: i * length,
    size: Math.min(length, size - i * length),
  }));
}

/** The `io.model-oci.part` annotation of a part layer. */
export function encodePart(part: PartInfo): string {
  if (!part.fileDigest) throw new Error(`${part.path}: a part layer needs the whole file's digest`);
  return JSON.stringify({
    path: part.path,
    index: part.index,
    count: part.count,
    offset: part.offset,
    size: part.size,
    fileSize: part.fileSize,
    fileDigest: part.fileDigest,
  });
}

/** Reads an `io.model-oci.part` annotation, checked for sense (InvalidDocumentError otherwise). */
export function parsePart(text: string, where: string): PartInfo {
  const o = expectObject(parseJson(text, where), where);
  const int = (key: string) => expectSafeInteger(o[key], `${where}.${key}`);
  const part: PartInfo = {
    path: expectString(o.path, `${where}.path`),
    index: int('index'),
    count: int('count'),
    offset: int('offset'),
    size: int('size'),
    fileSize: int('fileSize'),
    fileDigest: expectDigest(o.fileDigest, `${where}.fileDigest`),
  };
  if (
    part.index < 1 ||
    part.index > part.count ||
    part.offset < 0 ||
    part.size < 0 ||
    part.offset + part.size > part.fileSize
  )
    throw new InvalidDocumentError(
      where,
      `part ${part.index} of ${part.count} at ${part.offset}+${part.size} does not fit a file of ${part.fileSize} bytes`,
    );
  return part;
}
