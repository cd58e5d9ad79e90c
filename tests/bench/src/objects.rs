// SPDX-License-Identifier: GPL-2.0

//! Fixed-size object allocators behind one interface: one rkmem bitmap-slab cache and
//! `slabmalloc`'s `ZoneAllocator`. Both get 4 KiB pages from the heap, only on a slow path that a
//! warmed-up benchmark never takes, and neither gives pages back during a run.

use crate::rkcore::cache::{Repaired, SlabMemory, SlabSet};
use crate::rkcore::slab::SlabLayout;
use crate::rkcore::slablist::Headers;
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

/// Pages for slabs in 4 MiB chunks taken from the heap, each page with an owner tag, found by
/// address with a search over the chunks: the module's arena (slots of 1024 pages, page tags,
/// `Arena::page_of`) in miniature, so that the free path does what the module's does.
struct ChunkMem {
    chunks: Vec<*mut u8>,
    tags: Vec<u32>,
    /// Pages handed out so far (in chunk order).
    used: usize,
    header_bytes: usize,
}

/// Pages per chunk (the arena's slot).
const CHUNK_PAGES: usize = 1024;

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK_PAGES * PAGE, PAGE).expect("valid layout")
}

impl ChunkMem {
    /// The page index of `addr`, if it is in a chunk.
    #[inline]
    fn page_of(&self, addr: u64) -> Option<usize> {
        self.chunks.iter().enumerate().find_map(|(i, &base)| {
            let off = (addr as usize).checked_sub(base as usize)?;
            (off < CHUNK_PAGES * PAGE).then_some(i * CHUNK_PAGES + off / PAGE)
        })
    }

    /// A page nobody uses yet (a new chunk when the last is used up).
    fn new_page(&mut self) -> u64 {
        if self.used == self.chunks.len() * CHUNK_PAGES {
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { std::alloc::alloc_zeroed(chunk_layout()) };
            assert!(!p.is_null(), "out of memory");
            self.chunks.push(p);
            self.tags.resize(self.chunks.len() * CHUNK_PAGES, 0);
        }
        let page = self.used;
        self.used += 1;
        self.chunks[page / CHUNK_PAGES] as u64 + ((page % CHUNK_PAGES) * PAGE) as u64
    }
}

impl Headers for ChunkMem {
    #[inline]
    fn header(&mut self, slab: u64) -> &mut [u8] {
        // SAFETY: `SlabSet` names only slabs it owns (on its lists, tagged as its own, or being
        // prepared): pages of a live chunk (`PAGE >= header_bytes`), and the benchmark never
        // holds another reference into a header while the set uses this one.
        unsafe { std::slice::from_raw_parts_mut(slab as *mut u8, self.header_bytes) }
    }
}

impl SlabMemory for ChunkMem {
    type Pages = usize;

    #[inline]
    fn owner(&self, slab: u64) -> Option<u32> {
        self.page_of(slab).map(|p| self.tags[p])
    }

    fn set_owner(&mut self, slab: u64, owner: u32) -> Option<usize> {
        let p = self.page_of(slab)?;
        self.tags[p] = owner;
        Some(p)
    }

    #[inline]
    fn bytes(&mut self, slab: u64, offset: usize, len: usize) -> &mut [u8] {
        // SAFETY: `SlabSet` asks only for a slot of an object being allocated or freed, or of a
        // slab being prepared, inside a page of a live chunk; nothing else references it then.
        unsafe { std::slice::from_raw_parts_mut((slab as usize + offset) as *mut u8, len) }
    }
}

impl Drop for ChunkMem {
    fn drop(&mut self) {
        for &p in &self.chunks {
            // SAFETY: allocated with this layout in `new_page`; nothing uses the slabs any more.
            unsafe { std::alloc::dealloc(p, chunk_layout()) };
        }
    }
}

/// One rkmem slab cache: the module's own composition, `rkcore::cache::SlabSet`, as
/// `rust/allocators/slab.rs` runs it without its per-CPU arrays and locks: allocations from the
/// first partial slab, else the first empty one; frees by address (the owner tag of the page,
/// then magic and bitmap, then the lists). Slabs are one page (`max_order` 0) like slabmalloc's,
/// and empty slabs are kept (`keep_empty` = all) as slabmalloc keeps its pages.
pub struct RkCache {
    set: SlabSet,
    mem: ChunkMem,
    id: u32,
    slabs: Vec<u64>,
}

impl RkCache {
    /// A cache of `size`-byte objects aligned to `align`, with no slab yet.
    pub fn new(size: usize, align: usize) -> RkCache {
        let layout = SlabLayout::new(size, align, PAGE, 0).expect("valid slab layout");
        RkCache {
            set: SlabSet::new(layout, 7, u32::MAX),
            mem: ChunkMem {
                chunks: Vec::new(),
                tags: Vec::new(),
                used: 0,
                header_bytes: layout.header_bytes(),
            },
            id: 7,
            slabs: Vec::new(),
        }
    }

    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.set.layout().objects()
    }

    #[cold]
    #[inline(never)]
    fn new_slab(&mut self) {
        let slab = self.mem.new_page();
        self.slabs.push(slab);
        let color = self.set.next_color();
        let layout = *self.set.layout();
        if let Err(e) = SlabSet::prepare(&layout, self.id, &mut self.mem, slab, color, None) {
            failed("rkmem slab init", e)
        }
        self.set.add(&mut self.mem, slab);
    }
}

#[cold]
#[inline(never)]
fn repaired(r: Repaired) {
    failed("rkmem slab free", r)
}

impl ObjAlloc for RkCache {
    #[inline]
    fn alloc(&mut self) -> NonNull<u8> {
        loop {
            let mut one = [0usize; 1];
            if self.set.take(&mut self.mem, &mut one) == 1 {
                // SAFETY: an object address inside a live page: not null.
                return unsafe { NonNull::new_unchecked(one[0] as *mut u8) };
            }
            self.new_slab();
        }
    }

    #[inline]
    fn free(&mut self, obj: NonNull<u8>) {
        match self
            .set
            .free(&mut self.mem, obj.as_ptr() as usize, &mut repaired)
        {
            Ok(None) => {}
            Ok(Some(_)) => failed("rkmem slab free", "release with keep_empty = all"),
            Err(e) => failed("rkmem slab free", e),
        }
    }

    fn census(&mut self) -> Census {
        let per_slab = self.set.layout().objects() as usize;
        let layout = *self.set.layout();
        let used: usize = self
            .slabs
            .iter()
            .map(|&p| layout.in_use(self.mem.header(p)) as usize)
            .sum();
        Census {
            free: self.slabs.len() * per_slab - used,
            used,
            slabs: self.slabs.len(),
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
