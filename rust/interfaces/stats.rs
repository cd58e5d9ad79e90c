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

/// Compaction counters, shown in `/proc/rkmem/compaction`.
pub(crate) struct CompactionStats {
    /// Runs started by `RKMEM_IOC_COMPACT`.
    pub(crate) runs_ioctl: Atomic<u64>,
    /// Runs started by a write to `/proc/rkmem/compact`.
    pub(crate) runs_proc: Atomic<u64>,
    /// Runs started by the shrinker (no wholly free block to give).
    pub(crate) runs_shrinker: Atomic<u64>,
    /// Runs started because fragmentation crossed `compaction_proactiveness`'s threshold.
    pub(crate) runs_proactive: Atomic<u64>,
    pub(crate) objects_moved: Atomic<u64>,
    pub(crate) slabs_freed: Atomic<u64>,
    pub(crate) pages_freed: Atomic<u64>,
    /// Page allocations moved between slots (in pages).
    pub(crate) pages_moved: Atomic<u64>,
    /// Slots evacuated: wholly free afterwards.
    pub(crate) blocks_freed: Atomic<u64>,
    /// Pages of those given back to the host kernel.
    pub(crate) host_pages: Atomic<u64>,
    /// Slots isolated but not emptied (a page came back into use meanwhile, or no room).
    pub(crate) blocks_failed: Atomic<u64>,
    pub(crate) pinned_skips: Atomic<u64>,
    /// Slots skipped as sources because they hold pinned pages.
    pub(crate) pinned_slots: Atomic<u64>,
    /// Moves given up because every target slab was full (concurrent allocations took them).
    pub(crate) targets_exhausted: Atomic<u64>,
    pub(crate) time_ns: Atomic<u64>,
}

/// The module's compaction counters.
pub(crate) static COMPACTION: CompactionStats = CompactionStats {
    runs_ioctl: Atomic::new(0),
    runs_proc: Atomic::new(0),
    runs_shrinker: Atomic::new(0),
    runs_proactive: Atomic::new(0),
    objects_moved: Atomic::new(0),
    slabs_freed: Atomic::new(0),
    pages_freed: Atomic::new(0),
    pages_moved: Atomic::new(0),
    blocks_freed: Atomic::new(0),
    host_pages: Atomic::new(0),
    blocks_failed: Atomic::new(0),
    pinned_skips: Atomic::new(0),
    pinned_slots: Atomic::new(0),
    targets_exhausted: Atomic::new(0),
    time_ns: Atomic::new(0),
};

/// Renders `/proc/rkmem/compaction` (`/proc/vmstat` style, like its `compact_*` lines).
pub(crate) fn show_compaction(w: &mut impl fmt::Write) -> fmt::Result {
    let c = &COMPACTION;
    let l = |a: &Atomic<u64>| a.load(Relaxed);
    text::write_counters(
        w,
        &[
            ("compact_runs_ioctl", l(&c.runs_ioctl)),
            ("compact_runs_proc", l(&c.runs_proc)),
            ("compact_runs_shrinker", l(&c.runs_shrinker)),
            ("compact_runs_proactive", l(&c.runs_proactive)),
            ("compact_objects_moved", l(&c.objects_moved)),
            ("compact_slabs_freed", l(&c.slabs_freed)),
            ("compact_pages_freed", l(&c.pages_freed)),
            ("compact_pages_moved", l(&c.pages_moved)),
            ("compact_blocks_freed", l(&c.blocks_freed)),
            ("compact_host_pages", l(&c.host_pages)),
            ("compact_blocks_failed", l(&c.blocks_failed)),
            ("compact_pinned_skips", l(&c.pinned_skips)),
            ("compact_pinned_slots", l(&c.pinned_slots)),
            ("compact_targets_exhausted", l(&c.targets_exhausted)),
            ("compact_time_us", l(&c.time_ns) / 1000),
        ],
    )
}

/// Counts one event.
pub(crate) fn inc(counter: &Atomic<u64>) {
    counter.add(1, Relaxed);
}

/// Renders `/proc/rkmem/stats`.
pub(crate) fn show(w: &mut impl fmt::Write, shared: &crate::Shared) -> fmt::Result {
    show_base(w, shared)?;
    text::write_counters(w, &crate::reclaim::stat_counters())
}

fn show_base(w: &mut impl fmt::Write, shared: &crate::Shared) -> fmt::Result {
    let s = &STATS;
    let a = &shared.arena.stats;
    let (allocs, frees, hits) = shared.arena.counters();
    let (present, free) = shared
        .arena
        .with_buddy(|b| (b.present_pages() as u64, b.free_pages() as u64));
    let p = crate::params();
    let opens = s.opens.load(Relaxed);
    let releases = s.releases.load(Relaxed);
    text::write_counters(
        w,
        &[
            ("abi_version", u64::from(crate::uapi::RKMEM_ABI_VERSION)),
            ("arena_initial_mb", u64::from(p.arena_initial_mb)),
            ("arena_max_mb", u64::from(p.arena_max_mb)),
            // 1: a KASAN build, whose caches carry red zones (a larger objsize in slabinfo).
            ("kasan_redzones", u64::from(shared.arena.kasan())),
            ("opens", opens),
            ("releases", releases),
            ("open_files", opens.saturating_sub(releases)),
            ("ioctls", s.ioctls.load(Relaxed)),
            ("ioctl_errors", s.ioctl_errors.load(Relaxed)),
            ("arena_pages", present),
            ("arena_free_pages", free),
            ("arena_pcp_pages", shared.arena.pcp_pages() as u64),
            ("page_allocs", allocs),
            ("page_frees", frees),
            ("page_pcp_hits", hits),
            ("page_pcp_refills", a.pcp_refills.load(Relaxed)),
            ("page_pcp_drains", a.pcp_drains.load(Relaxed)),
            ("page_enomem", a.enomem.load(Relaxed)),
            ("arena_grows", a.grows.load(Relaxed)),
            ("arena_grow_failures", a.grow_failures.load(Relaxed)),
            ("arena_blocks_released", a.blocks_released.load(Relaxed)),
            ("bad_free_double", a.bad_free_double.load(Relaxed)),
            ("bad_free_foreign", a.bad_free_foreign.load(Relaxed)),
            ("bad_free_order", a.bad_free_order.load(Relaxed)),
            ("bad_free_other", a.bad_free_other.load(Relaxed)),
        ],
    )
}
