#!/bin/sh
. /tests/lib.sh
t0=$(date +%s)
rkmemctl fuzz --ops 200000 --threads 2 --seed 0xf022 > /tmp/fz.out 2>&1
echo "rc=$? took $(( $(date +%s) - t0 )) s"
grep -E "not ok|FAIL|want" /tmp/fz.out | head -20
grep -iE "stress|per command" -A3 /tmp/fz.out | head -30
