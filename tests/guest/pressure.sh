# SPDX-License-Identifier: GPL-2.0
# `make guest CMD=pressure`: the real-memory-pressure test of tests/guest/pools.sh alone (a
# user-space hog drives the host kernel into reclaim while `rkmemctl stress pages` runs).
. /tests/lib.sh
PRESSURE_ONLY=1
. /tests/pools.sh
echo "pressure: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
