// SPDX-License-Identifier: GPL-2.0

//! Module-wide counters, shown in `/proc/rkmem/stats`.

use crate::rkcore::text;
use core::fmt;
use kernel::sync::atomic::{Atomic, Relaxed};

/// Event counters. Relaxed atomics: each is a statistic, read without a consistent snapshot.
pub(crate) struct Stats {
    pub(crate) opens: Atomic<u64>,
    pub(crate) releases: Atomic<u64>,
    pub(crate) ioctls: Atomic<u64>,
    pub(crate) ioctl_errors: Atomic<u64>,
}

/// The module's counters.
pub(crate) static STATS: Stats = Stats {
    opens: Atomic::new(0),
    releases: Atomic::new(0),
    ioctls: Atomic::new(0),
    ioctl_errors: Atomic::new(0),
};

/// Counts one event.
pub(crate) fn inc(counter: &Atomic<u64>) {
    counter.add(1, Relaxed);
}

/// Renders `/proc/rkmem/stats`.
pub(crate) fn show(w: &mut impl fmt::Write) -> fmt::Result {
    let s = &STATS;
    let p = crate::params();
    let opens = s.opens.load(Relaxed);
    let releases = s.releases.load(Relaxed);
    text::write_counters(
        w,
        &[
            ("abi_version", u64::from(crate::uapi::RKMEM_ABI_VERSION)),
            ("arena_initial_mb", u64::from(p.arena_initial_mb)),
            ("arena_max_mb", u64::from(p.arena_max_mb)),
            ("opens", opens),
            ("releases", releases),
            ("open_files", opens.saturating_sub(releases)),
            ("ioctls", s.ioctls.load(Relaxed)),
            ("ioctl_errors", s.ioctl_errors.load(Relaxed)),
        ],
    )
}
