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
}

/// `buddy_system_allocator::FrameAllocator` with the same largest order as rkmem (10), over the
/// same page numbers.
pub struct PeerBuddy(FrameAllocator<{ PeerBuddy::ORDER }>);

impl PeerBuddy {
    /// `FrameAllocator<ORDER>` serves orders `0..ORDER`: 11 gives rkmem's `MAX_ORDER_LIMIT` 10.
    pub const ORDER: usize = 11;

    /// An arena of pages `0..slots << max_order`, all free.
    pub fn new(slots: usize, max_order: u32) -> PeerBuddy {
        assert!((max_order as usize) < Self::ORDER);
        let mut f = FrameAllocator::new();
        f.add_frame(0, slots << max_order);
        PeerBuddy(f)
    }
}

impl PageAlloc for PeerBuddy {
    #[inline]
    fn alloc(&mut self, order: u32) -> usize {
        match self.0.alloc(1 << order) {
            Some(p) => p,
            None => failed("buddy_system_allocator alloc", "no memory"),
        }
    }

    #[inline]
    fn free(&mut self, page: usize, order: u32) {
        self.0.dealloc(page, 1 << order);
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
