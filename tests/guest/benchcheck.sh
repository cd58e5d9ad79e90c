# SPDX-License-Identifier: GPL-2.0
# `make check` only checks that the benchmarks run (numbers are `make bench`'s): every kind of
# RKMEM_IOC_BENCH with tiny counts, on all CPUs, must exit 0, print a result line per kind, and
# leave the arena as it found it. Sourced by suite.sh.

test_benchmarks_run() {
	rkmemctl bench --iters 50 --reps 1 --layout-step 512 --frag-ops 2000 >/tmp/bench.out 2>&1
	rc=$?
	[ $rc = 0 ] || fail "rkmemctl bench exited $rc: $(tail -n 5 /tmp/bench.out)" || return
	for kind in slab_pair slab_batch kmalloc pages mempool layout frag compact slab_pair_compacting; do
		grep -q "RKBENCH {\"bench\":\"$kind\"" /tmp/bench.out ||
			fail "no result line for '$kind': $(grep -c RKBENCH /tmp/bench.out) RKBENCH lines" || return
	done
	buddyinfo_back_to_load_time "the benchmarks"
}

t benchmarks_run test_benchmarks_run
