#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The slab benchmarks alone (cache pairs, batches, rkmalloc vs kmalloc), at full size:
# `BENCH=bench-slab make bench`.
BENCH_ARGS="--only slab,batch,kmalloc"
export BENCH_ARGS
exec sh /tests/bench.sh
