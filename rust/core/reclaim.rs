// SPDX-License-Identifier: GPL-2.0

//! Reclaim decisions: the low/high watermarks and the shrinker's count/scan arithmetic.
//!
//! # Watermarks
//!
//! The watermarks are levels of the arena's *free pages*: the pages it can still hand out
//! before reaching `arena_max_mb`, `free = max_pages - used_pages` (pages in the per-CPU caches
//! and in empty slabs count as used: they are what reclaim can give back). As the arena fills,
//! `free` falls:
//!
//! - `free >= low`: nothing happens;
//! - `high <= free < low`: a background worker trims the caches asynchronously, in batches;
//! - `free < high`: the allocating path trims synchronously before it goes on, so the heaviest
//!   allocators pay for the reclaim (the kernel's direct reclaim).
//!
//! So `high < low`, as the kernel's `min` watermark is below its `low` one. Both are in pages;
//! 0 disables a level.
//!
//! # Shrinker
//!
//! `count_objects` reports what rkmem could give back now, in pages; `scan_objects` frees up to
//! `nr_to_scan` pages in a fixed order of increasing cost: per-CPU caches (pages and objects),
//! empty slabs, then wholly free 4 MiB blocks above the arena's minimum, which go back to the host.

use core::fmt;

/// What the arena's fill level asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pressure {
    /// At or above the low watermark: nothing to do.
    None,
    /// Between the watermarks: wake the background trimmer.
    Async,
    /// Below the high watermark: trim in the allocating path.
    Sync,
}

/// The watermarks, in free pages (`high < low`, or a level disabled with 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// Below this many free pages the background trimmer runs.
    pub low: u64,
    /// Below this many free pages allocators trim synchronously.
    pub high: u64,
}

/// Why watermarks were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkError {
    /// `high` is not below `low` (both non-zero).
    HighNotBelowLow {
        /// The low watermark.
        low: u64,
        /// The high watermark.
        high: u64,
    },
    /// A watermark is above the arena's maximum size in pages.
    AboveArena {
        /// The watermark.
        value: u64,
        /// The arena's maximum in pages.
        max_pages: u64,
    },
    /// The text written to the /proc file is not `LOW HIGH`.
    Syntax,
}

impl fmt::Display for WatermarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WatermarkError::HighNotBelowLow { low, high } => write!(
                f,
                "high watermark {high} must be below the low watermark {low} (free pages: high is the more urgent level)"
            ),
            WatermarkError::AboveArena { value, max_pages } => write!(
                f,
                "watermark {value} is above the arena's maximum of {max_pages} pages"
            ),
            WatermarkError::Syntax => write!(f, "expected two numbers: LOW HIGH (free pages)"),
        }
    }
}

impl Watermarks {
    /// Checks the watermarks against an arena of at most `max_pages` pages.
    pub fn validate(&self, max_pages: u64) -> Result<(), WatermarkError> {
        for value in [self.low, self.high] {
            if value > max_pages {
                return Err(WatermarkError::AboveArena { value, max_pages });
            }
        }
        if self.low != 0 && self.high != 0 && self.high >= self.low {
            return Err(WatermarkError::HighNotBelowLow {
                low: self.low,
                high: self.high,
            });
        }
        Ok(())
    }

    /// The defaults for an arena of `max_pages` pages: low at a quarter free, high at an eighth.
    pub fn defaults(max_pages: u64) -> Watermarks {
        Watermarks {
            low: max_pages / 4,
            high: max_pages / 8,
        }
    }

    /// Parses `LOW HIGH` (decimal page counts, surrounded by optional whitespace).
    pub fn parse(text: &str) -> Result<Watermarks, WatermarkError> {
        let mut it = text.split_ascii_whitespace();
        let (Some(low), Some(high), None) = (it.next(), it.next(), it.next()) else {
            return Err(WatermarkError::Syntax);
        };
        let low = low.parse().map_err(|_| WatermarkError::Syntax)?;
        let high = high.parse().map_err(|_| WatermarkError::Syntax)?;
        Ok(Watermarks { low, high })
    }

