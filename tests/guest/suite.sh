#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rkmem's in-guest test suite. Runs with the module loaded by init; prints
# `ok`/`not ok` lines and a last line `guest: N passed, N failed, N skipped`.
. /tests/lib.sh

KMEMLEAK=/sys/kernel/debug/kmemleak
[ -f "$KMEMLEAK" ] && echo clear >"$KMEMLEAK"
dmesg -c >/dev/null
# What buddyinfo says before anything used the module.
BUDDY_AT_LOAD=$(cat /proc/rkmem/buddyinfo 2>&1)
# Seconds of `rkmemctl stress pages` (TCG emulates every instruction: keep it short).
STRESS_SECONDS=${STRESS_SECONDS:-10}

test_loaded_entries_exist() {
	is_loaded || fail "rkmem not in /proc/modules" || return
	[ -c /dev/rkmem ] || fail "/dev/rkmem is not a character device" || return
	[ -d /proc/rkmem ] || fail "/proc/rkmem is missing" || return
	[ -r /proc/rkmem/stats ] || fail "/proc/rkmem/stats is not readable"
}

test_dev_mode_0600() {
	mode=$(stat -c %a /dev/rkmem)
	[ "$mode" = 600 ] || fail "/dev/rkmem mode $mode, want 600"
}

test_stats_format() {
	# Every line is "name value" with a numeric value, like /proc/vmstat.
	bad=$(grep -vE '^[a-z_]+ [0-9]+$' /proc/rkmem/stats)
	[ -z "$bad" ] || fail "malformed stats lines: $bad" || return
	grep -q '^abi_version 5$' /proc/rkmem/stats || fail "no 'abi_version 5' line"
}

test_stats_read_only() {
	if echo 1 2>/dev/null >/proc/rkmem/stats; then
		fail "writing /proc/rkmem/stats succeeded"
	fi
}

test_ioctl_interface() {
	rkmemctl test >/tmp/rkmemctl.out 2>&1
	rc=$?
	cat /tmp/rkmemctl.out
	add_counts /tmp/rkmemctl.out
	[ $rc = 0 ] || fail "rkmemctl test exited $rc"
}

test_buddyinfo_at_load() {
	want=$(load_time_buddyinfo)
	[ "$BUDDY_AT_LOAD" = "$want" ] || fail "buddyinfo right after load is '$BUDDY_AT_LOAD', want '$want'"
}

test_buddyinfo_format() {
	f=/proc/rkmem/buddyinfo
	[ -r $f ] || fail "$f is missing" || return
	lines=$(wc -l <$f)
	[ "$lines" = 1 ] || fail "$f has $lines lines, want 1" || return
	# "Node %d, zone %8s " then "%6lu " for each order 0..10, then the newline.
	grep -qE '^Node 0, zone    rkmem ([ 0-9]{5}[0-9] ){11}$' $f ||
		fail "not the kernel's buddyinfo layout: '$(cat $f)'" || return
	grep -qE '^Node 0, zone    rkmem ( *[0-9]+ ){11}$' $f ||
		fail "fields are not numbers: '$(cat $f)'"
}

test_extfrag_format() {
	f=/proc/rkmem/extfrag
	[ -r $f ] || fail "$f is missing" || return
	lines=$(wc -l <$f)
	[ "$lines" = 6 ] || fail "$f has $lines lines, want 6: $(cat $f)" || return
	n=0
	for re in '^arena_pages [0-9]+$' '^arena_mib [0-9]+$' '^free_pages [0-9]+$' \
		'^largest_free_order (-1|[0-9]+)$' \
		'^unusable Node 0, zone    rkmem ([0-9]+\.[0-9]{3} ){11}$' \
		'^extfrag Node 0, zone    rkmem (( [0-9]|-[0-9]|[0-9]{2,})\.-?[0-9]{3} ){11}$'; do
		n=$((n + 1))
		sed -n "${n}p" $f | grep -qE "$re" || fail "line $n '$(sed -n "${n}p" $f)' does not match $re" || return
	done
	# Idle, after a trim: the whole arena_initial_mb is free in order-10 blocks.
	rkmemctl trim >/dev/null || fail "rkmemctl trim failed" || return
	initial=$(stat_value arena_initial_mb)
	[ "$initial" -gt 0 ] || return 0
	zeros="0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 "
	minus="-1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 "
	want="arena_pages $((initial * 256))
arena_mib $initial
free_pages $((initial * 256))
largest_free_order 10
unusable Node 0, zone    rkmem $zeros
extfrag Node 0, zone    rkmem $minus"
	now=$(cat $f)
	[ "$now" = "$want" ] || fail "idle extfrag is '$now', want '$want'"
}

