# SPDX-License-Identifier: GPL-2.0
# In-guest tests of the slab caches and rkmalloc: /proc/rkmem/slabinfo in the kernel's 2.1
# format, the cache commands of rkmemctl, the slab stress test on every CPU, a killed process
# holding cache objects, slabtop, and the user tests again with slab_debug=1. Sourced by
# suite.sh after `rkmemctl test` (uses lib.sh's helpers).

# Seconds of `rkmemctl stress slab` (TCG emulates every instruction: keep it short).
SLAB_STRESS_SECONDS=${SLAB_STRESS_SECONDS:-${STRESS_SECONDS:-10}}

# A row of slabinfo as cache_show prints it, for names of at most 17 characters and numbers
# of at most 6 digits: "%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu".
N6='[ 0-9]{5}[0-9]'
N4='[ 0-9]{3}[0-9]'
SLAB_ROW_RE="^[A-Za-z0-9_.-][A-Za-z0-9_. -]{16} $N6 $N6 $N6 $N4 $N4 : tunables $N4 $N4 $N4 : slabdata $N6 $N6 $N6\$"
SLAB_HEADER2='# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>'

# Prints the rows of slabinfo whose counts do not add up: num_objs != num_slabs * objperslab,
# active_objs > num_objs, active_slabs > num_slabs.
slab_rows_inconsistent() {
	tail -n +3 /proc/rkmem/slabinfo |
		awk '$3 != $15 * $5 || $2 > $3 || $14 > $15 { print }'
}

# Prints the rows of caches that still hold objects or slabs.
slab_rows_busy() {
	tail -n +3 /proc/rkmem/slabinfo | awk '$2 != 0 || $15 != 0 { print }'
}

test_slabinfo_format() {
	f=/proc/rkmem/slabinfo
	[ -f $f ] || fail "$f is missing" || return
	mode=$(stat -c %a $f)
	[ "$mode" = 400 ] || fail "$f mode $mode, want 400 (root only, like /proc/slabinfo)" || return
	[ "$(sed -n 1p $f)" = "slabinfo - version: 2.1" ] || fail "line 1 is '$(sed -n 1p $f)'" || return
	[ "$(sed -n 2p $f)" = "$SLAB_HEADER2" ] || fail "line 2 is '$(sed -n 2p $f)'" || return
	# Idle: exactly the 12 size classes, each row in the kernel's layout.
	rows=$(tail -n +3 $f | wc -l)
	[ "$rows" = 12 ] || fail "$rows rows with no user cache, want the 12 size classes: $(cat $f)" || return
	bad=$(tail -n +3 $f | grep -vE "$SLAB_ROW_RE")
	[ -z "$bad" ] || fail "rows not in the 2.1 layout: $bad" || return
	for c in 8 16 32 64 96 128 192 256 512 1k 2k 4k; do
		grep -q "^rkmalloc-$c " $f || fail "no rkmalloc-$c row" || return
	done
	bad=$(slab_rows_inconsistent)
	[ -z "$bad" ] || fail "rows whose counts do not add up: $bad" || return
	# A user cache's row, listed before the size classes, while its file is open.
	# Held until killed: with --seconds 1 the debug kernel once closed the file before the copy.
	rkmemctl cache hold t_suite117 --size 117 --align 1 --count 50 >/tmp/slabfmt.out 2>&1 &
	pid=$!
	wait_line $pid holding /tmp/slabfmt.out || {
		kill -9 $pid 2>/dev/null
		wait $pid
		fail "no 'holding' line from rkmemctl cache hold: $(cat /tmp/slabfmt.out)"
		return
	}
	cp $f /tmp/slabinfo.held
	kill $pid
	wait $pid 2>/dev/null
	row=$(sed -n 3p /tmp/slabinfo.held)
	echo "$row" | grep -qE "$SLAB_ROW_RE" || fail "user cache row not in the 2.1 layout: '$row'" || return
	# name, active_objs >= 50, num_objs, objsize 117, objperslab 34, pagesperslab 1 (KASAN
	# kernel: 128-byte slots with their red zone, 32 per slab).
	set -- 117 34
	[ "$(stat_value kasan_redzones)" = 1 ] && set -- 128 32
	echo "$row" | awk -v o=$1 -v n=$2 '$1 != "t_suite117" || $2 < 50 || $4 != o || $5 != n || $6 != 1 { exit 1 }' ||
		fail "the first row is not t_suite117 with >= 50 objects of $1 bytes, $2 per 1-page slab: '$row'" || return
	! grep -q '^t_suite117 ' $f || fail "t_suite117 still in slabinfo after its process exited"
}

