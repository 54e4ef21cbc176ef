#!/usr/bin/env bash
# Builds the WebAssembly variants of the detector into pkg/dist/<variant>/:
#   threads-relaxed, threads-simd    threads + relaxed SIMD / SIMD128, for bundlers
#   threads-relaxed-nb, threads-simd-nb   the same with the bundler-free worker helper
#   single-simd                      one thread, SIMD128, no shared memory (any page)
# Usage: pkg/build.sh [variant...]   (default: all)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
wasm_bindgen="$root/.cache/tools/bin/wasm-bindgen"
wasm_opt="$root/pkg/node_modules/.bin/wasm-opt"

base_features="+simd128,+bulk-memory,+mutable-globals,+nontrapping-fptoint,+sign-ext"
# Shared memory must be asked for explicitly: +atomics alone no longer implies it.
threads_link="-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
-C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
threads_flags="-C target-feature=$base_features,+atomics $threads_link"
relaxed_flags="-C target-feature=$base_features,+atomics,+relaxed-simd $threads_link"
single_flags="-C target-feature=$base_features"
opt_flags=(--enable-threads --enable-simd --enable-bulk-memory --enable-mutable-globals --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue)

build() {
  local name=$1 features=$2 flags=$3
  shift 3
  echo "build: $name"
  RUSTFLAGS="$flags" cargo build --release --target wasm32-unknown-unknown -p effyolo --lib \
    --no-default-features --features "$features" --target-dir "target/wasm-$name" "$@"
  local out="pkg/dist/$name"
  rm -rf "$out"
  "$wasm_bindgen" --target web --out-dir "$out" --out-name effyolo \
    "target/wasm-$name/wasm32-unknown-unknown/release/effyolo.wasm"
  local extra=()
  [[ $name == *relaxed* ]] && extra=(--enable-relaxed-simd)
  "$wasm_opt" -O3 "${opt_flags[@]}" "${extra[@]}" "$out/effyolo_bg.wasm" -o "$out/effyolo_bg.wasm"
}

variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(threads-relaxed threads-simd threads-relaxed-nb threads-simd-nb single-simd)
for v in "${variants[@]}"; do
  case $v in
    threads-relaxed) build "$v" wasm-threads "$relaxed_flags" -Z build-std=panic_abort,std ;;
    threads-simd) build "$v" wasm-threads "$threads_flags" -Z build-std=panic_abort,std ;;
    threads-relaxed-nb) build "$v" wasm-threads-no-bundler "$relaxed_flags" -Z build-std=panic_abort,std ;;
    threads-simd-nb) build "$v" wasm-threads-no-bundler "$threads_flags" -Z build-std=panic_abort,std ;;
    single-simd) build "$v" wasm "$single_flags" ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
done