    /// The pressure of an arena with `free` free pages.
    #[inline]
    pub fn pressure(&self, free: u64) -> Pressure {
        if self.high != 0 && free < self.high {
            Pressure::Sync
        } else if self.low != 0 && free < self.low {
            Pressure::Async
        } else {
            Pressure::None
        }
    }
}

/// What rkmem holds that reclaim could act on, in pages. Only `host_pages` is memory the host
/// kernel would get back; the rest only moves inside rkmem (it is what the watermark path
/// counts, where free arena pages are the measure).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimable {
    /// Pages in the per-CPU page caches.
    pub pcp_pages: u64,
    /// Pages of the slab caches' per-CPU object caches whose slabs would become empty (an
    /// estimate: objects cached, divided by objects per page).
    pub cpu_object_pages: u64,
    /// Pages of empty slabs.
    pub empty_slab_pages: u64,
    /// Pages of wholly free 4 MiB blocks above the arena's minimum.
    pub free_block_pages: u64,
    /// Pages a scan could give back to the host kernel now: [`host_reclaimable_pages`].
    pub host_pages: u64,
    /// Pages of slots an arena compaction could empty for the host beyond those (an estimate
    /// from the page counts: pinned pages can make it high; a scan that finds nothing to move
    /// then frees nothing).
    pub compactable_pages: u64,
}

impl Reclaimable {
    /// The shrinker's `count_objects`: what a scan could give back to the host, or `None` for
    /// `SHRINK_EMPTY`.
    pub fn count(&self) -> Option<u64> {
        let n = self.host_pages.saturating_add(self.compactable_pages);
        (n != 0).then_some(n)
    }
}

/// Pages a shrinker scan could give back to the host kernel: whole slots (4 MiB blocks) above
/// the arena's minimum of `min_slots` whose `slot_pages` pages are all either free in the buddy
/// lists (`free[slot]`) or held by caches that a scan empties before it releases blocks
/// (`cached[slot]`: per-CPU pages, empty slabs). An absent slot has neither. Objects in the
/// slab caches' per-CPU arrays are not counted: their slabs may empty only after the scan's
/// first step, so the count errs low, never high.
pub fn host_reclaimable_pages(
    free: &[usize],
    cached: &[usize],
    slot_pages: usize,
    present_slots: usize,
    min_slots: usize,
) -> u64 {
    let whole = free
        .iter()
        .zip(cached)
        .filter(|(f, c)| slot_pages > 0 && f.saturating_add(**c) >= slot_pages)
        .count();
    (whole.min(present_slots.saturating_sub(min_slots)) * slot_pages) as u64
}

/// What one shrinker scan asked for `nr_to_scan` pages does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanPlan {
    /// Empty the caches into the buddy lists first ([`Step::Slabs`], [`Step::Pcp`]): only when
    /// the wholly free blocks alone do not cover the request. These moves give the host
    /// nothing and are not counted.
    pub drain_caches: bool,
    /// Pages of whole blocks to give back at most (whole blocks: the last one may go past it).
    pub release_pages: u64,
}

/// The plan of a scan for `nr_to_scan` pages when `free_block_pages` are in wholly free blocks
/// above the minimum now.
pub fn scan_plan(free_block_pages: u64, nr_to_scan: u64) -> ScanPlan {
    ScanPlan {
        drain_caches: free_block_pages < nr_to_scan.max(1),
        release_pages: nr_to_scan.max(1),
    }
}

/// The steps of one scan, cheapest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Empty the slab caches' per-CPU object caches and give empty slabs back to the buddy
    /// allocator.
    Slabs,
    /// Empty the per-CPU page caches into the buddy allocator.
    Pcp,
    /// Give wholly free blocks above the minimum back to the host kernel.
    Blocks,
}

