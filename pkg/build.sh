#!/usr/bin/env bash
# Builds the WebAssembly variants of the detector into pkg/dist/<variant>/:
#   threads-relaxed, threads-simd        threads + relaxed SIMD / SIMD128, bundler worker helper
#   threads-relaxed-nb, threads-simd-nb  the same with the bundler-free worker helper
#   single-simd                          one thread, SIMD128, no shared memory (any page)
# The package's "." entry uses the first two, "./no-bundler" the -nb pair; both use single-simd.
#
# Usage: pkg/build.sh [variant...]   (default: all)
# Needs the pinned nightly (rust-toolchain.toml, with rust-src), wasm-bindgen-cli in
# .cache/tools (pkg/setup.sh installs it) and wasm-opt from pkg/node_modules (npm ci in pkg/).
# A variant whose compiled module did not change is not post-processed again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
wasm_bindgen="$root/.cache/tools/bin/wasm-bindgen"
wasm_opt="$root/pkg/node_modules/.bin/wasm-opt"
for tool in "$wasm_bindgen" "$wasm_opt"; do
  [ -x "$tool" ] || { echo "build: missing $tool (run pkg/setup.sh)" >&2; exit 1; }
done

base_features="+simd128,+bulk-memory,+mutable-globals,+nontrapping-fptoint,+sign-ext"
# Shared memory must be asked for explicitly: +atomics alone no longer implies it.
threads_link="-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
-C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
# LLVM's loop strength reduction rewrites the GEMM micro-kernel's panel walks into one
# induction variable plus an `i32.add` per load, which V8 then computes with an extra
# instruction each; without it every load keeps a constant `offset=` that V8 folds into the
# x64 addressing mode (GEMM 5-13% faster, the L1 model 6-12%, measured A/B in Chromium).
codegen="-C llvm-args=-disable-lsr"
simd_flags="-C target-feature=$base_features,+atomics $codegen $threads_link"
relaxed_flags="-C target-feature=$base_features,+atomics,+relaxed-simd $codegen $threads_link"
single_flags="-C target-feature=$base_features $codegen"
opt_flags=(-O3 --enable-threads --enable-simd --enable-bulk-memory --enable-mutable-globals --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue)

# build VARIANT FEATURES RUSTFLAGS TARGET_DIR [cargo args...]
# Variants with the same RUSTFLAGS share a target directory, so the standard library is
# compiled once per flag set.
build() {
  local name=$1 features=$2 flags=$3 target_dir=$4
  shift 4
  echo "build: $name"
  RUSTFLAGS="$flags" cargo build --quiet --release --target wasm32-unknown-unknown -p effyolo --lib \
    --no-default-features --features "$features" --target-dir "$target_dir" "$@"
  local wasm="$target_dir/wasm32-unknown-unknown/release/effyolo.wasm"
  local out="pkg/dist/$name" stamp
  stamp="$(sha256sum "$wasm" "$0" | cut -d' ' -f1 | tr '\n' ' ')$("$wasm_bindgen" --version)"
  if [ -f "$out/.source" ] && [ "$(cat "$out/.source")" = "$stamp" ]; then
    echo "build: $name is up to date"
    return
  fi
  rm -rf "$out"
  "$wasm_bindgen" --target web --out-dir "$out" --out-name effyolo "$wasm"
  local extra=()
  [[ $name == *relaxed* ]] && extra=(--enable-relaxed-simd)
  "$wasm_opt" "${opt_flags[@]}" "${extra[@]}" "$out/effyolo_bg.wasm" -o "$out/effyolo_bg.wasm"
  # wasm-bindgen-rayon's bundle-free helper starts the glue with the positional arguments
  # that wasm-bindgen deprecated (a console warning per thread): pass the object form.
  local helper
  for helper in "$out"/snippets/wasm-bindgen-rayon-*/src/workerHelpers.no-bundler.js; do
    [ -f "$helper" ] || continue
    sed -i 's/pkg\.default(data\.module, data\.memory)/pkg.default({ module_or_path: data.module, memory: data.memory })/' "$helper"
  done
  # wasm-bindgen-rayon's bundler helper imports the glue as the directory `../../..`; a
  # package.json makes that directory resolvable.
  cat > "$out/package.json" <<EOF
{ "type": "module", "main": "effyolo.js", "types": "effyolo.d.ts", "sideEffects": ["./snippets/*"] }
EOF
  echo "$stamp" > "$out/.source"
  echo "build: $name $(du -k "$out/effyolo_bg.wasm" | cut -f1) KiB"
}

build_std=(-Z build-std=panic_abort,std)
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(threads-relaxed threads-relaxed-nb threads-simd threads-simd-nb single-simd)
for v in "${variants[@]}"; do
  case $v in
    threads-relaxed) build "$v" wasm-threads "$relaxed_flags" target/wasm-relaxed "${build_std[@]}" ;;
    threads-relaxed-nb) build "$v" wasm-threads-no-bundler "$relaxed_flags" target/wasm-relaxed "${build_std[@]}" ;;
    threads-simd) build "$v" wasm-threads "$simd_flags" target/wasm-simd "${build_std[@]}" ;;
    threads-simd-nb) build "$v" wasm-threads-no-bundler "$simd_flags" target/wasm-simd "${build_std[@]}" ;;
    single-simd) build "$v" wasm "$single_flags" target/wasm-single ;;
    *) echo "build: unknown variant $v" >&2; exit 2 ;;
  esac
done
