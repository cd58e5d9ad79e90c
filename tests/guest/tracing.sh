# SPDX-License-Identifier: GPL-2.0
# rkmem's tracepoints (rust/glue/rkmem_trace.h) through tracefs, on the kernels built with
# tracing (debug, race). Sourced by suite.sh (uses lib.sh's helpers).

TRACEFS=/sys/kernel/tracing
RKMEM_EVENTS="rkmem_cache_alloc rkmem_cache_free rkmem_kmalloc rkmem_kfree rkmem_page_alloc
rkmem_page_free rkmem_slab_grow rkmem_slab_release rkmem_arena_grow rkmem_arena_release
rkmem_shrink_count rkmem_shrink_scan rkmem_reclaim rkmem_compact_move"

# The counters the events are checked against, one "name value" per line.
trace_counters() {
	grep -E '^(page_allocs|page_frees|arena_grows|arena_blocks_released|reclaim_async_runs|reclaim_sync_runs) ' /proc/rkmem/stats
	grep -E '^(count_calls|scan_calls) ' /proc/rkmem/shrinker
	grep -E '^(compact_objects_moved|compact_pages_moved) ' /proc/rkmem/compaction
}

# Value of counter $1 in the snapshot file $2.
snap() {
	sed -n "s/^$1 //p" "$2"
}

# Events named $1 in the captured trace (optionally only lines matching $2).
events() {
	grep -E ": $1: " /tmp/trace.out | grep -cE "${2:-.}"
}

