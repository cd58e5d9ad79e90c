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

# Systematic fault injection: every host allocation site of opening the device and of every
# allocating ioctl is failed in turn (/proc/thread-self/fail-nth) until the call needs no more; each must succeed or answer ENOMEM and leave /proc/rkmem as it was (kmemleak's
# final scan covers the kernel's own memory). The allocation-failure reports the faults cause
# (warn_alloc's backtraces of vmalloc) are expected; every other kernel report in this window
# fails the test. Loading the module is swept first (`--module`): the module unloaded, each
# site of `finit_module` failed in turn, with KUnit's filter set to match no suite (on this
# kernel every load would run the module's KUnit suite, 2.6 s each under TCG).
test_fault_injection_fail_nth() {
	[ -e /proc/self/fail-nth ] && [ -d "$FI/failslab" ] && [ -d "$FI/fail_page_alloc" ] ||
		skip "no fail-nth/failslab/fail_page_alloc in this kernel" || return
	fi_set probability 0
	fi_set task-filter N
	fi_set verbose 0
	fi_set ignore-gfp-wait N
	echo 0 >"$FI/fail_page_alloc/min-order"
	# The sweep's expected allocation-failure backtraces would hide earlier reports from the
	# final dmesg check (and may wrap the ring buffer): judge what came before now, then clear.
	pre=$(dmesg | grep -E "$BAD_DMESG")
	dmesg -c >/dev/null
	[ -z "$pre" ] || fail "kernel reports before the sweep: $(echo "$pre" | head -n 10)" || return
	glob=/sys/module/kunit/parameters/filter_glob
	module=
	if unload; then
		module="--module /rkmem.ko"
		[ -w $glob ] && printf 'rkmem-no-suite.none' >$glob
	fi
	# shellcheck disable=SC2086 # module: two words or none
	rkmemctl failnth $module >/tmp/failnth.out 2>&1
	rc=$?
	# KUnit's default filter again (no newline: it would be part of the glob).
	[ -w $glob ] && printf '*.*' >$glob
	fi_set ignore-gfp-wait Y
	# Loaded again as the rest of the suite expects it (the sweep's last load ran no KUnit).
	if is_loaded; then unload; fi
	load || fail "rkmem does not load after the sweep" || return
	[ -n "$module" ] || fail "rmmod before the module-load sweep failed" || return
	grep -qE '^# module load: [1-9][0-9]* allocation sites failed in turn$' /tmp/failnth.out ||
		fail "the module load was not swept: $(grep -E 'module load' /tmp/failnth.out)" || return
	sed "s/^/    /" /tmp/failnth.out
	[ $rc = 0 ] || fail "rkmemctl failnth exited $rc: $(grep -E '^(FAIL|not ok)|rkmemctl:' /tmp/failnth.out | head -n 5)" || return
	grep -qE '^failnth: [0-9]+ passed, 0 failed$' /tmp/failnth.out || fail "$(tail -n 1 /tmp/failnth.out)" || return
	sites=$(sed -n 's/^# \([0-9]*\) faults injected in all$/\1/p' /tmp/failnth.out)
	[ "${sites:-0}" -gt 0 ] || fail "no fault was injected: the sweep proved nothing" || return
	LOAD_FAULTS=$((LOAD_FAULTS + sites))
	# Everything since the clear is the sweep's; its expected reports are cleared with it: the
	# allocation-failure backtraces, and one report of the host kernel's own, not rkmem's: the
	# trace event core's WARN_ON_ONCE in event_define_fields when an injected fault fails an
	# event field's allocation while the module's tracepoints are registered at load (the load
	# goes on without the events: "Could not initialize trace point events/...").
	host='WARNING: kernel/trace/trace_events.c:[0-9]+ at event_define_fields'
	all=$(dmesg -c)
	bad=$(echo "$all" | grep -E "$BAD_DMESG" | grep -vE "Call Trace|vmalloc error|page allocation failure|$host")
	echo "$all" | grep -m1 -E "$host" | sed 's/^/    the host kernel'"'"'s own, expected under injected faults: /'
	[ -z "$bad" ] || fail "kernel reports during the sweep: $(echo "$bad" | head -n 10)"
}

t stress_checker_counts_failures test_stress_checker_counts_failures
t fault_injection_fail_nth test_fault_injection_fail_nth
t fault_injection_stress test_fault_injection_stress
