// SPDX-License-Identifier: GPL-2.0

//! Criterion benchmarks: every case of `rkmem_bench::workload` on rkmem and on its peer.
//!
//! Each benchmark id is `<group>/<side>/<param>`; one iteration is one run of the case (see
//! `Case::ops_per_run`), declared as the throughput so Criterion also reports operations per
//! second. The allocator is built and warmed up (one run) before Criterion's own warm-up, and
//! `run_case` checks that its free frames (objects) after the warm-up run and after Criterion's
//! iterations are those it had before (a violation panics and fails the benchmark).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rkmem_bench::workload::{run_case, Case, Side, Visit};
use std::time::Duration;

struct Iter<'a, 'b>(&'a mut criterion::Bencher<'b>);

impl Visit for Iter<'_, '_> {
    fn visit<F: FnMut()>(self, run: F) {
        self.0.iter(run);
    }
}

fn benches(c: &mut Criterion) {
    let cases = Case::all();
    let mut groups: Vec<&str> = cases.iter().map(|c| c.group()).collect();
    groups.dedup();
    for group in groups {
        let mut g = c.benchmark_group(group);
        for case in cases.iter().filter(|c| c.group() == group) {
            g.throughput(Throughput::Elements(case.ops_per_run() as u64));
            for side in Side::ALL {
                g.bench_function(BenchmarkId::new(side.name(), case.param()), |b| {
                    run_case(*case, side, Iter(b));
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = alloc;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(alloc);
