#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# What `make lab` shows: every chapter of `rkmemctl lab`, the textbook's
# pictures next to what rkmem did, each on a freshly loaded module (the buddy
# chapter needs the arena as insmod leaves it).
. /tests/lib.sh
rc=0
for chapter in buddy bitmap; do
	unload && load || { echo "lab: reloading the module failed"; exit 1; }
	echo
	echo "\$ rkmemctl lab $chapter"
	rkmemctl lab "$chapter" || rc=1
done
echo
[ "$rc" = 0 ] && echo "rkmem lab: every chapter matches the textbook" || echo "rkmem lab: some chapter differs (see above)"
exit $rc
