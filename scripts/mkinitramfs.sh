#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Pack the guest's initramfs: busybox, the init script, rkmem.ko, rkmemctl and
# the in-guest test scripts.
#   scripts/mkinitramfs.sh OUT.cpio.gz rkmem.ko rkmemctl
set -euo pipefail
. "$(dirname "$0")/env.sh"

out=${1:?usage: mkinitramfs.sh OUT rkmem.ko rkmemctl}
ko=${2:?}
ctl=${3:?}
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || die "busybox not found: run scripts/setup.sh (package busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q "dynamically linked" &&
	die "$busybox is dynamically linked: install busybox-static"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,root,tests}
cp "$busybox" "$stage/bin/busybox"
cp "$RKMEM_ROOT/qemu/init" "$stage/init"
cp "$ko" "$stage/rkmem.ko"
cp "$ctl" "$stage/bin/rkmemctl"
cp "$RKMEM_ROOT"/tests/guest/*.sh "$stage/tests/"
chmod +x "$stage/init" "$stage"/tests/*.sh "$stage/bin/rkmemctl"
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