test_cache_commands() {
	rkmemctl cache create t_cmd --size 117 --align 1 --ctor 0x5a >/tmp/cache.out 2>&1 ||
		fail "rkmemctl cache create failed: $(cat /tmp/cache.out)" || return
	set -- 117 34
	[ "$(stat_value kasan_redzones)" = 1 ] && set -- 128 32
	grep -q "objsize) $1, $2 objects per slab of 1 page" /tmp/cache.out ||
		fail "no '$1, $2 objects per slab of 1 page' in: $(cat /tmp/cache.out)" || return
	grep -qE "^t_cmd +0 +0 +$1 +$2 +1 : tunables" /tmp/cache.out ||
		fail "no slabinfo row for t_cmd in: $(cat /tmp/cache.out)" || return
	! grep -q '^t_cmd ' /proc/rkmem/slabinfo || fail "t_cmd outlived rkmemctl" || return
	# The module's errors reach the user with their errno.
	if rkmemctl cache create rkmalloc-8 --size 8 >/tmp/cache.out 2>&1; then
		fail "creating a cache named rkmalloc-8 succeeded"
		return
	fi
	grep -q EEXIST /tmp/cache.out || fail "no EEXIST for rkmalloc-8: $(cat /tmp/cache.out)" || return
	if rkmemctl cache create t_bad --size 117 --align 3 >/tmp/cache.out 2>&1; then
		fail "align 3 succeeded"
		return
	fi
	grep -q EINVAL /tmp/cache.out || fail "no EINVAL for align 3: $(cat /tmp/cache.out)"
}

# `rkmemctl test` destroyed a cache with objects held: refused, and the leak reported.
test_cache_leak_reported() {
	dmesg | grep -q 'cache t_busy: destroy refused, 3 object(s) still allocated (leak)' ||
		fail "no leak report for t_busy in dmesg: $(dmesg | grep -F 'cache t_' | tail -n 5)"
}

test_stress_slab() {
	rkmemctl stress slab --seconds "$SLAB_STRESS_SECONDS" >/tmp/stress-slab.out 2>&1
	rc=$?
	cat /tmp/stress-slab.out
	[ $rc = 0 ] || fail "rkmemctl stress slab exited $rc: $(grep -E 'FAIL|rkmemctl:' /tmp/stress-slab.out | head -n 5)" || return
	ncpu=$(grep -c ^processor /proc/cpuinfo)
	grep -q "^stress slab: $ncpu threads" /tmp/stress-slab.out || fail "not one thread per CPU ($ncpu)" || return
	grep -q '^stress slab: ok' /tmp/stress-slab.out || fail "no 'stress slab: ok' line" || return
	! grep -q '^stress-' /proc/rkmem/slabinfo || fail "stress caches left in slabinfo: $(grep '^stress-' /proc/rkmem/slabinfo)" || return
	buddyinfo_back_to_load_time "rkmemctl stress slab" || return
	busy=$(slab_rows_busy)
	[ -z "$busy" ] || fail "caches still hold objects or slabs after the stress test and a trim: $busy"
}

# The per-CPU object arrays are emptied from other CPUs only by IPIs (trim, the shrinker), which
# must never catch a CPU inside its fast path: trims and drop_caches in a loop while stress slab
# allocates and frees on every CPU, every object's contents verified.
test_stress_slab_with_concurrent_drains() {
	# At least 5 drains must overlap a stress run: on a slow kernel (the debug one under TCG,
	# on a loaded host) one run of SLAB_STRESS_SECONDS may see fewer, so up to 3 runs are made,
	# each verified on its own.
	drains=0
	runs=0
	while [ "$drains" -lt 5 ] && [ "$runs" -lt 3 ]; do
		runs=$((runs + 1))
		rkmemctl stress slab --seconds "$SLAB_STRESS_SECONDS" --seed $((31337 + runs)) >/tmp/stress-drain.out 2>&1 &
		pid=$!
		while kill -0 $pid 2>/dev/null; do
			rkmemctl trim >/dev/null || { kill $pid; fail "rkmemctl trim failed during stress slab"; return; }
			echo 2 >/proc/sys/vm/drop_caches
			drains=$((drains + 1))
			sleep 0.1
		done
		wait $pid
		rc=$?
		tail -n 3 /tmp/stress-drain.out
		[ $rc = 0 ] || fail "rkmemctl stress slab with concurrent drains exited $rc: $(grep -E 'FAIL|rkmemctl:' /tmp/stress-drain.out | head -n 5)" || return
		grep -q '^stress slab: ok' /tmp/stress-drain.out || fail "no 'stress slab: ok' line" || return
	done
	echo "# $drains trims and drop_caches while $runs stress slab run(s) ran"
	[ "$drains" -ge 5 ] || fail "only $drains drains ran during $runs stress runs" || return
	buddyinfo_back_to_load_time "rkmemctl stress slab with concurrent trims" || return
	busy=$(slab_rows_busy)
	[ -z "$busy" ] || fail "caches still hold objects or slabs after the stress test and a trim: $busy"
}

