// SPDX-License-Identifier: GPL-2.0

//! Host build of rkmem's pure code. The files are the module's own, included unchanged with
//! `#[path]`; their `#[cfg(test)]` tests run here under `cargo test`.
#![no_std]

#[path = "../../../rust/core/mod.rs"]
pub mod rkcore;

#[path = "../../../rust/uapi.rs"]
pub mod uapi;

#[cfg(test)]
mod uapi_tests;

#[cfg(test)]
mod cabi;

#[cfg(test)]
mod glue_decls;
