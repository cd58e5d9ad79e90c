// SPDX-License-Identifier: GPL-2.0

//! Mempools: a guaranteed reserve over any element source rkmem has, with the semantics of the
//! kernel's `mm/mempool.c`.
//!
//! Allocation first tries the source without sleeping (no waiting for the arena to grow); then
//! takes a reserve element; then, for a caller that may sleep, tries the source once more
//! allowing it to sleep, and after that waits until an element is freed back and starts over.
//! So a sleeping allocation never fails (it can only be interrupted by a signal: `EINTR`), and a
//! caller that may not sleep gets a reserve element or `ENOMEM` at once. A free refills the
//! reserve while it is below its minimum and wakes one waiter; otherwise the element goes back
//! to its source. Reserve elements are allocated memory as far as the allocators know, so the
//! shrinker never takes them.

use crate::arena::{Arena, Pages};
use crate::ffi::{
    rkmem_kasan_poison_object, rkmem_kasan_poison_pages, rkmem_kasan_unpoison_object,
    rkmem_kasan_unpoison_pages,
};
use crate::percpu::Counters;
use crate::rkcore::mempool::{PoolRow, Reserve};
use crate::rkcore::sizeclass::{self, Route};
use crate::slab::{Cache, Obj};
use core::fmt;
use kernel::{
    new_condvar, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, SpinLock,
    },
    time::msecs_to_jiffies,
};

/// Where a pool's elements come from.
pub(crate) enum Source {
    /// Objects of a slab cache (a user cache, or an rkmalloc size class).
    Cache(Arc<Cache>),
    /// Blocks of `2^order` pages of the arena.
    Order(u32),
    /// Blocks of `2^order` pages, for rkmalloc sizes of up to 8 pages (its order route).
    RkmallocOrder(u32),
    /// Exactly `npages` pages of the arena (rkmalloc sizes above a page).
    Exact(usize),
}

impl Source {
    /// The source of rkmalloc(`size`) elements: a size class, a block or exact pages (not
    /// vmalloc).
    pub(crate) fn rkmalloc(classes: &crate::classes::Classes, size: u64) -> Result<Source> {
        let size = usize::try_from(size).map_err(|_| EINVAL)?;
        match sizeclass::class_for(size).map_err(|_| EINVAL)? {
            Route::Slab(c) => Ok(Source::Cache(classes.get_arc(c).ok_or(ENODEV)?)),
            Route::Order(o) => Ok(Source::RkmallocOrder(o)),
            Route::Pages(n) => Ok(Source::Exact(n)),
            Route::Vmalloc => Err(EINVAL),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Source::Cache(c) => c.object_size(),
            Source::Order(o) | Source::RkmallocOrder(o) => crate::arena::PAGE_SIZE << o,
            Source::Exact(n) => n * crate::arena::PAGE_SIZE,
        }
    }
}

/// An element of a [`Mempool`]: owned, neither `Copy` nor `Clone`, given back by moving it into
/// [`Mempool::free`] of the pool it names. Safe code gets one only from [`Mempool::alloc`];
/// dropping one leaks the element (hence `must_use`).
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) struct Elem {
    addr: core::num::NonZeroUsize,
    pool: u32,
}

impl Elem {
    /// The element's kernel virtual address.
    pub(crate) fn addr(&self) -> usize {
        self.addr.get()
    }
}

/// [`Mempool`]'s per-CPU counters: elements handed out,
const ALLOCS: usize = 0;
/// elements freed by their users that went back to the source,
const FREES_TO_SOURCE: usize = 1;
/// elements freed by their users that the reserve kept,
const FREES_KEPT: usize = 2;
/// and reserve elements given back to the source (resize, destroy, a full fill).
const RESERVE_TO_SOURCE: usize = 3;