test_stress_pages() {
	rkmemctl stress pages --seconds "$STRESS_SECONDS" >/tmp/stress.out 2>&1
	rc=$?
	cat /tmp/stress.out
	[ $rc = 0 ] || fail "rkmemctl stress pages exited $rc: $(grep -E 'FAIL|rkmemctl:' /tmp/stress.out | head -n 5)" || return
	ncpu=$(grep -c ^processor /proc/cpuinfo)
	grep -q "^stress pages: $ncpu threads" /tmp/stress.out || fail "not one thread per CPU ($ncpu)" || return
	grep -q '^stress pages: ok' /tmp/stress.out || fail "no 'stress pages: ok' line" || return
	buddyinfo_back_to_load_time "rkmemctl stress pages"
}

test_killed_holder_frees_everything() {
	open_before=$(stat_value open_files)
	rkmemctl pages hold --order 3 --count 50 >/tmp/hold.out 2>&1 &
	pid=$!
	wait_line $pid holding /tmp/hold.out || {
		kill -9 $pid 2>/dev/null
		fail "no 'holding' line from rkmemctl pages hold: $(cat /tmp/hold.out)"
		return
	}
	held=$(cat /proc/rkmem/buddyinfo)
	open_held=$(stat_value open_files)
	kill -9 $pid
	wait $pid 2>/dev/null
	[ "$held" != "$(load_time_buddyinfo)" ] || fail "buddyinfo did not change while 50 order-3 blocks were held" || return
	[ "$open_held" = $((open_before + 1)) ] || fail "open_files $open_held while holding, $open_before before" || return
	open_after=$(stat_value open_files)
	[ "$open_after" = "$open_before" ] || fail "open_files $open_after after kill -9, $open_before before" || return
	buddyinfo_back_to_load_time "kill -9 of a process holding 50 order-3 blocks"
}

test_map_command() {
	rkmemctl map >/tmp/map.out 2>&1 || fail "rkmemctl map failed: $(cat /tmp/map.out)" || return
	grep -qE '^arena: [0-9]+ of [0-9]+ slots present' /tmp/map.out || fail "no arena line: $(cat /tmp/map.out)" || return
	grep -qE '^slot [0-9]+ +[|][.#=: ]{64}[|]$' /tmp/map.out || fail "no slot bar: $(cat /tmp/map.out)" || return
	# An idle slot is one free 4 MiB block; with a block held it is split.
	grep -qE '^ +F4M$' /tmp/map.out || fail "no wholly free slot in an idle arena: $(cat /tmp/map.out)" || return
	rkmemctl pages alloc --order 4 --map >/tmp/map.out 2>&1 || fail "rkmemctl pages alloc --map failed: $(cat /tmp/map.out)" || return
	grep -qE '^ +U64K F64K F128K F256K F512K F1M F2M$' /tmp/map.out || fail "an order-4 block in an idle slot does not split it as expected: $(cat /tmp/map.out)"
}

test_unload_removes_entries() {
	unload || fail "rmmod rkmem failed" || return
	[ ! -e /dev/rkmem ] || fail "/dev/rkmem still there after rmmod" || return
	[ ! -e /proc/rkmem ] || fail "/proc/rkmem still there after rmmod" || return
	load || fail "insmod after rmmod failed" || return
	[ -c /dev/rkmem ] && [ -f /proc/rkmem/stats ] || fail "entries missing after reload"
}

