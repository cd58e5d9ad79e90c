# SPDX-License-Identifier: GPL-2.0
# In-guest tests of reclaim: the shrinker under drop_caches and under real memory pressure,
# and the low/high watermarks. Sourced by suite.sh (uses lib.sh's helpers).

shrink_value() {
	sed -n "s/^$1 \([0-9]*\)$/\1/p" /proc/rkmem/shrinker
}

meminfo_kb() {
	sed -n "s/^$1: *\([0-9]*\) kB$/\1/p" /proc/meminfo
}

# Grow the arena with blocks that are then freed, so that only cached memory is left: the
# shrinker must give it all back to the host kernel when drop_caches calls it.
test_drop_caches_calls_shrinker() {
	rkmemctl trim >/dev/null || fail "rkmemctl trim failed" || return
	# Fill a size class and free every object: its empty slabs stay cached (up to the kept
	# number) and some objects stay in the per-CPU caches.
	rkmemctl cache hold dropc --size 64 --count 2000 --rkmalloc 64 --seconds 0 >/dev/null 2>&1 ||
		fail "filling rkmalloc-64 failed" || return
	slabs=$(awk '$1 == "rkmalloc-64" { print $15 }' /proc/rkmem/slabinfo)
	empty=$(shrink_value reclaimable_empty_slab_pages)
	[ "${slabs:-0}" -gt 0 ] && [ "$empty" -gt 0 ] ||
		fail "after freeing every object: rkmalloc-64 has ${slabs:-?} slabs, $empty empty slab pages reclaimable; want cached empty slabs" || return
	rkmemctl pages alloc --order 10 --count 8 >/dev/null || fail "allocating 8 blocks failed" || return
	rkmemctl pages alloc --order 0 --count 64 >/dev/null || fail "allocating 64 pages failed" || return
	arena=$(stat_value arena_pages)
	initial=$(($(stat_value arena_initial_mb) * 256))
	[ "$arena" -gt "$initial" ] || fail "the arena did not grow ($arena pages)" || return
	reclaimable=$(shrink_value reclaimable_now)
	[ "$reclaimable" -ge $((arena - initial)) ] ||
		fail "shrinker counts $reclaimable reclaimable pages, want >= $((arena - initial))" || return
	scans=$(shrink_value scan_calls)
	counts=$(shrink_value count_calls)
	to_host=$(shrink_value pages_to_host)
	free_before=$(meminfo_kb MemFree)
	echo 2 >/proc/sys/vm/drop_caches
	free_after=$(meminfo_kb MemFree)
	[ "$(shrink_value count_calls)" -gt "$counts" ] || fail "count_objects was not called" || return
	[ "$(shrink_value scan_calls)" -gt "$scans" ] || fail "scan_objects was not called" || return
	[ "$(stat_value arena_pages)" = "$initial" ] ||
		fail "arena_pages $(stat_value arena_pages) after drop_caches, want $initial" || return
	[ "$(stat_value arena_pcp_pages)" = 0 ] || fail "per-CPU caches still hold pages" || return
	back=$(($(shrink_value pages_to_host) - to_host))
	[ "$back" -ge $((arena - initial)) ] || fail "pages_to_host grew by $back, want $((arena - initial))" || return
	# The host kernel got the memory: MemFree rose by at least 3/4 of it.
	[ $((free_after - free_before)) -ge $(((arena - initial) * 3)) ] ||
		fail "MemFree rose by $((free_after - free_before)) kB, want >= $(((arena - initial) * 3)) kB" || return
	[ "$(shrink_value reclaimable_now)" = 0 ] || fail "still reclaimable: $(shrink_value reclaimable_now)" || return
	slabs=$(awk '$1 == "rkmalloc-64" { print $15 }' /proc/rkmem/slabinfo)
	[ "$slabs" = 0 ] || fail "rkmalloc-64 still has $slabs slabs after drop_caches"
}

test_watermarks_defaults() {
	max=$(sed -n 's/^max_pages //p' /proc/rkmem/watermarks)
	low=$(sed -n 's/^low //p' /proc/rkmem/watermarks)
	high=$(sed -n 's/^high //p' /proc/rkmem/watermarks)
	[ "$low" = $((max / 4)) ] && [ "$high" = $((max / 8)) ] ||
		fail "low $low high $high, want $((max / 4)) $((max / 8)) for max $max"
}

test_watermarks_bad_writes_refused() {
	before=$(cat /proc/rkmem/watermarks | grep -E '^(low|high) ')
	for bad in "100 200" "200 200" "x y" "1" "1 2 3" "99999999 1" "-1 0"; do
		if echo "$bad" 2>/dev/null >/proc/rkmem/watermarks; then
			fail "writing '$bad' succeeded"
			return
		fi
	done
	after=$(cat /proc/rkmem/watermarks | grep -E '^(low|high) ')
	[ "$before" = "$after" ] || fail "watermarks changed after refused writes: $after"
}

