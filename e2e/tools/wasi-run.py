#!/usr/bin/env python3
"""Runs a wasm32-wasip1 program (a test binary, a benchmark) under Wasmtime.

Used as Cargo's runner for the wasip1 target, so `cargo test --target wasm32-wasip1` runs the
unit tests of the crate compiled to WebAssembly:

    CARGO_TARGET_WASM32_WASIP1_RUNNER="python3 e2e/tools/wasi-run.py --relaxed-simd" \
        cargo +stable test --target wasm32-wasip1 -p effyolo --lib --no-default-features

SIMD128 is always enabled; `--relaxed-simd` also enables the relaxed-SIMD proposal, which a
module compiled with `+relaxed-simd` needs to validate. The program sees its arguments, the
environment and the current directory (preopened as `.`); the exit status is the program's.
Needs the `wasmtime` package from PyPI.
"""

import os
import sys

import wasmtime


def main(argv):
    relaxed = False
    while argv and argv[0].startswith("--"):
        flag = argv.pop(0)
        if flag == "--relaxed-simd":
            relaxed = True
        else:
            sys.exit(f"wasi-run: unknown option {flag}")
    if not argv:
        sys.exit("usage: wasi-run.py [--relaxed-simd] module.wasm [args...]")
    module_path = argv[0]

    config = wasmtime.Config()
    config.wasm_simd = True
    config.wasm_relaxed_simd = relaxed
    config.cranelift_opt_level = "speed"
    engine = wasmtime.Engine(config)

    wasi = wasmtime.WasiConfig()
    wasi.argv = [os.path.basename(module_path)] + argv[1:]
    wasi.inherit_env()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.preopen_dir(".", ".")

    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, module_path)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        # A Rust panic under panic=abort ends in `unreachable`; the message is already printed.
        print(f"wasi-run: trap: {trap.message}", file=sys.stderr)
        return 134
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
