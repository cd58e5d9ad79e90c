// SPDX-License-Identifier: GPL-2.0

//! The per-CPU page cache: the decisions of the kernel's `per_cpu_pages`, without the locks.
//!
//! Each CPU keeps a small cache of free blocks of orders `0..=PCP_MAX_ORDER` (the kernel's
//! `PAGE_ALLOC_COSTLY_ORDER`), so that most allocations and frees of small blocks touch neither
//! the buddy allocator nor its lock. The module wraps one [`Pcp`] per CPU under its own lock;
//! it takes the buddy allocator's lock only around the calls that take a `&mut Buddy`.
//!
//! The rules follow mm/page_alloc.c, simplified:
//!
//! - `count` is the number of *pages* cached, over all orders; `high` and `batch` are in pages.
//! - Allocation ([`Pcp::pop`], [`Pcp::alloc`]) takes the most recently cached block of that
//!   order (the cache-hot one). When the list of that order is empty, [`Pcp::refill`] takes
//!   `max(batch >> order, 2)` blocks from the buddy allocator at once (one if `batch` is 1), as
//!   `nr_pcp_alloc()` does without its adaptive scaling.
//! - A free ([`Pcp::push`], [`Pcp::free`]) caches the block. When `count` reaches `high` (the
//!   kernel's `pcp->count >= high`), [`Pcp::drain_batch`] gives `batch` pages back, the oldest
//!   blocks first, starting with the list *after* the one just freed to and going round the
//!   orders, as `free_pcppages_bulk()` does (it advances `pindex` before taking a list): the
//!   hot order's list is drained last, so blocks of other orders left over from earlier work
//!   go first (measured: starting with the hot list, a cache filled with leftovers drained and
//!   refilled order 3 on almost every operation, 1.6x `alloc_pages`' time on 2 CPUs).
//! - [`Pcp::drain_all`] empties the cache (trimming, memory pressure, CPU offline).
//!
//! # Trust
//!
//! A cached block is an allocated block as far as the buddy allocator knows. [`Pcp::push`]
//! cannot tell a block that is freed twice from one freed once without looking at the buddy
//! allocator (which the fast path must not do): its caller must hand it only blocks that it
//! holds, once (in rkmem, the per-file handle table guarantees that). What can be checked
//! without the buddy allocator (order, alignment, index range) is checked; a block the buddy
//! allocator refuses when it is drained is dropped and counted in [`Drained::rejected`], never
//! merged twice.

use super::buddy::{AllocError, Buddy, FreeError, PageMeta};
use core::fmt;
use core::ops::DerefMut;

/// The largest order the cache holds (the kernel's `PAGE_ALLOC_COSTLY_ORDER`).
pub const PCP_MAX_ORDER: u32 = 3;

/// Number of cached orders, `0..=PCP_MAX_ORDER`.
pub const PCP_NR_ORDERS: usize = PCP_MAX_ORDER as usize + 1;

/// Why the cache refused a request or its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpError {
    /// `batch` is 0.
    ZeroBatch,
    /// `high` is below `batch`.
    HighBelowBatch {
        /// The `high` given.
        high: usize,
        /// The `batch` given.
        batch: usize,
    },
    /// `high` is above the number of blocks one list can hold.
    HighAboveCapacity {
        /// The `high` given.
        high: usize,
        /// Blocks per list.
        capacity: usize,
    },
    /// The order is above [`PCP_MAX_ORDER`]: use the buddy allocator directly.
    BadOrder {
        /// The order given.
        order: u32,
    },
    /// The page is not aligned to `2^order` pages.
    Misaligned,
    /// The page index is beyond what any arena can hold.
    BadPage,
    /// The list of this order is full.
    Full {
        /// The order given.
        order: u32,
    },
    /// [`Pcp::free`] gave the block straight to the buddy allocator, which refused it.
    Free(FreeError),
}

impl fmt::Display for PcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PcpError::ZeroBatch => f.write_str("batch must be at least 1"),
            PcpError::HighBelowBatch { high, batch } => {
                write!(f, "high={high}: must be at least batch={batch}")
            }
            PcpError::HighAboveCapacity { high, capacity } => {
                write!(f, "high={high}: must be at most {capacity}")
            }
            PcpError::BadOrder { order } => {
                write!(f, "order {order} is above {PCP_MAX_ORDER}: not cached")
            }
            PcpError::Misaligned => f.write_str("page not aligned to the block size"),
            PcpError::BadPage => f.write_str("page index out of range"),
            PcpError::Full { order } => write!(f, "order-{order} list is full"),
            PcpError::Free(e) => write!(f, "{e}"),
        }
    }
}

