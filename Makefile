# SPDX-License-Identifier: GPL-2.0
#
# rkmem's front door.
#   make run     set up, build, boot QEMU, load rkmem and show it working
#   make check   every test: host tests, then the guest suite on the fast, debug and um kernels
# Other targets:
#   make         build rkmem.ko for the fast kernel (CLIPPY=1 runs clippy on it)
#   make setup   install the toolchain and sources (idempotent)
#   make kernels build (or reuse) the four kernels: fast, debug, race (QEMU), um (UML)
#   make lab     boot the fast kernel and run every chapter of `rkmemctl lab` (textbook
#                examples on the real module: the buddy table, a bitmap slab, slab
#                cache states and the shrinker)
#   make shell   boot the fast kernel with the module loaded and give a shell
#   make guest CMD=NAME  run tests/guest/NAME.sh in a guest with the module loaded
#   (FLAVOR=debug, race or um picks the kernel for run, shell, guest and module)
#   make fmt     rustfmt every Rust file; make fmt-check checks only
#   make clippy  clippy on the module and on the host crates
#   make host-test  only the host tests
#   make kunit   rkmem's KUnit suite through the kernel's tools/testing/kunit/kunit.py (UML,
#                rkmem built in; scripts/kunit.sh)
#   make bench   benchmarks vs the host kernel's allocators, natively on the UML kernel:
#                results/bench-<date>-um/{results.jsonl,report.md} (BENCH_KERNEL=qemu: the
#                emulated TCG run, a smoke test)
#   make bench-readme RESULTS=results/bench-.../results.jsonl
#                commit-ready: copy a native run to tests/results/ and regenerate the
#                README's benchmark tables from it
# The kernel build reads Kbuild, not this file.

SHELL := /bin/bash
FLAVOR ?= fast
export FLAVOR

.PHONY: all module run lab check setup kernels shell guest fmt fmt-check clippy host-test kunit clean bench bench-readme

all: module

module:
	@scripts/setup.sh
	@scripts/build-module.sh $(FLAVOR) $(if $(CLIPPY),CLIPPY=$(CLIPPY))

run:
	@scripts/run.sh

# Like run, with tests/guest/lab.sh: each chapter on a freshly loaded module.
lab:
	@scripts/guest.sh $(FLAVOR) lab

check:
	@scripts/check.sh

setup:
	@scripts/setup.sh

# Benchmarks (never part of check): BENCH=bench-quick for tiny counts.
bench:
	@scripts/bench.sh $(BENCH)

# make bench-readme RESULTS=<native results.jsonl> [TCG=<an emulated run's results.jsonl>]
BENCH_RESULTS := tests/results/bench-native.jsonl
BENCH_TCG := tests/results/bench-tcg.jsonl
bench-readme:
	@test -n "$(RESULTS)" || { echo "usage: make bench-readme RESULTS=results/bench-<date>-um/results.jsonl [TCG=results/bench-<date>-fast/results.jsonl]"; exit 2; }
	@grep -q '"accel": "native"' "$(RESULTS)" || { echo "$(RESULTS) is not a native (um) run: the README's tables come only from native runs"; exit 2; }
	@mkdir -p $(dir $(BENCH_RESULTS)) && cp "$(RESULTS)" $(BENCH_RESULTS)
	@if [ -n "$(TCG)" ]; then cp "$(TCG)" $(BENCH_TCG); fi
	@python3 scripts/bench_report.py readme $(BENCH_RESULTS) README.md \
		$$([ -f $(BENCH_TCG) ] && echo --tcg $(BENCH_TCG))

kernels: setup
	@scripts/build-kernel.sh fast >/dev/null
	@scripts/build-kernel.sh debug >/dev/null
	@scripts/build-kernel.sh race >/dev/null
	@scripts/build-kernel.sh um >/dev/null

# Run one guest script with the module loaded: make guest CMD=slab (tests/guest/slab.sh)
guest:
	@test -n "$(CMD)" || { echo "usage: make guest CMD=<name of tests/guest/NAME.sh> [FLAVOR=debug|um]"; exit 2; }
	@scripts/guest.sh $(FLAVOR) $(CMD)

shell:
	@scripts/guest.sh $(FLAVOR) shell

RUST_FILES = $(shell git ls-files '*.rs')

fmt:
	@rustfmt --edition 2021 --config-path scripts/rustfmt.toml $(RUST_FILES)

fmt-check:
	@rustfmt --check --edition 2021 --config-path scripts/rustfmt.toml $(RUST_FILES)

clippy: setup
	@scripts/build-module.sh $(FLAVOR) CLIPPY=1 >/dev/null
	@. scripts/env.sh && CARGO_TARGET_DIR="$$RKMEM_CACHE/cargo-target" \
		cargo clippy --locked --manifest-path tests/Cargo.toml --workspace --all-targets -- -D warnings

# rkmem's KUnit suite through kunit.py run (UML, built in): scripts/kunit.sh
kunit: setup
	@scripts/kunit.sh

host-test:
	@. scripts/env.sh && CARGO_TARGET_DIR="$$RKMEM_CACHE/cargo-target" \
		cargo test --locked --manifest-path tests/Cargo.toml --workspace

clean:
	@. scripts/env.sh && rm -rf "$$RKMEM_CACHE/module" "$$RKMEM_CACHE/cargo-target" "$$RKMEM_CACHE"/initramfs
