#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The race kernel's suite (qemu/config-race: KCSAN and lockdep, a host thread per vCPU). It
# runs what makes rkmem's code race with itself: the in-kernel stress engine on every CPU,
# `stress all` with slab and arena compaction looping under the workers, the page stress on
# all CPUs, the fuzzer, the compaction demo, kill -9 of a run and rmmod right after. Then:
# no KCSAN report in rkmem's code, no lockdep or other kernel report. First a positive control:
# the module loaded with kcsan_check=1 races on purpose, and KCSAN must report it in rkmem's
# glue, or this kernel could not see a race at all. Run as `scripts/guest.sh race race`.
. /tests/lib.sh

PASSED=0 FAILED=0 SKIPPED=0
KCSAN=/sys/kernel/debug/kcsan
[ -f "$KCSAN" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
# The sizes (TCG with KCSAN instrumenting every C access: several times slower than the fast
# kernel).
REL_DEFINE_ONLY=1
REL_STRESS_SECONDS=${REL_STRESS_SECONDS:-15}
REL_KSTRESS_SECONDS=${REL_KSTRESS_SECONDS:-15}
REL_FUZZ_OPS=${REL_FUZZ_OPS:-40000}
STRESS_SECONDS=${STRESS_SECONDS:-10}
. /tests/reliability.sh

# kcsan_counter NAME: a counter of /sys/kernel/debug/kcsan.
kcsan_counter() {
	sed -n "s/^$1: //p" "$KCSAN"
}

# kcsan_reports FILE: the KCSAN reports in dmesg text FILE, one per line: their title
# ("data-race in A / B"), then " | rkmem" when a frame of the report is in the module.
kcsan_reports() {
	awk '
	{ sub(/^\[[ 0-9.]*\] /, "") }
	/^=+$/ { if (inr) { if (title != "") print title (mod ? " | rkmem" : ""); inr = 0 } else { inr = 1; title = ""; mod = 0 } next }
	inr && /BUG: KCSAN: / { sub(/.*BUG: KCSAN: /, ""); title = $0 }
	inr && /\[rkmem\]/ { mod = 1 }
	' "$1"
}

test_kcsan_enabled() {
	[ -f "$KCSAN" ] || fail "no $KCSAN: not a KCSAN kernel" || return
	grep -qx 'enabled: 1' "$KCSAN" || fail "KCSAN is off: $(head -n 1 "$KCSAN")"
}

# The control: with kcsan_check=1 every CPU increments one counter without a lock, in
# rust/glue/kcsan.c; KCSAN must report the race on that counter, with frames in the module.
test_kcsan_reports_rkmem_race() {
	unload || fail "rmmod failed" || return
	dmesg -c >/dev/null
	load kcsan_check=1 || fail "insmod kcsan_check=1 failed: $(dmesg | tail -n 3)" || return
	dmesg >/tmp/race-control.dmesg
	unload || fail "rmmod after kcsan_check=1 failed" || return
	load || fail "reload failed" || return
	grep -q 'kcsan_check=1: done on [1-9]' /tmp/race-control.dmesg ||
		fail "the race did not run: $(grep kcsan_check /tmp/race-control.dmesg | head -n 3)" || return
	# %px: the address in hex, without 0x.
	addr=$(sed -n 's/.*kcsan_check=1: racing on the counter at \([0-9a-f]*\)$/0x\1/p' /tmp/race-control.dmesg)
	[ -n "$addr" ] || fail "the check printed no address" || return
	# The report: a data race on that counter (a plain access by every CPU), in the module.
	kcsan_reports /tmp/race-control.dmesg >/tmp/race-control.reports
	line=$(grep '| rkmem$' /tmp/race-control.reports | head -n 1)
	[ -n "$line" ] || fail "KCSAN reported no race in rkmem: $(head -n 3 /tmp/race-control.reports)" || return
	echo "    KCSAN: $line"
	grep -qE "(read|write|read-write) to $addr of 8 bytes by task" /tmp/race-control.dmesg ||
		fail "no KCSAN report of an access to the counter at $addr"
}

test_kcsan_watched_the_run() {
	w=$(kcsan_counter setup_watchpoints)
	[ "${w:-0}" -gt "${WATCH_BEFORE:-0}" ] ||
		fail "KCSAN set up no watchpoint during the run ($WATCH_BEFORE, then $w)" || return
	echo "    KCSAN during the run: $((w - WATCH_BEFORE)) watchpoints set up, $(($(kcsan_counter data_races) - RACES_BEFORE)) data races, $(($(kcsan_counter races_unknown_origin) - UNKNOWN_BEFORE)) of unknown origin (repeats of one report within 3 s are counted, not printed)"
}

test_race_stress_pages() {
	rkmemctl stress pages --seconds "$STRESS_SECONDS" >/tmp/stress.out 2>&1
	rc=$?
	tail -n 3 /tmp/stress.out | sed "s/^/    /"
	[ $rc = 0 ] || fail "rkmemctl stress pages exited $rc" || return
	grep -q '^stress pages: ok' /tmp/stress.out || fail "no 'stress pages: ok' line: $(tail -n 2 /tmp/stress.out)" || return
	buddyinfo_back_to_load_time "rkmemctl stress pages"
}

test_race_compact_demo() {
	rkmemctl compact --demo >/tmp/compact-demo.out 2>&1
	rc=$?
	[ $rc = 0 ] || fail "rkmemctl compact --demo exited $rc: $(tail -n 3 /tmp/compact-demo.out)" || return
	grep -q 'read back as written: yes$' /tmp/compact-demo.out || fail "survivors changed" || return
	buddyinfo_back_to_load_time "rkmemctl compact --demo"
}

# No KCSAN report names rkmem (its functions or a frame of the module); the kernel's own races
# that the run met elsewhere are listed, not counted (they are the host kernel's to annotate).
test_no_rkmem_data_race() {
	dmesg >/tmp/race.dmesg
	kcsan_reports /tmp/race.dmesg >/tmp/race.reports
	n=$(wc -l </tmp/race.reports)
	ours=$(grep -E 'rkmem' /tmp/race.reports)
	sed 's/^/    KCSAN: /' /tmp/race.reports
	echo "    $n KCSAN reports in the run, $(echo "$ours" | grep -c .) involving rkmem"
	[ -z "$ours" ] || fail "KCSAN reports in rkmem: $(echo "$ours" | head -n 5)"
}

# Every other kernel report fails the run (lockdep, WARN, lockups, ...), KCSAN's excepted: the
# test above judges those.
test_race_dmesg_clean() {
	bad=$(awk '{ sub(/^\[[ 0-9.]*\] /, "") } /^=+$/ { inr = !inr; next } !inr' /tmp/race.dmesg | grep -vE 'KCSAN' | grep -E "$BAD_DMESG")
	[ -z "$bad" ] || fail "kernel reports: $(echo "$bad" | head -n 10)"
}

echo "# race sizes: stress all ${REL_STRESS_SECONDS}s, stress kernel ${REL_KSTRESS_SECONDS}s, stress pages ${STRESS_SECONDS}s, fuzz $REL_FUZZ_OPS ops, $REL_THREADS threads"
t kcsan_enabled test_kcsan_enabled
t kcsan_reports_rkmem_race test_kcsan_reports_rkmem_race
# From here on a KCSAN report in rkmem is a failure.
dmesg -c >/dev/null
WATCH_BEFORE=$(kcsan_counter setup_watchpoints)
RACES_BEFORE=$(kcsan_counter data_races)
UNKNOWN_BEFORE=$(kcsan_counter races_unknown_origin)
t race_kernel_stress test_rel_kernel_stress
t race_stress_all_compact test_rel_stress_all
t race_stress_pages test_race_stress_pages
t race_compact_demo test_race_compact_demo
t race_fuzz test_rel_fuzz
t race_kill9_stress_all test_rel_kill9_stress_all
t race_rmmod_after_kill test_rel_rmmod_after_kill
t kcsan_watched_the_run test_kcsan_watched_the_run
t no_rkmem_data_race test_no_rkmem_data_race
t race_dmesg_clean test_race_dmesg_clean

echo "RKMEM-LOAD ops=$LOAD_OPS bytes=$LOAD_BYTES fuzz_calls=$LOAD_FUZZ faults=$LOAD_FAULTS"
echo "RKMEM-SUMMARY passed=$PASSED failed=$FAILED skipped=$SKIPPED"
echo "race: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