test_load_unload_20_times() {
	i=0
	while [ $i -lt 20 ]; do
		unload || fail "rmmod failed on round $i" || return
		load || fail "insmod failed on round $i" || return
		# Use it each round: open, ioctl, read /proc.
		rkmemctl version >/dev/null || fail "version ioctl failed on round $i" || return
		cat /proc/rkmem/stats >/dev/null || fail "reading stats failed on round $i" || return
		i=$((i + 1))
	done
	bad=$(dmesg | grep -E "$BAD_DMESG")
	[ -z "$bad" ] || fail "kernel reports during load/unload: $bad"
}

test_unload_refused_while_open() {
	exec 3</dev/rkmem
	if rmmod rkmem 2>/dev/null; then
		exec 3<&-
		load
		fail "rmmod succeeded with /dev/rkmem open"
		return
	fi
	exec 3<&-
	unload || fail "rmmod failed after close" || return
	load || fail "reload failed"
}

# name=value, expected message in dmesg
bad_param() {
	unload || fail "rmmod failed" || return
	dmesg -c >/dev/null
	if insmod /rkmem.ko "$1" 2>/dev/null; then
		unload
		load
		fail "insmod rkmem.ko $1 succeeded"
		return
	fi
	msg=$(dmesg | grep -F "$2")
	load || fail "reload with default parameters failed" || return
	[ -n "$msg" ] || fail "no dmesg line containing '$2' after insmod $1 (dmesg: $(dmesg | tail -n 3))"
}

test_param_not_block_multiple() { bad_param arena_max_mb=10 "invalid parameter arena_max_mb: arena_max_mb=10: must be a multiple of 4"; }
test_param_initial_above_max() { bad_param arena_initial_mb=128 "invalid parameter arena_initial_mb: arena_initial_mb=128: must not exceed arena_max_mb=64"; }
test_param_max_zero() { bad_param arena_max_mb=0 "invalid parameter arena_max_mb: arena_max_mb=0"; }
test_param_above_ram() { bad_param arena_max_mb=1048576 "more than 1/2 of RAM"; }
test_param_not_a_number() { bad_param arena_max_mb=lots "arena_max_mb"; }
test_param_negative() { bad_param arena_max_mb=-4 "arena_max_mb"; }
test_param_proactiveness_above_100() { bad_param compaction_proactiveness=101 "invalid parameter compaction_proactiveness: compaction_proactiveness=101: must be 0..=100"; }
# The checkers' parameters: out of range everywhere, and 1 where the kernel lacks that checker
# (fast, um: none; debug: KASAN and kmemleak; race: KCSAN).
test_param_checkers() {
	bad_param kasan_check=3 "invalid parameter kasan_check: kasan_check=3: must be 0, or 1 or 2 on a KASAN kernel" || return
	bad_param kmemleak_check=2 "invalid parameter kmemleak_check: kmemleak_check=2: must be 0, or 1 on a kmemleak kernel" || return
	bad_param kcsan_check=2 "invalid parameter kcsan_check: kcsan_check=2: must be 0, or 1 on a KCSAN kernel" || return
	case "${RKMEM_FLAVOR:-}" in
	debug) ;;
	*)
		bad_param kasan_check=1 "invalid parameter kasan_check: kasan_check=1: must be 0, or 1 or 2 on a KASAN kernel" || return
		bad_param kmemleak_check=1 "invalid parameter kmemleak_check: kmemleak_check=1: must be 0, or 1 on a kmemleak kernel" || return
		;;
	esac
	[ "${RKMEM_FLAVOR:-}" = race ] ||
		bad_param kcsan_check=1 "invalid parameter kcsan_check: kcsan_check=1: must be 0, or 1 on a KCSAN kernel"
}

