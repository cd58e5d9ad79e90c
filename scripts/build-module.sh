#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build rkmem.ko against the fast, debug, race or um kernel (building that kernel
# first if the cache lacks it). Prints the path of rkmem.ko on stdout.
#   scripts/build-module.sh fast|debug|race|um [extra kbuild arguments, e.g. CLIPPY=1]
# Objects go to $RKMEM_CACHE/module/<flavour>/ (kbuild's MO=), never into the tree.
set -euo pipefail
. "$(dirname "$0")/env.sh"

flavor=${1:?usage: build-module.sh fast|debug|race|um [kbuild args]}
shift
# shellcheck disable=SC2207 # one word per argument
args=("${KMAKE_ARGS[@]}" $(flavor_make_args "$flavor"))
# UML's Makefile compiles Rust as position-independent code, whose GOT-relative
# relocations (R_X86_64_GOTPCREL) the x86 module loader refuses ("Unknown rela
# relocation: 9"). A module is linked at load time anyway: build it static,
# with the large code model because it may sit anywhere in the address space.
[ "$flavor" = um ] && args+=(KRUSTFLAGS="-Crelocation-model=static -Ccode-model=large")
kdir=$("$RKMEM_ROOT/scripts/build-kernel.sh" "$flavor")
out="$RKMEM_CACHE/module/$flavor"
mkdir -p "$out"
# RKMEM_CLIPPY=1 (set by `make check`) runs clippy on the module as it builds.
[ "${RKMEM_CLIPPY:-0}" = 1 ] && set -- "$@" CLIPPY=1
blog="$out/build.log"
if ! make -s -C "$kdir" M="$RKMEM_ROOT" MO="$out" "${args[@]}" "$@" modules >"$blog" 2>&1; then
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
# The kernel's FRAME_WARN (2048 bytes on 64-bit) checks C functions only; rustc has no
# equivalent, and a Rust function with a big local (a large struct built on the stack by an
# initializer) overflows the 16 KiB kernel stack at run time. Check the Rust object's stack
# frames here instead: 2048 bytes on the fast kernel, 8192 on the debug and race kernels, whose locks
# carry lockdep maps (the module's init builds its shared state, locks included, in one frame
# of about 4.7 KiB there).
frame_default=2048
case $flavor in debug | race) frame_default=8192 ;; esac
frame_max=${RKMEM_FRAME_MAX:-$frame_default}
big=$("llvm-objdump$LLVM_SUFFIX" -d --no-show-raw-insn "$out/rust/rkmem.o" | awk -v max="$frame_max" '
	/^[0-9a-f]+ <.*>:$/ { fn = $2 }
	/sub[q]?[ \t]+\$0x[0-9a-f]+, %rsp/ {
		if (match($0, /\$0x[0-9a-f]+/)) {
			hex = substr($0, RSTART + 3, RLENGTH - 3); v = 0
			for (i = 1; i <= length(hex); i++) v = v * 16 + index("0123456789abcdef", substr(hex, i, 1)) - 1
			if (v > max) printf "%d bytes: %s\n", v, fn
		}
	}')
[ -z "$big" ] || die "stack frames above $frame_max bytes in rust/rkmem.o (a kernel stack is 16 KiB):
$big"
echo "$out/rkmem.ko"
