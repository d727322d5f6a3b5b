#!/usr/bin/env bash
# Runs the peers benchmark; installs the pinned packages first if needed.
#   bench/peers/run.sh [--scale F] [--only pouchdb|yjs] [...]   (see peers_bench.mjs)
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
exec node peers_bench.mjs "$@"