/// The order in which a scan works.
pub const SCAN_ORDER: [Step; 3] = [Step::Slabs, Step::Pcp, Step::Blocks];

/// The shrinker's `scan_objects` result for `freed` pages given back to the host: `None` for
/// `SHRINK_STOP` (no progress possible now: locks busy or nothing left).
pub fn scan_result(freed: u64) -> Option<u64> {
    (freed != 0).then_some(freed)
}

/// Batch of a background trim: the pages the worker tries to give back per run.
pub const ASYNC_BATCH_PAGES: u64 = 256;

/// Writes `/proc/rkmem/watermarks`: the watermarks, the arena's free pages in the watermark
/// sense and its maximum, `/proc/vmstat` style, then the pressure that level asks for.
pub fn write_watermarks<W: fmt::Write>(
    w: &mut W,
    wm: &Watermarks,
    free: u64,
    max_pages: u64,
) -> fmt::Result {
    super::text::write_counters(
        w,
        &[
            ("low", wm.low),
            ("high", wm.high),
            ("free", free),
            ("max_pages", max_pages),
        ],
    )?;
    let p = match wm.pressure(free) {
        Pressure::None => "none",
        Pressure::Async => "async",
        Pressure::Sync => "sync",
    };
    writeln!(w, "pressure {p}")
}

/// What reclaim can make the module do, each with try-locks only (reclaim never waits for a
/// lock an allocating path may hold).
pub trait ReclaimEnv {
    /// Empties the slab caches' per-CPU arrays and gives up to `max_pages` pages of empty slabs
    /// back to the buddy allocator; returns those pages.
    fn trim_slabs(&self, max_pages: usize) -> usize;
    /// Empties the per-CPU page caches into the buddy allocator; returns the pages moved.
    fn drain_pcps(&self) -> usize;
    /// Gives wholly free blocks above the minimum back to the host kernel, up to `max_pages`
    /// pages (whole blocks); returns the pages given back.
    fn release_blocks(&self, max_pages: usize) -> usize;
    /// Pages in wholly free blocks above the minimum now.
    fn free_block_pages(&self) -> u64;
    /// Compacts the arena, moving at most `max_pages` pages, to empty a block; returns the
    /// pages given to the host (the emptied blocks above the minimum).
    fn compact(&self, max_pages: u64) -> u64;
}

/// Pages one shrinker scan may move to empty a block ([`host_scan`]): half a 4 MiB slot, so a
/// call copies at most 2 MiB.
pub const SCAN_COMPACT_PAGES: u64 = 512;

/// The watermark path: frees up to `budget` pages inside the arena (the watermarks measure the
/// arena's free pages, so cached pages moved back to the buddy lists count), in
/// [`SCAN_ORDER`], cheapest first, stopping once the budget is met. Returns (pages freed, of
/// which given to the host).
pub fn shrink(env: &impl ReclaimEnv, budget: u64) -> (u64, u64) {
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let (mut freed, mut to_host) = (0usize, 0usize);
    for step in SCAN_ORDER {
        if freed >= budget {
            break;
        }
        freed += match step {
            Step::Slabs => env.trim_slabs(budget - freed),
            Step::Pcp => env.drain_pcps(),
            Step::Blocks => {
                let n = env.release_blocks(budget - freed);
                to_host += n;
                n
            }
        };
    }
    (freed as u64, to_host as u64)
}