# Enables every rkmem event, runs a workload that reaches each of them (objects of a user
# cache and of a size class, pages of an order and exact pages, arena growth and release,
# shrinker calls from drop_caches, synchronous reclaim under raised watermarks, compaction),
# and checks the trace against rkmem's own counters: as many page_alloc/page_free events as
# page_allocs/page_frees moved, arena grows and releases, shrinker count and scan calls,
# reclaim runs, objects and pages moved by compaction; objects of the cache: one alloc and one
# free event per object, slab grows and releases in pairs.
test_tracepoints_agree_with_stats() {
	grep -q tracefs /proc/filesystems || skip "no tracing in this kernel" || return
	[ -d $TRACEFS/events ] || mount -t tracefs nodev $TRACEFS || fail "mounting tracefs failed" || return
	for e in $RKMEM_EVENTS; do
		[ -d $TRACEFS/events/rkmem/$e ] || fail "no event rkmem:$e in $TRACEFS/events" || return
	done
	pro=$(cat /proc/rkmem/compaction_proactiveness)
	marks=$(sed -n 's/^\(low\|high\) //p' /proc/rkmem/watermarks | tr '\n' ' ')
	max=$(sed -n 's/^max_pages //p' /proc/rkmem/watermarks)
	# No background compaction between the snapshots and the events.
	echo 0 >/proc/rkmem/compaction_proactiveness
	rkmemctl trim >/dev/null
	echo 8192 >$TRACEFS/buffer_size_kb
	echo >$TRACEFS/trace
	# The snapshot just before the events go on must be the one just after (no rkmem activity
	# in between, else the window is not exact).
	i=0
	while :; do
		trace_counters >/tmp/trace-c0
		echo 1 >$TRACEFS/events/rkmem/enable
		trace_counters >/tmp/trace-c1
		cmp -s /tmp/trace-c0 /tmp/trace-c1 && break
		echo 0 >$TRACEFS/events/rkmem/enable
		echo >$TRACEFS/trace
		i=$((i + 1))
		[ $i -lt 10 ] || { fail "rkmem's counters never stood still while enabling the events"; return; }
	done
	rkmemctl cache hold trace_obj --size 117 --count 300 --rkmalloc 300 --seconds 0 >/dev/null 2>&1
	rc1=$?
	rkmemctl pages alloc --order 2 --count 40 >/dev/null && rkmemctl pages alloc --exact 3 --count 5 >/dev/null
	rc2=$?
	# Past the arena's initial blocks (it grows); drop_caches has the shrinker give them back.
	rkmemctl cache hold trace_drop --size 64 --count 2000 --rkmalloc 64 --seconds 0 >/dev/null 2>&1
	rkmemctl pages alloc --order 10 --count 6 >/dev/null
	rc3=$?
	echo 2 >/proc/sys/vm/drop_caches
	rkmemctl trim --arena >/dev/null
	# Free pages below both watermarks: every allocation that may sleep reclaims first.
	echo "$((max - 1)) $((max - 2))" >/proc/rkmem/watermarks
	rkmemctl pages alloc --order 0 --count 4 >/dev/null
	rc4=$?
	# shellcheck disable=SC2086 # two numbers
	echo $marks >/proc/rkmem/watermarks
	rkmemctl compact --demo >/dev/null 2>&1
	rc5=$?
	trace_counters >/tmp/trace-c2
	echo 0 >$TRACEFS/events/rkmem/enable
	trace_counters >/tmp/trace-c3
	echo "$pro" >/proc/rkmem/compaction_proactiveness
	cat $TRACEFS/trace >/tmp/trace.out
	lost=$(cat $TRACEFS/per_cpu/cpu*/stats | awk '/^overrun:/ { n += $2 } END { print n + 0 }')
	echo >$TRACEFS/trace
	echo 1408 >$TRACEFS/buffer_size_kb
	[ "$rc1$rc2$rc3$rc4$rc5" = 00000 ] || fail "the workload failed: $rc1 $rc2 $rc3 $rc4 $rc5" || return
	cmp -s /tmp/trace-c2 /tmp/trace-c3 || fail "rkmem's counters moved while disabling the events" || return
	[ "$lost" = 0 ] || fail "the trace buffer lost $lost events" || return
	grep -E ': rkmem_' /tmp/trace.out | head -n 3 | sed 's/^/    /'
	c0=/tmp/trace-c0 c2=/tmp/trace-c2
	for pair in page_allocs:rkmem_page_alloc page_frees:rkmem_page_free \
		arena_grows:rkmem_arena_grow arena_blocks_released:rkmem_arena_release \
		count_calls:rkmem_shrink_count scan_calls:rkmem_shrink_scan; do
		counter=${pair%%:*} event=${pair#*:}
		want=$(($(snap "$counter" $c2) - $(snap "$counter" $c0)))
		got=$(events "$event")
		echo "    $event: $got events, $counter +$want"
		[ "$want" -gt 0 ] || fail "the workload did not move $counter: nothing to compare" || return
		[ "$got" = "$want" ] || fail "$got $event events, but $counter moved by $want" || return
	done
	runs=$(($(snap reclaim_async_runs $c2) + $(snap reclaim_sync_runs $c2) -
		$(snap reclaim_async_runs $c0) - $(snap reclaim_sync_runs $c0)))
	got=$(events rkmem_reclaim)
	echo "    rkmem_reclaim: $got events, reclaim runs +$runs"
	[ "$(snap reclaim_sync_runs $c2)" -gt "$(snap reclaim_sync_runs $c0)" ] ||
		fail "no synchronous reclaim ran under the raised watermarks" || return
	[ "$got" = "$runs" ] || fail "$got rkmem_reclaim events, $runs reclaim runs" || return
	objs=$(($(snap compact_objects_moved $c2) - $(snap compact_objects_moved $c0)))
	pages=$(($(snap compact_pages_moved $c2) - $(snap compact_pages_moved $c0)))
	got_objs=$(events rkmem_compact_move ' object ')
	got_pages=$(grep -E ': rkmem_compact_move: pages ' /tmp/trace.out |
		sed -n 's/.* bytes=\([0-9]*\).*/\1/p' | awk '{ n += $1 / 4096 } END { print n + 0 }')
	echo "    rkmem_compact_move: $got_objs objects (compact_objects_moved +$objs), $got_pages pages (compact_pages_moved +$pages)"
	[ "$objs" -gt 0 ] && [ "$pages" -gt 0 ] || fail "the compaction demo moved no objects or no pages" || return
	[ "$got_objs" = "$objs" ] || fail "$got_objs object moves traced, compact_objects_moved +$objs" || return
	[ "$got_pages" = "$pages" ] || fail "$got_pages pages of moves traced, compact_pages_moved +$pages" || return
	# The cache's objects: 300 allocated and freed, with this file's call sites.
	a=$(events rkmem_cache_alloc 'cache=trace_obj$')
	f=$(events rkmem_cache_free 'cache=trace_obj$')
	g=$(events rkmem_slab_grow 'cache=trace_obj ')
	r=$(events rkmem_slab_release 'cache=trace_obj ')
	echo "    trace_obj: $a allocs, $f frees, $g slab grows, $r slab releases"
	[ "$a" = 300 ] && [ "$f" = 300 ] || fail "trace_obj: $a alloc and $f free events, want 300 each" || return
	[ "$g" -gt 0 ] && [ "$g" = "$r" ] || fail "trace_obj: $g slab grows, $r releases" || return
	grep -E ': rkmem_cache_alloc: call_site=rust/[a-z/_]+\.rs:[0-9]+ ptr=[0-9a-fx]+ bytes_req=117 bytes_alloc=1[0-9][0-9] cache=trace_obj$' /tmp/trace.out >/dev/null ||
		fail "no rkmem_cache_alloc line of the expected form: $(grep -m1 rkmem_cache_alloc /tmp/trace.out)" || return
	# rkmalloc: 300 of 300 bytes in a size class, every class allocation freed again.
	k=$(events rkmem_kmalloc 'bytes_req=300 bytes_alloc=[0-9]+ route=class$')
	ka=$(events rkmem_kmalloc 'route=class$')
	kf=$(events rkmem_kfree 'route=class$')
	echo "    rkmem_kmalloc: $k of 300 bytes; size classes: $ka allocs, $kf frees"
	[ "$k" = 300 ] || fail "$k rkmem_kmalloc events of 300 bytes, want 300" || return
	[ "$ka" = "$kf" ] || fail "$ka rkmalloc size-class allocations traced, $kf frees"
}

t tracepoints_agree_with_stats test_tracepoints_agree_with_stats
