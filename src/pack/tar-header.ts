// Deterministic tar headers (POSIX.1-2001 ustar, with pax extended headers only where needed).
//
// The packer writes file bytes straight into zstd frame buffers, so it needs header bytes, not a
// stream: tar-stream's pack stream would add a copy and a stream hop per chunk (measured in
// docs/benchmarks.md) and it does not export its header encoder. The format is small and fixed;
// tests check what this writes with GNU tar and with tar-stream's reader.

export const BLOCK = 512;
/** End of archive: two zero blocks. */
export const END_OF_ARCHIVE = 2 * BLOCK;
/** The largest size the 11 octal digits of a ustar size field hold (8 GiB - 1). */
export const USTAR_MAX_SIZE = 0o77777777777;

export interface TarFileMeta {
  /** Path inside the archive: relative, '/'-separated, no '.' or '..' components. */
  path: string;
  size: number;
  executable: boolean;
}

export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

const encoder = new TextEncoder();

function writeString(block: Buffer, offset: number, length: number, value: Uint8Array): void {
  block.set(value.subarray(0, length), offset);
}

/** Octal, zero-padded to `length - 1` digits, NUL-terminated (as GNU tar writes). */
function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, 'latin1');
}

/** GNU base-256 size for files over 8 GiB, for readers that ignore the pax size record. */
function writeBase256(block: Buffer, offset: number, length: number, value: number): void {
  let rest = value;
  for (let i = length - 1; i > 0; i--) {
    block[offset + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  block[offset] = 0x80;
}

function isAscii(bytes: Uint8Array): boolean {
  return bytes.every((b) => b < 0x80);
}

/** Splits a long path into ustar prefix (≤155) and name (≤100) at a '/'; undefined if impossible. */
function splitUstarPath(path: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | undefined {
  if (path.length <= 100) return { prefix: new Uint8Array(0), name: path };
  for (let i = Math.max(0, path.length - 101); i < Math.min(path.length, 156); i++) {
    if (path[i] !== 0x2f) continue;
    const prefix = path.subarray(0, i);
    const name = path.subarray(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
  }
  return undefined;
}

function ustarBlock(
  name: Uint8Array,
  prefix: Uint8Array,
  size: number,
  mode: number,
  mtime: number,
  typeflag: string,
): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  if (size > USTAR_MAX_SIZE) writeBase256(block, 124, 12, size);
  else writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block.write(typeflag, 156, 'latin1');
  block.write('ustar\0' + '00', 257, 'latin1');
  // uname and gname stay empty: ownership is 0:0 with no names to leak or to resolve.
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  writeString(block, 345, 155, prefix);
  // Checksum: sum of all bytes with the checksum field itself counted as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** One pax record, "<len> <key>=<value>\n", where len counts the whole record in bytes. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength + String(bodyLength).length;
  if (String(length).length !== String(bodyLength).length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

/**
 * The header bytes for one regular file: a single ustar block, or a pax extended header followed
 * by the ustar block when the path is not ASCII or does not fit ustar, or the size is over 8 GiB - 1.
 * Owner 0:0, no user/group names, mode 0644 (0755 when executable), the given mtime.
 */
export function encodeFileHeader(file: TarFileMeta, mtime: number): Buffer {
  const mode = file.executable ? 0o755 : 0o644;
  const path = encoder.encode(file.path);
  const split = isAscii(path) ? splitUstarPath(path) : undefined;
  const needsPaxPath = split === undefined;
  const needsPaxSize = file.size > USTAR_MAX_SIZE;
  if (!needsPaxPath && !needsPaxSize) {
    return ustarBlock(split!.name, split!.prefix, file.size, mode, mtime, '0');
  }
  let records = '';
  if (needsPaxPath) records += paxRecord('path', file.path);
  if (needsPaxSize) records += paxRecord('size', String(file.size));
  const recordBytes = encoder.encode(records);
  // The ustar fields still get a readable ASCII stand-in, for readers without pax support.
  const fallback = encoder.encode(file.path.replace(/[^\x20-\x7e]/g, '_'));
  const fallbackSplit = splitUstarPath(fallback) ?? {
    prefix: new Uint8Array(0),
    name: fallback.subarray(-100),
  };
  const base = fallback.subarray(fallback.lastIndexOf(0x2f) + 1).subarray(0, 89);
  const paxName = new Uint8Array([...encoder.encode('PaxHeaders/'), ...base]);
  const paxHeader = ustarBlock(paxName, new Uint8Array(0), recordBytes.length, 0o644, mtime, 'x');
  const paxBody = Buffer.alloc(recordBytes.length + paddingFor(recordBytes.length));
  paxBody.set(recordBytes);
  const fileHeader = ustarBlock(fallbackSplit.name, fallbackSplit.prefix, file.size, mode, mtime, '0');
  return Buffer.concat([paxHeader, paxBody, fileHeader]);
}

/** Bytes a file occupies in the archive: headers, content, padding. */
export function entrySize(file: TarFileMeta, mtime: number): number {
  return encodeFileHeader(file, mtime).length + file.size + paddingFor(file.size);
}