/// A mempool.
///
/// # Invariants
///
/// Every element in `reserve` and every element handed out and not yet freed was allocated from
/// `source` and is freed to it exactly once (by `free` or by `drop`).
#[pin_data(PinnedDrop)]
pub(crate) struct Mempool {
    pub(crate) id: u32,
    pub(crate) owner: u64,
    source: Source,
    label: [u8; 40],
    label_len: usize,
    fail_source: bool,
    failing: Atomic<bool>,
    /// Per-CPU counts ([`ALLOCS`], ...): one add per alloc and per free, no shared line.
    counts: Counters<4>,
    /// A copy of the reserve's `is_short`, written under its lock after every change
    /// ([`Mempool::locked`]) and read without it by frees (`mm/mempool.c`'s check of
    /// `curr_nr < min_nr` before taking the lock).
    short: Atomic<bool>,
    #[pin]
    reserve: SpinLock<Reserve<KVec<usize>>>,
    #[pin]
    freed: CondVar,
    arena: &'static Arena,
}

impl Mempool {
    /// A pool of `min` reserved elements of `source` (preallocated by [`Mempool::fill`]).
    pub(crate) fn new(
        arena: &'static Arena,
        id: u32,
        owner: u64,
        source: Source,
        min: usize,
        fail_source: bool,
    ) -> Result<impl PinInit<Self, Error>> {
        let cap = crate::uapi::RKMEM_POOL_MAX_MIN as usize;
        if min == 0 || min > cap {
            return Err(EINVAL);
        }
        let mut storage = KVec::with_capacity(cap, GFP_KERNEL)?;
        storage.extend_with(cap, 0, GFP_KERNEL)?;
        let reserve = Reserve::new(storage, min).map_err(|_| EINVAL)?;
        let mut label = [0u8; 40];
        let mut w = LabelWriter {
            buf: &mut label,
            len: 0,
        };
        let _ = match &source {
            Source::Cache(c) if c.owner == 0 => fmt::Write::write_str(&mut w, c.name()),
            Source::Cache(c) => fmt::write(&mut w, format_args!("cache:{}", c.name())),
            Source::Order(o) => fmt::write(&mut w, format_args!("pages:order{o}")),
            Source::RkmallocOrder(o) => {
                fmt::write(&mut w, format_args!("rkmalloc:{}pages", 1 << o))
            }
            Source::Exact(n) => fmt::write(&mut w, format_args!("rkmalloc:{n}pages")),
        };
        let label_len = w.len;
        Ok(try_pin_init!(Self {
            id,
            owner,
            source,
            label,
            label_len,
            fail_source,
            failing: Atomic::new(false),
            counts: Counters::new()?,
            short: Atomic::new(true),
            reserve <- new_spinlock!(reserve, "rkmem_mempool"),
            freed <- new_condvar!("rkmem_mempool_freed"),
            arena,
        }))
    }

    /// Allocates elements until the reserve holds its minimum (`mempool_init`, resize up).
    pub(crate) fn fill(&self) -> Result {
        loop {
            if self.reserve.lock().needed() == 0 {
                break;
            }
            let e = self.src_alloc(true)?;
            self.kasan_into_reserve(e);
            if let Err(_full) = self.locked(|r| r.fill(e)) {
                self.src_free(e, RESERVE_TO_SOURCE);
            }
        }
        if self.fail_source {
            self.failing.store(true, Relaxed);
        }
        Ok(())
    }

    /// The pool's label in /proc/rkmem/mempools.
    fn label(&self) -> &str {
        core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("?")
    }

    /// KASAN: the element at `e` goes into the reserve, where nobody may touch it (as
    /// mm/mempool.c's `kasan_mempool_poison_object`): poisoned as a free object or free pages.
    /// Whatever takes it out unpoisons it ([`Mempool::kasan_out_of_reserve`]), or its source's
    /// free path poisons it again.
    fn kasan_into_reserve(&self, e: usize) {
        match &self.source {
            Source::Cache(c) if c.kasan() => {
                // SAFETY: `e` is an object of `c` that this pool holds (from `src_alloc`);
                // only its shadow changes.
                unsafe { rkmem_kasan_poison_object(e as *mut c_void, c.layout.stride()) }
            }
            Source::Cache(_) => {}
            _ if self.arena.kasan() => {
                // SAFETY: `e` is a page block of the arena that this pool holds; only its
                // shadow changes.
                unsafe { rkmem_kasan_poison_pages(e as *mut c_void, self.source.bytes()) }
            }
            _ => {}
        }
    }