# Objects the per-CPU arrays of a CPU keep are not stranded when that CPU goes offline: a trim
# empties an offline CPU's arrays directly (the hotplug lock keeps it offline meanwhile), so
# everything goes back to the buddy allocator. Then the CPU comes back and works.
test_offline_cpu_arrays_trimmed() {
	on=/sys/devices/system/cpu/cpu1/online
	[ -w $on ] || skip "cpu1 cannot be taken offline in this guest" || return
	rkmemctl trim >/dev/null
	taskset -c 1 rkmemctl stress slab --threads 1 --seconds 1 --seed 4242 >/tmp/offline.out 2>&1 ||
		fail "stress slab on CPU 1 failed: $(tail -n 3 /tmp/offline.out)" || return
	grep -q '^stress slab: 1 threads on CPUs 1,' /tmp/offline.out ||
		fail "the stress thread did not run on CPU 1: $(head -n 1 /tmp/offline.out)" || return
	cached=$(slab_rows_busy)
	[ -n "$cached" ] || fail "nothing cached after stress slab on CPU 1: the test would prove nothing" || return
	echo 0 >$on || fail "cannot take CPU 1 offline" || return
	rkmemctl trim >/dev/null
	busy=$(slab_rows_busy)
	echo 1 >$on || fail "cannot bring CPU 1 back" || return
	[ -z "$busy" ] || fail "objects left with CPU 1 offline after a trim: $busy (before: $cached)" || return
	buddyinfo_back_to_load_time "a trim with CPU 1 offline" || return
	taskset -c 1 rkmemctl stress slab --threads 1 --seconds 1 --seed 4243 >/tmp/offline.out 2>&1 ||
		fail "stress slab on CPU 1 after it came back failed: $(tail -n 3 /tmp/offline.out)" || return
	rkmemctl trim >/dev/null
	buddyinfo_back_to_load_time "stress slab on CPU 1 back online"
}

test_killed_cache_holder() {
	open_before=$(stat_value open_files)
	rkmemctl cache hold t_killed --size 117 --align 1 --ctor 0x5a --count 200 --rkmalloc 300 >/tmp/chold.out 2>&1 &
	pid=$!
	wait_line $pid holding /tmp/chold.out || {
		kill -9 $pid 2>/dev/null
		fail "no 'holding' line from rkmemctl cache hold: $(cat /tmp/chold.out)"
		return
	}
	row=$(grep '^t_killed ' /proc/rkmem/slabinfo)
	class=$(grep '^rkmalloc-512 ' /proc/rkmem/slabinfo)
	open_held=$(stat_value open_files)
	kill -9 $pid
	wait $pid 2>/dev/null
	echo "$row" | awk '$2 < 200 { exit 1 }' || fail "t_killed row while 200 objects are held: '$row'" || return
	echo "$class" | awk '$2 < 200 { exit 1 }' || fail "rkmalloc-512 row while 200 allocations of 300 bytes are held: '$class'" || return
	[ "$open_held" = $((open_before + 1)) ] || fail "open_files $open_held while holding, $open_before before" || return
	[ "$(stat_value open_files)" = "$open_before" ] || fail "open_files $(stat_value open_files) after kill -9, $open_before before" || return
	! grep -q '^t_killed ' /proc/rkmem/slabinfo || fail "t_killed still in slabinfo after kill -9: $(grep '^t_killed ' /proc/rkmem/slabinfo)" || return
	buddyinfo_back_to_load_time "kill -9 of a process holding 200 cache objects and 200 rkmalloc objects" || return
	busy=$(slab_rows_busy)
	[ -z "$busy" ] || fail "caches still hold objects or slabs after kill -9 and a trim: $busy"
}

