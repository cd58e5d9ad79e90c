#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse from the cache) a Rust-enabled kernel for the guest.
#   scripts/build-kernel.sh fast|debug|race|um
# Prints the build directory on stdout. The build is keyed by the kernel
# version, the config fragments, the toolchain and this script (see env.sh):
# a change to any of them builds anew; the outdated build of the same flavour
# is removed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

flavor=${1:?usage: build-kernel.sh fast|debug|race|um}
case "$flavor" in
fast) fragments=("$RKMEM_ROOT/qemu/config-fast") ;;
debug) fragments=("$RKMEM_ROOT/qemu/config-fast" "$RKMEM_ROOT/qemu/config-debug") ;;
race) fragments=("$RKMEM_ROOT/qemu/config-fast" "$RKMEM_ROOT/qemu/config-race") ;;
um) fragments=("$RKMEM_ROOT/qemu/config-um") ;;
*) die "unknown kernel flavour '$flavor' (expected fast, debug, race or um)" ;;
esac
# shellcheck disable=SC2207 # one word per argument
args=("${KMAKE_ARGS[@]}" $(flavor_make_args "$flavor"))
[ -f "$KSRC/Makefile" ] || die "no kernel source in $KSRC: run scripts/setup.sh"

dir=$(kernel_dir "$flavor")
if [ -f "$dir/.rkmem-built" ] && [ -f "$(kernel_image "$flavor" "$dir")" ]; then
	echo "$dir"
	exit 0
fi

# Drop outdated builds of this flavour: only the current key is kept.
for old in "$RKMEM_CACHE/kernel/$flavor"-*; do
	[ -d "$old" ] && [ "$old" != "$dir" ] && rm -rf "$old"
done

mkdir -p "$dir"
say "building the $flavor kernel in $dir (a few minutes; log: $dir/build.log)"
start=$(date +%s)
{
	make -C "$KSRC" O="$dir" "${args[@]}" tinyconfig
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$dir" "$dir/.config" "${fragments[@]}"
	make -C "$KSRC" O="$dir" "${args[@]}" olddefconfig
} >"$dir/build.log" 2>&1 || { tail -n 30 "$dir/build.log" >&2; die "configuring the $flavor kernel failed"; }

# Every option a fragment asks for must survive olddefconfig: a silently
# dropped option (an unmet dependency) would make the guest tests lie.
# A later fragment's value of an option wins over an earlier one's.
declare -A want=()
for frag in "${fragments[@]}"; do
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) want[${line%%=*}]=${line#*=} ;; esac
	done <"$frag"
done
bad=0
for opt in "${!want[@]}"; do
	val=${want[$opt]}
	if [ "$val" = n ]; then
		if grep -q "^$opt=" "$dir/.config"; then
			say "$flavor: $opt should be off but is $(grep "^$opt=" "$dir/.config")"
			bad=1
		fi
	elif ! grep -qx "$opt=$val" "$dir/.config"; then
		say "$flavor: wanted $opt=$val, got: $(grep "^$opt[= ]" "$dir/.config" || echo "$opt not set")"
		bad=1
	fi
done
[ "$bad" -eq 0 ] || die "the $flavor kernel config lost options that $(basename "${fragments[-1]}") asks for"

make -C "$KSRC" O="$dir" "${args[@]}" -j"$JOBS" >>"$dir/build.log" 2>&1 ||
	{ grep -m 20 -E "error|Error" "$dir/build.log" >&2 || tail -n 30 "$dir/build.log" >&2; die "building the $flavor kernel failed (log: $dir/build.log)"; }
touch "$dir/.rkmem-built"
say "$flavor kernel built in $(($(date +%s) - start)) s"
echo "$dir"