    /// KASAN: the element at `e` was taken out of the reserve to be handed out: accessible.
    fn kasan_out_of_reserve(&self, e: usize) {
        match &self.source {
            Source::Cache(c) if c.kasan() => {
                // SAFETY: as in `kasan_into_reserve`.
                unsafe {
                    rkmem_kasan_unpoison_object(
                        e as *mut c_void,
                        c.object_size(),
                        c.layout.stride(),
                    )
                }
            }
            Source::Cache(_) => {}
            _ if self.arena.kasan() => {
                // SAFETY: as in `kasan_into_reserve`.
                unsafe { rkmem_kasan_unpoison_pages(e as *mut c_void, self.source.bytes()) }
            }
            _ => {}
        }
    }

    /// Usable bytes of an element.
    pub(crate) fn element_bytes(&self) -> usize {
        self.source.bytes()
    }

    /// An element from the source; the pool keeps it by address (the reserve, and the
    /// [`Elem`] it hands out) until [`Mempool::src_free`] makes the source's handle again.
    #[inline(always)]
    fn src_alloc(&self, may_sleep: bool) -> Result<usize> {
        if self.fail_source && self.failing.load(Relaxed) {
            return Err(ENOMEM);
        }
        match &self.source {
            Source::Cache(c) => Ok(c.alloc(may_sleep)?.into_raw()),
            Source::Order(o) | Source::RkmallocOrder(o) => {
                let p = self.arena.alloc(*o, may_sleep)?;
                Ok(self.arena.addr_of(p.into_first()))
            }
            Source::Exact(n) => {
                let p = self.arena.alloc_exact(*n, may_sleep)?;
                Ok(self.arena.addr_of(p.into_first()))
            }
        }
    }

    /// Gives the element at `e`, which [`Mempool::src_alloc`] took from the source, back to it
    /// (once: the reserve and the handles hold each element once).
    /// Counts it in `counter`.
    #[inline(always)]
    fn src_free(&self, e: usize, counter: usize) {
        self.counts.add(counter, 1);
        // Refusals are counted and reported by the allocators.
        match &self.source {
            Source::Cache(c) => {
                // SAFETY: `e` came from `c.alloc` in `src_alloc` and the pool holds it once.
                if let Some(obj) = unsafe { Obj::from_raw(e, c) } {
                    let _ = c.free(obj);
                }
            }
            Source::Order(order) | Source::RkmallocOrder(order) => {
                if let Some(page) = self.arena.page_of(e) {
                    // SAFETY: as above, from `arena.alloc` with this order.
                    let _ = self
                        .arena
                        .free(unsafe { Pages::from_raw_order(page, *order) });
                }
            }
            Source::Exact(npages) => {
                if let Some(page) = self.arena.page_of(e) {
                    // SAFETY: as above, from `arena.alloc_exact` with this count.
                    let _ = self
                        .arena
                        .free(unsafe { Pages::from_raw_exact(page, *npages) });
                }
            }
        }
    }

    /// Allocates an element (see the module documentation).
    #[inline(always)]
    pub(crate) fn alloc(&self, may_sleep: bool) -> Result<Elem> {
        let e = self.alloc_addr(may_sleep)?;
        let addr = core::num::NonZeroUsize::new(e).ok_or(EINVAL)?;
        Ok(Elem {
            addr,
            pool: self.id,
        })
    }

    #[inline(always)]
    fn alloc_addr(&self, may_sleep: bool) -> Result<usize> {
        // The common path: the source serves it, the reserve is not touched.
        if let Ok(e) = self.src_alloc(false) {
            self.counts.add(ALLOCS, 1);
            return Ok(e);
        }
        self.alloc_slow(may_sleep)
    }

