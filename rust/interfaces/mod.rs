// SPDX-License-Identifier: GPL-2.0

//! The interfaces: to user space (the misc device and its ioctls, /proc/rkmem, the counters
//! they show) and to the module's C glue (`ffi`).

pub(crate) mod compaction;
pub(crate) mod dev;
pub(crate) mod ffi;
pub(crate) mod procfs;
pub(crate) mod routes;
pub(crate) mod stats;
pub(crate) mod trace;
