#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel + initramfs in QEMU, run one guest command, and carry its exit
# code back to the host.
#   qemu/boot.sh BZIMAGE INITRAMFS COMMAND [LOGFILE]
# COMMAND is what the guest init runs: run (the demo), check (the test suite),
# shell (an interactive busybox shell).
# Environment: CPUS (2), MEM (512M), TIMEOUT seconds (600), KVM=1 to use KVM
# (off by default: nested KVM hangs on some hosts), QUIET=1 to keep the serial
# console out of the terminal (it is always saved to LOGFILE), RKMEM_PARAMS
# (module parameters for the guest's insmod), APPEND (more kernel arguments).
# Exit code: the guest command's, or 124 on timeout, 125 when the guest died
# without reporting (panic, oops in init, QEMU failure).
set -uo pipefail

kernel=${1:?usage: boot.sh BZIMAGE INITRAMFS COMMAND [LOGFILE]}
initrd=${2:?}
cmd=${3:?}
log=${4:-$(mktemp /tmp/rkmem-serial.XXXXXX.log)}
CPUS=${CPUS:-2}
MEM=${MEM:-512M}
TIMEOUT=${TIMEOUT:-600}

case "$cmd" in *[!a-z0-9_-]*) echo "boot.sh: bad command '$cmd'" >&2; exit 2 ;; esac
params=${RKMEM_PARAMS:-}
case "$params" in *[!a-z0-9_=,]*) echo "boot.sh: RKMEM_PARAMS may hold only a-z 0-9 _ = , (comma-separated)" >&2; exit 2 ;; esac

accel=(-accel tcg -cpu max)
if [ "${KVM:-0}" = 1 ]; then
	[ -w /dev/kvm ] || { echo "boot.sh: KVM=1 but /dev/kvm is not usable" >&2; exit 2; }
	accel=(-accel kvm -cpu host)
fi

append="console=ttyS0 panic=-1 oops=panic loglevel=6 rkmem_cmd=$cmd rkmem_params=${params:-none} ${APPEND:-}"
qemu=(qemu-system-x86_64 "${accel[@]}" -smp "$CPUS" -m "$MEM"
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	-nographic -no-reboot -net none)
if [ -t 0 ] && [ "$cmd" = shell ]; then
	"${qemu[@]}" 2>&1 | tee "$log"
else
	if [ "${QUIET:-0}" = 1 ]; then
		timeout --foreground -k 5 "$TIMEOUT" "${qemu[@]}" </dev/null >"$log" 2>&1
	else
		timeout --foreground -k 5 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
	fi
fi
qrc=${PIPESTATUS[0]}

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "boot.sh: the guest did not finish within ${TIMEOUT}s (serial log: $log)" >&2
	exit 124
fi
rc=$(tr -d '\r' <"$log" | sed -n 's/^RKMEM-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -n1)
if [ -z "$rc" ]; then
	if grep -qE "Kernel panic|BUG:|Oops" "$log"; then
		echo "boot.sh: the guest kernel crashed (serial log: $log):" >&2
		grep -m 5 -E "Kernel panic|BUG:|Oops" "$log" | tr -d '\r' >&2
	else
		echo "boot.sh: QEMU ended (code $qrc) without the guest's result (serial log: $log)" >&2
	fi
	exit 125
fi
exit "$rc"
