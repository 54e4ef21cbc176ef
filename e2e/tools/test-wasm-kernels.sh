#!/usr/bin/env bash
# Runs the crate's unit tests (every kernel against its scalar twin, and the ops) compiled to
# WebAssembly, in Wasmtime, twice: built with +simd128, and with +simd128,+relaxed-simd.
#
#   e2e/tools/test-wasm-kernels.sh            # both flavours
#   e2e/tools/test-wasm-kernels.sh relaxed    # one flavour: simd128 | relaxed
#
# Uses the stable toolchain's wasm32-wasip1 standard library (the pinned nightly ships none)
# and the `wasmtime` package from PyPI in .cache/venv-test; both are installed when missing.
# Extra arguments after the flavour go to the test harness (a name filter, --nocapture).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

flavours=(simd128 relaxed)
if [[ $# -gt 0 && ( $1 == simd128 || $1 == relaxed ) ]]; then
  flavours=("$1")
  shift
fi

if ! rustup +stable target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "test-wasm-kernels: adding the wasm32-wasip1 target to the stable toolchain"
  rustup target add wasm32-wasip1 --toolchain stable
fi

venv=$root/.cache/venv-test
if ! "$venv/bin/python" -c 'import wasmtime' 2>/dev/null; then
  echo "test-wasm-kernels: creating $venv with wasmtime"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet wasmtime
fi

target_root=${CARGO_TARGET_DIR:-$root/target}
for flavour in "${flavours[@]}"; do
  case $flavour in
    simd128) features=+simd128 runner_flags= ;;
    relaxed) features=+simd128,+relaxed-simd runner_flags=--relaxed-simd ;;
  esac
  echo "test-wasm-kernels: wasm32-wasip1, $features, in Wasmtime"
  # One target directory per flavour, so switching flavours does not rebuild everything.
  # The codegen flag is pkg/build.sh's `codegen`: the tests build the kernels as the page does.
  CARGO_TARGET_DIR=$target_root/wasip1-$flavour \
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=$features -C llvm-args=-disable-lsr" \
  CARGO_TARGET_WASM32_WASIP1_RUNNER="$venv/bin/python $root/e2e/tools/wasi-run.py $runner_flags" \
    cargo +stable test --release --target wasm32-wasip1 -p effyolo --lib --no-default-features -- "$@"
done
