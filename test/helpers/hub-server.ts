/**
 * A local stand-in for the Hugging Face Hub, serving the documented endpoints the Hub's clients
 * (huggingface_hub, @huggingface/hub) use, on loopback:
 *
 *   GET /api/models/ORG/NAME/revision/REV   → { id, sha, lastModified, gated, private, siblings }
 *   GET /api/models/ORG/NAME/tree/REV?recursive=true  → a page of entries; `Link: <…>; rel="next"`
 *       entries: { type: 'file', oid, size, path, lfs?: { oid (sha256), size, pointerSize } },
 *                { type: 'directory', oid, size: 0, path }
 *   GET /ORG/NAME/resolve/REV/PATH → small files: 200 with the bytes (ETag: the git blob oid);
 *       LFS files: 302 to a second loopback host (the "CDN"), with X-Linked-Etag (the sha256),
 *       X-Linked-Size and X-Repo-Commit, as the Hub answers
 *   CDN: GET /blobs/SHA256?X-Amz-Signature=… → the bytes, with Range support
 *
 * A gated repository answers 401 without `Authorization: Bearer <token>` (the token the server
 * was given). Faults for tests: `failNext(n, status, retryAfter)` answers API requests with a status
 * (429 + Retry-After), `resetCdnAfter(bytes, times)` cuts CDN transfers, `lie(path)` serves other
 * bytes for an LFS file. Everything served is logged, with the bytes sent and whether an
 * Authorization header came along.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  path: string;
  content: Buffer;
  /** Stored in LFS (served by the CDN, listed with an `lfs` field). Default: files over 64 KiB. */
  lfs?: boolean;
}

export interface HubRepo {
  files: HubFile[];
  /** Commit sha the revisions resolve to (default: a hash of the files). */
  sha?: string;
  lastModified?: string;
  gated?: boolean;
}

export interface HubLogEntry {
  host: 'hub' | 'cdn';
  method: string;
  url: string;
  status: number;
  bytesSent: number;
  authorization: boolean;
  range?: string;
}

export interface HubServer {
  /** http://127.0.0.1:PORT: what HF_ENDPOINT points at. */
  url: string;
  cdnUrl: string;
  /** The token gated repositories accept. */
  token: string;
  /** Serves `repo` (ORG/NAME) at `revisions` (branch or tag names; the commit sha always works). */
  setRepo(repo: string, revisions: string[], content: HubRepo): { sha: string };
  log: HubLogEntry[];
  /** Bytes of LFS files sent by the CDN so far. */
  lfsBytes(): number;
  failNext(count: number, status: number, retryAfterSeconds?: number): void;
  resetCdnAfter(bytes: number, times: number): void;
  lie(path: string): void;
  /** Redirects downloads to this origin instead of the CDN's own (a throttling proxy in front of it). */
  redirectCdnVia(origin: string | undefined): void;
  /** Entries per tree page (default 50; small values exercise pagination). */
  pageSize: number;
  stop(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The git blob id of content (what the Hub lists as `oid` for a file). */
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface Stored {
  sha: string;
  lastModified: string;
  gated: boolean;
  files: (HubFile & { lfs: boolean; sha256: string; oid: string })[];
}

export async function startHubServer(): Promise<HubServer> {
  const repos = new Map<string, Map<string, Stored>>(); // repo → revision → content
  const blobs = new Map<string, Buffer>(); // sha256 → bytes
  const lies = new Set<string>();
  const log: HubLogEntry[] = [];
  let failures: { count: number; status: number; retryAfter?: number } = { count: 0, status: 0 };
  let resets = { after: 0, times: 0 };
  const token = `hf_test_${Math.random().toString(36).slice(2)}`;
  let cdnUrl = '';
  let cdnVia: string | undefined;
  let hubUrl = '';

  const send = (
    res: http.ServerResponse,
    entry: HubLogEntry,
    status: number,
    body: Buffer | string,
    headers: Record<string, string> = {},
  ) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    entry.status = status;
    entry.bytesSent = bytes.length;
    res.writeHead(status, { 'content-length': String(bytes.length), ...headers });
    res.end(bytes);
  };
  const json = (res: http.ServerResponse, entry: HubLogEntry, status: number, value: unknown, headers = {}) =>
    send(res, entry, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers });

  const find = (repo: string, revision: string) => repos.get(repo)?.get(decodeURIComponent(revision));

