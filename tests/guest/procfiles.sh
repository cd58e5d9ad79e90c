# SPDX-License-Identifier: GPL-2.0
# The /proc/rkmem files that mirror a kernel format, captured under load for the host's real
# parsers (tests/host/procparsers.py, run by `make check` after the fast guest: procps slabtop,
# prometheus-node-exporter, collectd's buddyinfo plugin and jc read them there). Sourced by
# suite.sh (uses lib.sh's helpers).
#
# Each file is printed to the console between markers, every line prefixed, with its line
# count and sha256 so that the host can tell a complete, unaltered copy from one a kernel
# message broke into:
#   RKPROC-BEGIN NAME lines=N sha256=HEX
#   RKPROC NAME |LINE            (the line exactly, trailing blanks included)
#   RKPROC-END NAME

# The files and the kernel formats they mirror: buddyinfo (/proc/buddyinfo), slabinfo
# (/proc/slabinfo 2.1), stats and compaction (/proc/vmstat), extfrag (debugfs extfrag).
PROC_CAPTURE_FILES="buddyinfo slabinfo stats compaction extfrag"

# proc_capture_print DIR: prints each captured file of DIR between its markers, with the
# console's log level lowered meanwhile so that no kernel message lands inside a line.
proc_capture_print() {
	read -r console_level rest </proc/sys/kernel/printk
	echo 1 >/proc/sys/kernel/printk
	for pp_file in $PROC_CAPTURE_FILES; do
		pp_path=$1/$pp_file
		echo "RKPROC-BEGIN $pp_file lines=$(wc -l <"$pp_path") sha256=$(sha256sum "$pp_path" | cut -d' ' -f1)"
		while IFS= read -r pp_line; do
			printf 'RKPROC %s |%s\n' "$pp_file" "$pp_line"
		done <"$pp_path"
		echo "RKPROC-END $pp_file"
	done
	echo "$console_level" >/proc/sys/kernel/printk
}

# The load: objects of three caches of this test and of three of rkmalloc's size classes,
# pages of orders 0 and 2 and exact pages, all held by their processes, while a slab stress
# runs on every CPU.
test_proc_files_captured_under_load() {
	pids=
	i=0
	for spec in "cache hold pp_small --size 40 --align 8 --count 500 --rkmalloc 200" \
		"cache hold pp_struct117 --size 117 --count 300" \
		"cache hold pp_large --size 3000 --align 64 --count 20 --rkmalloc 1000" \
		"cache hold pp_tiny --size 8 --count 1000 --rkmalloc 30" \
		"pages hold --order 2 --count 9" \
		"pages hold --exact 3 --count 5" \
		"pages hold --order 0 --count 21"; do
		# shellcheck disable=SC2086
		rkmemctl $spec >/tmp/pp-hold$i.out 2>&1 &
		pid=$!
		pids="$pids $pid"
		wait_line $pid holding /tmp/pp-hold$i.out || {
			# shellcheck disable=SC2086
			kill -9 $pids 2>/dev/null
			wait
			fail "no 'holding' line from rkmemctl $spec: $(cat /tmp/pp-hold$i.out)"
			return
		}
		i=$((i + 1))
	done
	rkmemctl stress slab --seconds 4 >/tmp/pp-stress.out 2>&1 &
	stress=$!
	sleep 2
	rm -rf /tmp/pp
	mkdir -p /tmp/pp
	for pp_file in $PROC_CAPTURE_FILES; do
		cat /proc/rkmem/$pp_file >/tmp/pp/$pp_file
	done
	wait $stress
	src=$?
	# shellcheck disable=SC2086
	kill $pids
	wait
	proc_capture_print /tmp/pp
	[ $src = 0 ] || fail "rkmemctl stress slab exited $src: $(tail -n 3 /tmp/pp-stress.out)" || return
	# What the guest itself sees in the capture: the held objects in their rows, the arena
	# in use, every row in the format the suite's other tests check.
	for want in "pp_small 500" "pp_struct117 300" "pp_large 20" "pp_tiny 1000" \
		"rkmalloc-256 500" "rkmalloc-1k 20" "rkmalloc-32 1000"; do
		set -- $want
		awk -v n="$1" -v c="$2" '$1 == n && $2 >= c { ok = 1 } END { exit !ok }' /tmp/pp/slabinfo ||
			fail "no slabinfo row '$1' with at least $2 active objects: $(cat /tmp/pp/slabinfo)" || return
	done
	bad=$(tail -n +3 /tmp/pp/slabinfo | grep -vE "$SLAB_ROW_RE")
	[ -z "$bad" ] || fail "slabinfo rows not in the 2.1 layout: $bad" || return
	grep -qE '^Node 0, zone    rkmem ([ 0-9]{5}[0-9] ){11}$' /tmp/pp/buddyinfo ||
		fail "buddyinfo not in the kernel's layout: $(cat /tmp/pp/buddyinfo)" || return
	[ "$(cat /tmp/pp/buddyinfo)" != "$(load_time_buddyinfo)" ] ||
		fail "buddyinfo under load is its load-time value" || return
	bad=$(grep -vE '^[a-z_]+ [0-9]+$' /tmp/pp/stats /tmp/pp/compaction)
	[ -z "$bad" ] || fail "stats or compaction lines not 'name value': $bad" || return
	[ "$(sed -n 's/^arena_free_pages //p' /tmp/pp/stats)" -lt "$(sed -n 's/^arena_pages //p' /tmp/pp/stats)" ] ||
		fail "no page of the arena in use under load" || return
	buddyinfo_back_to_load_time "the load of the capture"
}

t proc_files_captured_under_load test_proc_files_captured_under_load
