import { type Digest, InvalidDigestError, parseDigest } from '../oci/digest.ts';
import { checkTag, isLoopback, parseReference, type Reference } from '../oci/reference.ts';
import { UsageError } from '../util/errors.ts';

/** Where to read from or write to, as the user wrote it on the command line or in an input. */
export type TargetRef =
  | { kind: 'oci-layout'; path: string; tag?: string; digest?: Digest; text: string }
  | { kind: 'registry'; reference: Reference; text: string };

const LAYOUT_PREFIXES = ['oci-layout:', 'oci:'];

/**
 * `oci-layout:PATH[:TAG][@DIGEST]` (also `oci:` as skopeo spells it) names an OCI image layout
 * directory; anything else is a registry reference `[registry[:port]/]repo[:tag][@digest]`.
 * `plainHttp` names how the caller allows plain HTTP (`--plain-http HOST`), for the hint to a user
 * who wrote `http://…`.
 */
export function parseTargetRef(text: string, plainHttp = 'the plain-HTTP option for HOST'): TargetRef {
  const prefix = LAYOUT_PREFIXES.find((p) => text.startsWith(p));
  const scheme = /^(https?):\/\//i.exec(text);
  if (scheme) {
    const bare = text.slice(scheme[0].length);
    const host = bare.split('/')[0]!;
    const hint = scheme[1]!.toLowerCase() === 'http' && !isLoopback(host);
    throw new UsageError(
      `invalid reference ${JSON.stringify(text)}: a registry reference has no scheme, write ${JSON.stringify(bare)}` +
        (hint ? ` and allow plain HTTP with ${plainHttp.replace('HOST', host)}` : ''),
    );
  }
  if (!prefix) {
    const bare = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
    try {
      return { kind: 'registry', reference: parseReference(bare), text };
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  }
  let rest = text.slice(prefix.length);
  let digest: Digest | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (err) {
      if (err instanceof InvalidDigestError)
        throw new UsageError(`invalid target ${JSON.stringify(text)}: ${err.message}`);
      throw err;
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    try {
      checkTag(tag);
    } catch (err) {
      throw new UsageError(
        `invalid target ${JSON.stringify(text)}: ${err instanceof Error ? err.message : err}`,
      );
    }
  }
  if (rest.length === 0)
    throw new UsageError(`invalid target ${JSON.stringify(text)}: the layout path is empty`);
  const ref: TargetRef = { kind: 'oci-layout', path: rest, text };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

export function targetTag(ref: TargetRef): string | undefined {
  return ref.kind === 'oci-layout' ? ref.tag : ref.reference.tag;
}
