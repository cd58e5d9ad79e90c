# SPDX-License-Identifier: GPL-2.0
# The chapters of `rkmemctl lab` against the textbook's pictures, each on a freshly loaded module
# (sourced by suite.sh after lib.sh). A chapter exits non-zero if any row differs; the checks
# below also look for each expected row in its output, so that a chapter that stops printing
# rows, or prints the wrong ones, fails too.

# lab_reload: a fresh module, as the buddy chapter needs (one wholly free 4 MiB slot).
lab_reload() {
	unload || fail "rmmod failed" || return
	load arena_initial_mb=4 || fail "insmod arena_initial_mb=4 failed"
}

test_lab_buddy_matches_textbook() {
	lab_reload || return
	rm -f /tmp/lab-buddy.jsonl
	rkmemctl lab buddy --data /tmp/lab-buddy.jsonl >/tmp/lab-buddy.out 2>&1 || fail "rkmemctl lab buddy failed: $(grep -E 'DIFFERS|rkmemctl' /tmp/lab-buddy.out | head -n 3)" || return
	grep -q '^lab buddy: 9 of 9 rows match the textbook$' /tmp/lab-buddy.out || fail "no '9 of 9 rows match' line" || return
	n=0
	for row in '1024K' 'A-64K | 64K | 128K | 256K | 512K' 'A-64K | 64K | B-128K | 256K | 512K' \
		'A-64K | C-64K | B-128K | 256K | 512K' 'A-64K | C-64K | B-128K | D-128K | 128K | 512K' \
		'A-64K | 64K | B-128K | D-128K | 128K | 512K' '128K | B-128K | D-128K | 128K | 512K' \
		'256K | D-128K | 128K | 512K' '1024K'; do
		grep -qxF "  rkmem:    $row   (same)" /tmp/lab-buddy.out || fail "no rkmem row '$row' (same)" || return
		n=$((n + 1))
	done
	[ "$(grep -c '^  buddyinfo: Node 0' /tmp/lab-buddy.out)" = 9 ] || fail "not 9 buddyinfo lines" || return
	# The figure data: one row per t, as the textbook's, each marked the same.
	[ "$(grep -c '^{"chapter":"buddy","data":{.*"same":true.*},"figure":"row"}$' /tmp/lab-buddy.jsonl)" = 9 ] || fail "not 9 figure rows marked the same in --data: $(head -c 300 /tmp/lab-buddy.jsonl)" || return
	# After D's release the arena is one free order-10 block again, as at load.
	[ "$(cat /proc/rkmem/buddyinfo)" = "$(load_time_buddyinfo)" ] || fail "buddyinfo after the chapter is not the load-time one"
}

test_lab_buddy_refuses_used_arena() {
	# Not on a fresh module: the chapter must refuse, with a non-zero exit and the advice to reload.
	rkmemctl pages hold --order 0 --count 1 --seconds 3 >/tmp/lab-hold.out 2>&1 &
	holder=$!
	wait_line $holder holding /tmp/lab-hold.out || { kill $holder 2>/dev/null; fail "holder did not start"; return; }
	if rkmemctl lab buddy >/tmp/lab-refuse.out 2>&1; then
		kill $holder 2>/dev/null; wait $holder
		fail "rkmemctl lab buddy ran on a used arena"
		return
	fi
	kill $holder 2>/dev/null
	wait $holder
	grep -q 'rmmod rkmem; insmod rkmem.ko' /tmp/lab-refuse.out || fail "no reload advice: $(cat /tmp/lab-refuse.out)"
}

test_lab_bitmap_matches_textbook() {
	lab_reload || return
	rm -f /tmp/lab-bitmap.jsonl
	if ! rkmemctl lab bitmap --data /tmp/lab-bitmap.jsonl >/tmp/lab-bitmap.out 2>&1; then
		# Red zones (a KASAN kernel) change the layout: no textbook picture to compare with.
		if grep -q "layout for a 117-byte struct differs" /tmp/lab-bitmap.out && [ "$RKMEM_FLAVOR" != fast ]; then
			skip "$RKMEM_FLAVOR kernel: $(grep -o '[0-9]* objects in [0-9]* page(s) at a stride of [0-9]* bytes' /tmp/lab-bitmap.out)"
			return
		fi
		fail "rkmemctl lab bitmap failed: $(grep -E 'DIFFERS|rkmemctl' /tmp/lab-bitmap.out | head -n 3)"
		return
	fi
	grep -q '^lab bitmap: 39 of 39 steps match the textbook$' /tmp/lab-bitmap.out || fail "no '39 of 39 steps match' line" || return
	grep -q '^cache: 34 objects per slab, 1 page(s), stride 117$' /tmp/lab-bitmap.out || fail "not 34 objects in one page" || return
	# The first page's objects at 37 + color 64 + N*117; the page full; #3 and #10 freed, their
	# bits reused; the next object opens a second page (color 0) at 37. Textbook, then rkmem.
	grep -qE '^alloc_foo\(\) -> foo #1 +0 +101 +0 +101 +1  10000000 00000000 ' /tmp/lab-bitmap.out || fail "foo #1 is not N=0 at 101" || return
	grep -qE '^alloc_foo\(\) -> foo #34 +33 +3962 +33 +3962 +1  11111111 11111111 11111111 11111111 11$' /tmp/lab-bitmap.out || fail "foo #34 is not N=33 at 3962 with a full page" || return
	grep -qE '^free_foo\(foo #10\) +9 +1154 +9 +1154 +1  11011111 10111111 ' /tmp/lab-bitmap.out || fail "free of #10 did not clear bits 2 and 9" || return
	grep -qE '^alloc_foo\(\) -> foo #35 +2 +335 +2 +335 +1  11111111 10111111 ' /tmp/lab-bitmap.out || fail "foo #35 did not take bit 2 again" || return
	grep -q "35 live objects: page 1 is full, the pool grows by page 2" /tmp/lab-bitmap.out || fail "no line on the pool growing" || return
	grep -qE '^alloc_foo\(\) -> foo #37 +0 +37 +0 +37 +2  10000000 00000000 ' /tmp/lab-bitmap.out || fail "foo #37 did not open a second page at 37" || return
	[ "$(grep -c ' (same)$' /tmp/lab-bitmap.out)" = 39 ] || fail "not 39 kernel bitmaps the same as the textbook's" || return
	! grep -q DIFFERS /tmp/lab-bitmap.out || fail "a step differs" || return
	[ "$(grep -c '"figure":"step"' /tmp/lab-bitmap.jsonl)" = 39 ] || fail "not 39 steps in --data" || return
	grep -q '"figure":"layout"' /tmp/lab-bitmap.jsonl || fail "no layout in --data"
}

t lab_buddy_matches_textbook test_lab_buddy_matches_textbook
t lab_buddy_refuses_used_arena test_lab_buddy_refuses_used_arena
t lab_bitmap_matches_textbook test_lab_bitmap_matches_textbook
lab_reload
