#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rkmem's in-guest test suite. Runs with the module loaded by init; prints
# `ok`/`not ok` lines and a last line `guest: N passed, N failed, N skipped`.
. /tests/lib.sh

KMEMLEAK=/sys/kernel/debug/kmemleak
[ -f "$KMEMLEAK" ] && echo clear >"$KMEMLEAK"
dmesg -c >/dev/null

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
	grep -q '^abi_version 1$' /proc/rkmem/stats || fail "no 'abi_version 1' line"
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

t loaded_entries_exist test_loaded_entries_exist
t dev_mode_0600 test_dev_mode_0600
t stats_format test_stats_format
t stats_read_only test_stats_read_only
t ioctl_interface test_ioctl_interface
t unload_removes_entries test_unload_removes_entries
t load_unload_20_times test_load_unload_20_times
t unload_refused_while_open test_unload_refused_while_open
t param_not_block_multiple test_param_not_block_multiple
t param_initial_above_max test_param_initial_above_max
t param_max_zero test_param_max_zero
t param_above_ram test_param_above_ram
t param_not_a_number test_param_not_a_number
t param_negative test_param_negative
t final_unload_clean test_unload_removes_entries
unload
t kmemleak_clean test_kmemleak_clean
t dmesg_clean test_dmesg_clean

echo "RKMEM-SUMMARY passed=$PASSED failed=$FAILED skipped=$SKIPPED"
echo "guest: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
