#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Prints the Criterion results of `cargo bench` (tests/bench) as a Markdown table: ns per
allocator operation (the median of Criterion's samples for one run, robust to the preemption
spikes of a shared machine, divided by the run's operations, which the benchmarks declare as
their throughput) for rkmem and its peer, and the ratio.

    python3 tests/bench/criterion_table.py [target/criterion directory]
"""
import json
import pathlib
import sys

GROUPS = ["buddy_pairs_merged", "buddy_pairs_ready", "buddy_random", "buddy_fill_drain",
          "slab_pairs", "slab_pairs_pinned", "slab_batch"]


def ns_per_op(d: pathlib.Path) -> float:
    est = json.loads((d / "new" / "estimates.json").read_text())
    bench = json.loads((d / "new" / "benchmark.json").read_text())
    point = est["median"]["point_estimate"]
    return point / bench["throughput"]["Elements"]


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1
                        else pathlib.Path(__file__).parent / "target" / "criterion")
    print("| case | rkmem ns/op | peer ns/op | rkmem / peer |")
    print("| --- | ---: | ---: | ---: |")
    found = 0
    for group in GROUPS:
        rk = root / group / "rkmem"
        if not rk.is_dir():
            continue
        params = sorted(p.name for p in rk.iterdir() if (p / "new").is_dir())
        params.sort(key=lambda s: (len(s), s))
        for param in params:
            peer = root / group / "peer" / param
            if not (peer / "new").is_dir():
                continue
            r, p = ns_per_op(rk / param), ns_per_op(peer)
            print(f"| {group}/{param} | {r:.2f} | {p:.2f} | {r / p:.2f}x |")
            found += 1
    if not found:
        print(f"criterion_table.py: no results under {root}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
