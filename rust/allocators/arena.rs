// SPDX-License-Identifier: GPL-2.0

//! The arena: rkmem's own page allocator.
//!
//! Memory comes from the host kernel's page allocator in order-10 blocks (4 MiB, physically
//! contiguous), one per *slot*. `rkcore::buddy` manages the pages of all present slots as a
//! buddy system of orders 0..=10. The page path's decisions (per-CPU caches in front of the
//! buddy system, owner marks and bad-free checks, grow-then-drain when out of pages) are
//! `rkcore::arena`'s, which this file runs through [`PageEnv`]; it owns the memory, the locks
//! and the counters.
//!
//! # Locking
//!
//! - `inner` (spinlock): the buddy allocator's metadata.
//! - `pcp[i]` (spinlock): one per CPU (CPU id modulo [`PCP_SLOTS`]), the cached blocks of
//!   orders 0..=3. Taken before `inner` when both are needed, never after it.
//! - `grow` (mutex): serialises adding and removing slots (allocating or freeing a 4 MiB block
//!   of the host kernel can sleep, so it is done without `inner` held).
//!
//! # Detection of bad frees
//!
//! `owner[page]` is the owner mark of `rkcore::arena` (`order + 1` for the first page of every
//! live block handed out by [`Arena::alloc`]): a double free, a free of a page that is not the
//! start of a live block, or a free with the wrong order is caught in O(1) even when the block
//! would go to a per-CPU cache, where the buddy allocator cannot see it.

use crate::rkcore::arena::{self as core_arena, CpuPages, Event, Marks, PageAllocError, PageEnv};
use crate::rkcore::buddy::{Buddy, FreeError, PageMeta};
use crate::trace;
use core::fmt;
use kernel::{
    cpu::CpuId,
    ffi::{c_ulong, c_void},
    new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Mutex, SetOnce, SpinLock,
    },
};

use crate::ffi::{
    rkmem_block_alloc, rkmem_block_free, rkmem_kasan_enabled, rkmem_kasan_poison_pages,
    rkmem_kasan_unpoison_pages, rkmem_page_tag, rkmem_pages_set_tag,
};

/// Bytes per page.
pub(crate) const PAGE_SIZE: usize = kernel::page::PAGE_SIZE;
/// Order of the blocks taken from the host kernel (4 MiB): the buddy system's largest order.
pub(crate) const BLOCK_ORDER: u32 = crate::rkcore::buddy::MAX_ORDER_LIMIT;
/// Pages per slot.
pub(crate) const SLOT_PAGES: usize = 1 << BLOCK_ORDER;
/// Number of per-CPU caches; CPU `n` uses cache `n % PCP_SLOTS`.
const PCP_SLOTS: usize = 16;
/// Blocks one per-CPU list can hold.
const PCP_CAP: usize = 256;
/// A per-CPU cache drains when it holds this many pages (over all orders)... With a small
/// `high`, blocks of lower orders left from earlier work fill the cache, and every free of an
/// order-3 block drains it and every allocation refills it (measured: order 3 at 2-4x the
/// page allocator's time with 64); 256 leaves room for every order's refill batch.
const PCP_HIGH: usize = 256;
/// ...this many pages at a time; a refill takes `max(PCP_BATCH >> order, 2)` blocks.
const PCP_BATCH: usize = 32;

/// One CPU's page cache and its counters (see `rkcore::arena::CpuPages`), aligned to (and
/// padded to a multiple of) 128 bytes, two cache lines as the adjacent-line prefetcher pairs
/// them: the cache's spinlock and its data share no line with another CPU's (they did, at the
/// ends of each slot, which made 2-CPU page pairs 1.2-1.4x slower than 1-CPU ones at some
/// orders and not others).
#[repr(C, align(128))]
struct PcpSlot(CpuPages<PCP_CAP>);

impl core::ops::Deref for PcpSlot {
    type Target = CpuPages<PCP_CAP>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for PcpSlot {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

// SAFETY: `CpuPages` is integers and arrays of integers: all zeroes is a valid value of it (an
// empty cache, zero counters, limits 0 until `set_limits`).
unsafe impl<const CAP: usize> pin_init::Zeroable for CpuPages<CAP> {}
// SAFETY: a wrapper of a `CpuPages` (above) plus padding.
unsafe impl pin_init::Zeroable for PcpSlot {}

// The limits `set_limits` is given in `Arena::new` are valid (`1 <= batch <= high <= CAP`).
const _: () = assert!(1 <= PCP_BATCH && PCP_BATCH <= PCP_HIGH && PCP_HIGH <= PCP_CAP);

/// The owner marks: an atomic byte per page, stored at `rkcore::arena::mark_index` (spread so
/// that neighbouring pages' bytes do not share a cache line).
struct OwnerMarks(KVVec<Atomic<i8>>);

impl OwnerMarks {
    fn get(&self, page: usize) -> Option<&Atomic<i8>> {
        self.0.get(core_arena::mark_index(page, self.0.len())?)
    }
}

impl Marks for OwnerMarks {
    fn set(&self, page: usize, mark: i8) -> bool {
        self.get(page).map(|m| m.store(mark, Relaxed)).is_some()
    }

    fn take(&self, page: usize) -> Option<i8> {
        self.get(page).map(|m| m.xchg(0, Relaxed))
    }
}

/// What a [`Pages`] handle names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// A block of `2^order` pages.
    Order { page: usize, order: u32 },
    /// Exactly `npages` pages (`alloc_pages_exact`).
    Exact { page: usize, npages: usize },
}

/// A block of pages handed out by the arena: owned, neither `Copy` nor `Clone`, and given
/// back by moving it into [`Arena::free`]. Safe code gets one only from [`Arena::alloc`] or
/// [`Arena::alloc_exact`], so it cannot express a double free or a free of pages it was never
/// given; [`Pages::from_raw_order`] and [`Pages::from_raw_exact`] are the `unsafe` ways back
/// from a page index (for an allocator that keeps its blocks by address, like a slab cache).
///
/// Dropping a handle does not free the block (a handle does not know its arena): it leaks it,
/// as a forgotten `__free_pages` would; hence `must_use`.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) struct Pages(Block);

impl Pages {
    /// The handle of the block of `2^order` pages at page `page`.
    ///
    /// # Safety
    ///
    /// No other handle of this block may exist: the caller got it from [`Arena::alloc`] with
    /// this order and turned that handle into its page index, once; or the block is
    /// deliberately bad (never allocated, or of another order) to test that [`Arena::free`]
    /// refuses it, which it does from the owner marks without touching the pages.
    pub(crate) unsafe fn from_raw_order(page: usize, order: u32) -> Pages {
        Pages(Block::Order { page, order })
    }

