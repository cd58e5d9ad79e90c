# SPDX-License-Identifier: GPL-2.0
# Fault injection (debug kernel only): failslab and fail_page_alloc make the host kernel's
# allocations fail for the stress program's threads while it runs. rkmem must answer ENOMEM
# cleanly: no verification failure, no leak, no kernel report. Sourced by suite.sh.

FI=/sys/kernel/debug

fi_set() {
	for f in failslab fail_page_alloc; do
		echo "$2" >"$FI/$f/$1"
	done
}

test_fault_injection_stress() {
	[ -d "$FI/failslab" ] && [ -d "$FI/fail_page_alloc" ] ||
		skip "no failslab/fail_page_alloc in this kernel" || return
	rkmemctl trim >/dev/null
	fi_set task-filter Y
	fi_set ignore-gfp-wait N
	fi_set probability 10
	fi_set interval 1
	fi_set times -1
	# verbose 1: one (rate-limited) line per injected failure, the evidence that faults were
	# injected at all.
	fi_set verbose 1
	before=$(dmesg | grep -c "FAULT_INJECTION: forcing a failure")
	echo 0 >"$FI/fail_page_alloc/min-order"
	rkmemctl stress pages --seconds 6 --seed 7 >/tmp/fi.out 2>&1 &
	pid=$!
	sleep 1
	# Every worker thread of the stress program (not the main thread, which prints the
	# report) fails ~10% of its allocations from now on.
	for t in /proc/$pid/task/*; do
		[ "$t" = "/proc/$pid/task/$pid" ] && continue
		echo 1 >"$t/make-it-fail" 2>/dev/null
	done
	wait $pid
	rc=$?
	fi_set probability 0
	fi_set task-filter N
	fi_set verbose 0
	injected=$(($(dmesg | grep -c "FAULT_INJECTION: forcing a failure") - before))
	cat /tmp/fi.out | tail -n 3
	echo "fault injection: $injected injected failure(s) reported (rate-limited)"
	[ $rc = 0 ] || fail "stress under fault injection failed (rc $rc): $(tail -n 5 /tmp/fi.out)" || return
	[ "$injected" -gt 0 ] || fail "no fault was injected: the test proved nothing" || return
	stress_clean pages /tmp/fi.out ||
		fail "verification failures under fault injection: $(grep failures /tmp/fi.out)" || return
	buddyinfo_back_to_load_time "stress under fault injection"
}

# The checker above must reject what the old one accepted: "10 failures" is not "0 failures".
test_stress_checker_counts_failures() {
	printf 'thread 0 (CPU 0): 9 ops, 0 failures\nstress pages: ok, no failures\n' >/tmp/sc.out
	stress_clean pages /tmp/sc.out || fail "a clean report was rejected" || return
	printf 'thread 0 (CPU 0): 9 ops, 10 failures\nstress pages: ok, no failures\n' >/tmp/sc.out
	! stress_clean pages /tmp/sc.out || fail "'10 failures' was taken for none" || return
	printf 'thread 0 (CPU 0): 9 ops, 0 failures\nstress pages: FAILED, 3 failures\n' >/tmp/sc.out
	! stress_clean pages /tmp/sc.out || fail "a FAILED verdict was taken for none"
}

t stress_checker_counts_failures test_stress_checker_counts_failures
t fault_injection_stress test_fault_injection_stress
