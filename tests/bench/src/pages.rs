// SPDX-License-Identifier: GPL-2.0

//! Page (frame) allocators behind one interface: rkmem's buddy and `buddy_system_allocator`'s
//! `FrameAllocator`. Both hand out page numbers of one arena; neither touches the pages.

use crate::rkcore::buddy::{Buddy, PageMeta};
use crate::trace::Op;
use buddy_system_allocator::FrameAllocator;
use std::hint::black_box;

/// A page allocator: blocks of `2^order` pages named by their first page number.
pub trait PageAlloc {
    /// Allocates `2^order` pages; panics if the arena cannot (the traces are sized so it can).
    fn alloc(&mut self, order: u32) -> usize;
    /// Frees the block of `2^order` pages at `page`; panics if the allocator refuses it.
    fn free(&mut self, page: usize, order: u32);
    /// Allocates `2^order` pages if a free block that large exists (the conservation check's
    /// drain, never in a measured loop).
    fn try_alloc(&mut self, order: u32) -> Option<usize>;
    /// The largest order a block of this allocator can have (where [`FreeBlocks::take`]'s drain
    /// starts).
    fn top_order(&self) -> u32;
}

/// The free blocks of a page allocator, `(first page, order)` in address order: what the
/// conservation check compares before and after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeBlocks(Vec<(usize, u32)>);

impl FreeBlocks {
    /// Takes every free block out of `a`, largest order first (so no allocation splits a block:
    /// the larger ones are gone already), then frees them back in the reverse order. That
    /// leaves `a` as it was: no block merges on the way back (the buddy of a free block is never
    /// wholly free, merging being eager on both sides), and rkmem's LIFO free lists get their
    /// heads back in their old order. Uses only the allocators' public API, the same way on both
    /// sides (`buddy_system_allocator` has no public free-frame count).
    pub fn take<A: PageAlloc>(a: &mut A) -> FreeBlocks {
        let mut v = Vec::new();
        for order in (0..=a.top_order()).rev() {
            while let Some(p) = a.try_alloc(order) {
                v.push((p, order));
            }
        }
        for &(p, order) in v.iter().rev() {
            a.free(p, order);
        }
        v.sort_unstable();
        FreeBlocks(v)
    }

    /// The blocks, `(first page, order)` in address order.
    pub fn blocks(&self) -> &[(usize, u32)] {
        &self.0
    }

    /// Free pages: the sum of the blocks' sizes.
    pub fn pages(&self) -> usize {
        self.0.iter().map(|&(_, order)| 1usize << order).sum()
    }
}

impl std::fmt::Display for FreeBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} free pages in {} blocks", self.pages(), self.0.len())
    }
}

/// rkmem's buddy over `slots` wholly free blocks of `2^max_order` pages.
pub struct RkBuddy(Buddy<Vec<PageMeta>>);

impl RkBuddy {
    /// An arena of `slots` present slots of `2^max_order` pages, all free.
    pub fn new(slots: usize, max_order: u32) -> RkBuddy {
        let meta = vec![PageMeta::INIT; slots << max_order];
        let mut b = Buddy::new(meta, max_order).expect("valid arena");
        for s in 0..slots {
            b.add_block(s).expect("slot is absent");
        }
        RkBuddy(b)
    }
}

impl PageAlloc for RkBuddy {
    #[inline]
    fn alloc(&mut self, order: u32) -> usize {
        match self.0.alloc(order) {
            Ok(p) => p,
            Err(e) => failed("rkmem buddy alloc", e),
        }
    }

    #[inline]
    fn free(&mut self, page: usize, order: u32) {
        if let Err(e) = self.0.free(page, order) {
            failed("rkmem buddy free", e)
        }
    }

    fn try_alloc(&mut self, order: u32) -> Option<usize> {
        self.0.alloc(order).ok()
    }

    fn top_order(&self) -> u32 {
        self.0.max_order()
    }
}

impl RkBuddy {
    /// rkmem's own count of free pages (its `free_pages` statistic).
    pub fn free_pages(&self) -> usize {
        self.0.free_pages()
    }
}

