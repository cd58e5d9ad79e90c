#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: rkmem's allocators against the host kernel's in this guest
# (rkmemctl bench). Results are JSON lines prefixed `RKBENCH ` on the console;
# scripts/bench.sh picks them out of the serial log and writes the report.
# BENCH_ARGS (from tests/guest/bench-quick.sh) overrides the run's size.
. /tests/lib.sh
# Only what happens from here on counts (boot messages are not the benchmark's).
dmesg -c >/dev/null
echo "RKBENCH {\"bench\":\"guest\",\"nproc\":$(nproc),\"model\":\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1 | tr -d '"\\')\",\"mem_kb\":$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)}"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
rkmemctl bench ${BENCH_ARGS:-}
rc=$?
# Benchmarks report; but a kernel warning during them is a bug to look at.
if dmesg | grep -E "$BAD_DMESG"; then
	echo "bench: the kernel log has a warning (above)"
	rc=1
fi
exit $rc