# Hold live blocks so that the arena's free pages fall below low, then below high: the
# asynchronous, then the synchronous reclaim counters must move.
test_watermarks_drive_reclaim() {
	rkmemctl trim >/dev/null
	max=$(sed -n 's/^max_pages //p' /proc/rkmem/watermarks)
	# free = max - used; low at 3/4 of max free (crossed after 1/4 is used), high at 1/2.
	echo "$((max * 3 / 4)) $((max / 2))" >/proc/rkmem/watermarks || fail "setting watermarks failed" || return
	kicks=$(stat_value reclaim_async_kicks)
	sync=$(stat_value reclaim_sync_runs)
	blocks=$((max / 1024))
	# 3/8 of the arena: below low, above high.
	rkmemctl pages hold --order 10 --count $((blocks * 3 / 8)) --seconds 30 >/tmp/hold1 2>&1 &
	h1=$!
	i=0
	while ! grep -q holding /tmp/hold1 && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
	rkmemctl pages alloc --order 0 --count 8 >/dev/null
	p1=$(sed -n 's/^pressure //p' /proc/rkmem/watermarks)
	k1=$(stat_value reclaim_async_kicks)
	s1=$(stat_value reclaim_sync_runs)
	# 3/8 more: past high.
	rkmemctl pages alloc --order 10 --count $((blocks * 3 / 8)) >/dev/null
	arc=$?
	s2=$(stat_value reclaim_sync_runs)
	kill $h1 2>/dev/null
	wait $h1 2>/dev/null
	echo "$((max / 4)) $((max / 8))" >/proc/rkmem/watermarks
	rkmemctl trim >/dev/null
	[ "$arc" = 0 ] || fail "allocating past the high watermark failed" || return
	[ "$p1" = async ] || fail "pressure '$p1' with 3/8 of the arena held, want async" || return
	[ "$k1" -gt "$kicks" ] || fail "reclaim_async_kicks did not move ($kicks -> $k1)" || return
	[ "$s1" = "$sync" ] || fail "synchronous reclaim ran above the high watermark ($sync -> $s1)" || return
	[ "$s2" -gt "$s1" ] || fail "reclaim_sync_runs did not move past high ($s1 -> $s2)" || return
	[ "$(stat_value reclaim_async_runs)" -gt 0 ] || fail "the background trimmer never ran"
}

# The shrinker's contract (include/linux/shrinker.h): count_objects is what a scan could free
# and scan_objects returns what it freed; for rkmem, freed means given to the host kernel.
# Per-CPU pages and empty slabs only move inside rkmem when a scan empties them: they are
# neither counted nor reported as freed.
test_shrinker_reports_only_host_memory() {
	rkmemctl trim >/dev/null || fail "rkmemctl trim failed" || return
	# Blocks held across the arena's slots, so that (nearly) no slot can go back...
	rkmemctl pages hold --order 9 --count 3 >/tmp/hold9.out 2>&1 &
	pid=$!
	wait_line $pid holding /tmp/hold9.out || {
		kill -9 $pid 2>/dev/null
		fail "no 'holding' line from rkmemctl pages hold: $(cat /tmp/hold9.out)"
		return
	}
	# ... and pages cached per CPU (order-0 pages freed at exit stay in the per-CPU caches).
	rkmemctl pages alloc --order 0 --count 64 >/dev/null || fail "allocating 64 pages failed" || return
	pcp=$(stat_value arena_pcp_pages)
	[ "$pcp" -gt 0 ] || fail "no pages cached per CPU: the test would prove nothing" || return
	count=$(shrink_value reclaimable_now)
	host=$(shrink_value reclaimable_host_pages)
	[ "$count" = "$host" ] || fail "count_objects reports $count pages, $host of them for the host" || return
	[ $((count % 1024)) = 0 ] || fail "count_objects reports $count pages: not whole 4 MiB blocks" || return
	freed=$(shrink_value objects_freed)
	to_host=$(shrink_value pages_to_host)
	echo 2 >/proc/sys/vm/drop_caches
	d_freed=$(($(shrink_value objects_freed) - freed))
	d_host=$(($(shrink_value pages_to_host) - to_host))
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ "$d_freed" = "$d_host" ] ||
		fail "scan_objects reported $d_freed pages freed while the host got $d_host ($pcp were cached per CPU)" || return
	# With the holder gone its slots are free: now the host gets them, and only that is reported.
	freed=$(shrink_value objects_freed)
	to_host=$(shrink_value pages_to_host)
	[ "$(shrink_value reclaimable_now)" -ge 1024 ] ||
		fail "with the holder gone, count_objects reports $(shrink_value reclaimable_now) pages" || return
	echo 2 >/proc/sys/vm/drop_caches
	d_freed=$(($(shrink_value objects_freed) - freed))
	d_host=$(($(shrink_value pages_to_host) - to_host))
	[ "$d_host" -ge 1024 ] || fail "drop_caches gave the host $d_host pages, want >= 1024" || return
	[ "$d_freed" = "$d_host" ] || fail "scan_objects reported $d_freed pages freed, the host got $d_host" || return
	buddyinfo_back_to_load_time "the shrinker accounting test"
}

