// SPDX-License-Identifier: GPL-2.0

//! The allocators, as the module runs them: what users of rkmem get memory from. Their
//! decisions are `rkcore`'s; these files own the memory, the locks and the per-CPU state.

pub(crate) mod arena;
pub(crate) mod classes;
pub(crate) mod mempool;
pub(crate) mod percpu;
pub(crate) mod reclaim;
pub(crate) mod registry;
pub(crate) mod slab;
