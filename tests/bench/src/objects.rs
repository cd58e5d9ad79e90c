// SPDX-License-Identifier: GPL-2.0

//! Fixed-size object allocators behind one interface: one rkmem bitmap-slab cache and
//! `slabmalloc`'s `ZoneAllocator`. Both get 4 KiB pages from the heap, only on a slow path that a
//! warmed-up benchmark never takes, and neither gives pages back during a run.

use crate::rkcore::slab::{CacheLists, SlabLayout, SlabList};
use crate::rkcore::slablist::{Headers, SlabLists};
use crate::trace::Op;
use slabmalloc::{AllocablePage, AllocationError, Allocator, ObjectPage, ZoneAllocator};
use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

/// The page size of both sides (slabmalloc's `ObjectPage` is 4 KiB).
pub const PAGE: usize = 4096;

/// An object allocator for one object size.
pub trait ObjAlloc {
    /// Allocates one object.
    fn alloc(&mut self) -> NonNull<u8>;
    /// Frees an object this allocator returned; panics if it refuses it.
    fn free(&mut self, obj: NonNull<u8>);
    /// Free and used objects in its slabs, read from the slabs' bitmaps (the conservation
    /// check, never in a measured loop).
    fn census(&mut self) -> Census;
}

/// What an object allocator holds: the conservation check compares it before and after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    /// Free objects in all its slabs (pages).
    pub free: usize,
    /// Allocated objects.
    pub used: usize,
    /// Slabs (pages) it holds.
    pub slabs: usize,
}

impl std::fmt::Display for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} free and {} used objects in {} slabs",
            self.free, self.used, self.slabs
        )
    }
}

fn page_layout() -> Layout {
    Layout::from_size_align(PAGE, PAGE).expect("valid layout")
}

fn new_page() -> *mut u8 {
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(page_layout()) };
    assert!(!p.is_null(), "out of memory");
    p
}

#[cold]
#[inline(never)]
fn failed(what: &str, e: impl std::fmt::Debug) -> ! {
    panic!("{what}: {e:?}")
}

/// Slab headers over real slabs: the first `header_bytes` of the page at the slab's address.
struct SlabHeaders {
    bytes: usize,
}

impl Headers for SlabHeaders {
    #[inline]
    fn header(&mut self, slab: u64) -> &mut [u8] {
        // SAFETY: every slab named to the lists is a live page from `new_page` owned by the
        // cache (`PAGE >= bytes`), and the benchmark never holds another reference into a header
        // while the lists or layout use this one (objects live past the header).
        unsafe { std::slice::from_raw_parts_mut(slab as *mut u8, self.bytes) }
    }
}

/// One rkmem slab cache, driven as `rust/cache.rs` drives it without its per-CPU cache and
/// locks: allocate from the first partial slab, else the first empty one; free by address
/// (mask to the slab, check magic and bitmap with `locate`, then `free`); after each operation
/// [`CacheLists`] says whether the slab changes lists and [`SlabLists`] moves it. Slabs are one
/// page (`max_order` 0) like slabmalloc's, and empty slabs are kept (`keep_empty` = all) as
/// slabmalloc keeps its pages.
pub struct RkCache {
    layout: SlabLayout,
    counts: CacheLists,
    lists: SlabLists,
    id: u32,
    seq: u64,
    pages: Vec<*mut u8>,
}

impl RkCache {
    /// A cache of `size`-byte objects aligned to `align`, with no slab yet.
    pub fn new(size: usize, align: usize) -> RkCache {
        let layout = SlabLayout::new(size, align, PAGE, 0).expect("valid slab layout");
        RkCache {
            counts: CacheLists::new(layout.objects(), u32::MAX),
            layout,
            lists: SlabLists::new(),
            id: 7,
            seq: 0,
            pages: Vec::new(),
        }
    }

    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.layout.objects()
    }

    fn headers(&self) -> SlabHeaders {
        SlabHeaders {
            bytes: self.layout.header_bytes(),
        }
    }

    #[cold]
    #[inline(never)]
    fn new_slab(&mut self) {
        let page = new_page();
        self.pages.push(page);
        self.seq += 1;
        let color = self.layout.color_offset(self.seq);
        let mut h = self.headers();
        let slab = page as u64;
        if let Err(e) = self.layout.init(h.header(slab), color, self.id) {
            failed("rkmem slab init", e)
        }
        self.lists.push(&self.layout, &mut h, SlabList::Empty, slab);
        self.counts.slab_added();
    }
}

impl ObjAlloc for RkCache {
    #[inline]
    fn alloc(&mut self) -> NonNull<u8> {
        loop {
            let slab = match (
                self.lists.first(SlabList::Partial),
                self.lists.first(SlabList::Empty),
            ) {
                (Some(s), _) | (None, Some(s)) => s,
                (None, None) => {
                    self.new_slab();
                    continue;
                }
            };
            let layout = &self.layout;
            let mut h = self.headers();
            let hdr = h.header(slab);
            let Some(index) = layout.alloc(hdr) else {
                failed("rkmem slab alloc", "slab on a list with room is full")
            };
            let after = layout.in_use(hdr);
            let Some(off) = layout.object_offset(layout.header_color(hdr), index) else {
                failed("rkmem slab alloc", "bad index")
            };
            if let Some(m) = self.counts.after_alloc(after) {
                self.lists.move_to(layout, &mut h, m.from, m.to, slab);
            }
            // SAFETY: `slab` is a non-null page address and `off` is inside the page.
            return unsafe { NonNull::new_unchecked((slab as usize + off) as *mut u8) };
        }
    }