# The compaction demo of `make run`: a fragmented arena shrinks and every survivor keeps its
# bytes.
test_compact_demo() {
	rkmemctl compact --demo >/tmp/compact-demo.out 2>&1
	rc=$?
	cat /tmp/compact-demo.out
	[ $rc = 0 ] || fail "rkmemctl compact --demo exited $rc: $(tail -n 3 /tmp/compact-demo.out)" || return
	grep -qE '^arena: [1-9][0-9]* pages moved, [1-9][0-9]* slots emptied' /tmp/compact-demo.out ||
		fail "the demo emptied no slot: $(grep '^arena:' /tmp/compact-demo.out)" || return
	grep -q 'read back as written: yes$' /tmp/compact-demo.out || fail "survivors changed" || return
	buddyinfo_back_to_load_time "rkmemctl compact --demo"
}

test_kmemleak_clean() {
	[ -f "$KMEMLEAK" ] || skip "no kmemleak in this kernel" || return
	# Objects younger than 5 s are not reported: wait, then scan twice.
	sleep 6
	echo scan >"$KMEMLEAK"
	echo scan >"$KMEMLEAK"
	leaks=$(cat "$KMEMLEAK")
	[ -z "$leaks" ] || fail "kmemleak reports: $(echo "$leaks" | head -n 20)"
}

test_dmesg_clean() {
	bad=$(dmesg | grep -E "$BAD_DMESG")
	[ -z "$bad" ] || fail "kernel reports: $(dmesg | grep -E -A5 "$BAD_DMESG" | head -n 30)"
}

# The in-kernel checks again with slab_debug=1: red zones and poison must catch an overrun and
# a write after free, report them (repaired) and keep the cache usable.
test_slab_debug_selftest() {
	unload || fail "rmmod failed" || return
	load slab_debug=1 || fail "insmod slab_debug=1 failed" || return
	out=$(rkmemctl test kernel_selftest 2>&1)
	rc=$?
	reports=$(dmesg | grep -c "cache rkmem-selftest: .*(repaired)")
	unload || fail "rmmod after slab_debug=1 failed" || return
	load || fail "reload failed" || return
	[ $rc = 0 ] || fail "kernel selftest with slab_debug=1: $out" || return
	[ "$reports" -ge 2 ] || fail "want 2 repaired-corruption reports in dmesg, got $reports"
}