/// What a drain gave back to the buddy allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Drained {
    /// Pages freed to the buddy allocator.
    pub pages: usize,
    /// Blocks the buddy allocator refused (not allocated blocks of that order: a caller broke
    /// the contract of [`Pcp::push`]); they are dropped from the cache.
    pub rejected: usize,
}

/// A fixed-capacity double-ended queue of page indices: hot end at the front.
#[derive(Clone, Copy, Debug)]
struct Ring<const CAP: usize> {
    buf: [u32; CAP],
    first: usize,
    len: usize,
}

impl<const CAP: usize> Ring<CAP> {
    const EMPTY: Self = Ring {
        buf: [0; CAP],
        first: 0,
        len: 0,
    };

    fn push_front(&mut self, v: u32) -> bool {
        if self.len >= CAP {
            return false;
        }
        self.first = (self.first + CAP - 1) % CAP;
        self.buf[self.first] = v;
        self.len += 1;
        true
    }

    fn push_back(&mut self, v: u32) -> bool {
        if self.len >= CAP {
            return false;
        }
        self.buf[(self.first + self.len) % CAP] = v;
        self.len += 1;
        true
    }

    fn pop_front(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let v = self.buf[self.first];
        self.first = (self.first + 1) % CAP;
        self.len -= 1;
        Some(v)
    }

    fn pop_back(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.buf[(self.first + self.len) % CAP])
    }
}

/// One CPU's cache of free blocks, up to `CAP` blocks per order.
///
/// # Invariants
///
/// `count` is the sum over the lists of `len << order`; `1 <= batch <= high <= CAP`. Every
/// cached index names a block that the buddy allocator counts as allocated with that order.
#[derive(Clone, Debug)]
pub struct Pcp<const CAP: usize> {
    lists: [Ring<CAP>; PCP_NR_ORDERS],
    count: usize,
    high: usize,
    batch: usize,
}

impl<const CAP: usize> Pcp<CAP> {
    /// An empty cache that drains when it holds `high` pages, `batch` pages at a time.
    /// Requires `1 <= batch <= high <= CAP`.
    pub fn new(high: usize, batch: usize) -> Result<Self, PcpError> {
        Self::check_limits(high, batch)?;
        Ok(Pcp {
            lists: [Ring::EMPTY; PCP_NR_ORDERS],
            count: 0,
            high,
            batch,
        })
    }

    /// Changes the limits (as the kernel's `percpu_pagelist_high_fraction` does). If the cache
    /// now holds `high` pages or more, the caller drains it ([`Pcp::over_high`]).
    pub fn set_limits(&mut self, high: usize, batch: usize) -> Result<(), PcpError> {
        Self::check_limits(high, batch)?;
        self.high = high;
        self.batch = batch;
        Ok(())
    }

    fn check_limits(high: usize, batch: usize) -> Result<(), PcpError> {
        if batch == 0 {
            return Err(PcpError::ZeroBatch);
        }
        if high < batch {
            return Err(PcpError::HighBelowBatch { high, batch });
        }
        if high > CAP {
            return Err(PcpError::HighAboveCapacity {
                high,
                capacity: CAP,
            });
        }
        Ok(())
    }

    /// The drain watermark, in pages.
    #[must_use]
    pub fn high(&self) -> usize {
        self.high
    }

    /// Pages moved per refill or drain.
    #[must_use]
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Pages cached, over all orders.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Every cached block as (first page, order).
    pub fn blocks(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.lists.iter().zip(0u32..).flat_map(|(ring, order)| {
            (0..ring.len).map(move |i| (ring.buf[(ring.first + i) % CAP] as usize, order))
        })
    }

