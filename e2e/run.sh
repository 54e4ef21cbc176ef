#!/usr/bin/env bash
# The end-to-end tests: installs what is missing, builds the WebAssembly variants, the CLI
# (the reference the page is compared with) and the default weights, then runs every test in
# Debian's Chromium. Arguments go to `node --test` (e.g. --test-name-pattern='^2\.').
# Outputs (screenshot, captured frames, packed apps) land in e2e/out/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

chromium="${EFFYOLO_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "e2e: no Chromium at $chromium (apt-get install chromium, or set EFFYOLO_CHROMIUM)" >&2
  exit 1
fi

pkg/setup.sh --e2e
pkg/build.sh
cargo build --quiet --release --bin effyolo
web/weights.sh >/dev/null

cd e2e
exec node --test --test-concurrency=1 --test-reporter=spec "$@" tests/demo.test.js tests/package.test.js tests/bench.test.js