/// `buddy_system_allocator::FrameAllocator` serving the same orders as rkmem (up to
/// [`PeerBuddy::MAX_ORDER`], 10) over `slots` blocks of `2^max_order` frames, fed only what its
/// documentation allows.
///
/// `FrameAllocator<ORDER>` hands out blocks of up to `2^(ORDER - 1)` frames "out of a total
/// range of size at most `2^ORDER - 1`". The arena of the pairs and of the random trace is 16
/// slots of 1024 pages, 16384 frames: `FrameAllocator<11>` (largest order 10, rkmem's) is
/// documented for at most 2047 of them. Two ways give it what it supports:
///
/// - one `FrameAllocator<11>` per 1024-page slot, the wrapper routing each allocation to a
///   slot. That makes the peer first-fit by slot: where rkmem (one set of free lists over all
///   slots) takes the smallest free block that fits anywhere, the wrapper would split a large
///   block of the first slot with room while another slot holds an exact fit, and would scan
///   full slots first, so the two sides would not do the same splits and merges;
/// - one allocator with a larger ORDER, used only up to order 10 (chosen). It keeps one set of
///   free lists over the whole arena, like rkmem. With the slots contiguous, though, freed
///   order-10 blocks would merge on up to order 14 and every split would start from there;
///   so each slot is added alone, at frame `slot << (max_order + 1)`: the buddy of every
///   max-order block is then a gap that is never free, and merging stops at order 10 exactly
///   where rkmem's stops (at a slot). The relabelling keeps the frames' order, so the peer takes
///   the same blocks as before (its free lists are ordered sets: the lowest frame first).
///
/// ORDER 15 covers 16 slots with their gaps (15 x 2048 + 1024 = 31744 <= 2^15 - 1 frames); the
/// price on the peer's side is one failed look-up in its order-10 set whenever a free merges
/// up to order 10 (its merge loop runs to `ORDER - 2`).
pub struct PeerBuddy {
    frames: FrameAllocator<{ PeerBuddy::ORDER }>,
}

impl PeerBuddy {
    /// `FrameAllocator<ORDER>` serves orders `0..ORDER` over at most `2^ORDER - 1` frames.
    pub const ORDER: usize = 15;
    /// The largest order used: rkmem's `MAX_ORDER_LIMIT`.
    pub const MAX_ORDER: u32 = 10;

    /// The first frame of `slot` in an arena of `2^max_order`-page slots: slots lie
    /// `2^(max_order + 1)` frames apart.
    pub fn slot_start(slot: usize, max_order: u32) -> usize {
        slot << (max_order + 1)
    }

    /// Frames from the first slot's first frame to the last one's end.
    pub fn span(slots: usize, max_order: u32) -> usize {
        Self::slot_start(slots - 1, max_order) + (1 << max_order)
    }

    /// An arena of `slots` slots of `2^max_order` frames, all free, each one free block of
    /// `max_order`.
    pub fn new(slots: usize, max_order: u32) -> PeerBuddy {
        assert!(slots > 0 && max_order <= Self::MAX_ORDER);
        assert!(
            Self::span(slots, max_order) < 1 << Self::ORDER,
            "FrameAllocator<{}> is documented for at most 2^{} - 1 frames",
            Self::ORDER,
            Self::ORDER
        );
        let mut frames = FrameAllocator::new();
        for s in 0..slots {
            let start = Self::slot_start(s, max_order);
            frames.add_frame(start, start + (1 << max_order));
        }
        PeerBuddy { frames }
    }
}

impl PageAlloc for PeerBuddy {
    #[inline]
    fn alloc(&mut self, order: u32) -> usize {
        debug_assert!(order <= Self::MAX_ORDER);
        match self.frames.alloc(1 << order) {
            Some(p) => p,
            None => failed("buddy_system_allocator alloc", "no memory"),
        }
    }

    #[inline]
    fn free(&mut self, page: usize, order: u32) {
        debug_assert!(order <= Self::MAX_ORDER);
        self.frames.dealloc(page, 1 << order);
    }

    fn try_alloc(&mut self, order: u32) -> Option<usize> {
        self.frames.alloc(1 << order)
    }

    fn top_order(&self) -> u32 {
        // Not MAX_ORDER: the drain must also find blocks that merged past it (if any did).
        Self::ORDER as u32 - 1
    }
}

#[cold]
#[inline(never)]
fn failed(what: &str, e: impl std::fmt::Debug) -> ! {
    panic!("{what}: {e:?}")
}

/// One alloc+free pair of `order`.
#[inline]
pub fn pair<A: PageAlloc>(a: &mut A, order: u32) {
    let p = black_box(a.alloc(order));
    a.free(p, order);
}

/// Replays `trace` (orders in `Op::Alloc`); `live` is scratch space, empty before and after.
#[inline]
pub fn replay<A: PageAlloc>(a: &mut A, trace: &[Op], live: &mut Vec<(usize, u32)>) {
    for op in trace {
        match *op {
            Op::Alloc(order) => {
                let order = u32::from(order);
                let p = black_box(a.alloc(order));
                live.push((p, order));
            }
            Op::Free(pos) => {
                let (p, order) = live.swap_remove(pos as usize);
                a.free(p, order);
            }
        }
    }
}