    /// The handle of `npages` pages at page `page` ([`Pages::from_raw_order`] for
    /// [`Arena::alloc_exact`]).
    ///
    /// # Safety
    ///
    /// As for [`Pages::from_raw_order`], with [`Arena::alloc_exact`] and this page count.
    pub(crate) unsafe fn from_raw_exact(page: usize, npages: usize) -> Pages {
        Pages(Block::Exact { page, npages })
    }

    /// The first page's index, the handle given up (for an owner that keeps the block by
    /// address from now on and returns it with [`Pages::from_raw_order`]).
    pub(crate) fn into_first(self) -> usize {
        self.first()
    }

    /// Index of the first page.
    pub(crate) fn first(&self) -> usize {
        match self.0 {
            Block::Order { page, .. } | Block::Exact { page, .. } => page,
        }
    }

    /// Number of pages.
    pub(crate) fn npages(&self) -> usize {
        match self.0 {
            Block::Order { order, .. } => 1 << order,
            Block::Exact { npages, .. } => npages,
        }
    }

    /// Size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.npages() * PAGE_SIZE
    }
}

/// Counters of the arena, shown in `/proc/rkmem/stats`.
pub(crate) struct ArenaStats {
    pub(crate) allocs: Atomic<u64>,
    pub(crate) frees: Atomic<u64>,
    pub(crate) pcp_refills: Atomic<u64>,
    pub(crate) pcp_drains: Atomic<u64>,
    pub(crate) enomem: Atomic<u64>,
    pub(crate) grows: Atomic<u64>,
    pub(crate) grow_failures: Atomic<u64>,
    pub(crate) blocks_released: Atomic<u64>,
    pub(crate) bad_free_double: Atomic<u64>,
    pub(crate) bad_free_foreign: Atomic<u64>,
    pub(crate) bad_free_order: Atomic<u64>,
    pub(crate) bad_free_other: Atomic<u64>,
}

impl ArenaStats {
    const fn new() -> Self {
        ArenaStats {
            allocs: Atomic::new(0),
            frees: Atomic::new(0),
            pcp_refills: Atomic::new(0),
            pcp_drains: Atomic::new(0),
            enomem: Atomic::new(0),
            grows: Atomic::new(0),
            grow_failures: Atomic::new(0),
            blocks_released: Atomic::new(0),
            bad_free_double: Atomic::new(0),
            bad_free_foreign: Atomic::new(0),
            bad_free_order: Atomic::new(0),
            bad_free_other: Atomic::new(0),
        }
    }
}

fn inc(c: &Atomic<u64>) {
    c.add(1, Relaxed);
}

/// Takes `lock`, or with `try_only` only tries.
pub(crate) fn acquire<T, B: kernel::sync::lock::Backend>(
    lock: &kernel::sync::lock::Lock<T, B>,
    try_only: bool,
) -> Option<kernel::sync::lock::Guard<'_, T, B>> {
    if try_only {
        lock.try_lock()
    } else {
        Some(lock.lock())
    }
}

/// Takes `m` as [`kernel::sync::Mutex::lock`] does, but waits interruptibly
/// (`mutex_lock_interruptible`): for ioctls that can wait behind a long holder (a benchmark
/// with its maximum counts, a compaction under TCG), so that the waiter is not reported as a
/// hung task and a signal ends its wait with `EINTR`.
pub(crate) fn lock_interruptible<T>(
    m: &kernel::sync::Mutex<T>,
) -> Result<kernel::sync::MutexGuard<'_, T>> {
    // `Lock` is `#[repr(C)]` with its `state: Opaque<B::State>` first (the layout
    // `Lock::from_raw` relies on): for the mutex backend the `struct mutex` is at its start.
    let raw = core::ptr::from_ref(m)
        .cast::<kernel::bindings::mutex>()
        .cast_mut();
    // SAFETY: `raw` points to `m`'s initialised `struct mutex` (above), which lives as long
    // as `m`; the C side only locks it.
    if unsafe { crate::ffi::rkmem_mutex_lock_interruptible(raw) } != 0 {
        return Err(EINTR);
    }
    // SAFETY: the mutex was just acquired by this task; the mutex backend's guard state is `()`.
    Ok(unsafe { kernel::sync::lock::Guard::new(m, ()) })
}

