#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build rkmem.ko against the fast or debug kernel (building that kernel first
# if the cache lacks it). Prints the path of rkmem.ko on stdout.
#   scripts/build-module.sh fast|debug [extra kbuild arguments, e.g. CLIPPY=1]
# Objects go to $RKMEM_CACHE/module/<flavour>/ (kbuild's MO=), never into the tree.
set -euo pipefail
. "$(dirname "$0")/env.sh"

flavor=${1:?usage: build-module.sh fast|debug [kbuild args]}
shift
kdir=$("$RKMEM_ROOT/scripts/build-kernel.sh" "$flavor")
out="$RKMEM_CACHE/module/$flavor"
mkdir -p "$out"
# RKMEM_CLIPPY=1 (set by `make check`) runs clippy on the module as it builds.
[ "${RKMEM_CLIPPY:-0}" = 1 ] && set -- "$@" CLIPPY=1
blog="$out/build.log"
if ! make -s -C "$kdir" M="$RKMEM_ROOT" MO="$out" "${KMAKE_ARGS[@]}" "$@" modules >"$blog" 2>&1; then
	cat "$blog" >&2
	die "building rkmem.ko for the $flavor kernel failed"
fi
cat "$blog" >&2
# Warnings (compiler, clippy, objtool) fail the build when RKMEM_WERROR=1, as
# `make check` sets it: a module that warns does not pass.
if [ "${RKMEM_WERROR:-0}" = 1 ] && grep -qi "warning" "$blog"; then
	die "building rkmem.ko for the $flavor kernel gave warnings (see above)"
fi
[ -f "$out/rkmem.ko" ] || die "the module build made no rkmem.ko in $out"
echo "$out/rkmem.ko"