    #[inline]
    fn free(&mut self, obj: NonNull<u8>) {
        let layout = &self.layout;
        let obj = obj.as_ptr() as usize;
        let slab = obj & !(layout.slab_bytes() - 1);
        let mut h = self.headers();
        let hdr = h.header(slab as u64);
        let index = match layout.locate(hdr, self.id, obj - slab) {
            Ok(i) => i,
            Err(e) => failed("rkmem slab locate", e),
        };
        if let Err(e) = layout.free(hdr, index) {
            failed("rkmem slab free", e)
        }
        let t = self.counts.after_free(layout.in_use(hdr));
        if let Some(m) = t.moved {
            self.lists
                .move_to(layout, &mut h, m.from, m.to, slab as u64);
        }
        if t.release {
            failed("rkmem slab free", "release with keep_empty = all")
        }
    }

    fn census(&mut self) -> Census {
        let per_slab = self.layout.objects() as usize;
        let mut h = self.headers();
        let used: usize = self
            .pages
            .iter()
            .map(|&p| self.layout.in_use(h.header(p as u64)) as usize)
            .sum();
        Census {
            free: self.pages.len() * per_slab - used,
            used,
            slabs: self.pages.len(),
        }
    }
}

impl Drop for RkCache {
    fn drop(&mut self) {
        for &p in &self.pages {
            // SAFETY: allocated by `new_page` with this layout; nothing uses the slabs any more.
            unsafe { std::alloc::dealloc(p, page_layout()) };
        }
    }
}

/// slabmalloc's `ZoneAllocator` serving one `Layout` (its size class is the next power of two:
/// 117 bytes come from the 128-byte class), refilled with heap pages on `OutOfMemory`.
pub struct PeerZone {
    zone: ZoneAllocator<'static>,
    layout: Layout,
    pages: Vec<*mut u8>,
}

impl PeerZone {
    /// A zone serving `size`-byte objects aligned to `align`, with no page yet.
    pub fn new(size: usize, align: usize) -> PeerZone {
        PeerZone {
            zone: ZoneAllocator::new(),
            layout: Layout::from_size_align(size, align).expect("valid layout"),
            pages: Vec::new(),
        }
    }

    /// Objects per page of the size class serving this layout.
    pub fn objects_per_slab(&self) -> usize {
        let class = ZoneAllocator::get_max_size(self.layout.size()).expect("small size");
        // slabmalloc: `(P::SIZE - OBJECT_PAGE_METADATA_OVERHEAD) / size`, at most 512.
        ((PAGE - 80) / class).min(512)
    }

    #[cold]
    #[inline(never)]
    fn refill(&mut self) -> NonNull<u8> {
        let page = new_page();
        self.pages.push(page);
        // SAFETY: a zeroed, 4 KiB-aligned, 4 KiB page that only the zone uses from now on (it is
        // freed in `drop`, after the last use of the zone); `ObjectPage` is 4 KiB, zero is a
        // valid value of it (its `Default` is all zeroes).
        let r = unsafe {
            self.zone
                .refill(self.layout, &mut *page.cast::<ObjectPage<'static>>())
        };
        if let Err(e) = r {
            failed("slabmalloc refill", e)
        }
        match self.zone.allocate(self.layout) {
            Ok(p) => p,
            Err(e) => failed("slabmalloc allocate after refill", e),
        }
    }
}

impl ObjAlloc for PeerZone {
    #[inline]
    fn alloc(&mut self) -> NonNull<u8> {
        match self.zone.allocate(self.layout) {
            Ok(p) => p,
            Err(AllocationError::OutOfMemory) => self.refill(),
            Err(e) => failed("slabmalloc allocate", e),
        }
    }

    #[inline]
    fn free(&mut self, obj: NonNull<u8>) {
        if let Err(e) = self.zone.deallocate(obj, self.layout) {
            failed("slabmalloc deallocate", e)
        }
    }

    fn census(&mut self) -> Census {
        // A page's bitmap has a set bit per allocated object and per bit beyond the page's
        // objects (`Bitfield::initialize` marks those allocated): its clear bits are the free
        // objects.
        let free: usize = self
            .pages
            .iter()
            .map(|&p| {
                // SAFETY: a live page given to the zone by `refill`; nothing else runs while this
                // shared reference lives, and the bitmap is atomics (interior mutability).
                let page = unsafe { &*p.cast::<ObjectPage<'static>>() };
                page.bitfield()
                    .iter()
                    .map(|w| w.load(Ordering::Relaxed).count_zeros() as usize)
                    .sum::<usize>()
            })
            .sum();
        Census {
            free,
            used: self.pages.len() * self.objects_per_slab() - free,
            slabs: self.pages.len(),
        }
    }
}

impl Drop for PeerZone {
    fn drop(&mut self) {
        for &p in &self.pages {
            // SAFETY: allocated by `new_page` with this layout; the zone is not used any more.
            unsafe { std::alloc::dealloc(p, page_layout()) };
        }
    }
}

/// One alloc+free pair.
#[inline]
pub fn pair<A: ObjAlloc>(a: &mut A) {
    let p = black_box(a.alloc());
    a.free(p);
}

/// Replays `trace`; `live` is scratch space, empty before and after.
#[inline]
pub fn replay<A: ObjAlloc>(a: &mut A, trace: &[Op], live: &mut Vec<NonNull<u8>>) {
    for op in trace {
        match *op {
            Op::Alloc(_) => live.push(black_box(a.alloc())),
            Op::Free(pos) => {
                let p = live.swap_remove(pos as usize);
                a.free(p);
            }
        }
    }
}
