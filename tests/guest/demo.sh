#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make run` shows: the module loaded, its /proc files, an ioctl round
# trip, the buddy allocator splitting and coalescing blocks (rkmemctl pages
# demo), and a clean unload.
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
show rmmod rkmem
show ls /proc/rkmem /dev/rkmem 2>&1 || true
echo
echo "rkmem demo: done"
