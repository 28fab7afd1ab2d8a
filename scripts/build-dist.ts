// Builds dist/, the GitHub Action as committed (action.yml runs dist/index.js): `npm run build`.
//   dist/index.js                   src/action/main.ts and its npm dependencies, one ESM file (esbuild)
//   dist/cli.js                     src/cli/bin.ts the same way: the CLI the puller image runs (puller/Dockerfile)
//   dist/package.json               {"type":"module"}, so dist/ stands alone
//   dist/zstd.linux-<arch>-gnu.node the native zstd addon for glibc Linux x64 and arm64, taken from the
//                                   @mongodb-js/zstd-linux-*-gnu tarballs whose sha512 package-lock.json
//                                   holds (src/pack/zstd.ts loads it; elsewhere node:zlib compresses)
//   dist/licenses.txt               the npm packages shipped in dist/, their licenses and license texts
//   dist/licenses/                  the license of @mongodb-js/zstd, whose code the binaries are
// The output is deterministic: the same lockfile and sources give the same bytes (.ci/run checks that
// the committed dist/ is what this builds). Tarballs are kept in node_modules/.cache/model-oci-dist/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distDir = path.join(repoRoot, 'dist');
const cacheDir = path.join(repoRoot, 'node_modules', '.cache', 'model-oci-dist');

const ZSTD_PACKAGE = '@mongodb-js/zstd';
/** The architectures whose glibc binary dist/ ships, with their ELF e_machine. */
const NATIVE_ARCHES = { x64: 62, arm64: 183 } as const;
const ZSTD_LICENSE = 'licenses/mongodb-js-zstd-LICENSE.md';

// CommonJS dependencies call require() (and may read __filename/__dirname), which ES modules lack.
const BANNER = [
  '// The model-oci GitHub Action, bundled by scripts/build-dist.ts: do not edit, run `npm run build`.',
  "import { createRequire as __modelOciCreateRequire } from 'node:module';",
  'const require = __modelOciCreateRequire(import.meta.url);',
  'const __filename = import.meta.filename;',
  'const __dirname = import.meta.dirname;',
].join('\n');

/** esbuild's options for the action bundle; test/action/dist.test.ts bundles a probe with them. */
export function bundleOptions(): esbuild.BuildOptions {
  return {
    absWorkingDir: repoRoot,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    // Read by src/pack/zstd.ts: load the addon from next to the bundle.
    define: { __MODEL_OCI_BUNDLED__: 'true' },
    banner: { js: BANNER },
    // Not minified: stack traces in action logs stay readable (and comments name each module's path).
    minify: false,
    charset: 'utf8',
    legalComments: 'eof',
    logLevel: 'warning',
  };
}

interface LockEntry {
  version: string;
  integrity: string;
  license?: string;
}

function lockEntry(name: string): LockEntry {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, Partial<LockEntry>>;
  };
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity)
    throw new Error(`package-lock.json has no version and integrity for ${name}`);
  return entry as LockEntry;
}

function matchesIntegrity(data: Buffer, integrity: string): boolean {
  const wanted = integrity.split(/\s+/).filter((sri) => sri.startsWith('sha512-'));
  if (wanted.length === 0) throw new Error(`no sha512 in integrity ${integrity}`);
  return wanted.includes(`sha512-${createHash('sha512').update(data).digest('base64')}`);
}

