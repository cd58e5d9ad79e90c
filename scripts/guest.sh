#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build what is missing for one kernel flavour and run one command in a guest.
#   scripts/guest.sh fast|debug|race|um run|check|shell|NAME [LOGFILE]
# The environment of qemu/boot.sh (CPUS, MEM, TIMEOUT, KVM, QUIET,
# RKMEM_PARAMS) passes through.
set -euo pipefail
. "$(dirname "$0")/env.sh"

flavor=${1:?usage: guest.sh fast|debug|race|um run|check|shell|NAME [LOGFILE]}
cmd=${2:?}
log=${3:-$RKMEM_CACHE/logs/$flavor-$cmd.log}
mkdir -p "$(dirname "$log")"

"$RKMEM_ROOT/scripts/setup.sh"
kdir=$("$RKMEM_ROOT/scripts/build-kernel.sh" "$flavor")
ko=$("$RKMEM_ROOT/scripts/build-module.sh" "$flavor")
ctl=$("$RKMEM_ROOT/scripts/build-userspace.sh")
# One initramfs per run, so that runs in parallel do not clobber each other.
mkdir -p "$RKMEM_CACHE/initramfs"
initrd=$(mktemp "$RKMEM_CACHE/initramfs/$flavor-XXXXXX.cpio.gz")
trap 'rm -f "$initrd"' EXIT
"$RKMEM_ROOT/scripts/mkinitramfs.sh" "$initrd" "$ko" "$ctl" >/dev/null
# The debug kernel zeroes what is freed (qemu/config-debug): init_on_free is a
# boot argument, so that one build can also be booted without it.
[ "$flavor" = debug ] && export APPEND="init_on_free=1 ${APPEND:-}"
export APPEND="rkmem_flavor=$flavor ${APPEND:-}"
# The race kernel runs a host thread per vCPU, so that racing accesses overlap in time
# (qemu/config-race: it has no JUMP_LABEL, the reason the others run one thread).
[ "$flavor" = race ] && export TCG_THREAD=multi
say "booting the $flavor kernel (${CPUS:-2} CPUs, ${MEM:-512M}, console log: $log)"
"$RKMEM_ROOT/qemu/boot.sh" "$(kernel_image "$flavor" "$kdir")" "$initrd" "$cmd" "$log"
