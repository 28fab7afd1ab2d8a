import { type Digest, sha256Digest, splitDigest } from '../oci/digest.ts';
import type { LayerEncoding } from '../oci/media-types.ts';

export interface DigestedFile {
  path: string;
  size: number;
  digest: Digest;
}

/**
 * The listing the weights digest is taken over: one line per packaged file, sorted by the bytes of
 * its UTF-8 path, `<sha256 of content> <size> <path>\n`. It depends on nothing but the files, so
 * the encoding, compression level and frame size do not change it. (Paths never hold newlines:
 * the source scan refuses control characters.)
 */
export function canonicalListing(files: readonly DigestedFile[]): string {
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return sorted.map((f) => `${f.digest} ${f.size} ${f.path}\n`).join('');
}

export function weightsDigest(files: readonly DigestedFile[]): Digest {
  return sha256Digest(canonicalListing(files));
}

const TAG_SUFFIX: Record<LayerEncoding, string> = { 'tar+zstd': 'tar-zstd', tar: 'tar', raw: 'raw' };

/**
 * The tag every build also pushes, derived from the weights digest and encoding, so "is this exact
 * model already there?" is one tag lookup. It avoids the `sha256-<hex>` form, which the referrers
 * tag schema (and cosign) use.
 */
export function weightsTag(digest: Digest, encoding: LayerEncoding): string {
  return `weights-${splitDigest(digest)[1]}.${TAG_SUFFIX[encoding]}`;
}

/** Whether `tag` is a weights tag (see weightsTag) of an artifact in this encoding. */
export function isWeightsTag(tag: string, encoding: LayerEncoding): boolean {
  return (
    /^weights-[0-9a-f]{64}\./.test(tag) &&
    tag.endsWith(`.${TAG_SUFFIX[encoding]}`) &&
    tag.length === 73 + TAG_SUFFIX[encoding].length
  );
}
