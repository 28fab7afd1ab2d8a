#!/usr/bin/env node
// The model-oci command, as package.json's "bin" names it (`npm link`, or `npm install -g .` from a
// clone, put it on PATH). It runs src/ as it is, which takes Node.js 24 (type stripping); on an older
// node it says so instead of failing on the first type annotation.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `model-oci: error: Node.js 24 or newer is needed, this is ${process.version}; ` +
      'install Node 24, or run it from the clone with "npm run -s model-oci -- …", which fetches it\n',
  );
  process.exit(2);
}
await import('../src/cli/bin.ts');
