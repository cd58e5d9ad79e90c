#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make lab` shows: every chapter of `rkmemctl lab`, the textbook's
# pictures next to what rkmem did, each on a freshly loaded module (the buddy
# chapter needs the arena as insmod leaves it). The chapters' figure data
# (--data) follows on the console as `RKLAB {json}` lines, which
# scripts/lab_figures.py draws as PNG on the host.
. /tests/lib.sh
rc=0
data=/tmp/lab-figures.jsonl
: >"$data"
for chapter in buddy bitmap slab watermarks routes fragmentation; do
	# The fragmentation chapter wants four slots that stay in the arena.
	params=
	[ "$chapter" = fragmentation ] && params=arena_initial_mb=16
	# shellcheck disable=SC2086 # no parameter or one
	unload && load $params || { echo "lab: reloading the module failed"; exit 1; }
	echo
	echo "\$ rkmemctl lab $chapter"
	rkmemctl lab "$chapter" --data "$data" || rc=1
done
echo
echo "lab: figure data for scripts/lab_figures.py ($(wc -l <"$data") pictures)"
sed 's/^/RKLAB /' "$data"
echo
[ "$rc" = 0 ] && echo "rkmem lab: every chapter matches the textbook" || echo "rkmem lab: some chapter differs (see above)"
exit $rc
