# SPDX-License-Identifier: GPL-2.0
# Reliability runs (both kernels): `rkmemctl stress all` (every allocator at once, patterns
# checked), `rkmemctl fuzz` (random and boundary ioctls), and `kill -9` of a stress run in
# mid-flight followed by an immediate rmmod. Each run ends with /proc/rkmem back at its starting
# counts; kernel reports (WARN, KASAN, lockdep, kmemleak) are caught by suite.sh's final
# dmesg/kmemleak checks. Sourced by suite.sh, and by race.sh with REL_DEFINE_ONLY=1 (the
# tests defined, not run).

# The sizes (TCG emulates every instruction; the debug kernel is several times slower).
REL_THREADS=${REL_THREADS:-$(grep -c ^processor /proc/cpuinfo)}
REL_STRESS_SECONDS=${REL_STRESS_SECONDS:-8}
REL_STRESS_SEED=${REL_STRESS_SEED:-0x5eed}
# The fuzzer: 10^6 calls over the kernels (um: each system call ~100 us, 600000 calls take
# about 2.5 minutes; fast: about 1 minute for 400000).
case "${RKMEM_FLAVOR:-}" in
um) REL_FUZZ_OPS=${REL_FUZZ_OPS:-600000} ;;
fast) REL_FUZZ_OPS=${REL_FUZZ_OPS:-400000} ;;
*) REL_FUZZ_OPS=${REL_FUZZ_OPS:-20000} ;;
esac
REL_FUZZ_SEED=${REL_FUZZ_SEED:-0xf022}
# The in-kernel stress engine (RKMEM_IOC_STRESS): on the native um kernel it runs until
# REL_KSTRESS_OPS operations are verified (about 10 s there; REL_KSTRESS_SECONDS is the most it
# may take, a hang guard 50 times that); under TCG, for REL_KSTRESS_SECONDS.
case "${RKMEM_FLAVOR:-}" in
um) REL_KSTRESS_OPS=${REL_KSTRESS_OPS:-100000000} REL_KSTRESS_SECONDS=${REL_KSTRESS_SECONDS:-600} ;;
*) REL_KSTRESS_OPS=${REL_KSTRESS_OPS:-} REL_KSTRESS_SECONDS=${REL_KSTRESS_SECONDS:-4} ;;
esac
# The killed run: it would last this long; it is killed after REL_KILL_AFTER seconds of work.
REL_KILL_RUN_SECONDS=60
REL_KILL_AFTER=3

# $1: output file, $2: what ran. Fails unless the program's last line says "0 failed".
rel_verdict() {
	grep -E '^(not ok|FAIL) ' "$1" | head -n 8 >/tmp/rel.why
	tail -n 1 "$1" | grep -qE ' [0-9]+ passed, 0 failed$' ||
		fail "$2: $(tail -n 1 "$1"); $(cat /tmp/rel.why)"
}

# With --compact, slab and arena compaction loop from the main thread while the workers
# allocate, write, verify and free: every move happens under their reads and writes.
test_rel_stress_all() {
	rkmemctl stress all --threads "$REL_THREADS" --seconds "$REL_STRESS_SECONDS" \
		--seed "$REL_STRESS_SEED" --no-progress --compact >/tmp/rel-stress.out 2>&1
	rc=$?
	grep -vE "^thread " /tmp/rel-stress.out | sed "s/^/    /"
	[ $rc = 0 ] || fail "rkmemctl stress all exited $rc: $(grep -E 'FAIL|not ok|rkmemctl:' /tmp/rel-stress.out | head -n 5)" || return
	rel_verdict /tmp/rel-stress.out "stress all" || return
	grep -q '^verification failures: 0$' /tmp/rel-stress.out || fail "verification failures" || return
	buddyinfo_back_to_load_time "rkmemctl stress all"
}