struct Inner {
    buddy: Buddy<KVVec<PageMeta>>,
}

/// What [`Arena::trim`] gave back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Trimmed {
    /// Pages moved from the per-CPU caches to the buddy allocator.
    pub(crate) pcp_pages: usize,
    /// Pages given back to the host kernel.
    pub(crate) released_pages: usize,
}

/// The arena.
///
/// # Invariants
///
/// - `slot_addr[s]` is the kernel virtual address of the order-10 block of the host kernel that
///   backs slot `s` while `s` is present in the buddy allocator, and 0 while it is absent. It is
///   set before the slot is added and cleared after it is removed (both under `grow`).
/// - Every present slot's block was allocated by `rkmem_block_alloc(BLOCK_ORDER, _)` and is
///   freed exactly once, by `trim` (after the slot is removed) or by `drop`.
/// - `owner.len() == slot_addr.len() * SLOT_PAGES`.
#[pin_data(PinnedDrop)]
pub(crate) struct Arena {
    #[pin]
    inner: SpinLock<Inner>,
    #[pin]
    pcp: [SpinLock<PcpSlot>; PCP_SLOTS],
    #[pin]
    grow: Mutex<()>,
    slot_addr: KVVec<Atomic<usize>>,
    owner: OwnerMarks,
    tag: KVVec<Atomic<u32>>,
    /// Per page: the off-slab header of the slab this page starts (0: none), which its cache
    /// keeps here as SLUB keeps a slab's fields in its `struct page`.
    slab_meta: KVVec<Atomic<usize>>,
    /// The slot being evacuated (`usize::MAX`: none), mirrored from the buddy allocator so
    /// that frees into it skip the per-CPU caches without the buddy lock.
    isolated: Atomic<usize>,
    min_slots: usize,
    pcp_used: usize,
    /// The module's arena (not a private one, the selftest's): [`PageEnv::pressure`] calls the
    /// hook and refused frees are reported in dmesg (read-only after init).
    shared: bool,
    /// KASAN watches this arena's pages (a KASAN build, the module's arena): free blocks are
    /// poisoned, handed-out ones unpoisoned. A private arena (the selftest's, which frees bad
    /// handles on purpose) is not poisoned: a refused free must not change any shadow.
    kasan: bool,
    pub(crate) stats: ArenaStats,
    reported: [Atomic<bool>; 4],
}

/// See [`Arena::new`]'s `on_pressure`.
pub(crate) type PressureHook = fn(free: u64, may_sleep: bool);

/// Told the free pages left after each allocation that reached the buddy allocator (the
/// watermark policy, `reclaim::on_pressure`, wired in by the crate root through
/// [`Arena::new`]), with the allocation's `may_sleep`: a function the owner hands in, so that
/// the arena depends on no module that itself uses the arena. A static, not a field: a field
/// would share cache lines with the arena's counters, which every CPU writes on every
/// operation (measured: 2-CPU page pairs took 235 ns instead of 155 ns with it in `Arena`).
static ON_PRESSURE: SetOnce<PressureHook> = SetOnce::new();

impl Arena {
    /// An arena of at most `max_slots` 4 MiB blocks that keeps at least `min_slots` when trimmed.
    /// It holds no memory until [`Arena::populate`]. `on_pressure` is called, with no lock of
    /// the arena held, after every allocation that reached the buddy allocator; `None`: a
    /// private arena (the selftest's), whose fill level is nobody's concern.
    pub(crate) fn new(
        min_slots: usize,
        max_slots: usize,
        on_pressure: Option<PressureHook>,
    ) -> Result<impl PinInit<Self, Error>> {
        let npages = max_slots.checked_mul(SLOT_PAGES).ok_or(EINVAL)?;
        let meta = KVVec::from_elem(PageMeta::INIT, npages, GFP_KERNEL)?;
        let buddy = Buddy::new(meta, BLOCK_ORDER).map_err(|_| EINVAL)?;
        let mut slot_addr = KVVec::with_capacity(max_slots, GFP_KERNEL)?;
        for _ in 0..max_slots {
            slot_addr.push(Atomic::new(0), GFP_KERNEL)?;
        }
        let mut owner = KVVec::with_capacity(npages, GFP_KERNEL)?;
        for _ in 0..npages {
            owner.push(Atomic::new(0), GFP_KERNEL)?;
        }
        let mut tag = KVVec::with_capacity(npages, GFP_KERNEL)?;
        for _ in 0..npages {
            tag.push(Atomic::new(0), GFP_KERNEL)?;
        }
        let mut slab_meta = KVVec::with_capacity(npages, GFP_KERNEL)?;
        for _ in 0..npages {
            slab_meta.push(Atomic::new(0), GFP_KERNEL)?;
        }
        let cpus = kernel::cpu::nr_cpu_ids() as usize;
        // One shared arena per module load (statics are fresh at each load): its hook stays.
        if let Some(hook) = on_pressure {
            ON_PRESSURE.populate(hook);
        }
        Ok(try_pin_init!(Self {
            inner <- new_spinlock!(Inner { buddy }, "rkmem_arena"),
            // Each cache is built in place (a `CpuPages` is 4 KiB: never on the stack).
            pcp <- pin_init::pin_init_array_from_fn(|_| new_spinlock!(
                pin_init::init_zeroed::<PcpSlot>().chain(|c| {
                    // Cannot fail: the limits are checked at compile time (above).
                    let _ = c.pcp.set_limits(PCP_HIGH, PCP_BATCH);
                    Ok(())
                }),
                "rkmem_pcp"
            )),
            grow <- new_mutex!((), "rkmem_arena_grow"),
            slot_addr,
            owner: OwnerMarks(owner),
            tag,
            slab_meta,
            isolated: Atomic::new(usize::MAX),
            min_slots,
            pcp_used: cpus.clamp(1, PCP_SLOTS),
            shared: on_pressure.is_some(),
            // SAFETY: reads a build-time fact.
            kasan: on_pressure.is_some() && unsafe { rkmem_kasan_enabled() },
            stats: ArenaStats::new(),
            reported: [const { Atomic::new(false) }; 4],
        }))
    }

