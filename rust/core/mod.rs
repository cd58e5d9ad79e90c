// SPDX-License-Identifier: GPL-2.0

//! rkmem's pure logic: no kernel crate, no allocation, only `core`.
//!
//! Everything here is compiled twice, unchanged: into the module (as `crate::rkcore`) and on the
//! host by `tests/host`, where the `#[cfg(test)]` unit and property tests of each file run under
//! `cargo test`. The kernel side only owns memory, locks and the kernel's interfaces.

pub mod arena;
pub mod buddy;
pub mod cache;
pub mod compact;
pub mod depot;
pub mod extfrag;
pub mod measure;
pub mod mempool;
pub mod params;
pub mod pcp;
pub mod reclaim;
pub mod routes;
pub mod sizeclass;
pub mod slab;
pub mod slabinfo;
pub mod slablist;
pub mod stress;
pub mod text;
