// SPDX-License-Identifier: GPL-2.0

//! What measures and tests the allocators inside the kernel: the benchmarks against the host's
//! allocators (RKMEM_IOC_BENCH), the in-kernel selftest (RKMEM_IOC_SELFTEST), the stress engine (RKMEM_IOC_STRESS) and the same
//! checks as a KUnit suite. No user of rkmem's memory depends on these.

pub(crate) mod bench;
pub(crate) mod kasan;
pub(crate) mod kmemleak;
#[cfg(CONFIG_KUNIT)]
mod kunit;
pub(crate) mod selftest;
pub(crate) mod stress;