    /// [`Mempool::alloc`] after the source failed without sleeping: the reserve, the source
    /// allowed to sleep, waiting for a free (then the source again, from the top).
    #[inline(never)]
    fn alloc_slow(&self, may_sleep: bool) -> Result<usize> {
        loop {
            if let Some(e) = self.locked(|r| r.take()) {
                self.kasan_out_of_reserve(e);
                self.counts.add(ALLOCS, 1);
                return Ok(e);
            }
            if !may_sleep {
                self.reserve.lock().note_failure();
                return Err(ENOMEM);
            }
            // mempool_alloc's second chance: the source, allowed to sleep this time.
            if let Ok(e) = self.src_alloc(true) {
                self.counts.add(ALLOCS, 1);
                return Ok(e);
            }
            let mut r = self.reserve.lock();
            if r.curr() == 0 {
                r.note_wait();
                // Woken by a free, or after 5 s (as mempool_alloc) to retry the source.
                let res = self
                    .freed
                    .wait_interruptible_timeout(&mut r, msecs_to_jiffies(5000));
                if matches!(res, kernel::sync::CondVarTimeoutResult::Signal { .. }) {
                    r.note_failure();
                    return Err(EINTR);
                }
            }
            drop(r);
            if let Ok(e) = self.src_alloc(false) {
                self.counts.add(ALLOCS, 1);
                return Ok(e);
            }
        }
    }

    /// Frees an element: into the reserve while it is below its minimum (waking a waiter),
    /// else back to the source. An element of another pool is refused and handed back.
    #[inline(always)]
    pub(crate) fn free(&self, e: Elem) -> core::result::Result<(), Elem> {
        if e.pool != self.id {
            return Err(e);
        }
        self.free_addr(e.addr.get());
        Ok(())
    }

    #[inline(always)]
    fn free_addr(&self, e: usize) {
        // The common path: the reserve is full, the element goes back to the source without
        // the lock (a stale hint only sends it there when the reserve could have kept it). As
        // mempool_free's smp_rmb: a waiter exists only after a take emptied the reserve and
        // set the hint under the lock; this free's element was handed over after that, so
        // with the read barrier it sees the hint set (the unlock in `locked` orders the store).
        kernel::sync::barrier::smp_mb(kernel::sync::barrier::Read);
        if !self.short.load(Relaxed) {
            self.src_free(e, FREES_TO_SOURCE);
            return;
        }
        // Poisoned before the reserve has it: a waiter may take it as soon as it is there.
        self.kasan_into_reserve(e);
        let back = self.locked(|r| r.offer(e));
        match back {
            None => {
                self.counts.add(FREES_KEPT, 1);
                self.freed.notify_one()
            }
            Some(e) => self.src_free(e, FREES_TO_SOURCE),
        }
    }

    /// Changes the reserve size; growing preallocates the new elements (`ENOMEM` if it cannot:
    /// the pool keeps what it got).
    pub(crate) fn resize(&self, min: usize) -> Result {
        // Surplus elements go back to the source under the pool's lock: the lock order is
        // always pool, then allocator. As mm/mempool.c's mempool_resize, only a larger minimum
        // preallocates; a smaller one leaves a reserve that is below it (elements are out) to
        // be refilled by frees.
        let grew = {
            let mut r = self.reserve.lock();
            let grew = min > r.min();
            r.set_min(min, |e| self.src_free(e, RESERVE_TO_SOURCE))
                .map_err(|_| EINVAL)?;
            self.short.store(r.is_short(), Relaxed);
            grew
        };
        if !grew {
            return Ok(());
        }
        let was_failing = self.failing.xchg(false, Relaxed);
        let r = self.fill();
        if was_failing {
            self.failing.store(true, Relaxed);
        }
        r
    }

    /// Elements handed out and not yet freed.
    pub(crate) fn out(&self) -> u64 {
        let c = &self.counts;
        (c.sum(ALLOCS) - c.sum(FREES_TO_SOURCE) - c.sum(FREES_KEPT)).max(0) as u64
    }

