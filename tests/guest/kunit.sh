# SPDX-License-Identifier: GPL-2.0
# The module's KUnit suite (rust/kunit.rs; built on kernels with CONFIG_KUNIT, i.e. the debug
# kernel): KUnit runs it when the module goes live. Sourced by suite.sh.

test_kunit_suite() {
	[ -d /sys/kernel/debug/kunit ] || skip "no KUnit in this kernel" || return
	unload || fail "rmmod failed" || return
	load || fail "insmod failed" || return
	res=/sys/kernel/debug/kunit/rkmem/results
	i=0
	while ! grep -q "ok [0-9]* rkmem" "$res" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -f "$res" ] || fail "no KUnit results for rkmem ($res)" || return
	if grep -q "not ok" "$res"; then
		fail "KUnit: $(grep "not ok" "$res" | tr '\n' ' ')"
		return
	fi
	n=$(grep -c "^ *ok [0-9]* " "$res")
	[ "$n" -ge 6 ] || fail "KUnit ran $n cases (want the 5 cases and the suite line): $(cat "$res")"
	echo "# KUnit: $(grep -c "^ *ok [0-9]* [a-z]" "$res") ok lines in $res"
}

t kunit_suite test_kunit_suite