    /// Takes `min_slots` blocks from the host kernel (the arena's size at load).
    pub(crate) fn populate(&self) -> Result {
        for _ in 0..self.min_slots {
            if !self.grow(true)? {
                return Err(ENOMEM);
            }
        }
        Ok(())
    }

    /// Number of slots the arena may have.
    pub(crate) fn nr_slots(&self) -> usize {
        self.slot_addr.len()
    }

    /// Kernel virtual address of page `page`, which must belong to a live allocation.
    pub(crate) fn addr_of(&self, page: usize) -> usize {
        let base = self
            .slot_addr
            .get(page / SLOT_PAGES)
            .map_or(0, |a| a.load(Relaxed));
        base + (page % SLOT_PAGES) * PAGE_SIZE
    }

    /// The page index of kernel virtual address `addr`, if it lies in a present slot.
    /// O(number of slots): used on slow paths only (releasing a slab, checking a pointer).
    pub(crate) fn page_of(&self, addr: usize) -> Option<usize> {
        self.slot_addr.iter().enumerate().find_map(|(slot, base)| {
            let base = base.load(Relaxed);
            let off = addr.checked_sub(base)?;
            (base != 0 && off < SLOT_PAGES * PAGE_SIZE)
                .then_some(slot * SLOT_PAGES + off / PAGE_SIZE)
        })
    }

    /// Tags the `npages` pages from page `first` with `tag` (a slab cache's id + 1; 0 clears),
    /// the way `struct page` records its slab cache: a free can then check where a pointer
    /// belongs without reading the memory it points to. The range lies in one slot (a slab)
    /// and is allocated. The tag is also mirrored into the host's `struct page`s of the range
    /// (see [`Arena::tag_of_handed_out`]).
    pub(crate) fn set_tag_range(&self, first: usize, npages: usize, tag: u32) {
        for t in self.tag.iter().skip(first).take(npages) {
            t.store(tag, Relaxed);
        }
        let addr = self.addr_of(first);
        if addr != 0 && npages != 0 && first % SLOT_PAGES + npages <= SLOT_PAGES {
            // SAFETY: `addr` is page `first` of a present slot (an allocated range lies in
            // one), and the range ends inside that slot's block, which this arena owns.
            unsafe { rkmem_pages_set_tag(addr as *mut c_void, npages as c_ulong, tag as c_ulong) };
        }
    }

    /// The tag of the page that holds `addr`, in one load from the host's `struct page` (the
    /// mirror [`Arena::set_tag_range`] keeps), the way kfree finds a slab's cache.
    ///
    /// # Safety
    ///
    /// `addr` lies in a range of this arena that is allocated (so in a present block of the
    /// host's direct map, whose `struct page`s this arena's tags are mirrored into).
    #[inline]
    pub(crate) unsafe fn tag_of_handed_out(&self, addr: usize) -> u32 {
        // SAFETY: `addr` is in the direct map (the caller's promise).
        unsafe { rkmem_page_tag(addr as *const c_void) as u32 }
    }

    /// Records `meta` (0 clears) as the off-slab header of the slab starting at page `page`.
    pub(crate) fn set_slab_meta(&self, page: usize, meta: usize) {
        if let Some(m) = self.slab_meta.get(page) {
            m.store(meta, Relaxed);
        }
    }

    /// The off-slab header recorded for the slab starting at page `page` (0 if none).
    pub(crate) fn slab_meta(&self, page: usize) -> usize {
        self.slab_meta.get(page).map_or(0, |m| m.load(Relaxed))
    }

    /// The tag of page `page` (0 if untagged or not a page of the arena).
    pub(crate) fn tag_of(&self, page: usize) -> u32 {
        self.tag.get(page).map_or(0, |t| t.load(Relaxed))
    }

    /// Allocates a block of `2^order` pages. `may_sleep`: the caller may sleep while the arena
    /// grows (otherwise growing is tried without sleeping).
    pub(crate) fn alloc(&self, order: u32, may_sleep: bool) -> Result<Pages> {
        let page = core_arena::alloc(self, order, BLOCK_ORDER, may_sleep).map_err(to_errno)?;
        let p = Pages(Block::Order { page, order });
        self.kasan_handed_out(&p);
        trace::page_alloc(|| self.addr_of(page), Some(order), p.npages());
        Ok(p)
    }

