// SPDX-License-Identifier: GPL-2.0

//! The reserve of a mempool: the bookkeeping of the kernel's `mm/mempool.c`, without locks,
//! waits or memory.
//!
//! A mempool keeps at least `min` elements preallocated. Allocation tries the element source
//! first (without sleeping); when the source fails the caller takes a reserve element
//! ([`Reserve::take`]); a free puts the element back into the reserve while it holds fewer than
//! `min` ([`Reserve::offer`]), and otherwise hands it back to the caller to return to the source.
//! The module adds the waiting: a caller that may sleep and finds the reserve empty waits until
//! a free refills it.
//!
//! The elements are opaque `usize` values (addresses); the storage is a slice the module
//! allocates with room for the largest `min` it allows.
//!
//! As in `mm/mempool.c`, the common paths do not touch the reserve (nor its lock): an
//! allocation that the source serves is the source's alone, and a free checks the reserve's
//! [`Reserve::is_short`] hint without the lock (the module keeps a copy, written under the lock
//! after every change), taking the lock only if the reserve looks short. A stale "full" hint
//! sends an element to the source that the reserve could have kept, never loses one; the
//! locked [`Reserve::offer`] decides again. Elements out are therefore counted by the caller
//! (per CPU, in the module), not here.

use core::fmt;
use core::ops::DerefMut;

/// The largest reserve a mempool may have.
pub const MAX_MIN_NR: usize = 4096;

/// Why a reserve operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveError {
    /// `min` is 0 or above the storage (at most [`MAX_MIN_NR`]).
    BadMin {
        /// The `min` asked for.
        min: usize,
        /// The storage's capacity.
        capacity: usize,
    },
    /// The reserve is full: the element was not taken.
    Full,
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReserveError::BadMin { min, capacity } => {
                write!(f, "reserve of {min} elements: must be 1..={capacity}")
            }
            ReserveError::Full => write!(f, "reserve is full"),
        }
    }
}

/// The reserve's own counters (see [`Reserve::counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReserveCounts {
    /// Times a caller slept waiting for a free element.
    pub waits: u64,
    /// Allocations served from the reserve because the source failed.
    pub saves: u64,
    /// Allocations that failed (callers that may not sleep, reserve empty).
    pub failures: u64,
}

/// Counters of one mempool, as `/proc/rkmem/mempools` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Elements handed out and not yet freed.
    pub out: u64,
    /// Times a caller slept waiting for a free element.
    pub waits: u64,
    /// Allocations served from the reserve because the source failed.
    pub saves: u64,
    /// Allocations that failed (callers that may not sleep, reserve empty).
    pub failures: u64,
}

/// A mempool's reserve over the storage `S`.
///
/// # Invariants
///
/// `curr <= min <= storage.len()` after every operation except [`Reserve::set_min`] lowering
/// `min`, which hands the surplus back at once; `storage[..curr]` are the reserved elements.
pub struct Reserve<S> {
    storage: S,
    curr: usize,
    min: usize,
    counts: ReserveCounts,
}

impl<S: DerefMut<Target = [usize]>> Reserve<S> {
    /// An empty reserve that should hold `min` elements; the caller fills it with
    /// [`Reserve::fill`] (the kernel's `mempool_init` preallocates them).
    pub fn new(storage: S, min: usize) -> Result<Self, ReserveError> {
        if min == 0 || min > storage.len() || min > MAX_MIN_NR {
            return Err(ReserveError::BadMin {
                min,
                capacity: storage.len().min(MAX_MIN_NR),
            });
        }
        Ok(Reserve {
            storage,
            curr: 0,
            min,
            counts: ReserveCounts::default(),
        })
    }

    /// Elements in the reserve.
    pub fn curr(&self) -> usize {
        self.curr
    }

    /// The reserve's target size.
    pub fn min(&self) -> usize {
        self.min
    }

    /// How many elements the reserve lacks to reach `min`.
    pub fn needed(&self) -> usize {
        self.min.saturating_sub(self.curr)
    }

    /// Whether the reserve holds fewer than `min` elements: the hint a free reads without the
    /// lock (a copy the caller refreshes under the lock after every change) to decide whether
    /// to offer the element here at all.
    pub fn is_short(&self) -> bool {
        self.curr < self.min
    }

    /// The counters, with `out` (elements handed out, counted by the caller) for the row.
    pub fn counts(&self, out: u64) -> PoolCounts {
        PoolCounts {
            out,
            waits: self.counts.waits,
            saves: self.counts.saves,
            failures: self.counts.failures,
        }
    }

