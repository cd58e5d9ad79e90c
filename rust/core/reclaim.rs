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

/// What rkmem could give back now, in pages.
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
}

impl Reclaimable {
    /// The shrinker's `count_objects`: the total, or `None` for `SHRINK_EMPTY`.
    pub fn count(&self) -> Option<u64> {
        let total = self
            .pcp_pages
            .saturating_add(self.cpu_object_pages)
            .saturating_add(self.empty_slab_pages)
            .saturating_add(self.free_block_pages);
        (total != 0).then_some(total)
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

/// The shrinker's `scan_objects` result for `freed` pages after trying every step: `None`
/// for `SHRINK_STOP` (no progress possible now: locks busy or nothing left).
pub fn scan_result(freed: u64) -> Option<u64> {
    (freed != 0).then_some(freed)
}

/// Batch of a background trim: the pages the worker tries to give back per run.
pub const ASYNC_BATCH_PAGES: u64 = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn count_and_scan() {
        assert_eq!(Reclaimable::default().count(), None);
        let r = Reclaimable {
            pcp_pages: 3,
            cpu_object_pages: 1,
            empty_slab_pages: 8,
            free_block_pages: 1024,
        };
        assert_eq!(r.count(), Some(1036));
        assert_eq!(scan_result(0), None);
        assert_eq!(scan_result(5), Some(5));
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
}
