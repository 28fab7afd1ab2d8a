import { expectObject, parseJson } from '../oci/validate.ts';
import { type HttpClient, header, readBytes } from './http-client.ts';

const PAGE = 1000;
const MAX_PAGES = 10_000;
const MAX_PAGE_BYTES = 16 * 1024 * 1024;

/**
 * Every tag of the target's repository: `GET /v2/<name>/tags/list?n=…`, following the `Link: <…>;
 * rel="next"` header page by page. A repository that does not exist yet has no tags.
 */
export async function listTags(
  client: HttpClient,
  repository: string,
  displayName: string,
  signal?: AbortSignal,
  pageSize = PAGE,
): Promise<string[]> {
  const tags: string[] = [];
  const seen = new Set<string>();
  let url: string | URL = `/v2/${repository}/tags/list?n=${pageSize}`;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await client.send({
      method: 'GET',
      url,
      headers: { accept: 'application/json' },
      scopes: [`repository:${repository}:pull`],
      expect: [200, 404],
      signal,
    });
    if (res.status === 404) {
      await res.body.dump();
      return tags;
    }
    const body = expectObject(parseJson(await readBytes(res.body, MAX_PAGE_BYTES), 'tag list'), 'tag list');
    if (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags)) {
      throw new Error(`${displayName}: the tag list is not a list`);
    }
    for (const tag of (body.tags ?? []) as unknown[]) if (typeof tag === 'string') tags.push(tag);
    const next = nextLink(header(res.headers, 'link'));
    if (!next) return tags;
    url = new URL(next, res.url);
    if (seen.has(url.href)) return tags; // a registry that links a page to itself
    seen.add(url.href);
  }
  throw new Error(`${displayName}: the tag list has over ${MAX_PAGES} pages`);
}

/** The target of `rel="next"` in a Link header (RFC 8288), e.g. `</v2/r/tags/list?last=x&n=2>; rel="next"`. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2]!)) return m[1];
  }
  return undefined;
}
