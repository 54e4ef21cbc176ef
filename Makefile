# The two commands of the README: `make demo` and `make test`.
.PHONY: demo test setup test-native test-wasm-kernels test-e2e

setup:
	@.ci/setup

demo: setup
	@web/demo.sh

test: setup test-native test-wasm-kernels test-e2e

test-native:
	cargo test --workspace --release

test-wasm-kernels:
	@if [ -x e2e/tools/test-wasm-kernels.sh ]; then e2e/tools/test-wasm-kernels.sh; else echo "wasm kernel tests: not set up"; exit 1; fi

test-e2e:
	@e2e/run.sh
