#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel + initramfs, run one guest command, and carry its exit code
# back to the host.
#   qemu/boot.sh KERNEL INITRAMFS COMMAND [LOGFILE]
# KERNEL is an x86 bzImage (booted in QEMU) or a User-Mode Linux `linux`
# binary (an ELF executable: run as a host process, at native speed).
# COMMAND is what the guest init runs: run (the demo), check (the test suite),
# shell (an interactive busybox shell), or the name of tests/guest/NAME.sh.
# Environment: CPUS (2), MEM (512M), TIMEOUT seconds (600), KVM=1 to use KVM
# (QEMU only; off by default: nested KVM hangs on some hosts), QUIET=1 to keep
# the console out of the terminal (it is always saved to LOGFILE),
# RKMEM_PARAMS (module parameters for the guest's insmod), APPEND (more kernel
# arguments), TCG_THREAD (single or multi; single by default).
# Exit code: the guest command's, or 124 on timeout, 125 when the guest died
# without reporting (panic, oops in init, QEMU or UML failure).
set -uo pipefail

kernel=${1:?usage: boot.sh KERNEL INITRAMFS COMMAND [LOGFILE]}
initrd=${2:?}
cmd=${3:?}
log=${4:-$(mktemp /tmp/rkmem-serial.XXXXXX.log)}
CPUS=${CPUS:-2}
MEM=${MEM:-512M}
TIMEOUT=${TIMEOUT:-600}

case "${TCG_THREAD:-single}" in single | multi) ;; *) echo "boot.sh: TCG_THREAD must be single or multi" >&2; exit 2 ;; esac
case "$cmd" in *[!a-z0-9_-]*) echo "boot.sh: bad command '$cmd'" >&2; exit 2 ;; esac
params=${RKMEM_PARAMS:-}
case "$params" in *[!a-z0-9_=,]*) echo "boot.sh: RKMEM_PARAMS may hold only a-z 0-9 _ = , (comma-separated)" >&2; exit 2 ;; esac

# The guest's own arguments, the same for both kinds of kernel.
guest_args="oops=panic loglevel=6 rkmem_cmd=$cmd rkmem_params=${params:-none} ${APPEND:-}"
interactive=0
[ -t 0 ] && [ "$cmd" = shell ] && interactive=1

if head -c 4 "$kernel" | grep -q ELF; then
	# User-Mode Linux. seccomp=on: SMP needs the seccomp process tracer
	# ("SMP is not supported with PTRACE userspace"). The console is the
	# process's stdout (stdin too for an interactive shell). No panic=-1: a
	# UML reboot re-executes the kernel; a UML panic ends the process.
	kind=UML
	# UML backs the guest's RAM with a file in TMPDIR: tmpfs keeps it off the disk.
	shm=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && shm=/dev/shm
	umldir=$(mktemp -d "$shm/rkmem-uml.XXXXXX")
	trap 'rm -rf "$umldir"' EXIT
	con=null,fd:1
	[ "$interactive" = 1 ] && con=fd:0,fd:1
	run=(env TMPDIR="$umldir" "$kernel" mem="$MEM" ncpus="$CPUS" seccomp=on
		initrd="$initrd" rdinit=/init con=null con0="$con" ssl=null umid=rkmem-$$ uml_dir="$umldir"
		$guest_args) # guest_args: one word per argument
	ulimit -c 0
else
	kind=QEMU
	# One TCG thread for all vCPUs: the kernel patches its own text
	# (JUMP_LABEL), and with a thread per vCPU a vCPU can run a stale
	# translation of a patched instruction (see qemu/config-fast).
	# TCG_THREAD=multi (the race kernel, built without JUMP_LABEL) gives each vCPU a thread.
	accel=(-accel "tcg,thread=${TCG_THREAD:-single}" -cpu max)
	if [ "${KVM:-0}" = 1 ]; then
		[ -w /dev/kvm ] || { echo "boot.sh: KVM=1 but /dev/kvm is not usable" >&2; exit 2; }
		accel=(-accel kvm -cpu host)
	fi
	run=(qemu-system-x86_64 "${accel[@]}" -smp "$CPUS" -m "$MEM"
		-kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 panic=-1 log_buf_len=4M $guest_args"
		-nographic -no-reboot -net none)
fi

if [ "$interactive" = 1 ]; then
	"${run[@]}" 2>&1 | tee "$log"
	qrc=${PIPESTATUS[0]}
	# UML leaves the terminal raw (and the cursor where its last line ended).
	[ "$kind" = UML ] && { stty sane 2>/dev/null; printf '\r'; }
else
	# Without --foreground, timeout signals the whole process group: UML's
	# helper processes end with it.
	fg=(--foreground)
	[ "$kind" = UML ] && fg=()
	if [ "${QUIET:-0}" = 1 ]; then
		# Through a pipe: UML's console cannot poll a regular file (epoll refuses it).
		timeout "${fg[@]}" -k 5 "$TIMEOUT" "${run[@]}" </dev/null 2>&1 | cat >"$log"
		qrc=${PIPESTATUS[0]}
	else
		timeout "${fg[@]}" -k 5 "$TIMEOUT" "${run[@]}" </dev/null 2>&1 | tee "$log"
		qrc=${PIPESTATUS[0]}
	fi
fi

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
		echo "boot.sh: $kind ended (code $qrc) without the guest's result (serial log: $log)" >&2
	fi
	exit 125
fi
exit "$rc"
