#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Instruction counts (callgrind's Ir) per allocator operation for every benchmark case, rkmem vs
# its peer: figures that do not move with machine noise. Only the function `measured` of
# examples/trace.rs is counted (allocator built, trace generated and one warm-up run excluded).
#
#   bash tests/bench/callgrind.sh [case-filter-regex]
#
# Prints a Markdown table; the raw callgrind files stay in $OUT (default target/callgrind).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
filter=${1:-.}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found" >&2; exit 1; }

cargo build --quiet --release --example trace --manifest-path "$here/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$here/target}/release/examples/trace"
out=${OUT:-$here/target/callgrind}
mkdir -p "$out"

# Ir inside `measured` and the operations it did, for one side and case.
count() {
    local side=$1 case=$2 file ops ir
    file="$out/$side.${case//\//.}.out"
    ops=$(valgrind --tool=callgrind --callgrind-out-file="$file" \
        --collect-atstart=no --toggle-collect='*measured*' \
        "$bin" "$side" "$case" 2>/dev/null | awk '$1 == "ops" { print $2 }')
    ir=$(awk '$1 == "totals:" { print $2 }' "$file")
    [ -n "$ops" ] && [ -n "$ir" ] || { echo "callgrind.sh: no count for $side $case" >&2; exit 1; }
    echo "$ir $ops"
}

echo "valgrind: $(valgrind --version), rustc: $(rustc --version | cut -d' ' -f2)"
echo
echo "| case | rkmem Ir/op | peer Ir/op | rkmem / peer |"
echo "| --- | ---: | ---: | ---: |"
"$bin" --list | grep -E -- "$filter" | while read -r case; do
    read -r rk_ir rk_ops < <(count rkmem "$case")
    read -r peer_ir peer_ops < <(count peer "$case")
    awk -v c="$case" -v ri="$rk_ir" -v ro="$rk_ops" -v pi="$peer_ir" -v po="$peer_ops" 'BEGIN {
        r = ri / ro; p = pi / po
        printf "| %s | %.1f | %.1f | %.2fx |\n", c, r, p, r / p
    }'
done