# The kernel's own view of rkmem's shrinker (CONFIG_SHRINKER_DEBUG, debug kernel):
# /sys/kernel/debug/shrinker/rkmem-<id>/count calls count_objects (it must say what
# /proc/rkmem/shrinker's reclaimable_now says, as "<memcg id> <count per node>": the root
# memcg's id, rkmem's shrinker is not memcg-aware), and a write of "0 <node> <nr_to_scan>" to
# scan (memcg 0: the kernel's form for a shrinker that is not memcg-aware) calls scan_objects: the pages go to the host,
# counted in /proc/rkmem/shrinker. With nothing reclaimable, count shows no line.
test_shrinker_debugfs() {
	dir=/sys/kernel/debug/shrinker
	[ -d $dir ] || skip "no CONFIG_SHRINKER_DEBUG in this kernel" || return
	set -- $dir/rkmem-*
	[ $# = 1 ] && [ -d "$1" ] || fail "want one $dir/rkmem-* directory, have: $*" || return
	d=$1
	rkmemctl trim >/dev/null || fail "rkmemctl trim failed" || return
	counts=$(shrink_value count_calls)
	line=$(cat "$d/count")
	[ "$(shrink_value count_calls)" -gt "$counts" ] || fail "reading count did not call count_objects" || return
	r=$(shrink_value reclaimable_now)
	if [ "$r" = 0 ]; then
		[ -z "$line" ] || fail "count says '$line' with nothing reclaimable, want no line" || return
	else
		echo "$line" | grep -qE "^[0-9]+ $r\$" || fail "count says '$line' after a trim, reclaimable_now $r" || return
	fi
	# Reclaimable memory: grown arena blocks freed again, cached empty slabs.
	rkmemctl cache hold dbgfs --size 64 --count 2000 --rkmalloc 64 --seconds 0 >/dev/null 2>&1 &&
		rkmemctl pages alloc --order 10 --count 4 >/dev/null || fail "making reclaimable memory failed" || return
	want=$(shrink_value reclaimable_now)
	line=$(cat "$d/count")
	[ "$want" -gt 0 ] || fail "nothing reclaimable after growing the arena" || return
	echo "$line" | grep -qE "^[0-9]+ $want\$" || fail "count says '$line', /proc/rkmem/shrinker reclaimable_now $want" || return
	for bad in "x" "1 0 5" "0 7 5"; do
		if echo "$bad" 2>/dev/null >"$d/scan"; then
			fail "scan accepted '$bad'" || return
		fi
	done
	scans=$(shrink_value scan_calls)
	scanned=$(shrink_value objects_scanned)
	to_host=$(shrink_value pages_to_host)
	arena=$(stat_value arena_pages)
	echo "0 0 $want" >"$d/scan" || fail "writing '0 0 $want' to scan failed" || return
	[ "$(shrink_value scan_calls)" = $((scans + 1)) ] || fail "scan_calls $scans -> $(shrink_value scan_calls), want one more" || return
	[ "$(shrink_value objects_scanned)" = $((scanned + want)) ] ||
		fail "objects_scanned $scanned -> $(shrink_value objects_scanned), want +$want" || return
	got=$(($(shrink_value pages_to_host) - to_host))
	[ "$got" -gt 0 ] || fail "the scan gave the host nothing" || return
	[ "$(stat_value arena_pages)" -lt "$arena" ] || fail "arena_pages still $arena after the scan" || return
	echo "    count '$line'; scan of $want gave the host $got pages; count now '$(cat "$d/count")'"
	rkmemctl trim >/dev/null
}

t drop_caches_calls_shrinker test_drop_caches_calls_shrinker
t shrinker_debugfs test_shrinker_debugfs
t shrinker_reports_only_host_memory test_shrinker_reports_only_host_memory
t watermarks_defaults test_watermarks_defaults
t watermarks_bad_writes_refused test_watermarks_bad_writes_refused
t watermarks_drive_reclaim test_watermarks_drive_reclaim
