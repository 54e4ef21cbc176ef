#!/usr/bin/env bash
# The browser demo: installs what is missing, builds the WebAssembly variants, then serves the
# page with COOP/COEP on 127.0.0.1 and prints its URL. Arguments go to web/server.js
# (--port N, --host H, --weights FILE, --no-isolation).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

pkg/setup.sh
pkg/build.sh
weights=$(web/weights.sh)
exec node web/server.js --weights "$weights" "$@"