test_rel_fuzz() {
	rkmemctl fuzz --ops "$REL_FUZZ_OPS" --threads "$REL_THREADS" --seed "$REL_FUZZ_SEED" \
		>/tmp/rel-fuzz.out 2>&1
	rc=$?
	sed "s/^/    /" /tmp/rel-fuzz.out
	[ $rc = 0 ] || fail "rkmemctl fuzz exited $rc: $(grep -E '^(FAIL|not ok)|rkmemctl:' /tmp/rel-fuzz.out | head -n 5)" || return
	rel_verdict /tmp/rel-fuzz.out "fuzz" || return
	LOAD_FUZZ=$((LOAD_FUZZ + REL_FUZZ_OPS))
	rkmemctl version >/dev/null || fail "version ioctl fails after the fuzzer" || return
	buddyinfo_back_to_load_time "rkmemctl fuzz"
}

test_rel_kernel_stress() {
	rkmemctl stress kernel --seconds "$REL_KSTRESS_SECONDS" ${REL_KSTRESS_OPS:+--total-ops "$REL_KSTRESS_OPS"} \
		--seed "$REL_STRESS_SEED" >/tmp/rel-kstress.out 2>&1
	rc=$?
	sed "s/^/    /" /tmp/rel-kstress.out
	load_add_stress /tmp/rel-kstress.out
	[ $rc = 0 ] || fail "rkmemctl stress kernel exited $rc: $(grep -E '^(FAIL|not ok)|rkmemctl:' /tmp/rel-kstress.out | head -n 5)" || return
	rel_verdict /tmp/rel-kstress.out "stress kernel" || return
	buddyinfo_back_to_load_time "rkmemctl stress kernel"
}

# The engine's checker finds what it must: each worker changes a byte of its first allocation
# and the run must report exactly one failure per worker (and name it in dmesg).
test_rel_kernel_stress_finds_corruption() {
	lines=$(dmesg | wc -l)
	rkmemctl stress kernel --seconds 1 --seed 7 --corrupt-one >/tmp/rel-kcorrupt.out 2>&1
	rc=$?
	sed "s/^/    /" /tmp/rel-kcorrupt.out
	[ $rc = 0 ] || fail "rkmemctl stress kernel --corrupt-one exited $rc" || return
	rel_verdict /tmp/rel-kcorrupt.out "stress kernel --corrupt-one" || return
	n=$(dmesg | tail -n +$((lines + 1)) | grep -c 'rkmem: stress: cpu [0-9]*: pattern of a')
	cpus=$(grep -c ^processor /proc/cpuinfo)
	[ "$n" = "$cpus" ] || fail "$n dmesg lines name a changed pattern, want one per CPU ($cpus)"
}

# No user input makes the kernel complain: the longest calls (every benchmark at its maximum
# counts, a second one waiting on the same file, the largest compaction) under lockup detectors
# with thresholds of a few seconds. um only: it runs them natively and has no preemption (a
# loop that never yields would hold its CPU); under TCG the maximum counts take too long.
test_rel_longest_calls_are_quiet() {
	[ "${RKMEM_FLAVOR:-}" = um ] || skip "the maximum counts run natively on the um kernel" || return
	wt=/proc/sys/kernel/watchdog_thresh ht=/proc/sys/kernel/hung_task_timeout_secs
	rt=/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
	[ -w $wt ] && [ -w $ht ] && [ -w $rt ] || skip "no soft-lockup, hung-task or RCU stall detector" || return
	old="$(cat $wt) $(cat $ht) $(cat $rt)"
	# A soft lockup after 2 s without a schedule, an RCU stall after 3 s, a hung task after 2 s.
	echo 1 >$wt && echo 2 >$ht && echo 3 >$rt || fail "cannot lower the detectors' thresholds" || return
	lines=$(dmesg | wc -l)
	rkmemctl max-calls >/tmp/rel-max.out 2>&1
	rc=$?
	set -- $old
	echo "$1" >$wt; echo "$2" >$ht; echo "$3" >$rt
	sed "s/^/    /" /tmp/rel-max.out
	[ $rc = 0 ] || fail "rkmemctl max-calls exited $rc: $(grep -E '^not ok|rkmemctl:' /tmp/rel-max.out | head -n 5)" || return
	rel_verdict /tmp/rel-max.out "max-calls" || return
	bad=$(dmesg | tail -n +$((lines + 1)) | grep -E "$BAD_DMESG|soft lockup|hung_task|stall")
	[ -z "$bad" ] || fail "kernel reports during the longest calls: $(echo "$bad" | head -n 5)" || return
	buddyinfo_back_to_load_time "rkmemctl max-calls"
}