    /// Allocates exactly `npages` pages, `1..=1024`.
    pub(crate) fn alloc_exact(&self, npages: usize, may_sleep: bool) -> Result<Pages> {
        let page =
            core_arena::alloc_exact(self, npages, SLOT_PAGES, may_sleep).map_err(to_errno)?;
        let p = Pages(Block::Exact { page, npages });
        self.kasan_handed_out(&p);
        trace::page_alloc(|| self.addr_of(page), None, npages);
        Ok(p)
    }

    /// KASAN: `p`, just handed out, is accessible.
    #[inline(always)]
    fn kasan_handed_out(&self, p: &Pages) {
        if cfg!(CONFIG_KASAN_GENERIC) && self.kasan {
            // SAFETY: `p` is a block of this arena's memory (its handle was just made by the
            // allocation); only its KASAN shadow changes.
            unsafe {
                rkmem_kasan_unpoison_pages(self.addr_of(p.first()) as *mut c_void, p.bytes())
            };
        }
    }

    /// Gives the 4 MiB host block at `addr` back to the host kernel (accessible again for KASAN,
    /// as the host's free path expects its pages).
    ///
    /// # Safety
    ///
    /// `addr` is a block this arena took with `rkmem_block_alloc(BLOCK_ORDER, _)`, not yet
    /// freed, that nothing refers to any more.
    unsafe fn free_block(&self, addr: *mut c_void) {
        if self.kasan {
            // SAFETY: the block is this arena's (the caller); only its shadow changes.
            unsafe { rkmem_kasan_unpoison_pages(addr, SLOT_PAGES * PAGE_SIZE) };
        }
        // SAFETY: the caller's promise.
        unsafe { rkmem_block_free(addr, BLOCK_ORDER) };
    }

    /// Allocates a block of the shape of `p` (its order, or its exact page count): where a
    /// compaction moves `p` to.
    pub(crate) fn alloc_like(&self, p: &Pages, may_sleep: bool) -> Result<Pages> {
        match p.0 {
            Block::Order { order, .. } => self.alloc(order, may_sleep),
            Block::Exact { npages, .. } => self.alloc_exact(npages, may_sleep),
        }
    }

    fn pcp_of_this_cpu(&self) -> &SpinLock<PcpSlot> {
        let cpu = CpuId::current().as_u32() as usize;
        &self.pcp[cpu % PCP_SLOTS]
    }

    /// Adds one 4 MiB block of the host kernel to the arena. `Ok(false)`: the arena is at its
    /// maximum, or the host kernel had no block to give.
    fn grow(&self, may_sleep: bool) -> Result<bool> {
        let _guard = if may_sleep {
            self.grow.lock()
        } else {
            match self.grow.try_lock() {
                Some(g) => g,
                None => return Ok(false),
            }
        };
        let Some(slot) = self.inner.lock().buddy.absent_slot() else {
            return Ok(false);
        };
        // SAFETY: allocating pages has no precondition; `may_sleep` selects GFP flags that do
        // not sleep when the caller cannot.
        let addr = unsafe { rkmem_block_alloc(BLOCK_ORDER, may_sleep) };
        if addr.is_null() {
            inc(&self.stats.grow_failures);
            return Ok(false);
        }
        if self.kasan {
            // Poisoned while nobody can reach it: once the slot is present, another CPU may
            // allocate from it (and unpoison its block) at once.
            // SAFETY: `addr` is the 4 MiB block just taken from the host, not yet part of the
            // arena; only its shadow changes.
            unsafe { rkmem_kasan_poison_pages(addr, SLOT_PAGES * PAGE_SIZE) };
        }
        // INVARIANT: the address is published before the slot becomes present, under `grow`.
        self.slot_addr[slot].store(addr as usize, Relaxed);
        if self.inner.lock().buddy.add_block(slot).is_err() {
            // Cannot happen: `grow` is held and the slot was absent. Undo cleanly anyway.
            self.slot_addr[slot].store(0, Relaxed);
            // SAFETY: `addr` came from `rkmem_block_alloc(BLOCK_ORDER, _)` just above and was
            // never handed out.
            unsafe { self.free_block(addr) };
            return Err(EINVAL);
        }
        inc(&self.stats.grows);
        trace::arena_grow(slot, addr as usize);
        Ok(true)
    }

    /// Frees a block allocated by this arena. A double free, a foreign page or a wrong size is
    /// refused with an error, counted, and reported once in dmesg; nothing is corrupted.
    pub(crate) fn free(&self, pages: Pages) -> core::result::Result<(), FreeError> {
        let order = match pages.0 {
            Block::Order { order, .. } => Some(order),
            Block::Exact { .. } => None,
        };
        trace::page_free(|| self.addr_of(pages.first()), order, pages.npages());
        if cfg!(CONFIG_KASAN_GENERIC) && self.kasan {
            // Poisoned before it is free: once the buddy allocator or a per-CPU cache has it,
            // another CPU may hand it out (and unpoison it) at once. The module's arena frees
            // only handles it made (only the selftest's private arena is given bad ones).
            // SAFETY: the handle names a block of this arena; only its shadow changes.
            unsafe {
                rkmem_kasan_poison_pages(self.addr_of(pages.first()) as *mut c_void, pages.bytes())
            };
        }
        let r = match pages.0 {
            Block::Order { page, order } => core_arena::free(self, page, order, BLOCK_ORDER),
            Block::Exact { page, npages } => self
                .inner
                .lock()
                .buddy
                .free_exact(page, npages)
                .map(|()| inc(&self.stats.frees)),
        };
        if let Err(e) = r {
            self.report(&pages, e);
        }
        r
    }

