// SPDX-License-Identifier: GPL-2.0

//! Host benchmarks of rkmem's pure allocator logic against peer Rust allocators.
//!
//! `rust/core` is compiled here unchanged (as in `tests/host`) and driven exactly as the kernel
//! side drives it, minus locks and per-CPU caches; the peers are driven through their public API.
//! Both sides replay the same traces ([`trace`]), built once before anything is measured, through
//! one generic replay loop per trace kind, so they do the same number of operations in the same
//! order. See `tests/bench/README.md`.

#[path = "../../../rust/core/mod.rs"]
pub mod rkcore;

pub mod objects;
pub mod pages;
pub mod trace;
pub mod workload;
