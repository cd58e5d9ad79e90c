#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rkmemctl bench with tiny counts: checks that every benchmark runs (for the
# debug kernel: KASAN, lockdep, kmemleak must stay quiet). Numbers are noise.
BENCH_ARGS="--iters 50 --reps 3 --layout-step 256 --frag-ops 3000"
export BENCH_ARGS
sh /tests/bench.sh
rc=$?
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	sleep 1
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -c "unreferenced object" /sys/kernel/debug/kmemleak)
	echo "bench-quick: kmemleak: $leaks unreferenced object(s)"
	[ "$leaks" = 0 ] || { cat /sys/kernel/debug/kmemleak; rc=1; }
fi
exit $rc
