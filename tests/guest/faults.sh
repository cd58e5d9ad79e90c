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
	fi_set verbose 0
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
	cat /tmp/fi.out | tail -n 3
	[ $rc = 0 ] || fail "stress under fault injection failed (rc $rc): $(tail -n 5 /tmp/fi.out)" || return
	grep -q " 0 failures" /tmp/fi.out || grep -q "0 failures" /tmp/fi.out ||
		fail "verification failures under fault injection" || return
	buddyinfo_back_to_load_time "stress under fault injection"
}

t fault_injection_stress test_fault_injection_stress
