#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The timed benchmarks alone (slab pairs and batches, rkmalloc, pages, mempools), without the
# objects-per-slab probe and the fragmentation workload: `BENCH=bench-timed make bench`.
BENCH_ARGS="--only slab,batch,kmalloc,pages,mempool"
export BENCH_ARGS
exec sh /tests/bench.sh