test_slabtop_once() {
	rkmemctl slabtop --once >/tmp/slabtop.out 2>&1 || fail "rkmemctl slabtop --once failed: $(cat /tmp/slabtop.out)" || return
	grep -qE '^ Active / Total Objects \(% used\)    : [0-9]+ / [0-9]+ \([0-9]+\.[0-9]%\)$' /tmp/slabtop.out ||
		fail "no objects summary: $(cat /tmp/slabtop.out)" || return
	grep -qE '^ Active / Total Caches \(% used\)     : [0-9]+ / 12 \([0-9]+\.[0-9]%\)$' /tmp/slabtop.out ||
		fail "no caches summary with 12 caches: $(cat /tmp/slabtop.out)" || return
	grep -q '^  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME$' /tmp/slabtop.out ||
		fail "no table header: $(cat /tmp/slabtop.out)" || return
	n=$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+% +[0-9]+\.[0-9]{2}K +[0-9]+ +[0-9]+ +[0-9]+K rkmalloc-[0-9]+k?$' /tmp/slabtop.out)
	[ "$n" = 12 ] || fail "$n table lines of rkmalloc caches, want 12: $(cat /tmp/slabtop.out)" || return
	rkmemctl slabtop --once --sort name >/tmp/slabtop.out 2>&1 || fail "slabtop --sort name failed" || return
	sed -n '8,$p' /tmp/slabtop.out | awk '{ print $NF }' >/tmp/slabtop.names
	sort /tmp/slabtop.names | cmp -s - /tmp/slabtop.names || fail "--sort name is not sorted: $(cat /tmp/slabtop.names)" || return
	rkmemctl slabtop --once --sort size >/dev/null 2>&1 || fail "slabtop --sort size failed" || return
	# Interval mode: a fresh screen (ANSI home + clear) per view, until interrupted.
	timeout 2 rkmemctl slabtop --interval 0.4 >/tmp/slabtop.out 2>&1
	views=$(grep -c 'OBJS ACTIVE' /tmp/slabtop.out)
	clears=$(grep -c "$(printf '\033')\[H" /tmp/slabtop.out)
	[ "$views" -ge 2 ] && [ "$clears" -ge 2 ] || fail "slabtop --interval 0.4 for 2 s: $views views, $clears screen clears"
}

# With slab_debug=1 every cache has red zones and poison and no per-CPU cache: the user cache
# tests and a short stress run again, and not one corruption or refused free may be reported.
test_slab_debug_user_caches() {
	unload || fail "rmmod failed" || return
	load slab_debug=1 || fail "insmod slab_debug=1 failed" || return
	rkmemctl test cache_ >/tmp/slabdbg.out 2>&1
	rc=$?
	rkmemctl stress slab --seconds 3 >>/tmp/slabdbg.out 2>&1
	rc2=$?
	reports=$(dmesg | grep -E 'cache (t_|stress-)[^:]*: .*(repaired|refused (free|double))')
	unload || fail "rmmod after slab_debug=1 failed" || return
	load || fail "reload failed" || return
	[ $rc = 0 ] || fail "rkmemctl test cache_ with slab_debug=1: $(grep -E '^not ok|passed' /tmp/slabdbg.out)" || return
	[ $rc2 = 0 ] || fail "rkmemctl stress slab with slab_debug=1: $(grep -E 'FAIL|rkmemctl:' /tmp/slabdbg.out | head -n 5)" || return
	[ -z "$reports" ] || fail "slab debug reports for correct use: $reports"
}

t cache_leak_reported test_cache_leak_reported
t slabinfo_format test_slabinfo_format
t cache_commands test_cache_commands
t slabtop_once test_slabtop_once
t stress_slab_all_cpus test_stress_slab
t stress_slab_with_concurrent_drains test_stress_slab_with_concurrent_drains
t offline_cpu_arrays_trimmed test_offline_cpu_arrays_trimmed
t killed_cache_holder test_killed_cache_holder
t slab_debug_user_caches test_slab_debug_user_caches
