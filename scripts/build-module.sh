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
make -s -C "$kdir" M="$RKMEM_ROOT" MO="$out" "${KMAKE_ARGS[@]}" "$@" modules >&2 ||
	die "building rkmem.ko for the $flavor kernel failed"
[ -f "$out/rkmem.ko" ] || die "the module build made no rkmem.ko in $out"
echo "$out/rkmem.ko"
