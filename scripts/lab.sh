#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make lab: boot a kernel (FLAVOR, default fast), run every chapter of
# `rkmemctl lab` (tests/guest/lab.sh), then draw each chapter's pictures as PNG
# on the host (scripts/lab_figures.py, matplotlib) from the RKLAB lines of the
# console log, into results/lab-DATE-FLAVOR/.
set -euo pipefail
. "$(dirname "$0")/env.sh"

flavor=${1:-fast}
out="$RKMEM_ROOT/results/lab-$(date -u +%Y%m%d-%H%M%S)-$flavor"
mkdir -p "$out"
rc=0
"$RKMEM_ROOT/scripts/guest.sh" "$flavor" lab "$out/console.log" || rc=$?
grep 'RKLAB ' "$out/console.log" | sed 's/^.*RKLAB //' >"$out/figures.jsonl" || true
if [ -s "$out/figures.jsonl" ]; then
	"$RKMEM_PYTHON" "$RKMEM_ROOT/scripts/lab_figures.py" draw "$out/figures.jsonl" "$out" >/dev/null ||
		{ say "drawing the lab's pictures failed"; rc=1; }
	say "the chapters' pictures: $(cd "$out" && ls ./*.png | tr '\n' ' ')in $out"
	say "to make them the README's screenshots: make lab-figures LAB=$out"
else
	say "no figure data in $out/console.log"
	[ "$rc" != 0 ] || rc=1
fi
exit $rc