/** The package's tarball as the lockfile pins it: from the cache, else `npm pack`; verified either way. */
function lockedTarball(name: string, entry: LockEntry): Buffer {
  const file = path.join(cacheDir, `${name.replace(/^@/, '').replace('/', '-')}-${entry.version}.tgz`);
  if (existsSync(file)) {
    const data = readFileSync(file);
    if (matchesIntegrity(data, entry.integrity)) return data;
    console.warn(`${path.relative(repoRoot, file)} does not match package-lock.json: fetching it again`);
    rmSync(file);
  }
  mkdirSync(cacheDir, { recursive: true });
  const tmp = mkdtempSync(path.join(cacheDir, 'pack-'));
  try {
    // npm pack fetches through the npm cache and the configured registry (and its auth and proxy).
    const out = execFileSync(
      'npm',
      [
        'pack',
        `${name}@${entry.version}`,
        '--json',
        '--prefer-offline',
        '--loglevel=warn',
        '--pack-destination',
        tmp,
      ],
      {
        cwd: tmp,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        shell: process.platform === 'win32',
      },
    );
    const [packed] = JSON.parse(out) as { filename: string }[];
    if (!packed) throw new Error(`npm pack ${name}@${entry.version} packed nothing`);
    const data = readFileSync(path.join(tmp, packed.filename));
    if (!matchesIntegrity(data, entry.integrity))
      throw new Error(
        `${name}@${entry.version} from the registry does not match package-lock.json's integrity`,
      );
    renameSync(path.join(tmp, packed.filename), file);
    return data;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One regular file of a .tgz (ustar, as npm writes it). */
function fileFromTarball(tgz: Buffer, wanted: string): Buffer {
  const tar = gunzipSync(tgz);
  const field = (at: number, length: number) => {
    const bytes = tar.subarray(at, at + length);
    const end = bytes.indexOf(0);
    return bytes.subarray(0, end < 0 ? length : end).toString('utf8');
  };
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = field(at, 100);
    if (name === '') break;
    const size = Number.parseInt(field(at + 124, 12).trim() || '0', 8);
    const type = field(at + 156, 1);
    const prefix = field(at + 345, 155);
    const fullName = prefix ? `${prefix}/${name}` : name;
    if (fullName === wanted && (type === '' || type === '0')) return tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${wanted} is not in the tarball`);
}

/** dist/zstd.linux-<arch>-gnu.node for each shipped arch, from the lockfile's tarballs. */
function nativeBinaries(): Map<string, Buffer> {
  const zstdVersion = lockEntry(ZSTD_PACKAGE).version;
  const files = new Map<string, Buffer>();
  for (const [arch, machine] of Object.entries(NATIVE_ARCHES)) {
    const name = `${ZSTD_PACKAGE}-linux-${arch}-gnu`;
    const entry = lockEntry(name);
    if (entry.version !== zstdVersion)
      throw new Error(`package-lock.json: ${name} is ${entry.version}, ${ZSTD_PACKAGE} is ${zstdVersion}`);
    const file = `zstd.linux-${arch}-gnu.node`;
    const binary = fileFromTarball(lockedTarball(name, entry), `package/${file}`);
    const isElf = binary.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1'));
    if (!isElf || binary[4] !== 2 || binary.readUInt16LE(18) !== machine)
      throw new Error(`${file} from ${name}@${entry.version} is not a 64-bit ELF for ${arch}`);
    files.set(file, binary);
  }
  return files;
}

interface BundledPackage {
  name: string;
  version: string;
  license: string;
  texts: { file: string; text: string }[];
}

function licenseOf(pkg: { license?: unknown; licenses?: unknown }): string {
  const one = (l: unknown) => (typeof l === 'string' ? l : String((l as { type?: unknown } | null)?.type));
  if (pkg.license !== undefined) return one(pkg.license);
  if (Array.isArray(pkg.licenses)) return pkg.licenses.map(one).join(' OR ');
  return 'UNKNOWN';
}

/** The npm packages with code in the bundle (per esbuild's metafile), sorted. */
function bundledPackages(output: esbuild.Metafile['outputs'][string]): BundledPackage[] {
  const dirs = new Set<string>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const dir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
    if (dir && bytesInOutput > 0) dirs.add(dir);
  }
  const byId = new Map<string, BundledPackage>();
  for (const dir of dirs) {
    const abs = path.join(repoRoot, dir);
    const pkg = JSON.parse(readFileSync(path.join(abs, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      license?: unknown;
      licenses?: unknown;
    };
    const texts = readdirSync(abs)
      .filter((file) => /^(licen[cs]e|copying|notice)/i.test(file))
      .sort()
      .map((file) => ({
        file,
        text: readFileSync(path.join(abs, file), 'utf8').replace(/\r\n?/g, '\n').trimEnd(),
      }));
    byId.set(`${pkg.name}@${pkg.version}`, {
      name: pkg.name,
      version: pkg.version,
      license: licenseOf(pkg),
      texts,
    });
  }
  const key = (p: BundledPackage) => `${p.name}@${p.version}`;
  return [...byId.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function licensesTxt(packages: BundledPackage[], natives: string[]): string {
  const zstd = lockEntry(ZSTD_PACKAGE);
  const lines = [
    'Third-party software in dist/ (written by scripts/build-dist.ts from package-lock.json).',
    '',
    'Bundled into dist/index.js (the Action) and dist/cli.js (the CLI):',
    ...packages.map((p) => `  ${p.name} ${p.version} ${p.license}`),
    '',
    'Native binaries:',
    ...natives.map((file) => {
      const name = `${ZSTD_PACKAGE}-${file.replace(/^zstd\.|\.node$/g, '')}`;
      const entry = lockEntry(name);
      return `  dist/${file}: ${name} ${entry.version} ${entry.license ?? 'UNKNOWN'}, built from ${ZSTD_PACKAGE} ${zstd.version} ${zstd.license ?? 'UNKNOWN'} (dist/${ZSTD_LICENSE})`;
    }),
  ];
  for (const p of packages) {
    lines.push('', '='.repeat(100), `${p.name} ${p.version} ${p.license}`);
    if (p.texts.length === 0) lines.push('', '(the package has no license file)');
    for (const { file, text } of p.texts) lines.push('', `--- ${file}`, '', text);
  }
  return `${lines.join('\n')}\n`;
}

/** What dist/ bundles: the Action's entry, and the CLI's (the puller image runs it: puller/Dockerfile). */
const ENTRIES = { index: 'src/action/main.ts', cli: 'src/cli/bin.ts' } as const;

export async function buildDist(): Promise<Map<string, Buffer>> {
  const result = await esbuild.build({
    ...bundleOptions(),
    entryPoints: ENTRIES,
    outdir: 'dist',
    metafile: true,
    write: false,
  });
  const bundles = new Map<string, { contents: Uint8Array; output: esbuild.Metafile['outputs'][string] }>();
  for (const name of Object.keys(ENTRIES)) {
    const file = result.outputFiles.find((f) => path.relative(repoRoot, f.path) === `dist/${name}.js`);
    const output = result.metafile.outputs[`dist/${name}.js`];
    if (!file || !output) throw new Error(`esbuild did not write dist/${name}.js`);
    // Nothing of this machine may leak into the committed files.
    for (const local of new Set([repoRoot, homedir()]))
      if (file.text.includes(local)) throw new Error(`dist/${name}.js contains the local path ${local}`);
    bundles.set(`${name}.js`, { contents: file.contents, output });
  }
  if (result.outputFiles.length !== bundles.size)
    throw new Error(
      `esbuild wrote ${result.outputFiles.map((f) => f.path).join(', ')}, not the bundles alone`,
    );
  const packages = new Map<string, BundledPackage>();
  for (const { output } of bundles.values())
    for (const p of bundledPackages(output)) packages.set(`${p.name}@${p.version}`, p);
  const sorted = [...packages.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);

  const natives = nativeBinaries();
  const files = new Map<string, Buffer>([
    ...[...bundles].map(([file, b]) => [file, Buffer.from(b.contents)] as [string, Buffer]),
    ['package.json', Buffer.from('{ "type": "module" }\n')],
    ...natives,
    ['licenses.txt', Buffer.from(licensesTxt(sorted, [...natives.keys()]))],
    [ZSTD_LICENSE, readFileSync(path.join(repoRoot, 'node_modules', ZSTD_PACKAGE, 'LICENSE.md'))],
  ]);
  // dist/ holds exactly what this build makes.
  rmSync(distDir, { recursive: true, force: true });
  for (const [file, data] of files) {
    mkdirSync(path.dirname(path.join(distDir, file)), { recursive: true });
    writeFileSync(path.join(distDir, file), data);
  }
  return files;
}

if (import.meta.main) {
  const files = await buildDist();
  for (const [file, data] of files) console.log(`dist/${file}  ${(data.length / 1024).toFixed(0)} KiB`);
}