# kmemleak knows rkmem's objects (rust/glue/kmemleak.c): with kmemleak_check=1 the load leaks
# one object (its address kept only masked) and keeps a kmalloc'd buffer whose only pointer is
# inside another, live rkmem object. A scan must report the first, in rkmem's code, and not the
# buffer (seen referenced only because rkmem registers its objects for scanning).
test_kmemleak_sees_rkmem_objects() {
	[ -f "$KMEMLEAK" ] || skip "no kmemleak in this kernel" || return
	unload || fail "rmmod failed" || return
	lines=$(dmesg | wc -l)
	load kmemleak_check=1 || fail "insmod kmemleak_check=1 failed: $(dmesg | tail -n 3)" || return
	line=$(dmesg | tail -n +$((lines + 1)) | grep 'kmemleak_check=1: leaked object')
	leaked=$(echo "$line" | sed -n 's/.*leaked object \(0x[0-9a-f]*\) .*/\1/p')
	buf=$(echo "$line" | sed -n "s/.*kmalloc'd buffer \(0x[0-9a-f]*\).*/\1/p")
	holder=$(echo "$line" | sed -n 's/.*holder \(0x[0-9a-f]*\) .*/\1/p')
	size=$(echo "$line" | sed -n 's/.*(size \([0-9]*\)).*/\1/p')
	# Objects younger than 5 s are not reported; the second scan confirms the first.
	sleep 6
	echo scan >"$KMEMLEAK"
	echo scan >"$KMEMLEAK"
	cat "$KMEMLEAK" >/tmp/kmemleak-check.out
	echo clear >"$KMEMLEAK"
	# The scan's "N new suspected memory leaks" line is this test's expected report: check the
	# kernel's messages before it here, then clear them, as the fail-nth sweep does.
	pre=$(dmesg | head -n "$lines" | grep -E "$BAD_DMESG")
	during=$(dmesg | tail -n +$((lines + 1)) | grep -E "$BAD_DMESG" | grep -vE 'kmemleak: [0-9]+ new suspected memory leaks')
	dmesg -c >/dev/null
	[ -z "$pre" ] || fail "kernel reports before the check: $(echo "$pre" | head -n 10)" || return
	[ -z "$during" ] || fail "kernel reports during the check: $(echo "$during" | head -n 10)" || return
	unload || fail "rmmod after kmemleak_check=1 failed" || return
	load || fail "reload failed" || return
	[ -n "$leaked" ] && [ -n "$buf" ] && [ -n "$holder" ] || fail "the check printed no addresses: $line" || return
	grep -q "^unreferenced object $leaked (size $size)" /tmp/kmemleak-check.out ||
		fail "kmemleak did not report the leaked rkmem object $leaked: $(head -n 8 /tmp/kmemleak-check.out)" || return
	# The report's backtrace is the allocation's, in the module.
	awk -v a="$leaked" '$0 ~ "^unreferenced object " a { r = 1 } r && /^unreferenced object/ && $0 !~ a { r = 0 } r' \
		/tmp/kmemleak-check.out >/tmp/kmemleak-report.out
	sed 's/^/    /' /tmp/kmemleak-report.out | head -n 14
	grep -q '\[rkmem\]' /tmp/kmemleak-report.out || fail "the report's backtrace is not in rkmem" || return
	if grep -qE "^unreferenced object ($buf|$holder) " /tmp/kmemleak-check.out; then
		fail "kmemleak reported the buffer $buf (or its holder $holder): rkmem's object was not scanned"
	fi
}

t loaded_entries_exist test_loaded_entries_exist
t dev_mode_0600 test_dev_mode_0600
t stats_format test_stats_format
t stats_read_only test_stats_read_only
t buddyinfo_at_load test_buddyinfo_at_load
t buddyinfo_format test_buddyinfo_format
t extfrag_format test_extfrag_format
t ioctl_interface test_ioctl_interface
t map_command test_map_command
t stress_pages_all_cpus test_stress_pages
t killed_holder_frees_everything test_killed_holder_frees_everything
. /tests/slab.sh
t slab_debug_selftest test_slab_debug_selftest
t kmemleak_sees_rkmem_objects test_kmemleak_sees_rkmem_objects
t unload_after_killed_holder test_unload_removes_entries
t unload_removes_entries test_unload_removes_entries
t load_unload_20_times test_load_unload_20_times
t unload_refused_while_open test_unload_refused_while_open
t param_not_block_multiple test_param_not_block_multiple
t param_initial_above_max test_param_initial_above_max
t param_max_zero test_param_max_zero
t param_above_ram test_param_above_ram
t param_not_a_number test_param_not_a_number
t param_negative test_param_negative
t param_proactiveness_above_100 test_param_proactiveness_above_100
t param_checkers test_param_checkers
t compact_demo test_compact_demo
. /tests/labcheck.sh
. /tests/procfiles.sh
. /tests/top.sh
. /tests/tracing.sh
. /tests/reclaim.sh
. /tests/pools.sh
. /tests/limits.sh
. /tests/faults.sh
. /tests/kunit.sh
. /tests/benchcheck.sh
. /tests/reliability.sh
t final_unload_clean test_unload_removes_entries
unload
t kmemleak_clean test_kmemleak_clean
t dmesg_clean test_dmesg_clean

echo "RKMEM-LOAD ops=$LOAD_OPS bytes=$LOAD_BYTES fuzz_calls=$LOAD_FUZZ faults=$LOAD_FAULTS"
echo "RKMEM-SUMMARY passed=$PASSED failed=$FAILED skipped=$SKIPPED"
echo "guest: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
