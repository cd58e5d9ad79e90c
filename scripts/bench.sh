#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: boot the fast kernel, run tests/guest/bench.sh (rkmemctl bench),
# pick the RKBENCH lines out of the serial log and write
# results/bench-<date>/report.md with SVG plots (scripts/bench_report.py).
#   scripts/bench.sh [GUEST_SCRIPT]   (default bench; bench-quick for tiny counts)
# These are benchmarks: they report, they never fail on a number. The guest
# runs under TCG unless KVM=1, and the report says which.
set -euo pipefail
. "$(dirname "$0")/env.sh"

script=${1:-bench}
stamp=$(date -u +%Y%m%d-%H%M%S)
out="$RKMEM_ROOT/results/bench-$stamp"
mkdir -p "$out"
log="$out/serial.log"
rc=0
QUIET=${QUIET:-1} TIMEOUT=${TIMEOUT:-1200} "$RKMEM_ROOT/scripts/guest.sh" fast "$script" "$log" || rc=$?
grep -q 'RKBENCH ' "$log" 2>/dev/null || die "no benchmark results in $log (guest exit $rc)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
commit=$(git -C "$RKMEM_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$RKMEM_ROOT" status --porcelain 2>/dev/null)" ]; then
	commit="$commit + uncommitted changes"
fi
accel=TCG
[ "${KVM:-0}" = 1 ] && accel=KVM
python3 "$RKMEM_ROOT/scripts/bench_report.py" "$log" "$out" \
	"nproc=$(nproc)" "cpu=${cpu:-unknown}" "kernel=$(uname -sr)" "commit=$commit" \
	"date=$(date -u '+%Y-%m-%d %H:%M UTC')" "command=make bench" "accel=$accel" \
	"guest_cpus=${CPUS:-2}"
[ "$rc" = 0 ] || say "the guest exited with $rc (see $log); the report covers what ran"
say "report: $out/report.md"
exit "$rc"