    /// Adds a freshly allocated element while the reserve is below `min` (filling it at
    /// creation or after growing `min`); `Err(Full)` otherwise.
    pub fn fill(&mut self, elem: usize) -> Result<(), ReserveError> {
        if self.curr >= self.min {
            return Err(ReserveError::Full);
        }
        let slot = self.storage.get_mut(self.curr).ok_or(ReserveError::Full)?;
        *slot = elem;
        self.curr += 1;
        Ok(())
    }

    /// Takes a reserve element for a caller whose source allocation failed.
    pub fn take(&mut self) -> Option<usize> {
        let top = self.curr.checked_sub(1)?;
        let elem = *self.storage.get(top)?;
        self.curr = top;
        self.counts.saves += 1;
        Some(elem)
    }

    /// Records that a caller goes to sleep waiting for a free element.
    pub fn note_wait(&mut self) {
        self.counts.waits += 1;
    }

    /// Records an allocation that failed (caller may not sleep, or was interrupted).
    pub fn note_failure(&mut self) {
        self.counts.failures += 1;
    }

    /// A freed element: kept in the reserve (`None`: wake a waiter) while it is below `min`,
    /// else handed back (`Some(elem)`: return it to the source).
    pub fn offer(&mut self, elem: usize) -> Option<usize> {
        if self.curr < self.min {
            if let Some(slot) = self.storage.get_mut(self.curr) {
                *slot = elem;
                self.curr += 1;
                return None;
            }
        }
        Some(elem)
    }

    /// Changes the target size (`mempool_resize`). Lowering it hands the surplus elements out
    /// through `surplus` (to be returned to the source); raising it leaves [`Reserve::needed`]
    /// elements for the caller to [`Reserve::fill`].
    pub fn set_min(
        &mut self,
        min: usize,
        mut surplus: impl FnMut(usize),
    ) -> Result<(), ReserveError> {
        if min == 0 || min > self.storage.len() || min > MAX_MIN_NR {
            return Err(ReserveError::BadMin {
                min,
                capacity: self.storage.len().min(MAX_MIN_NR),
            });
        }
        while self.curr > min {
            self.curr -= 1;
            if let Some(e) = self.storage.get(self.curr) {
                surplus(*e);
            }
        }
        self.min = min;
        Ok(())
    }

    /// Empties the reserve (destroying the pool), handing every element to `f`.
    pub fn drain(&mut self, mut f: impl FnMut(usize)) {
        while let Some(top) = self.curr.checked_sub(1) {
            self.curr = top;
            if let Some(e) = self.storage.get(top) {
                f(*e);
            }
        }
    }
}

/// One row of `/proc/rkmem/mempools`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolRow<'a> {
    /// Pool id.
    pub id: u32,
    /// The element source, e.g. `cache:name`, `rkmalloc-64`, `pages:order2`.
    pub source: &'a str,
    /// Target reserve size.
    pub min: usize,
    /// Elements in the reserve.
    pub reserve: usize,
    /// The counters.
    pub counts: PoolCounts,
}

/// Header line of `/proc/rkmem/mempools`.
pub const MEMPOOLS_HEADER: &str =
    "# id source                    min reserve      out    waits    saves failures\n";

/// Writes one row of `/proc/rkmem/mempools`.
pub fn write_pool_row<W: fmt::Write>(w: &mut W, r: &PoolRow<'_>) -> fmt::Result {
    writeln!(
        w,
        "{:>4} {:<24} {:>5} {:>7} {:>8} {:>8} {:>8} {:>8}",
        r.id,
        r.source,
        r.min,
        r.reserve,
        r.counts.out,
        r.counts.waits,
        r.counts.saves,
        r.counts.failures
    )
}