    /// Allocations, frees and per-CPU hits so far (the slow paths' atomic counters plus the
    /// per-CPU slots' counters).
    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        let (mut allocs, mut frees, mut hits) = (
            self.stats.allocs.load(Relaxed),
            self.stats.frees.load(Relaxed),
            0,
        );
        for p in &self.pcp {
            let p = p.lock();
            allocs += p.allocs;
            frees += p.frees;
            hits += p.hits;
        }
        (allocs, frees, hits)
    }

    fn report(&self, pages: &Pages, e: FreeError) {
        let (counter, kind) = match e {
            FreeError::DoubleFree => (&self.stats.bad_free_double, 0),
            FreeError::NotOwned => (&self.stats.bad_free_foreign, 1),
            FreeError::WrongOrder { .. }
            | FreeError::WrongCount { .. }
            | FreeError::AllocatedExact { .. }
            | FreeError::NotExact { .. } => (&self.stats.bad_free_order, 2),
            _ => (&self.stats.bad_free_other, 3),
        };
        inc(counter);
        if self.shared && !self.reported[kind].xchg(true, Relaxed) {
            pr_warn!(
                "refused a bad free of {} page(s) at page {}: {} (reported once; counted in /proc/rkmem/stats)\n",
                pages.npages(),
                pages.first(),
                format_args!("{e}")
            );
        }
    }

    /// Blocks the buddy allocator refused when a per-CPU cache was drained: cannot happen while
    /// `owner` guards every free, so count them as bad frees if it ever does.
    fn count_rejected(&self, rejected: usize) {
        if rejected != 0 {
            self.stats.bad_free_other.add(rejected as u64, Relaxed);
        }
    }

    /// Empties every per-CPU cache into the buddy allocator; returns the pages moved.
    fn drain_pcps(&self) -> usize {
        self.drain_pcps_mode(false)
    }

    /// [`Arena::drain_pcps`]; with `try_only`, caches whose lock is busy are skipped (reclaim
    /// never waits for a lock an allocating path may hold).
    pub(crate) fn drain_pcps_mode(&self, try_only: bool) -> usize {
        let mut pages = 0;
        for pcp in &self.pcp[..self.pcp_used.max(1)] {
            let Some(mut pcp) = acquire(pcp, try_only) else {
                continue;
            };
            if pcp.pcp.count() == 0 {
                continue;
            }
            let Some(mut inner) = acquire(&self.inner, try_only) else {
                continue;
            };
            let d = pcp.pcp.drain_all(&mut inner.buddy);
            pages += d.pages;
            self.count_rejected(d.rejected);
            inc(&self.stats.pcp_drains);
        }
        pages
    }

    /// Pages held in the per-CPU caches.
    pub(crate) fn pcp_pages(&self) -> usize {
        self.pcp.iter().map(|p| p.lock().pcp.count()).sum()
    }

    /// Gives memory back: with `pcp`, the per-CPU caches to the buddy allocator; with `arena`,
    /// wholly free 4 MiB blocks beyond the arena's minimum to the host kernel.
    pub(crate) fn trim(&self, pcp: bool, arena: bool) -> Trimmed {
        let mut t = Trimmed::default();
        if pcp {
            t.pcp_pages = self.drain_pcps();
        }
        if arena {
            t.released_pages = self.release_blocks(false, usize::MAX);
        }
        t
    }

    /// Gives wholly free blocks above the arena's minimum back to the host kernel, up to
    /// `max_pages` pages; returns the pages given back. With `try_only`, gives up at once if a
    /// lock is busy.
    pub(crate) fn release_blocks(&self, try_only: bool, max_pages: usize) -> usize {
        let Some(_guard) = (if try_only {
            self.grow.try_lock()
        } else {
            Some(self.grow.lock())
        }) else {
            return 0;
        };
        let mut released = 0;
        while released < max_pages {
            let slot = {
                let Some(mut inner) = acquire(&self.inner, try_only) else {
                    break;
                };
                if inner.buddy.nr_present_slots() <= self.min_slots {
                    break;
                }
                let Some(slot) = inner.buddy.free_block_slot() else {
                    break;
                };
                if inner.buddy.remove_block(slot).is_err() {
                    break;
                }
                slot
            };
            let addr = self.slot_addr[slot].xchg(0, Relaxed) as *mut c_void;
            // SAFETY: by the type invariant `addr` is the block that backed `slot`; the
            // slot was wholly free and is now absent, so nothing refers to the block.
            unsafe { self.free_block(addr) };
            inc(&self.stats.blocks_released);
            trace::arena_release(slot, addr as usize);
            released += SLOT_PAGES;
        }
        released
    }

    /// Isolates `slot` for evacuation (`Buddy::isolate`): nothing allocates from it until
    /// [`Arena::end_isolation`]. `EBUSY` while another slot is isolated, `EINVAL` if `slot` is
    /// not present.
    pub(crate) fn isolate(&self, slot: usize) -> Result {
        use crate::rkcore::buddy::SlotError;
        let mut inner = self.inner.lock();
        match inner.buddy.isolate(slot) {
            Ok(()) => {
                // Frees into the slot skip the per-CPU caches from here on.
                self.isolated.store(slot, Relaxed);
                Ok(())
            }
            Err(SlotError::Busy { .. }) => Err(EBUSY),
            Err(_) => Err(EINVAL),
        }
    }

    /// The isolated slot, if any.
    pub(crate) fn isolated_slot(&self) -> Option<usize> {
        self.inner.lock().buddy.isolated_slot()
    }

    /// Ends the isolation of the slot being evacuated. Blocks of it freed into a per-CPU cache
    /// meanwhile are drained first. If the slot is then wholly free it goes back to the host
    /// kernel while the arena is above its minimum (returns `(true, SLOT_PAGES)`), else stays
    /// as one free 4 MiB block (`(true, 0)`); if some page of it is still allocated, its free
    /// blocks go back on the lists (`(false, 0)`). With `try_only` (reclaim), busy locks are
    /// not waited for: a wholly free slot then stays as a free block.
    pub(crate) fn end_isolation(&self, try_only: bool) -> (bool, usize) {
        self.drain_pcps_mode(try_only);
        self.isolated.store(usize::MAX, Relaxed);
        let guard = acquire(&self.grow, try_only);
        let (empty, slot) = {
            let mut inner = self.inner.lock();
            let Some(slot) = inner.buddy.isolated_slot() else {
                return (false, 0);
            };
            let empty = inner.buddy.isolated_pages() == SLOT_PAGES;
            if empty
                && guard.is_some()
                && inner.buddy.nr_present_slots() > self.min_slots
                && inner.buddy.remove_block(slot).is_ok()
            {
                (true, Some(slot))
            } else {
                inner.buddy.unisolate();
                (empty, None)
            }
        };
        let Some(slot) = slot else {
            return (empty, 0);
        };
        let addr = self.slot_addr[slot].xchg(0, Relaxed) as *mut c_void;
        // SAFETY: by the type invariant `addr` is the block that backed `slot`; the slot was
        // wholly free and is now absent (under `grow`), so nothing refers to the block.
        unsafe { self.free_block(addr) };
        inc(&self.stats.blocks_released);
        trace::arena_release(slot, addr as usize);
        (true, SLOT_PAGES)
    }

    /// Pages of the slots an ideal arena compaction would empty and give to the host
    /// (`rkcore::compact::slots_to_gain`, above the minimum and the wholly free slots); a
    /// try-lock: 0 if the buddy allocator is busy.
    pub(crate) fn compactable_pages(&self) -> usize {
        let Some(inner) = self.inner.try_lock() else {
            return 0;
        };
        let b = &inner.buddy;
        let free_slots = b.nr_free(BLOCK_ORDER);
        let gain = crate::rkcore::compact::slots_to_gain(
            b.nr_present_slots(),
            free_slots,
            b.used_pages(),
            SLOT_PAGES,
        );
        let room = b
            .nr_present_slots()
            .saturating_sub(self.min_slots)
            .saturating_sub(free_slots);
        gain.min(room) * SLOT_PAGES
    }

    /// Whether the arena holds more slots than its minimum (so an emptied one can go back).
    pub(crate) fn above_min(&self) -> bool {
        self.inner.lock().buddy.nr_present_slots() > self.min_slots
    }

    /// Per slot, the pages in use (allocated or in a per-CPU cache): `Some(used)` for present
    /// slots, `None` for absent ones.
    pub(crate) fn used_by_slot(&self) -> Result<KVec<Option<usize>>> {
        let n = self.nr_slots();
        let mut free = KVec::with_capacity(n, GFP_KERNEL)?;
        free.extend_with(n, 0usize, GFP_KERNEL)?;
        let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
        let inner = self.inner.lock();
        inner.buddy.add_free_pages_by_slot(&mut free);
        for (slot, f) in free.iter().enumerate() {
            let used = inner
                .buddy
                .is_present(slot)
                .then(|| SLOT_PAGES.saturating_sub(*f));
            // Cannot fail: the capacity is `n`.
            let _ = out.push_within_capacity(used);
        }
        Ok(out)
    }

    /// Per slot, adds the pages free in the buddy lists to `free[slot]` and the pages in the
    /// per-CPU caches to `cached[slot]` (try-locks: a busy per-CPU cache counts nothing).
    /// Returns (present slots, the minimum kept), or `None` if the buddy allocator is busy.
    pub(crate) fn slot_usage(
        &self,
        free: &mut [usize],
        cached: &mut [usize],
    ) -> Option<(usize, usize)> {
        let present = {
            let inner = self.inner.try_lock()?;
            inner.buddy.add_free_pages_by_slot(free);
            inner.buddy.nr_present_slots()
        };
        for pcp in self.pcp.iter() {
            if let Some(p) = pcp.try_lock() {
                for (page, order) in p.pcp.blocks() {
                    if let Some(c) = cached.get_mut(page / SLOT_PAGES) {
                        *c += 1 << order;
                    }
                }
            }
        }
        Some((present, self.min_slots))
    }

    /// The slot of kernel virtual address `addr`, if it lies in a present slot.
    pub(crate) fn slot_of_addr(&self, addr: usize) -> Option<usize> {
        self.page_of(addr).map(|p| p / SLOT_PAGES)
    }

    /// What the arena could give back now (try-locks: busy parts count as nothing):
    /// (pages in per-CPU caches, pages of wholly free blocks above the minimum).
    pub(crate) fn reclaimable(&self) -> (usize, usize) {
        let pcp = self
            .pcp
            .iter()
            .filter_map(|p| p.try_lock().map(|p| p.pcp.count()))
            .sum();
        let blocks = self.inner.try_lock().map_or(0, |inner| {
            let above = inner
                .buddy
                .nr_present_slots()
                .saturating_sub(self.min_slots);
            inner.buddy.nr_free(BLOCK_ORDER).min(above) * SLOT_PAGES
        });
        (pcp, blocks)
    }

    /// Pages out of the buddy allocator: handed out, or cached on a CPU's list.
    pub(crate) fn used_pages(&self) -> usize {
        self.inner.lock().buddy.used_pages()
    }

    /// Free pages in the watermark sense: what the arena can still hand out before reaching its
    /// maximum (`max - used`, cached pages counting as used).
    pub(crate) fn free_for_watermarks(&self) -> u64 {
        let used = self.inner.lock().buddy.used_pages();
        self.max_pages().saturating_sub(used) as u64
    }

    /// Whether this is the module's arena (not a private one, the selftest's).
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Whether KASAN watches this arena's pages (then its caches' objects too).
    pub(crate) fn kasan(&self) -> bool {
        self.kasan
    }

    /// The arena's maximum size in pages.
    pub(crate) fn max_pages(&self) -> usize {
        self.slot_addr.len() * SLOT_PAGES
    }

    /// Runs `f` with the buddy allocator locked (for /proc and the arena map).
    pub(crate) fn with_buddy<R>(&self, f: impl FnOnce(&Buddy<KVVec<PageMeta>>) -> R) -> R {
        f(&self.inner.lock().buddy)
    }

    /// Renders `/proc/rkmem/buddyinfo`.
    pub(crate) fn show_buddyinfo(&self, w: &mut impl fmt::Write) -> fmt::Result {
        self.with_buddy(|b| b.write_buddyinfo(w))
    }

    /// Renders `/proc/rkmem/extfrag`.
    pub(crate) fn show_extfrag(&self, w: &mut impl fmt::Write) -> fmt::Result {
        self.with_buddy(|b| b.write_extfrag(w, (PAGE_SIZE / 1024) as u64))
    }
}

