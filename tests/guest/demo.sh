#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make run` shows: the module loaded, its /proc files, an ioctl round
# trip, the buddy allocator splitting and coalescing blocks (rkmemctl pages
# demo), a slab cache for a 117-byte struct and the slabinfo it shows (rkmemctl
# slab demo, rkmemctl slabtop), a mempool, compaction of a fragmented arena
# (rkmemctl compact --demo) and a clean unload.
set -e
show() {
	echo
	echo "\$ $*"
	"$@"
}

show grep rkmem /proc/modules
show ls -l /dev/rkmem /proc/rkmem
show cat /proc/rkmem/stats
show rkmemctl version
show rkmemctl stats
show cat /proc/rkmem/buddyinfo
show cat /proc/rkmem/extfrag
show rkmemctl pages demo
show rkmemctl pages alloc --order 5 --count 3 --map
show cat /proc/rkmem/buddyinfo
show cat /proc/rkmem/extfrag
show rkmemctl slab demo
# slabtop while another process holds objects of a cache and of rkmalloc's classes.
echo
echo "\$ rkmemctl cache hold sample_117 --size 117 --count 100 --rkmalloc 300 --seconds 2 &"
rkmemctl cache hold sample_117 --size 117 --count 100 --rkmalloc 300 --seconds 2 >/tmp/demo-hold.out 2>&1 &
holder=$!
i=0
until grep -q '^holding' /tmp/demo-hold.out; do
	kill -0 $holder 2>/dev/null || break
	i=$((i + 1))
	[ $i -le 600 ] || break
	sleep 0.1
done
cat /tmp/demo-hold.out
show rkmemctl slabtop --once
wait $holder
tail -n +2 /tmp/demo-hold.out
show rkmemctl pool demo
show rkmemctl compact --demo
show cat /proc/rkmem/compaction
show rmmod rkmem
show ls /proc/rkmem /dev/rkmem 2>&1 || true
echo
echo "rkmem demo: done"