/// Writes `/proc/rkmem/mempools`: the header, then one row per pool in the order given (the
/// module's one writer of the file).
pub fn write_mempools<'a, W: fmt::Write>(
    w: &mut W,
    rows: impl IntoIterator<Item = PoolRow<'a>>,
) -> fmt::Result {
    w.write_str(MEMPOOLS_HEADER)?;
    for r in rows {
        write_pool_row(w, &r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::{string::String, vec, vec::Vec};

    fn reserve(min: usize) -> Reserve<Vec<usize>> {
        let mut r = Reserve::new(vec![0; 8], min).unwrap();
        for e in 0..min {
            r.fill(100 + e).unwrap();
        }
        r
    }

    #[test]
    fn bad_min() {
        assert_eq!(
            Reserve::new(vec![0; 8], 0).err(),
            Some(ReserveError::BadMin {
                min: 0,
                capacity: 8
            })
        );
        assert!(Reserve::new(vec![0; 8], 9).is_err());
        assert!(Reserve::new(vec![0; 8], 8).is_ok());
    }

    #[test]
    fn take_then_offer_refills_before_freeing() {
        let mut r = reserve(2);
        assert_eq!(r.fill(7), Err(ReserveError::Full));
        assert_eq!(r.take(), Some(101));
        assert_eq!(r.take(), Some(100));
        assert_eq!(r.take(), None);
        assert_eq!(r.counts(2).saves, 2);
        assert!(r.is_short());
        // Frees refill the reserve first, then go back to the source.
        assert_eq!(r.offer(100), None);
        assert_eq!(r.offer(101), None);
        assert!(!r.is_short());
        assert_eq!(r.offer(55), Some(55));
        assert_eq!(r.curr(), 2);
    }

    #[test]
    fn resize_down_and_up() {
        let mut r = reserve(4);
        let mut back = Vec::new();
        r.set_min(1, |e| back.push(e)).unwrap();
        assert_eq!(back, [103, 102, 101]);
        assert_eq!((r.curr(), r.min(), r.needed()), (1, 1, 0));
        r.set_min(3, |_| panic!("nothing to hand back")).unwrap();
        assert_eq!(r.needed(), 2);
        r.fill(1).unwrap();
        r.fill(2).unwrap();
        assert_eq!(r.fill(3), Err(ReserveError::Full));
        assert!(r.set_min(0, |_| {}).is_err());
        let mut all = Vec::new();
        r.drain(|e| all.push(e));
        assert_eq!(all.len(), 3);
        assert_eq!(r.curr(), 0);
    }

    #[test]
    fn mempools_text() {
        let mut s = String::new();
        let counts = PoolCounts {
            out: 3,
            waits: 2,
            saves: 5,
            failures: 1,
        };
        write_mempools(
            &mut s,
            [PoolRow {
                id: 1,
                source: "cache:t117",
                min: 16,
                reserve: 13,
                counts,
            }],
        )
        .unwrap();
        assert_eq!(
            s,
            "# id source                    min reserve      out    waits    saves failures\n   \
             1 cache:t117                  16      13        3        2        5        1\n"
        );
    }

    proptest! {
        // Whatever the sequence, no element is lost or duplicated: reserve + out + returned to
        // the source always accounts for every element, and the reserve never exceeds min.
        #[test]
        fn elements_are_conserved(ops in proptest::collection::vec(0u8..4, 0..200), min in 1usize..8) {
            let mut r = reserve(min);
            let mut held: Vec<usize> = Vec::new();
            let mut next = 1000;
            for op in ops {
                match op {
                    0 => { held.push(next); next += 1; }
                    1 => { if let Some(e) = r.take() { held.push(e); } }
                    2 => { if let Some(e) = held.pop() { let _ = r.offer(e); } }
                    _ => { let m = (next % 7) + 1; r.set_min(m, |_| {}).unwrap(); }
                }
                prop_assert!(r.curr() <= r.min());
                prop_assert_eq!(r.is_short(), r.curr() < r.min());
                let mut seen: Vec<usize> = held.clone();
                seen.extend_from_slice(&r.storage[..r.curr]);
                let n = seen.len();
                seen.sort();
                seen.dedup();
                prop_assert_eq!(seen.len(), n, "an element appears twice");
            }
        }

        // The module's protocol: frees read a copy of `is_short` taken after the last locked
        // change (possibly stale: here refreshed only every `stale` operations) and go to the
        // source without the lock when it says full. No element is lost or duplicated, the
        // reserve never exceeds `min`, and once the hint is fresh a short reserve is refilled
        // by the next free.
        #[test]
        fn lockless_frees_conserve_elements(
            ops in proptest::collection::vec(0u8..4, 0..300),
            min in 1usize..8,
            stale in 1usize..5,
        ) {
            let mut r = reserve(min);
            let mut hint = r.is_short();
            let (mut held, mut to_source): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
            let mut next = 1000;
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    0 => { held.push(next); next += 1; }
                    1 => { if let Some(e) = r.take() { held.push(e); } }
                    2 => {
                        if let Some(e) = held.pop() {
                            if !hint {
                                to_source.push(e);
                            } else if let Some(e) = r.offer(e) {
                                to_source.push(e);
                            }
                        }
                    }
                    _ => { let m = (next % 7) + 1; r.set_min(m, |e| to_source.push(e)).unwrap(); }
                }
                if i % stale == 0 {
                    hint = r.is_short();
                }
                prop_assert!(r.curr() <= r.min());
                let mut seen: Vec<usize> = held.clone();
                seen.extend_from_slice(&r.storage[..r.curr]);
                seen.extend_from_slice(&to_source);
                let n = seen.len();
                seen.sort();
                seen.dedup();
                prop_assert_eq!(seen.len(), n, "an element appears twice");
            }
            // A fresh hint: a free refills a short reserve.
            hint = r.is_short();
            if hint {
                let before = r.curr();
                prop_assert_eq!(r.offer(1), None);
                prop_assert_eq!(r.curr(), before + 1);
            }
        }
    }
}