    /// Elements given back to the source so far.
    pub(crate) fn source_frees(&self) -> u64 {
        (self.counts.sum(FREES_TO_SOURCE) + self.counts.sum(RESERVE_TO_SOURCE)).max(0) as u64
    }

    /// Runs `f` on the reserve under its lock and refreshes the `short` hint before unlocking.
    fn locked<R>(&self, f: impl FnOnce(&mut Reserve<KVec<usize>>) -> R) -> R {
        let mut r = self.reserve.lock();
        let out = f(&mut r);
        self.short.store(r.is_short(), Relaxed);
        out
    }

    /// Gives every reserve element back to its source (pool lock, then allocator locks), as
    /// destroying the pool does.
    pub(crate) fn drain_reserve(&self) {
        self.locked(|r| r.drain(|e| self.src_free(e, RESERVE_TO_SOURCE)));
    }

    /// This pool's row of `/proc/rkmem/mempools`.
    pub(crate) fn row(&self) -> PoolRow<'_> {
        let (min, reserve, counts) = {
            let r = self.reserve.lock();
            (r.min(), r.curr(), r.counts(self.out()))
        };
        PoolRow {
            id: self.id,
            source: self.label(),
            min,
            reserve,
            counts,
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Mempool {
    fn drop(self: Pin<&mut Self>) {
        self.drain_reserve();
    }
}

/// Writes into a fixed buffer, cutting what does not fit.
struct LabelWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for LabelWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Most mempools alive at once.
const MAX_POOLS: usize = 256;

/// The mempools created by user space (each owned by its open file).
pub(crate) type Pools = crate::registry::Registry<Mempool, MAX_POOLS>;

impl crate::registry::Owned for Mempool {
    fn id(&self) -> u32 {
        self.id
    }
    fn owner(&self) -> u64 {
        self.owner
    }
}

/// Source of pool ids, never reused.
static NEXT_POOL_ID: Atomic<u32> = Atomic::new(1);

/// Creates a pool owned by `owner` and preallocates its reserve.
pub(crate) fn create(
    pools: &kernel::sync::Mutex<Pools>,
    arena: &'static Arena,
    owner: u64,
    source: Source,
    min: usize,
    fail_source: bool,
) -> Result<Arc<Mempool>> {
    pools.lock().check_room()?;
    let id = NEXT_POOL_ID.fetch_add(1, Relaxed);
    if id == 0 || id == u32::MAX {
        NEXT_POOL_ID.store(u32::MAX, Relaxed);
        return Err(ENOSPC);
    }
    let pool = Arc::pin_init(
        Mempool::new(arena, id, owner, source, min, fail_source)?,
        GFP_KERNEL,
    )?;
    // On failure the pool's drop gives back what it preallocated.
    pool.fill()?;
    pools.lock().push(pool.clone())?;
    Ok(pool)
}

/// The pool `id` of `owner`.
pub(crate) fn find(
    pools: &kernel::sync::Mutex<Pools>,
    id: u32,
    owner: u64,
) -> Option<Arc<Mempool>> {
    pools.lock().find(id, owner)
}

/// Destroys pool `id` of `owner`: `ENOENT` if there is none, `EBUSY` while elements are out.
pub(crate) fn destroy(pools: &kernel::sync::Mutex<Pools>, id: u32, owner: u64) -> Result {
    pools.lock().remove(
        id,
        owner,
        |p| if p.out() != 0 { Err(EBUSY) } else { Ok(()) },
    )
}

/// Destroys every pool of `owner` (its file is closing; its elements are freed already).
pub(crate) fn destroy_owned(pools: &kernel::sync::Mutex<Pools>, owner: u64) {
    pools.lock().remove_owned(owner);
}

/// Renders `/proc/rkmem/mempools`.
pub(crate) fn show(w: &mut impl fmt::Write, pools: &kernel::sync::Mutex<Pools>) -> fmt::Result {
    crate::rkcore::mempool::write_mempools(w, pools.lock().iter().map(|p| p.row()))
}
