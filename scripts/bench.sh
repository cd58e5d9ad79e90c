#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: boot a kernel with rkmem, run tests/guest/bench.sh (rkmemctl bench), pick the
# RKBENCH lines out of the console log and write results/bench-<date>-<kernel>/ with
# results.jsonl (one row per measurement, with the run's metadata), report.md and plots (PNG and
# SVG, drawn with matplotlib by scripts/bench_report.py).
#   scripts/bench.sh [GUEST_SCRIPT]   (default bench; bench-quick for tiny counts)
# BENCH_KERNEL picks the kernel:
#   um    (default) User-Mode Linux: kernel code runs natively, so its times decide questions
#         of speed;
#   qemu  the fast x86 kernel in QEMU under TCG (KVM=1 for KVM): emulated times, a smoke test
#         only, and the report's title says so.
# CPUS sets the guest's CPUs (default: all of the host's); rkmemctl runs every timed benchmark
# on 1 CPU and on all of them. These are benchmarks: they report, they never fail on a number.
set -euo pipefail
. "$(dirname "$0")/env.sh"

script=${1:-bench}
kernel=${BENCH_KERNEL:-um}
case "$kernel" in
um) flavor=um accel=native ;;
qemu | tcg | fast) flavor=fast accel=TCG ;;
*) die "BENCH_KERNEL=$kernel: expected um (native, the default) or qemu (TCG, emulated)" ;;
esac
[ "$flavor" = fast ] && [ "${KVM:-0}" = 1 ] && accel=KVM
cpus=${CPUS:-$(nproc)}
# The commit measured: what the guest is built from, read before it is built.
commit=$(git -C "$RKMEM_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$RKMEM_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit+dirty"
fi
stamp=$(date -u +%Y%m%d-%H%M%S)
out="$RKMEM_ROOT/results/bench-$stamp-$flavor"
mkdir -p "$out"
log="$out/console.log"
rc=0
CPUS=$cpus QUIET=${QUIET:-1} TIMEOUT=${TIMEOUT:-1800} \
	"$RKMEM_ROOT/scripts/guest.sh" "$flavor" "$script" "$log" || rc=$?
grep -q 'RKBENCH ' "$log" 2>/dev/null || die "no benchmark results in $log (guest exit $rc)"
host_cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
config_hash=$(sha256sum "$(kernel_dir "$flavor")/.config" | cut -c1-12)
"$RKMEM_PYTHON" "$RKMEM_ROOT/scripts/bench_report.py" report "$log" "$out" \
	"commit=$commit" "flavor=$flavor" "accel=$accel" "guest_cpus=$cpus" \
	"host_cpu=${host_cpu:-unknown}" "host_nproc=$(nproc)" "host_kernel=$(uname -sr)" \
	"kernel_config=$config_hash" "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
	"command=${BENCH_COMMAND:-make bench${BENCH_KERNEL:+ BENCH_KERNEL=$kernel}}"
[ "$rc" = 0 ] || say "the guest exited with $rc (see $log); the report covers what ran"
say "report: $out/report.md"
say "to make these the README's tables: make bench-readme RESULTS=$out/results.jsonl"
exit "$rc"