fn to_errno<E: Into<Error>>(e: PageAllocError<E>) -> Error {
    match e {
        PageAllocError::Invalid => EINVAL,
        PageAllocError::NoMemory => ENOMEM,
        PageAllocError::Grow(e) => e.into(),
    }
}

/// The arena's memory, locks and counters, for `rkcore::arena`'s page path. Lock order: a
/// per-CPU cache's lock, then `inner`; `grow`, `drain_cpus` and `pressure` are called with
/// neither held (see the crate root).
impl PageEnv<PCP_CAP> for Arena {
    #[inline]
    fn cacheable(&self, page: usize) -> bool {
        self.isolated.load(Relaxed) != page / SLOT_PAGES
    }

    type Store = KVVec<PageMeta>;
    type Error = Error;

    fn with_buddy<R>(&self, f: impl FnOnce(&mut Buddy<KVVec<PageMeta>>) -> R) -> R {
        f(&mut self.inner.lock().buddy)
    }

    fn with_cpu<R>(&self, f: impl FnOnce(&mut CpuPages<PCP_CAP>) -> R) -> R {
        f(&mut self.pcp_of_this_cpu().lock())
    }

    fn marks(&self) -> &impl Marks {
        &self.owner
    }

    fn grow(&self, may_sleep: bool) -> Result<bool> {
        Arena::grow(self, may_sleep)
    }

