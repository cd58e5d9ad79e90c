#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# KASAN sees rkmem's own objects (debug kernel, one boot per check): init loaded the module with
# kasan_check=1 (a read after free) or kasan_check=2 (a write past an object's end), and the
# load made that access to an object of a temporary rkmem cache. The check passes only if
# KASAN reported it, as the right kind of bug, in rkmem's code. Run by scripts/check.sh as
# `RKMEM_PARAMS=kasan_check=N scripts/guest.sh debug kasancheck`.
. /tests/lib.sh

PASSED=0 FAILED=0 SKIPPED=0
mode=$(echo " $RKMEM_PARAMS " | sed -n 's/.* kasan_check=\([0-9]*\) .*/\1/p')

test_kasan_reports_rkmem_access() {
	case "$mode" in
	1) want=slab-use-after-free fn=read_after_free ;;
	2) want=slab-out-of-bounds fn=write_past_end ;;
	*) fail "loaded without kasan_check=1 or 2 (RKMEM_PARAMS '$RKMEM_PARAMS')"; return ;;
	esac
	dmesg | grep -q "kasan_check=$mode: done" || fail "the check did not run: $(dmesg | grep -i kasan_check | head -n 3)" || return
	line=$(dmesg | grep -E "BUG: KASAN: $want in " | head -n 1)
	[ -n "$line" ] || fail "no 'BUG: KASAN: $want' report: $(dmesg | grep -E 'BUG: KASAN' | head -n 3)" || return
	echo "    $line"
	# The report's site is this check's function of rkmem (a Rust symbol, mangled, of the module).
	echo "$line" | grep -q "$fn" && echo "$line" | grep -q '\[rkmem\]' ||
		fail "the report's site is not rkmem's $fn: $line" || return
	# The report names the object's cache memory: rkmem's slab page, allocated by the module.
	dmesg | grep -A40 "BUG: KASAN: $want" | grep -qE "(Write|Read) of size 1 at addr" ||
		fail "the report does not show a 1-byte access"
}

t "kasan_reports_rkmem_${mode}" test_kasan_reports_rkmem_access
echo "RKMEM-SUMMARY passed=$PASSED failed=$FAILED skipped=$SKIPPED"
echo "kasancheck: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
