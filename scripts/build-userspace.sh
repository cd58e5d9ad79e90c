#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build rkmemctl as a static binary that runs in the busybox guest.
# Prints its path on stdout.
set -euo pipefail
. "$(dirname "$0")/env.sh"

target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="$RKMEM_CACHE/cargo-target"
RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --quiet --release --locked --target "$target" \
	--manifest-path "$RKMEM_ROOT/tests/Cargo.toml" -p rkmemctl >&2 ||
	die "building rkmemctl failed"
echo "$CARGO_TARGET_DIR/$target/release/rkmemctl"
