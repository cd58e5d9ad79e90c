# SPDX-License-Identifier: GPL-2.0
# The chapters of `rkmemctl lab` against the textbook's pictures, each on a freshly loaded module
# (sourced by suite.sh after lib.sh). A chapter exits non-zero if any row differs; the checks
# below also look for each expected row in its output, so that a chapter that stops printing
# rows, or prints the wrong ones, fails too.

# lab_reload [PARAM=VALUE...]: a fresh module, by default as the buddy chapter needs it (one
# wholly free 4 MiB slot: arena_initial_mb=4).
lab_reload() {
	[ $# -gt 0 ] || set -- arena_initial_mb=4
	unload || fail "rmmod failed" || return
	load "$@" || fail "insmod $* failed"
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

test_lab_slab_matches_textbook() {
	lab_reload || return
	rm -f /tmp/lab-slab.jsonl
	out=/tmp/lab-slab.out
	rkmemctl lab slab --data /tmp/lab-slab.jsonl >$out 2>&1 || fail "rkmemctl lab slab failed: $(grep -E 'DIFFERS|rkmemctl' $out | head -n 3)" || return
	# The layout is the kernel's (red zones change it): objects per slab n, empty slabs kept k.
	line=$(grep '^cache lab_slab: ' $out)
	n=$(echo "$line" | sed -n 's/^cache lab_slab: \([0-9]*\) objects per slab, .*/\1/p')
	k=$(echo "$line" | sed -n 's/.* keeps \([0-9]*\) empty slabs$/\1/p')
	[ -n "$n" ] && [ -n "$k" ] && [ "$n" -ge 3 ] || fail "no layout line: $line" || return
	steps=$((10 + k + 2 + 1))
	grep -q "^lab slab: $steps of $steps steps match the textbook\$" $out || fail "no '$steps of $steps steps match' line" || return
	[ "$(grep -c '^  rkmem:    .*   (same)$' $out)" = $steps ] || fail "not $steps kernel pictures the same as the textbook's" || return
	[ "$(grep -c '   (agrees with the lists)$' $out)" = $steps ] || fail "not $steps slabinfo rows agreeing with the lists" || return
	! grep -q DIFFERS $out || fail "a step differs: $(grep DIFFERS $out | head -n 1)" || return
	# The textbook's pictures: a new slab, full, three more, one partial again, the partial slab
	# preferred, an empty slab kept, the partial one before the empty one, an empty one reused.
	for row in "full: - | partial: A(1/$n) | empty: -" "full: A | partial: - | empty: -" \
		"full: C B A | partial: D(2/$n) | empty: -" \
		"full: C A | partial: B($((n - 1))/$n) D(2/$n) | empty: -" \
		"full: B C A | partial: D(2/$n) | empty: -" "full: B C | partial: D(2/$n) | empty: A" \
		"full: B C | partial: D(3/$n) | empty: A" "full: B C | partial: - | empty: D A" \
		"full: B C | partial: D(1/$n) | empty: A"; do
		grep -qxF "  rkmem:    $row   (same)" $out || fail "no rkmem picture '$row' (same)" || return
	done
	# The first slab came from a block of its own, above the arena's initial 4 MiB (slot 0).
	grep -q "^  rkmem's new slabs: A at slot [1-9][0-9]* page " $out || fail "slab A is not above slot 0: $(grep "new slabs: A" $out)" || return
	# Every slab emptied: the first k are kept (the last emptied in front), the two after them
	# go back at once; then the shrinker takes the k kept ones.
	kept=$(echo A B C D E F G H I J | cut -d' ' -f1-"$k" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }')
	grep -qxF "  rkmem:    full: - | partial: - | empty: $kept   (same)" $out || fail "no picture with the $k kept empty slabs '$kept'" || return
	[ "$(grep -c 'full -> partial -> empty -> back to the buddy allocator' $out)" = 2 ] || fail "not two slabs back to the buddy allocator at once" || return
	[ "$(grep '^  rkmem:    ' $out | tail -n 1)" = "  rkmem:    full: - | partial: - | empty: -   (same)" ] || fail "the last picture is not three empty lists: $(grep '^  rkmem:    ' $out | tail -n 1)" || return
	[ "$(grep '^  slabinfo: ' $out | tail -n 1)" = "  slabinfo: lab_slab active_objs 0 num_objs 0 active_slabs 0 num_slabs 0   (agrees with the lists)" ] || fail "slabinfo after the shrinker: $(grep '^  slabinfo: ' $out | tail -n 1)" || return
	scans=$(sed -n 's/^  shrinker: count_calls +[0-9]*, scan_calls +\([0-9]*\), .*/\1/p' $out)
	[ "${scans:-0}" -ge 1 ] || fail "the shrinker was not asked to scan: $(grep '^  shrinker: ' $out)" || return
	grep -q "^  the shrinker took back the $k empty slabs " $out || fail "no line on the shrinker taking back $k empty slabs" || return
	# The figure data: the layout, every step the same and its slabinfo agreeing, the shrinker's.
	d=/tmp/lab-slab.jsonl
	[ "$(grep -c '^{"chapter":"slab","data":{.*},"figure":"layout"}$' $d)" = 1 ] || fail "not one layout record in --data" || return
	[ "$(grep '"figure":"step"' $d | grep '"same":true' | grep -c '"slabinfo_ok":true')" = $steps ] || fail "not $steps step records the same in --data: $(head -c 300 $d)" || return
	[ "$(grep '"figure":"step"' $d | grep -c '"shrinker":{')" = 1 ] || fail "not one step record with the shrinker's counters in --data" || return
	# Cleaned up: the cache is gone.
	! grep -q '^lab_slab ' /proc/rkmem/slabinfo || fail "lab_slab is still in slabinfo"
}

test_lab_watermarks_matches_textbook() {
	lab_reload || return
	marks=$(sed -n 's/^\(low\|high\) //p' /proc/rkmem/watermarks | tr '\n' ' ')
	pro=$(cat /proc/rkmem/compaction_proactiveness)
	rm -f /tmp/lab-wm.jsonl
	rkmemctl lab watermarks --data /tmp/lab-wm.jsonl >/tmp/lab-wm.out 2>&1 || fail "rkmemctl lab watermarks failed: $(grep -E 'DIFFERS|rkmemctl|stage' /tmp/lab-wm.out | head -n 8)" || return
	grep -q '^lab watermarks: 4 of 4 stages match the textbook$' /tmp/lab-wm.out || fail "no '4 of 4 stages match' line" || return
	for want in 'nothing happens' 'the background worker cleans, asynchronously' 'the allocating task cleans, synchronously'; do
		grep -qxF "  rkmem:    $want   (same)" /tmp/lab-wm.out || fail "no stage where rkmem '$want' (same)" || return
	done
	grep -q 'Cannot allocate memory (as documented)\|ENOMEM.*(as documented)' /tmp/lab-wm.out || fail "the last resort is not ENOMEM: $(grep -A1 'stage 4' /tmp/lab-wm.out)" || return
	grep -q "oom_score [0-9]" /tmp/lab-wm.out || fail "no oom_score in the OOM description" || return
	# Who: with tracing, the worker's events come from a kworker, the synchronous ones from rkmemctl.
	if grep -q tracefs /proc/filesystems; then
		grep -q 'rkmem_reclaim events: kworker/[^ ]* (async, [1-9][0-9]* pages)' /tmp/lab-wm.out || fail "no async rkmem_reclaim event from a kworker" || return
		grep -q 'rkmem_reclaim events: rkmemctl (this task) (sync, [1-9][0-9]* pages)' /tmp/lab-wm.out || fail "no sync rkmem_reclaim event from rkmemctl" || return
	fi
	[ "$(grep -c '"figure":"stage"' /tmp/lab-wm.jsonl)" = 3 ] || fail "not 3 stages in --data" || return
	grep -q '"figure":"last_resort"' /tmp/lab-wm.jsonl || fail "no last_resort in --data" || return
	# What the chapter changed is back.
	[ "$(sed -n 's/^\(low\|high\) //p' /proc/rkmem/watermarks | tr '\n' ' ')" = "$marks" ] || fail "watermarks not restored" || return
	[ "$(cat /proc/rkmem/compaction_proactiveness)" = "$pro" ] || fail "compaction_proactiveness not restored"
}

test_lab_fragmentation_matches_textbook() {
	lab_reload arena_initial_mb=16 || return
	rm -f /tmp/lab-frag.jsonl
	rkmemctl lab fragmentation --data /tmp/lab-frag.jsonl >/tmp/lab-frag.out 2>&1 || fail "rkmemctl lab fragmentation failed: $(grep -E 'DIFFERS|rkmemctl|NO$' /tmp/lab-frag.out | head -n 5)" || return
	grep -q '^lab fragmentation: 6 of 6 checks match the textbook$' /tmp/lab-frag.out || fail "no '6 of 6 checks match' line" || return
	[ "$(grep -c '^(same: /proc/rkmem/extfrag is the textbook' /tmp/lab-frag.out)" = 2 ] || fail "the kernel's indices are not the textbook's before and after" || return
	grep -q 'the arena took a new 4 MiB block from the host   (as the textbook says)$' /tmp/lab-frag.out || fail "the fragmented arena served the larger request" || return
	grep -qE '^compaction \(RKMEM_IOC_COMPACT\): [1-9][0-9]* pages moved behind their handles, [1-9][0-9]* slots emptied' /tmp/lab-frag.out || fail "compaction moved nothing or emptied no slot: $(grep '^compaction' /tmp/lab-frag.out)" || return
	grep -q 'read back as written after moving: yes$' /tmp/lab-frag.out || fail "a moved block changed" || return
	[ "$(grep -c '"figure":"state"' /tmp/lab-frag.jsonl)" = 2 ] || fail "not 2 states in --data" || return
	# Nothing left behind: the arena is back to its load-time map once trimmed.
	rkmemctl trim >/dev/null
	[ "$(cat /proc/rkmem/buddyinfo)" = "$(load_time_buddyinfo)" ] || fail "buddyinfo after the chapter is not the load-time one: $(cat /proc/rkmem/buddyinfo)"
}

test_lab_routes_match_textbook() {
	# kvmalloc's kmalloc takes no direct reclaim above a page: compact the host's memory first,
	# so that its blocks up to 1 MiB are there as in a freshly booted machine (the textbook's).
	[ -w /proc/sys/vm/compact_memory ] && echo 1 >/proc/sys/vm/compact_memory
	rm -f /tmp/lab-routes.jsonl
	if ! rkmemctl lab routes --data /tmp/lab-routes.jsonl >/tmp/lab-routes.out 2>&1; then
		# KASAN and KFENCE (the debug kernel) may change what kmalloc's ksize() answers.
		d=$(grep -m 1 DIFFERS /tmp/lab-routes.out | tr -s ' ')
		if [ "$RKMEM_FLAVOR" != fast ] && [ -n "$d" ] && ! grep DIFFERS /tmp/lab-routes.out | grep -qvE '^ *[0-9MiB ]* (kmalloc|kvmalloc) '; then
			skip "$RKMEM_FLAVOR kernel: only kmalloc's rows differ: $d"
			return
		fi
		fail "rkmemctl lab routes failed: $(grep -E 'DIFFERS|rkmemctl' /tmp/lab-routes.out | head -n 3)"
		return
	fi
	grep -q '^lab routes: 49 of 49 rows match the textbook$' /tmp/lab-routes.out || fail "no '49 of 49 rows match' line" || return
	[ "$(grep -c ' (same)$' /tmp/lab-routes.out)" = 49 ] || fail "not 49 rows marked (same)" || return
	! grep -q DIFFERS /tmp/lab-routes.out || fail "a row differs" || return
	grep -q '^  KMALLOC_MAX_CACHE_SIZE 8192, KMALLOC_MAX_SIZE 4194304, PAGE_SIZE 4096$' /tmp/lab-routes.out || fail "no line of the host's limits" || return
	# A size class each, whole pages past kmalloc's caches, vmalloc's pages and guard, kvmalloc
	# past KMALLOC_MAX_SIZE, rkmalloc's exact pages; then alloc_pages_exact's 5 of 8 pages.
	for row in \
		'100 kmalloc   kmalloc-128 +128 +28 \(21\.9%\) +\| kmalloc-128 +128 +28 \(21\.9%\)  \(same\)$' \
		'200 kmalloc   kmalloc-256 +256 +56 \(21\.9%\) +\| kmalloc-256 +256 ' \
		'5000 kmalloc   kmalloc-8k +8192 +3192 \(39\.0%\) +\| kmalloc-8k +8192 ' \
		'20000 kmalloc   pages order 3 \(8 pages\) +32768 .*\| pages order 3 \(8 pages\) +32768 ' \
		'vmalloc   vmalloc 2 pages \+ guard +8192 +3192 \(39\.0%\) +\| vmalloc 2 pages \+ guard +8192 ' \
		'8 MiB kmalloc   - \(beyond its largest\) +0 +- +\| - \(beyond its largest\) ' \
		'kvmalloc  vmalloc 2048 pages \+ guard +8388608 +0 \(0\.0%\) +\| vmalloc 2048 pages \+ guard +8388608 ' \
		'rkmalloc  arena 25 exact pages +102400 +2400 \(2\.3%\) +\| arena 25 exact pages +102400 ' \
		'5 +20480 +3 +8 +5 +3 \(37\.5%\) +8 +5  \(same\)$' \
		'17 +69632 +5 +32 +17 +15 \(46\.9%\) +32 +17  \(same\)$'; do
		grep -qE "^ *$row" /tmp/lab-routes.out || fail "no row matching '$row'" || return
	done
	[ "$(grep -c '"figure":"size"' /tmp/lab-routes.jsonl)" = 11 ] || fail "not 11 sizes in --data" || return
	[ "$(grep -c '"figure":"exact"' /tmp/lab-routes.jsonl)" = 5 ] || fail "not 5 exact rows in --data" || return
	! grep -q '"same":false' /tmp/lab-routes.jsonl || fail "a figure record differs in --data"
}

test_lab_routes_refuses_bad_input() {
	# RKMEM_IOC_ROUTES: size 0, above 8 MiB, reserved fields: EINVAL, nothing written back;
	# good calls answer every route and hold nothing after.
	rkmemctl test routes_ >/tmp/lab-routes-bad.out 2>&1 || fail "$(grep -E '^not ok|passed' /tmp/lab-routes-bad.out)" || return
	grep -q '^ok - routes_bad_input_is_einval' /tmp/lab-routes-bad.out || fail "routes_bad_input_is_einval did not run: $(cat /tmp/lab-routes-bad.out)" || return
	grep -q '^ok - routes_answers_every_route' /tmp/lab-routes-bad.out || fail "routes_answers_every_route did not run"
}

t lab_buddy_matches_textbook test_lab_buddy_matches_textbook
t lab_buddy_refuses_used_arena test_lab_buddy_refuses_used_arena
t lab_bitmap_matches_textbook test_lab_bitmap_matches_textbook
t lab_slab_matches_textbook test_lab_slab_matches_textbook
t lab_watermarks_matches_textbook test_lab_watermarks_matches_textbook
t lab_routes_match_textbook test_lab_routes_match_textbook
t lab_routes_refuses_bad_input test_lab_routes_refuses_bad_input
t lab_fragmentation_matches_textbook test_lab_fragmentation_matches_textbook
lab_reload
