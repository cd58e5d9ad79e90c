# SPDX-License-Identifier: GPL-2.0
# Helpers for rkmem's in-guest test scripts (busybox sh). Source it.
#
# A test is a shell function; `t NAME FUNC` runs it and prints `ok - NAME` or
# `not ok - NAME: why`. A test fails by calling `fail "why"` (which returns 1)
# or by returning non-zero.

PASSED=0
FAILED=0
SKIPPED=0
WHY=

fail() {
	WHY="$*"
	return 1
}

skip() {
	WHY="$*"
	return 77
}

t() {
	name=$1
	shift
	WHY=
	"$@"
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok - $name"
		PASSED=$((PASSED + 1))
	elif [ "$rc" = 77 ]; then
		echo "ok - $name # SKIP $WHY"
		SKIPPED=$((SKIPPED + 1))
	else
		echo "not ok - $name: ${WHY:-exit code $rc}"
		FAILED=$((FAILED + 1))
	fi
}

# Adds the counts of a sub-runner's "N passed, N failed" line.
add_counts() {
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
	[ -n "$p" ] || { FAILED=$((FAILED + 1)); echo "not ok - $1 printed no summary"; return; }
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
}

# wait_line PID PATTERN FILE: waits until a line of FILE starts with PATTERN (what a
# background rkmemctl prints once it holds its allocations). Fails (1) if PID exits first or
# after 60 s.
wait_line() {
	i=0
	while ! grep -q "^$2" "$3"; do
		kill -0 "$1" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -le 600 ] || return 1
		sleep 0.1
	done
}

is_loaded() {
	grep -q '^rkmem ' /proc/modules
}

load() {
	# shellcheck disable=SC2086
	insmod /rkmem.ko ${RKMEM_PARAMS:-} "$@"
}

unload() {
	rmmod rkmem
}

stat_value() {
	sed -n "s/^$1 //p" /proc/rkmem/stats
}

# The /proc/rkmem/buddyinfo of an idle arena right after load, in the kernel's
# layout ("Node %d, zone %8s " then "%6lu " per order 0..10): one free order-10
# block per 4 MiB of arena_initial_mb. Without the trailing newline, like $(cat).
load_time_buddyinfo() {
	initial=$(stat_value arena_initial_mb)
	printf 'Node 0, zone %8s ' rkmem
	for o in 0 1 2 3 4 5 6 7 8 9; do
		printf '%6d ' 0
	done
	printf '%6d ' $((initial / 4))
}

# Drains the per-CPU caches and gives arena blocks above arena_initial_mb back,
# then checks that buddyinfo is the load-time value. $1 says after what.
buddyinfo_back_to_load_time() {
	rkmemctl trim >/tmp/trim.out 2>&1 || fail "rkmemctl trim failed: $(cat /tmp/trim.out)" || return
	now=$(cat /proc/rkmem/buddyinfo)
	want=$(load_time_buddyinfo)
	[ "$now" = "$want" ] || fail "after $1 and trim buddyinfo is '$now', want '$want'"
}

# Kernel reports that fail any run: warnings, oopses, sanitizer and lockdep
# reports, leaks, and the debug kernel's detectors: soft lockups ("BUG: soft
# lockup"), hung tasks, RCU stalls, DEBUG_PREEMPT ("BUG: using smp_processor_id()
# in preemptible"), suspicious RCU usage.
BAD_DMESG='WARNING:|BUG:|Oops|general protection|KASAN|KFENCE|UBSAN|kmemleak: [0-9]+ new suspected|possible recursive locking|possible circular locking|inconsistent lock state|sleeping function called from invalid context|Call Trace|blocked for more than [0-9]+ seconds|rcu: INFO: .*detected stall|self-detected stall|suspicious RCU usage|Kernel memory leak detector disabled'

# The load the suite put on the module, reported on its RKMEM-LOAD line (scripts/check.sh adds
# the kernels up): allocator operations verified and their bytes (the in-kernel stress engine),
# fuzzer ioctl calls, faults injected by the fail-nth sweep.
LOAD_OPS=0
LOAD_BYTES=0
LOAD_FUZZ=0
LOAD_FAULTS=0

# load_add_stress FILE: adds the RKSTRESS line of `rkmemctl stress kernel`'s output in FILE.
load_add_stress() {
	l=$(grep '^RKSTRESS ' "$1" | tail -n 1)
	o=$(echo "$l" | sed -n 's/.* ops=\([0-9]*\).*/\1/p')
	b=$(echo "$l" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
	LOAD_OPS=$((LOAD_OPS + ${o:-0}))
	LOAD_BYTES=$((LOAD_BYTES + ${b:-0}))
}

# stress_clean NAME FILE: the output of `rkmemctl stress NAME` in FILE reports no verification
# failure: its verdict line says so and no thread line counts a failure ("10 failures" is not
# "0 failures").
stress_clean() {
	grep -q "^stress $1: ok, no failures\$" "$2" || return 1
	! grep -qE '(^|[^0-9])[1-9][0-9]* failures' "$2"
}