    fn drain_cpus(&self) -> usize {
        self.drain_pcps()
    }

    /// Acts on the watermarks (the hook the crate root wired in; `may_sleep` as the
    /// allocation's).
    fn pressure(&self, used_pages: usize, may_sleep: bool) {
        if !self.shared {
            return;
        }
        let free = self.max_pages().saturating_sub(used_pages) as u64;
        if let Some(hook) = ON_PRESSURE.as_ref() {
            hook(free, may_sleep);
        }
    }

    fn event(&self, e: Event) {
        match e {
            Event::Alloc => inc(&self.stats.allocs),
            Event::Free => inc(&self.stats.frees),
            Event::Refill => inc(&self.stats.pcp_refills),
            Event::Drain => inc(&self.stats.pcp_drains),
            Event::NoMemory => inc(&self.stats.enomem),
            Event::Rejected(n) => self.count_rejected(n),
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Arena {
    fn drop(self: Pin<&mut Self>) {
        self.drain_pcps();
        let used = self.inner.lock().buddy.used_pages();
        if used != 0 {
            pr_warn!(
                "unloading with {} page(s) still allocated in the arena\n",
                used
            );
        }
        for addr in self.slot_addr.iter() {
            let a = addr.xchg(0, Relaxed);
            if a != 0 {
                // SAFETY: by the type invariant, a non-zero address is a block taken from the
                // host kernel with `rkmem_block_alloc(BLOCK_ORDER, _)` and not yet freed; nothing
                // can use the arena any more (it is being dropped).
                unsafe { self.free_block(a as *mut c_void) };
            }
        }
    }
}