    /// Blocks cached of `order` (0 for orders that are not cached).
    #[must_use]
    pub fn len(&self, order: u32) -> usize {
        self.lists.get(order as usize).map_or(0, |l| l.len)
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the cache holds `high` pages or more and should drain a batch.
    #[must_use]
    pub fn over_high(&self) -> bool {
        self.count >= self.high
    }

    /// How many blocks of `order` a refill takes: `max(batch >> order, 2)`, or 1 when `batch`
    /// is 1, within the list's capacity.
    #[must_use]
    pub fn refill_blocks(&self, order: u32) -> usize {
        let n = if self.batch > 1 {
            (self.batch >> order.min(usize::BITS - 1)).max(2)
        } else {
            1
        };
        n.min(CAP)
    }

    fn list(&mut self, order: u32) -> Result<&mut Ring<CAP>, PcpError> {
        self.lists
            .get_mut(order as usize)
            .ok_or(PcpError::BadOrder { order })
    }

    /// Takes the most recently cached block of `order`, if any: the fast path, no buddy
    /// allocator involved.
    pub fn pop(&mut self, order: u32) -> Option<usize> {
        let page = self.list(order).ok()?.pop_front()?;
        self.count -= 1 << order;
        Some(page as usize)
    }

    /// Moves [`Pcp::refill_blocks`] blocks of `order` from `buddy` into the cache (fewer if the
    /// buddy allocator runs out); returns how many it moved.
    pub fn refill<S: DerefMut<Target = [PageMeta]>>(
        &mut self,
        order: u32,
        buddy: &mut Buddy<S>,
    ) -> Result<usize, PcpError> {
        let want = self.refill_blocks(order);
        let list = self.list(order)?;
        let mut moved = 0;
        while moved < want && list.len < CAP {
            let Ok(page) = buddy.alloc(order) else {
                break;
            };
            // The arena's indices fit in u32 (Buddy::new checks) and the list has room.
            list.push_back(page as u32);
            moved += 1;
        }
        self.count += moved << order;
        Ok(moved)
    }

    /// Allocates a block of `order`: from the cache, refilling it from `buddy` when the list is
    /// empty. Orders above [`PCP_MAX_ORDER`] are refused with [`AllocError::BadOrder`].
    pub fn alloc<S: DerefMut<Target = [PageMeta]>>(
        &mut self,
        order: u32,
        buddy: &mut Buddy<S>,
    ) -> Result<usize, AllocError> {
        if let Some(page) = self.pop(order) {
            return Ok(page);
        }
        match self.refill(order, buddy) {
            Err(_) => Err(AllocError::BadOrder { order }),
            Ok(0) => Err(AllocError::NoMemory),
            Ok(_) => self.pop(order).ok_or(AllocError::NoMemory),
        }
    }

    /// Caches the allocated block of `order` at `page`: the fast path, no buddy allocator
    /// involved. Returns whether the cache now holds `high` pages or more, in which case the
    /// caller drains a batch ([`Pcp::drain_batch`]).
    ///
    /// `page` must be a block of `order` that the caller holds, given back once: see the
    /// [module documentation](self).
    pub fn push(&mut self, page: usize, order: u32) -> Result<bool, PcpError> {
        let list = self.list(order)?;
        if page & ((1 << order) - 1) != 0 {
            return Err(PcpError::Misaligned);
        }
        let index = u32::try_from(page)
            .ok()
            .filter(|&i| i != u32::MAX)
            .ok_or(PcpError::BadPage)?;
        if !list.push_front(index) {
            return Err(PcpError::Full { order });
        }
        self.count += 1 << order;
        Ok(self.over_high())
    }

    /// Frees the block of `order` at `page` through the cache: caches it and drains a batch to
    /// `buddy` if the cache reached `high`. A block the cache has no room for goes straight to
    /// `buddy`. Returns what was drained.
    pub fn free<S: DerefMut<Target = [PageMeta]>>(
        &mut self,
        page: usize,
        order: u32,
        buddy: &mut Buddy<S>,
    ) -> Result<Drained, PcpError> {
        match self.push(page, order) {
            Ok(true) => Ok(self.drain_batch(order, buddy)),
            Ok(false) => Ok(Drained::default()),
            Err(PcpError::Full { .. }) => {
                buddy.free(page, order).map_err(PcpError::Free)?;
                Ok(Drained {
                    pages: 1 << order,
                    rejected: 0,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Gives `batch` pages (or all, if fewer are cached) back to `buddy`: the oldest blocks
    /// first, starting with the list after that of `order` (just freed to) and going round,
    /// so that list comes last.
    pub fn drain_batch<S: DerefMut<Target = [PageMeta]>>(
        &mut self,
        order: u32,
        buddy: &mut Buddy<S>,
    ) -> Drained {
        self.drain(self.batch, order as usize + 1, buddy)
    }

    /// Gives every cached block back to `buddy`.
    pub fn drain_all<S: DerefMut<Target = [PageMeta]>>(&mut self, buddy: &mut Buddy<S>) -> Drained {
        self.drain(self.count, 0, buddy)
    }

    /// Frees at least `pages` pages (while any are cached) to `buddy`, as the kernel's
    /// `free_pcppages_bulk()`: empties lists in turn, oldest block first, from list `start`.
    fn drain<S: DerefMut<Target = [PageMeta]>>(
        &mut self,
        pages: usize,
        start: usize,
        buddy: &mut Buddy<S>,
    ) -> Drained {
        let mut drained = Drained::default();
        let mut to_free = pages;
        let mut index = start % PCP_NR_ORDERS;
        while to_free > 0 && self.count > 0 {
            let order = index as u32;
            let list = &mut self.lists[index];
            while to_free > 0 {
                let Some(page) = list.pop_back() else {
                    break;
                };
                let size = 1usize << order;
                self.count -= size;
                to_free = to_free.saturating_sub(size);
                match buddy.free(page as usize, order) {
                    Ok(()) => drained.pages += size,
                    Err(_) => drained.rejected += 1,
                }
            }
            index = (index + 1) % PCP_NR_ORDERS;
        }
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    fn buddy(max_order: u32, slots: usize) -> Buddy<Vec<PageMeta>> {
        let mut b = Buddy::new(vec![PageMeta::INIT; slots << max_order], max_order).unwrap();
        for s in 0..slots {
            b.add_block(s).unwrap();
        }
        b
    }

    fn whole(b: &Buddy<Vec<PageMeta>>) -> bool {
        b.free_pages() == b.present_pages() && b.nr_free(b.max_order()) == b.nr_present_slots()
    }

    #[test]
    fn blocks_lists_what_is_cached() {
        let mut b = buddy(4, 2);
        let mut p = Pcp::<8>::new(8, 2).unwrap();
        let x = b.alloc(0).unwrap();
        let y = b.alloc(1).unwrap();
        p.push(x, 0).unwrap();
        p.push(y, 1).unwrap();
        let mut got: Vec<(usize, u32)> = p.blocks().collect();
        got.sort_unstable();
        let mut want = vec![(x, 0), (y, 1)];
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(
            p.blocks().map(|(_, o)| 1usize << o).sum::<usize>(),
            p.count()
        );
        let _ = p.drain_all(&mut b);
        assert_eq!(p.blocks().count(), 0);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(Pcp::<8>::new(8, 0).err(), Some(PcpError::ZeroBatch));
        assert_eq!(
            Pcp::<8>::new(2, 4).err(),
            Some(PcpError::HighBelowBatch { high: 2, batch: 4 })
        );
        assert_eq!(
            Pcp::<8>::new(9, 4).err(),
            Some(PcpError::HighAboveCapacity {
                high: 9,
                capacity: 8
            })
        );
        assert!(Pcp::<0>::new(0, 0).is_err());
        let mut p = Pcp::<8>::new(8, 4).unwrap();
        assert_eq!(p.set_limits(4, 1), Ok(()));
        assert_eq!((p.high(), p.batch()), (4, 1));
        assert_eq!(
            p.set_limits(4, 5),
            Err(PcpError::HighBelowBatch { high: 4, batch: 5 })
        );
        assert_eq!((p.high(), p.batch()), (4, 1));
    }

    #[test]
    fn refill_takes_a_batch_and_pops_without_the_buddy() {
        let mut b = buddy(5, 1);
        let mut p = Pcp::<16>::new(8, 4).unwrap();
        assert_eq!(p.refill_blocks(0), 4);
        assert_eq!(p.refill_blocks(1), 2);
        assert_eq!(p.refill_blocks(3), 2);
        // The first refill: 4 order-0 blocks, the first one handed out.
        assert_eq!(p.alloc(0, &mut b), Ok(0));
        assert_eq!(p.count(), 3);
        assert_eq!(b.free_pages(), 32 - 4);
        // The next three come from the cache alone, in allocation order.
        for want in 1..4 {
            assert_eq!(p.pop(0), Some(want));
        }
        assert_eq!(p.pop(0), None);
        assert_eq!(b.free_pages(), 32 - 4);
        assert_eq!(p.alloc(0, &mut b), Ok(4));
        assert_eq!(b.free_pages(), 32 - 8);
        // Order 2: max(4 >> 2, 2) = 2 blocks of 4 pages.
        assert_eq!(p.alloc(2, &mut b), Ok(8));
        assert_eq!((p.len(2), p.count()), (1, 3 + 4));
        assert_eq!(b.free_pages(), 32 - 16);
        assert_eq!(p.alloc(4, &mut b), Err(AllocError::BadOrder { order: 4 }));
        assert_eq!(p.pop(7), None);
    }

    #[test]
    fn refill_stops_when_the_buddy_runs_out() {
        let mut b = buddy(1, 1);
        let mut p = Pcp::<16>::new(8, 8).unwrap();
        assert_eq!(p.alloc(0, &mut b), Ok(0));
        assert_eq!(p.count(), 1);
        assert_eq!(p.alloc(0, &mut b), Ok(1));
        assert_eq!(p.alloc(0, &mut b), Err(AllocError::NoMemory));
        assert_eq!(p.alloc(1, &mut b), Err(AllocError::NoMemory));
    }

    #[test]
    fn high_watermark_drains_a_batch_of_the_oldest() {
        let mut b = buddy(4, 1);
        let mut p = Pcp::<16>::new(6, 4).unwrap();
        let pages: Vec<usize> = (0..8).map(|_| b.alloc(0).unwrap()).collect();
        // Five frees stay below high (6).
        for &pg in &pages[..5] {
            assert_eq!(p.push(pg, 0), Ok(false));
        }
        assert_eq!(p.count(), 5);
        // The sixth reaches it: the caller drains 4 pages, the oldest first (0, 1, 2, 3).
        assert_eq!(p.push(pages[5], 0), Ok(true));
        assert!(p.over_high());
        let d = p.drain_batch(0, &mut b);
        assert_eq!(
            d,
            Drained {
                pages: 4,
                rejected: 0
            }
        );
        assert_eq!(p.count(), 2);
        assert_eq!(b.nr_free_orders(), [0, 0, 1, 1, 0]);
        // free() does the same in one call; the hot end is the last freed.
        assert_eq!(p.free(pages[6], 0, &mut b), Ok(Drained::default()));
        assert_eq!(p.pop(0), Some(6));
        assert_eq!(p.free(pages[6], 0, &mut b), Ok(Drained::default()));
        assert_eq!(p.free(pages[7], 0, &mut b).map(|d| d.pages), Ok(0));
        assert_eq!(p.count(), 4);
        let d = p.drain_all(&mut b);
        assert_eq!(d.pages, 4);
        assert!(p.is_empty());
        assert!(whole(&b));
    }

    #[test]
    fn batch_drain_goes_round_the_orders() {
        let mut b = buddy(4, 2);
        let mut p = Pcp::<16>::new(12, 5).unwrap();
        let a = b.alloc(0).unwrap();
        let c = b.alloc(2).unwrap();
        let d = b.alloc(1).unwrap();
        assert_eq!(p.push(a, 0), Ok(false));
        assert_eq!(p.push(c, 2), Ok(false));
        assert_eq!(p.push(d, 1), Ok(false));
        assert_eq!(p.count(), 7);
        // After a free of order 1: from order 2 (4 pages), round past 3 to order 0 (1 page):
        // 5 pages; the block of order 1, just freed (hot), stays.
        assert_eq!(p.drain_batch(1, &mut b).pages, 5);
        assert_eq!((p.len(0), p.len(1), p.len(2)), (0, 1, 0));
        let _ = p.drain_all(&mut b);
        assert!(whole(&b));
    }

    #[test]
    fn push_checks_what_it_can() {
        let mut b = buddy(4, 1);
        let mut p = Pcp::<2>::new(2, 1).unwrap();
        assert_eq!(p.push(0, 4), Err(PcpError::BadOrder { order: 4 }));
        assert_eq!(p.push(3, 1), Err(PcpError::Misaligned));
        assert_eq!(p.push(usize::MAX & !7, 3), Err(PcpError::BadPage));
        assert_eq!(p.count(), 0);
        // A list that is full sends the block straight to the buddy allocator.
        let pages: Vec<usize> = (0..3).map(|_| b.alloc(2).unwrap()).collect();
        assert_eq!(p.push(pages[0], 2), Ok(true));
        assert_eq!(p.push(pages[1], 2), Ok(true));
        assert_eq!(p.push(pages[2], 2), Err(PcpError::Full { order: 2 }));
        assert_eq!(p.free(pages[2], 2, &mut b).map(|d| d.pages), Ok(4));
        assert_eq!(
            p.free(pages[2], 2, &mut b),
            Err(PcpError::Free(FreeError::DoubleFree))
        );
        let _ = p.drain_all(&mut b);
        assert!(whole(&b));
    }

    #[test]
    fn a_contract_breach_is_rejected_not_merged_twice() {
        let mut b = buddy(3, 1);
        let mut p = Pcp::<8>::new(8, 4).unwrap();
        let a = b.alloc(0).unwrap();
        assert_eq!(p.push(a, 0), Ok(false));
        assert_eq!(p.push(a, 0), Ok(false)); // freed twice: the cache cannot tell
        let d = p.drain_all(&mut b);
        assert_eq!(
            d,
            Drained {
                pages: 1,
                rejected: 1
            }
        );
        assert!(whole(&b));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(u32),
        Free(usize),
        Drain(u32),
        DrainAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..=PCP_MAX_ORDER).prop_map(Op::Alloc),
            5 => any::<usize>().prop_map(Op::Free),
            1 => (0..=PCP_MAX_ORDER).prop_map(Op::Drain),
            1 => Just(Op::DrainAll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pages_are_conserved(
            ops in prop::collection::vec(op(), 1..200),
            (high, batch) in (1usize..=32).prop_flat_map(|h| (Just(h), 1..=h)),
        ) {
            let mut b = buddy(4, 4);
            let mut p = Pcp::<32>::new(high, batch).unwrap();
            // Page -> first page of the block held by the "user".
            let mut owner = BTreeMap::new();
            let mut held: Vec<(usize, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc(order) => {
                        if let Ok(pg) = p.alloc(order, &mut b) {
                            prop_assert_eq!(pg % (1 << order), 0);
                            for q in pg..pg + (1 << order) {
                                prop_assert_eq!(owner.insert(q, pg), None);
                            }
                            held.push((pg, order));
                        } else {
                            // Nothing of that order cached, and the buddy has nothing either.
                            prop_assert_eq!(p.len(order), 0);
                            prop_assert!(b.largest_free_order().is_none_or(|o| o < order));
                        }
                    }
                    Op::Free(i) => {
                        if held.is_empty() {
                            continue;
                        }
                        let (pg, order) = held.swap_remove(i % held.len());
                        for q in pg..pg + (1 << order) {
                            owner.remove(&q);
                        }
                        let d = p.free(pg, order, &mut b).unwrap();
                        prop_assert_eq!(d.rejected, 0);
                    }
                    Op::Drain(order) => {
                        let before = p.count();
                        let d = p.drain_batch(order, &mut b);
                        prop_assert_eq!(d.rejected, 0);
                        prop_assert!(d.pages >= batch.min(before));
                        prop_assert_eq!(p.count(), before - d.pages);
                    }
                    Op::DrainAll => {
                        let _ = p.drain_all(&mut b);
                        prop_assert!(p.is_empty());
                    }
                }
                let cached: usize = (0..=PCP_MAX_ORDER).map(|o| p.len(o) << o).sum();
                prop_assert_eq!(cached, p.count());
                prop_assert_eq!(b.free_pages() + p.count() + owner.len(), b.present_pages());
            }
            for (pg, order) in held {
                let _ = p.free(pg, order, &mut b).unwrap();
            }
            let d = p.drain_all(&mut b);
            prop_assert_eq!(d.rejected, 0);
            prop_assert!(p.is_empty());
            prop_assert!(whole(&b));
        }
    }
}
