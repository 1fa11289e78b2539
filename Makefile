# The two entry points of the project (see README.md):
#   make demo   build the tool, make a tiny busybox image, install it and log in — offline
#   make test   install what the tests need, then run lints and the whole suite
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test setup lint nextest bench

setup:
	./scripts/setup-system.sh

demo: setup
	$(CARGO) build --bin chroot-distro
	./scripts/demo.sh "$${CARGO_TARGET_DIR:-target}/debug/chroot-distro"

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 bench/bench.py --check

nextest:
	$(CARGO) nextest run --workspace --no-fail-fast

test: setup lint nextest

bench:
	python3 bench/bench.py
