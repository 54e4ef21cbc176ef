#!/usr/bin/env bash
# Installs what building the browser package needs and is missing. Idempotent; a second run
# takes a second or two.
#   pkg/setup.sh          the pinned Rust toolchain (.ci/setup), wasm-bindgen-cli (into
#                         .cache/tools, matching the wasm-bindgen crate in Cargo.lock) and
#                         pkg/'s npm packages (wasm-opt)
#   pkg/setup.sh --e2e    also e2e/'s npm packages (playwright-core, Vite, TypeScript)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

[ -x .ci/setup ] && .ci/setup

want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(.cache/tools/bin/wasm-bindgen --version 2>/dev/null | cut -d' ' -f2 || true)
if [ "$want" != "$have" ]; then
  echo "setup: installing wasm-bindgen-cli $want into .cache/tools (a few minutes, once)"
  cargo install --quiet wasm-bindgen-cli --version "$want" --root .cache/tools --force
fi

# npm ci where node_modules is missing or older than the lock file.
npm_ci() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in $dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci pkg
if [ "${1:-}" = "--e2e" ]; then
  npm_ci e2e
fi