  const hub = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', hubUrl);
    const entry: HubLogEntry = {
      host: 'hub',
      method: req.method ?? 'GET',
      url: url.pathname + url.search,
      status: 0,
      bytesSent: 0,
      authorization: Boolean(req.headers.authorization),
    };
    log.push(entry);
    if (failures.count > 0) {
      failures.count--;
      return json(
        res,
        entry,
        failures.status,
        { error: 'slow down' },
        {
          ...(failures.retryAfter !== undefined ? { 'retry-after': String(failures.retryAfter) } : {}),
        },
      );
    }
    const authorized = req.headers.authorization === `Bearer ${token}`;
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/?]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoName = api?.[1] ?? resolve?.[1];
    const revision = api?.[3] ?? resolve?.[2];
    if (!repoName || !revision) return json(res, entry, 404, { error: 'Not Found' });
    const stored = find(repoName, revision);
    if (!stored) {
      return json(
        res,
        entry,
        404,
        { error: `Revision Not Found for url: ${url.pathname}` },
        {
          'x-error-code': repos.has(repoName) ? 'RevisionNotFound' : 'RepoNotFound',
        },
      );
    }
    if (stored.gated && !authorized) {
      return json(
        res,
        entry,
        401,
        {
          error: `Access to model ${repoName} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        },
        { 'x-error-code': 'GatedRepo' },
      );
    }
    if (api?.[2] === 'revision') {
      return json(res, entry, 200, {
        id: repoName,
        sha: stored.sha,
        lastModified: stored.lastModified,
        gated: stored.gated ? 'auto' : false,
        private: false,
        siblings: stored.files.map((f) => ({ rfilename: f.path })),
      });
    }
    if (api?.[2] === 'tree') {
      const dirs = new Set<string>();
      for (const f of stored.files)
        for (let at = f.path.indexOf('/'); at > 0; at = f.path.indexOf('/', at + 1))
          dirs.add(f.path.slice(0, at));
      const entries = [
        ...[...dirs].map((d) => ({ type: 'directory', oid: gitOid(Buffer.from(d)), size: 0, path: d })),
        ...stored.files.map((f) => ({
          type: 'file',
          oid: f.oid,
          size: f.content.length,
          path: f.path,
          ...(f.lfs ? { lfs: { oid: f.sha256, size: f.content.length, pointerSize: 134 } } : {}),
        })),
      ].sort((a, b) => (a.path < b.path ? -1 : 1));
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + server.pageSize);
      const next = cursor + server.pageSize < entries.length;
      const nextUrl = new URL(url.toString());
      nextUrl.searchParams.set('cursor', String(cursor + server.pageSize));
      return json(res, entry, 200, page, next ? { link: `<${nextUrl.toString()}>; rel="next"` } : {});
    }
    const file = stored.files.find((f) => f.path === decodeURIComponent(resolve![3]!));
    if (!file)
      return json(res, entry, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
    if (!file.lfs)
      return send(res, entry, 200, file.content, { etag: `"${file.oid}"`, 'x-repo-commit': stored.sha });
    entry.status = 302;
    res.writeHead(302, {
      location: `${cdnVia ?? cdnUrl}/blobs/${file.sha256}?X-Amz-Signature=${Math.random().toString(36).slice(2)}`,
      'x-linked-etag': `"${file.sha256}"`,
      'x-linked-size': String(file.content.length),
      'x-repo-commit': stored.sha,
      etag: `"${file.oid}"`,
      'content-length': '0',
    });
    res.end();
  });

  const cdn = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', cdnUrl);
    const entry: HubLogEntry = {
      host: 'cdn',
      method: req.method ?? 'GET',
      url: url.pathname,
      status: 0,
      bytesSent: 0,
      authorization: Boolean(req.headers.authorization),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
    log.push(entry);
    const hex = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    let content = hex ? blobs.get(hex) : undefined;
    if (!content || !url.searchParams.get('X-Amz-Signature')) return send(res, entry, 403, 'AccessDenied');
    if (lies.has(hex!)) {
      content = Buffer.from(content);
      content[content.length >> 1]! ^= 0xff;
    }
    let start = 0;
    let end = content.length - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
      if (start >= content.length) return send(res, entry, 416, '');
    }
    const body = content.subarray(start, end + 1);
    entry.status = range ? 206 : 200;
    res.writeHead(entry.status, {
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end}/${content.length}` } : {}),
    });
    if (resets.times > 0 && body.length > resets.after) {
      resets.times--;
      res.write(body.subarray(0, resets.after), () => {
        entry.bytesSent = resets.after;
        req.socket.resetAndDestroy();
      });
      return;
    }
    entry.bytesSent = body.length;
    res.end(body);
  });

  const listen = (server: http.Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      ),
    );
  hubUrl = await listen(hub);
  cdnUrl = await listen(cdn);

  const server: HubServer = {
    url: hubUrl,
    cdnUrl,
    token,
    log,
    pageSize: 50,
    setRepo(repo, revisions, content) {
      const files = content.files.map((f) => {
        const lfs = f.lfs ?? f.content.length > 64 * 1024;
        const digest = sha256(f.content);
        if (lfs) blobs.set(digest, f.content);
        return { ...f, lfs, sha256: digest, oid: gitOid(f.content) };
      });
      const sha =
        content.sha ??
        createHash('sha1')
          .update(files.map((f) => `${f.path} ${f.oid}`).join('\n'))
          .digest('hex');
      const stored: Stored = {
        sha,
        lastModified: content.lastModified ?? '2025-06-01T12:00:00.000Z',
        gated: content.gated ?? false,
        files,
      };
      const byRevision = repos.get(repo) ?? new Map<string, Stored>();
      for (const revision of [...revisions, sha]) byRevision.set(revision, stored);
      repos.set(repo, byRevision);
      return { sha };
    },
    lfsBytes: () => log.filter((e) => e.host === 'cdn').reduce((sum, e) => sum + e.bytesSent, 0),
    failNext(count, status, retryAfter) {
      failures = { count, status, ...(retryAfter !== undefined ? { retryAfter } : {}) };
    },
    resetCdnAfter(bytes, times) {
      resets = { after: bytes, times };
    },
    redirectCdnVia(origin) {
      cdnVia = origin;
    },
    lie(path) {
      for (const byRevision of repos.values())
        for (const stored of byRevision.values())
          for (const f of stored.files) if (f.path === path && f.lfs) lies.add(f.sha256);
    },
    async stop() {
      await Promise.all(
        [hub, cdn].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
  return server;
}
