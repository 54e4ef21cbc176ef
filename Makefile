# The two commands of the README: `make demo` and `make test`.
.PHONY: demo test test-native setup

setup:
	@.ci/setup

demo: setup
	@echo "The browser demo is not built yet: see README.md for the command-line detector."

test: setup test-native

test-native:
	cargo test --workspace --release
