#!/bin/sh
# Runs Node.js 24 (the GitHub Actions runtime this project targets) with the given arguments.
# When the machine's node is older, Node 24 is installed once from the npm registry (package
# node@24) into a cache folder, leaving the system node alone.
set -e
cur=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$cur" -ge 24 ]; then exec node "$@"; fi
dir="${MODEL_OCI_NODE24_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-oci/node24}"
bin="$dir/node_modules/.bin/node"
if ! "$bin" --version >/dev/null 2>&1; then
  echo "node $(node --version 2>/dev/null || echo missing) is older than 24: installing node@24 into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
fi
exec "$bin" "$@"
