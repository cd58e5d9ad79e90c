// SPDX-License-Identifier: GPL-2.0

//! Runs one benchmark case on one allocator, for `valgrind --tool=callgrind`:
//!
//! ```text
//! trace <rkmem|peer> <case> [runs]     # e.g. trace rkmem buddy_random/10000ops
//! trace --list                          # every case
//! ```
//!
//! The allocator is built and the trace generated, one run warms it up, then `measured` does
//! `runs` runs (default: about 200000 operations). Only `measured` is meant to be counted
//! (`--collect-atstart=no --toggle-collect='*measured*'`). `run_case` checks conservation after
//! the warm-up run and after `measured` (free frames or objects as before the first run; a
//! violation panics). Prints `ops <n>`: the allocator operations inside `measured`, and what was
//! free (`free ...`).

use rkmem_bench::workload::{run_case, Case, Conserved, Side, Visit};
use std::process::ExitCode;

#[inline(never)]
fn measured<F: FnMut()>(runs: usize, run: &mut F) {
    for _ in 0..runs {
        run();
    }
}

struct Measure(usize);

impl Visit for Measure {
    fn visit<F: FnMut()>(self, mut run: F) {
        measured(self.0, &mut run);
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: trace <rkmem|peer> <case> [runs] | trace --list");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for c in Case::all() {
            println!("{c}");
        }
        return ExitCode::SUCCESS;
    }
    let (Some(side), Some(case)) = (
        args.first().and_then(|s| Side::parse(s)),
        args.get(1).and_then(|s| Case::parse(s)),
    ) else {
        return usage();
    };
    let runs = match args.get(2).map(|s| s.parse::<usize>()) {
        None => (200_000 / case.ops_per_run()).max(1),
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };
    let free = run_case(case, side, Measure(runs));
    println!("ops {}", runs * case.ops_per_run());
    match free {
        Conserved::Pages(b) => println!("free {b} (conserved)"),
        Conserved::Objects(c) => println!("free {c} (conserved)"),
    }
    ExitCode::SUCCESS
}
