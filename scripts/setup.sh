#!/bin/sh
# The first command on a fresh machine (`npm run setup`): Node 24 — installed from the npm registry
# into ~/.cache/model-oci/node24 when the machine's node is older — and then the project's packages,
# installed by npm running on that Node 24, so npm has no engine warnings to print.
set -e
cd "$(dirname "$0")/.."
node24=$(sh scripts/node24.sh -p 'process.execPath')
PATH="$(dirname "$node24"):$PATH"
export PATH
npm ci --no-audit --no-fund
echo "ready: node $(node --version) (for this project's scripts), npm $(npm --version)"