test_rel_kill9_stress_all() {
	open_before=$(stat_value open_files)
	rkmemctl stress all --threads "$REL_THREADS" --seconds "$REL_KILL_RUN_SECONDS" --seed 9 \
		--no-progress >/tmp/rel-kill.out 2>&1 &
	pid=$!
	i=0
	# Started when every worker has its file open.
	while [ "$(stat_value open_files)" -lt $((open_before + REL_THREADS)) ]; do
		kill -0 $pid 2>/dev/null || { fail "stress all exited early: $(tail -n 5 /tmp/rel-kill.out)"; return; }
		i=$((i + 1))
		[ $i -lt 600 ] || { kill -9 $pid; fail "stress all did not open its files in 60 s"; return; }
		sleep 0.1
	done
	sleep "$REL_KILL_AFTER"
	held=$(cat /proc/rkmem/buddyinfo)
	pools=$(grep -vc '^#' /proc/rkmem/mempools)
	kill -9 $pid
	wait $pid 2>/dev/null
	[ "$held" != "$(load_time_buddyinfo)" ] || fail "buddyinfo unchanged while stress all ran" || return
	[ "$pools" -gt 0 ] || fail "no mempool while stress all ran" || return
	open_after=$(stat_value open_files)
	[ "$open_after" = "$open_before" ] || fail "open_files $open_after after kill -9, $open_before before" || return
	left=$(grep -c '^stress' /proc/rkmem/slabinfo)
	[ "$left" = 0 ] || fail "$left caches of the killed run left in slabinfo" || return
	[ "$(grep -vc '^#' /proc/rkmem/mempools)" = 0 ] || fail "mempools left: $(cat /proc/rkmem/mempools)" || return
	buddyinfo_back_to_load_time "kill -9 of rkmemctl stress all"
}

# Right after the killed run: rmmod must be clean (nothing still holds the module), and the
# module loads again.
test_rel_rmmod_after_kill() {
	# Only what the kernel says from here on (the suite's last test checks all of dmesg).
	lines=$(dmesg | wc -l)
	unload || fail "rmmod right after kill -9 of stress all failed" || return
	bad=$(dmesg | tail -n +$((lines + 1)) | grep -E "$BAD_DMESG")
	load || fail "reload failed" || return
	[ -z "$bad" ] || fail "kernel reports at rmmod: $bad" || return
	rkmemctl version >/dev/null || fail "version after reload failed" || return
	buddyinfo_back_to_load_time "rmmod and reload"
}

# race.sh takes the tests and runs them itself.
[ "${REL_DEFINE_ONLY:-0}" = 1 ] && return 0
echo "# reliability sizes: threads $REL_THREADS, stress all ${REL_STRESS_SECONDS}s, stress kernel ${REL_KSTRESS_OPS:+$REL_KSTRESS_OPS ops, at most }${REL_KSTRESS_SECONDS}s, fuzz $REL_FUZZ_OPS ops, kill -9 after ${REL_KILL_AFTER}s"
t reliability_stress_all test_rel_stress_all
t reliability_kernel_stress test_rel_kernel_stress
t reliability_kernel_stress_finds_corruption test_rel_kernel_stress_finds_corruption
t reliability_longest_calls_are_quiet test_rel_longest_calls_are_quiet
t reliability_fuzz test_rel_fuzz
t reliability_kill9_stress_all test_rel_kill9_stress_all
t reliability_rmmod_after_kill test_rel_rmmod_after_kill