/// A shrinker scan for `nr_to_scan` pages ([`scan_plan`]): empties the caches into the buddy
/// lists only when the wholly free blocks alone fall short (those moves give the host nothing
/// and are not counted), then gives whole free blocks back. Returns the pages the host got.
///
/// If that leaves no wholly free block and the host got less than it asked for, the arena is
/// compacted with bounded work ([`SCAN_COMPACT_PAGES`] moved at most) to empty one, which goes
/// to the host.
pub fn host_scan(env: &impl ReclaimEnv, nr_to_scan: u64) -> u64 {
    let plan = scan_plan(env.free_block_pages(), nr_to_scan);
    if plan.drain_caches {
        env.trim_slabs(usize::MAX);
        env.drain_pcps();
    }
    let mut got =
        env.release_blocks(usize::try_from(plan.release_pages).unwrap_or(usize::MAX)) as u64;
    if got < plan.release_pages && env.free_block_pages() == 0 {
        got += env.compact(SCAN_COMPACT_PAGES);
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    extern crate std;

    #[test]
    fn pressure_levels() {
        let w = Watermarks { low: 100, high: 40 };
        assert_eq!(w.pressure(1000), Pressure::None);
        assert_eq!(w.pressure(100), Pressure::None);
        assert_eq!(w.pressure(99), Pressure::Async);
        assert_eq!(w.pressure(40), Pressure::Async);
        assert_eq!(w.pressure(39), Pressure::Sync);
        assert_eq!(w.pressure(0), Pressure::Sync);
    }

    #[test]
    fn zero_disables_a_level() {
        assert_eq!(Watermarks { low: 0, high: 0 }.pressure(0), Pressure::None);
        assert_eq!(Watermarks { low: 0, high: 10 }.pressure(5), Pressure::Sync);
        assert_eq!(Watermarks { low: 10, high: 0 }.pressure(5), Pressure::Async);
    }

    #[test]
    fn validation() {
        assert_eq!(Watermarks { low: 100, high: 40 }.validate(1024), Ok(()));
        assert_eq!(
            Watermarks { low: 40, high: 40 }.validate(1024),
            Err(WatermarkError::HighNotBelowLow { low: 40, high: 40 })
        );
        assert_eq!(
            Watermarks {
                low: 2000,
                high: 40
            }
            .validate(1024),
            Err(WatermarkError::AboveArena {
                value: 2000,
                max_pages: 1024
            })
        );
        assert_eq!(Watermarks::defaults(16384).validate(16384), Ok(()));
    }

    #[test]
    fn parsing() {
        assert_eq!(
            Watermarks::parse(" 4096 2048\n"),
            Ok(Watermarks {
                low: 4096,
                high: 2048
            })
        );
        for bad in ["", "1", "1 2 3", "a 2", "-1 2", "1 0x10"] {
            assert_eq!(
                Watermarks::parse(bad),
                Err(WatermarkError::Syntax),
                "{bad:?}"
            );
        }
    }

    // The shrinker's contract (include/linux/shrinker.h): count_objects is what a scan could
    // free, and for rkmem freeing means giving pages to the host kernel. Pages that only move
    // inside rkmem (per-CPU pages to the buddy lists, empty slabs to the arena) are not freed
    // memory for the host.
    #[test]
    fn count_is_only_what_the_host_can_get() {
        assert_eq!(Reclaimable::default().count(), None);
        let cached_only = Reclaimable {
            pcp_pages: 3,
            cpu_object_pages: 1,
            empty_slab_pages: 8,
            ..Default::default()
        };
        assert_eq!(cached_only.count(), None);
        let r = Reclaimable {
            host_pages: 2048,
            ..cached_only
        };
        assert_eq!(r.count(), Some(2048));
        // Slots compaction could empty are memory the host can get too.
        let c = Reclaimable {
            compactable_pages: 1024,
            ..r
        };
        assert_eq!(c.count(), Some(3072));
        assert_eq!(scan_result(0), None);
        assert_eq!(scan_result(5), Some(5));
    }

    #[test]
    fn whole_slots_only_above_the_minimum() {
        let sp = 1024;
        // Slot 0: wholly free; 1: free but for 8 cached pages; 2: one page in use; 3: absent.
        let free = [1024, 1016, 1023, 0];
        let cached = [0, 8, 0, 0];
        assert_eq!(host_reclaimable_pages(&free, &cached, sp, 3, 0), 2 * 1024);
        // The minimum keeps slots: at most present - min can go.
        assert_eq!(host_reclaimable_pages(&free, &cached, sp, 3, 2), 1024);
        assert_eq!(host_reclaimable_pages(&free, &cached, sp, 3, 3), 0);
        // Cached pages alone are nothing for the host.
        assert_eq!(host_reclaimable_pages(&[0, 0], &[8, 200], sp, 2, 0), 0);
        assert_eq!(host_reclaimable_pages(&free, &cached, 0, 3, 0), 0);
    }

    #[test]
    fn scans_drain_caches_only_when_free_blocks_fall_short() {
        assert_eq!(
            scan_plan(2048, 128),
            ScanPlan {
                drain_caches: false,
                release_pages: 128
            }
        );
        assert!(scan_plan(0, 128).drain_caches);
        assert!(scan_plan(1024, 2048).drain_caches);
        // nr_to_scan 0 still plans one block's worth of work at most.
        assert_eq!(scan_plan(0, 0).release_pages, 1);
    }

    proptest! {
        // Never more than the present slots above the minimum, always whole slots.
        #[test]
        fn host_count_is_bounded(free in proptest::collection::vec(0usize..=1024, 0..16),
                                 cached in proptest::collection::vec(0usize..=1024, 0..16),
                                 present in 0usize..16, min in 0usize..16) {
            let n = host_reclaimable_pages(&free, &cached, 1024, present, min);
            prop_assert_eq!(n % 1024, 0);
            prop_assert!(n as usize <= present.saturating_sub(min) * 1024);
            prop_assert!(n as usize <= free.len().min(cached.len()) * 1024);
        }
    }

    proptest! {
        // More free pages never means more pressure.
        #[test]
        fn pressure_is_monotone(low in 0u64..5000, high in 0u64..5000, a in 0u64..6000, b in 0u64..6000) {
            let w = Watermarks { low, high };
            let rank = |p: Pressure| match p { Pressure::None => 0, Pressure::Async => 1, Pressure::Sync => 2 };
            if a <= b {
                prop_assert!(rank(w.pressure(a)) >= rank(w.pressure(b)));
            }
        }

        // Accepted watermarks are within the arena and ordered; a valid pair round-trips
        // through the text format.
        #[test]
        fn validate_and_parse(low in 0u64..3000, high in 0u64..3000, max in 0u64..3000) {
            let w = Watermarks { low, high };
            let ok = low <= max && high <= max && (low == 0 || high == 0 || high < low);
            prop_assert_eq!(w.validate(max).is_ok(), ok);
            extern crate std;
            let text = std::format!("{low} {high}");
            prop_assert_eq!(Watermarks::parse(&text), Ok(w));
        }
    }

    #[test]
    fn watermarks_file_names_each_value_and_the_pressure() {
        let wm = Watermarks {
            low: 300,
            high: 100,
        };
        let mut t = std::string::String::new();
        write_watermarks(&mut t, &wm, 200, 4096).unwrap();
        assert_eq!(
            t,
            "low 300\nhigh 100\nfree 200\nmax_pages 4096\npressure async\n"
        );
        t.clear();
        write_watermarks(&mut t, &wm, 50, 4096).unwrap();
        assert!(t.ends_with("pressure sync\n"));
    }

    /// A module with `slabs` pages in empty slabs, `pcp` pages in per-CPU caches, and blocks
    /// of 1024 pages: `free_blocks` wholly free ones, and as many more as the slab and pcp
    /// pages complete once moved back (`completes`).
    struct Env {
        slabs: core::cell::Cell<usize>,
        pcp: core::cell::Cell<usize>,
        free_blocks: core::cell::Cell<usize>,
        completes: core::cell::Cell<usize>,
        /// Blocks a compaction would empty (and give to the host).
        compactable: core::cell::Cell<u64>,
        log: core::cell::RefCell<std::vec::Vec<&'static str>>,
    }

    impl Env {
        fn new(slabs: usize, pcp: usize, free_blocks: usize, completes: usize) -> Env {
            Env {
                slabs: slabs.into(),
                pcp: pcp.into(),
                free_blocks: free_blocks.into(),
                completes: completes.into(),
                compactable: 0.into(),
                log: Default::default(),
            }
        }
    }

    impl ReclaimEnv for Env {
        fn trim_slabs(&self, max: usize) -> usize {
            self.log.borrow_mut().push("slabs");
            let n = self.slabs.get().min(max);
            self.slabs.set(self.slabs.get() - n);
            if self.slabs.get() == 0 && self.pcp.get() == 0 {
                self.free_blocks
                    .set(self.free_blocks.get() + self.completes.replace(0));
            }
            n
        }
        fn drain_pcps(&self) -> usize {
            self.log.borrow_mut().push("pcp");
            let n = self.pcp.replace(0);
            if self.slabs.get() == 0 {
                self.free_blocks
                    .set(self.free_blocks.get() + self.completes.replace(0));
            }
            n
        }
        fn compact(&self, max_pages: u64) -> u64 {
            self.log.borrow_mut().push("compact");
            assert_eq!(max_pages, SCAN_COMPACT_PAGES);
            self.compactable.replace(0) * 1024
        }
        fn release_blocks(&self, max: usize) -> usize {
            self.log.borrow_mut().push("blocks");
            let n = self.free_blocks.get().min(max.div_ceil(1024));
            self.free_blocks.set(self.free_blocks.get() - n);
            n * 1024
        }
        fn free_block_pages(&self) -> u64 {
            (self.free_blocks.get() * 1024) as u64
        }
    }

    #[test]
    fn shrink_goes_cheapest_first_and_stops_at_its_budget() {
        let e = Env::new(300, 100, 2, 0);
        assert_eq!(shrink(&e, 200), (200, 0));
        assert_eq!(
            *e.log.borrow(),
            ["slabs"],
            "the budget met by empty slabs alone"
        );
        let e = Env::new(100, 100, 2, 0);
        assert_eq!(shrink(&e, 1000), (100 + 100 + 1024, 1024));
        assert_eq!(*e.log.borrow(), ["slabs", "pcp", "blocks"]);
    }

    #[test]
    fn host_scan_counts_only_what_the_host_gets_and_drains_only_when_blocks_fall_short() {
        // Enough whole free blocks: no cache is touched.
        let e = Env::new(100, 100, 2, 1);
        assert_eq!(host_scan(&e, 512), 1024);
        assert_eq!(*e.log.borrow(), ["blocks"]);
        // None free, but draining the caches completes one: the host gets that block, and
        // the pages moved inside rkmem are not counted.
        let e = Env::new(100, 100, 0, 1);
        assert_eq!(host_scan(&e, 128), 1024);
        assert_eq!(*e.log.borrow(), ["slabs", "pcp", "blocks"]);
        // Nothing completes: moves inside rkmem, nothing for the host (SHRINK_STOP follows).
        let e = Env::new(100, 100, 0, 0);
        assert_eq!(host_scan(&e, 128), 0);
        assert_eq!(scan_result(0), None);
    }

    #[test]
    fn host_scan_compacts_only_when_no_whole_block_is_left() {
        // No free block even after draining: a bounded compaction empties one for the host.
        let e = Env::new(100, 100, 0, 0);
        e.compactable.set(1);
        assert_eq!(host_scan(&e, 128), 1024);
        assert_eq!(*e.log.borrow(), ["slabs", "pcp", "blocks", "compact"]);
        // A free block covers the request: no compaction.
        let e = Env::new(100, 100, 1, 0);
        e.compactable.set(1);
        assert_eq!(host_scan(&e, 128), 1024);
        assert_eq!(*e.log.borrow(), ["blocks"]);
        // The request is larger than the free blocks, but one was left: no compaction (the
        // next call releases it first).
        let e = Env::new(100, 100, 3, 0);
        e.compactable.set(1);
        assert_eq!(host_scan(&e, 2048), 2048);
        assert!(!e.log.borrow().contains(&"compact"));
    }
}
