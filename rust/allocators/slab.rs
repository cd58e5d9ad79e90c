// SPDX-License-Identifier: GPL-2.0

//! Bitmap slab caches on top of the arena: the kernel side of `rkcore::cache`.
//!
//! A cache takes slabs (2^order pages, naturally aligned) from the arena and hands them to its
//! [`SlabSet`] (the host-tested composition: layout, lists, counts, owner tags, what a free
//! refuses, when a slab goes back), which it runs under its lock over the arena's memory
//! ([`SlabMem`]). In front of the slabs sit per-CPU object caches ([`ObjCache`]) refilled and
//! drained in batches, like SLUB's per-CPU sheaves, and a depot of full batches.
//!
//! # Locking
//!
//! `cpu` is an [`ObjCache`]: a CPU's array of free objects is reached under its local lock
//! (preemption off, no atomic instruction: the fast path), and by other CPUs only through an
//! IPI to that CPU ([`ObjCache::flush`]). The local lock is held only inside the glue's calls,
//! never together with `inner`. `inner` is not held while a new slab is taken from the arena
//! (that can sleep). Every access to a slab header happens under `inner`.
//!
//! # Debug mode
//!
//! With `slab_debug=1` caches are created with red zones, poison and the allocating call site
//! (`SlabLayout::new_debug`), and bypass the per-CPU caches so that every allocation and free
//! passes the checks. Corruption, double frees and foreign pointers are refused (or repaired, for
//! red zones and poison), counted, and reported in dmesg with the cache name and object index.

use crate::arena::{Arena, Pages, PAGE_SIZE};
use crate::ffi::{
    rkmem_kasan_poison_object, rkmem_kasan_unpoison_object, rkmem_kmemleak_alloc,
    rkmem_kmemleak_free, rkmem_slab_cpus, rkmem_slab_meta_alloc, rkmem_slab_meta_free,
    rkmem_slab_meta_size,
};
use crate::percpu::{nr_cpu_ids, ObjCache, CAP as CPU_CAP};
use crate::rkcore::cache::{
    self as core_cache, FreeError, Front, ObjectView, Repaired, SlabMemory, SlabSet,
};
use crate::rkcore::compact::{SlabUse, OCCUPANCY_BUCKETS};
use crate::rkcore::depot::{cpu_tunables, Depot, DEPOT_FACTOR};
use crate::rkcore::slab::{CacheLists, SlabLayout, SlabList};
use crate::rkcore::slabinfo::SlabinfoRow;
use crate::rkcore::slablist::Headers;
use crate::trace;
use kernel::{
    ffi::c_void,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        SpinLock,
    },
};

/// Longest cache name (bytes, without the terminating NUL).
pub(crate) const NAME_MAX: usize = 31;
/// Problems reported in dmesg per cache before the reports are only counted.
const MAX_REPORTS: u32 = 5;
/// Bytes one shadow byte of generic KASAN covers: a KASAN build's object slots start on one and
/// end with a red zone of at least one (`SlabLayout::for_cpus_redzoned`).
const KASAN_GRANULE: usize = 8;
/// A generic-KASAN build: otherwise the KASAN hooks of the fast paths compile to nothing (a
/// run-time flag alone cost ~0.7 ns per alloc+free pair natively).
const KASAN_BUILD: bool = cfg!(CONFIG_KASAN_GENERIC);
/// A kmemleak build: objects are registered with kmemleak as SLUB's are (`glue/kmemleak.c`);
/// otherwise those hooks compile to nothing.
const KMEMLEAK_BUILD: bool = cfg!(CONFIG_DEBUG_KMEMLEAK);

/// Counters of one cache's slow paths. The fast path (a per-CPU hit) counts nothing: a shared
/// atomic counter there would cost more than the allocation itself.
pub(crate) struct CacheStats {
    pub(crate) slabs_new: Atomic<u64>,
    pub(crate) slabs_released: Atomic<u64>,
    pub(crate) bad_frees: Atomic<u64>,
    pub(crate) corruptions: Atomic<u64>,
}

fn inc(c: &Atomic<u64>) {
    c.add(1, Relaxed);
}

/// An object allocated from a [`Cache`]: owned, neither `Copy` nor `Clone`, and given back by
/// moving it into [`Cache::free`]. Safe code gets one only from [`Cache::alloc`], so it cannot
/// express a double free or a free of an address that no cache handed out. The handle names
/// its cache, so a free to another cache is refused before the object could reach that cache's
/// per-CPU array (and be handed out by it); [`Obj::from_raw`] is the `unsafe` way back from an
/// address. Dropping a handle leaks the object (it does not know how to free itself), hence
/// `must_use`.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) struct Obj {
    addr: core::num::NonZeroUsize,
    cache: u32,
}

impl Obj {
    /// The object's kernel virtual address.
    pub(crate) fn addr(&self) -> usize {
        self.addr.get()
    }

    /// The address, the handle given up (for an owner that keeps objects by address from now
    /// on, like a mempool's reserve, and returns them with [`Obj::from_raw`]).
    pub(crate) fn into_raw(self) -> usize {
        self.addr.get()
    }

    /// The handle of the object of `cache` at `addr` (`None` for 0).
    ///
    /// # Safety
    ///
    /// No other handle of this object may exist: the caller got it from `cache`'s
    /// [`Cache::alloc`] and turned that handle into `addr` with [`Obj::into_raw`], once; or
    /// `addr` is deliberately bad (never handed out, already freed, inside an object, another
    /// cache's) to test that [`Cache::free`] refuses it from the page tags and the slab's
    /// bitmap. A debug cache checks at once; a cache with per-CPU arrays checks when they drain,
    /// so the caller must drain them ([`Cache::drain_cpu`]) before that cache allocates again,
    /// or the bad address could be handed out.
    pub(crate) unsafe fn from_raw(addr: usize, cache: &Cache) -> Option<Obj> {
        core::num::NonZeroUsize::new(addr).map(|addr| Obj {
            addr,
            cache: cache.id,
        })
    }
}

/// What one [`Cache::compact`] did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Compacted {
    /// Objects moved.
    pub(crate) moved: u64,
    /// Slabs given back to the arena.
    pub(crate) slabs_freed: u64,
    /// Their pages.
    pub(crate) pages_freed: u64,
    /// Partial slabs left in place: they hold an object the caller does not show (pinned).
    pub(crate) pinned_skips: u64,
}

/// Shows the caller's movable objects of a cache, one by one, to the function it is given.
pub(crate) type VisitObjs<'a> = dyn FnMut(&mut dyn FnMut(&mut Obj)) + 'a;

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheFreeError {
    /// Not an address of the arena.
    Foreign,
    /// In the arena but not an object of this cache (another cache's slab, a header, padding).
    NotAnObject,
    /// The object is free already.
    DoubleFree,
}

/// A cache's slabs, in the arena's memory.
///
/// # Invariants
///
/// Only handed to the cache's [`SlabSet`] (under the cache's `inner` lock, or for a new slab
/// that no list holds yet) and to [`core_cache::on_alloc`] for an object the cache is handing
/// out. By [`SlabMemory`]'s contract they reach headers only of slabs of this cache (on its
/// lists, tagged as its own, or being prepared, reached by nobody else) and bytes only of an
/// object's slot that the caller alone holds: each is inside a live slab of `layout.slab_bytes()`
/// bytes taken from the arena, whose header bytes only the cache touches, under that lock.
struct SlabMem<'a> {
    layout: &'a SlabLayout,
    arena: &'a Arena,
}

impl Headers for SlabMem<'_> {
    fn header(&mut self, slab: u64) -> &mut [u8] {
        let start = if self.layout.off_slab() {
            self.arena
                .page_of(slab as usize)
                .map_or(0, |p| self.arena.slab_meta(p))
        } else {
            slab as usize
        };
        if start == 0 {
            // No header recorded (a bug): an empty header, which every slab operation refuses.
            return &mut [];
        }
        // SAFETY: by the type invariant `slab` is the start of a live slab of this cache; its
        // header is either its first `header_bytes` bytes or, off the slab, the `header_bytes`
        // bytes `Cache::new_slab` allocated for it and recorded in the arena until
        // `Cache::release_slab` frees them. Nobody else touches them while `inner` is held (or
        // before the slab is on a list).
        unsafe { core::slice::from_raw_parts_mut(start as *mut u8, self.layout.header_bytes()) }
    }
}

impl SlabMemory for SlabMem<'_> {
    /// The slab's first page in the arena.
    type Pages = usize;

    fn owner(&self, slab: u64) -> Option<u32> {
        self.arena
            .page_of(slab as usize)
            .map(|p| self.arena.tag_of(p))
    }

    fn set_owner(&mut self, slab: u64, owner: u32) -> Option<usize> {
        let page = self.arena.page_of(slab as usize)?;
        self.arena.set_tag_range(page, self.layout.pages(), owner);
        Some(page)
    }

    fn bytes(&mut self, slab: u64, offset: usize, len: usize) -> &mut [u8] {
        // SAFETY: by the type invariant the bytes are an object's slot (or part of it) that the
        // caller alone holds, or a slot of a slab nobody else reaches yet, inside a live slab of
        // this cache.
        unsafe { core::slice::from_raw_parts_mut((slab as usize + offset) as *mut u8, len) }
    }
}

/// A slab cache.
///
/// # Invariants
///
/// Every slab of `inner` was taken from the arena with `layout.order()` and prepared for this
/// cache (`SlabSet::prepare` with `id`); `inner.layout()` is `layout`. Objects in the per-CPU
/// caches and the depot are allocated in their slabs' bitmaps.
///
/// `repr(C)`, the fast path's fields first: [`Cache::alloc`] and [`Cache::free`] read `cpu`,
/// `use_cpu` and `ctor` only, which then share one cache line.
#[pin_data(PinnedDrop)]
#[repr(C)]
pub(crate) struct Cache {
    /// The per-CPU arrays of free objects.
    cpu: ObjCache,
    use_cpu: bool,
    ctor: Option<u8>,
    /// KASAN watches the objects (a KASAN build, the module's arena, not a debug cache, which
    /// checks its free objects with its own red zones and poison): free slots are poisoned,
    /// handed-out objects unpoisoned up to their size, the rest of the slot a red zone.
    kasan: bool,
    /// kmemleak knows this cache's objects (a kmemleak build, a cache of the module's arena):
    /// each is registered when handed out and unregistered when freed.
    kmemleak: bool,
    pub(crate) id: u32,
    name: [u8; NAME_MAX],
    name_len: usize,
    pub(crate) layout: SlabLayout,
    #[pin]
    inner: SpinLock<SlabSet>,
    /// The per-CPU arrays' limit and batch.
    cpu_limit: usize,
    cpu_batch: usize,
    /// Full batches between the per-CPU arrays and the slabs.
    #[pin]
    depot: SpinLock<Depot<KVec<usize>>>,
    pub(crate) stats: CacheStats,
    reports: Atomic<u32>,
    /// The owning open file (0: the module's own size-class caches).
    pub(crate) owner: u64,
    arena: &'static Arena,
}

impl Cache {
    /// A cache of `size`-byte objects aligned to `align`. `ctor`: a byte every new object is
    /// filled with (a constructor, as with `kmem_cache_create`). Errors: `EINVAL` for a bad
    /// name, size or alignment.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        arena: &'static Arena,
        id: u32,
        name: &[u8],
        size: usize,
        align: usize,
        ctor: Option<u8>,
        debug: bool,
        owner: u64,
    ) -> Result<impl PinInit<Self, Error>> {
        Self::new_opts(arena, id, name, size, align, ctor, debug, true, owner)
    }

    /// [`Cache::new`], with `cpu_arrays` false for a cache without per-CPU object arrays
    /// (`RKMEM_CACHE_NOCPU`): every allocation and free goes to the slabs' bitmaps, as in
    /// debug mode.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_opts(
        arena: &'static Arena,
        id: u32,
        name: &[u8],
        size: usize,
        align: usize,
        ctor: Option<u8>,
        debug: bool,
        cpu_arrays: bool,
        owner: u64,
    ) -> Result<impl PinInit<Self, Error>> {
        if name.is_empty()
            || name.len() > NAME_MAX
            || !name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(c))
        {
            return Err(EINVAL);
        }
        // SAFETY: reads a count the kernel set up at boot; no preconditions.
        let cpus = unsafe { rkmem_slab_cpus() };
        let kasan = KASAN_BUILD && !debug && arena.kasan();
        let granule = if kasan { KASAN_GRANULE } else { 0 };
        let layout = SlabLayout::for_cpus_redzoned(size, align, PAGE_SIZE, 3, cpus, debug, granule)
            .map_err(|_| EINVAL)?;
        let mut n = [0u8; NAME_MAX];
        n[..name.len()].copy_from_slice(name);
        // Computed here: inside `try_pin_init!`, `name` names the field initialised above.
        let name_len = name.len();
        let (cpu_limit, cpu_batch) = cpu_tunables(layout.stride());
        let cpu = ObjCache::new(cpu_limit)?;
        let depot = Depot::new(
            KVec::from_elem(0, cpu_batch * DEPOT_FACTOR, GFP_KERNEL)?,
            cpu_batch,
            DEPOT_FACTOR,
        )
        .map_err(|_| EINVAL)?;
        // Built here: inside `try_pin_init!`, `layout` and `id` name the fields initialised above.
        let slabs = SlabSet::new(layout, id, crate::rkcore::slab::default_keep_empty(size));
        Ok(try_pin_init!(Self {
            id,
            name: n,
            name_len,
            layout,
            ctor,
            kasan,
            kmemleak: KMEMLEAK_BUILD && arena.is_shared(),
            use_cpu: !debug && cpu_arrays,
            inner <- new_spinlock!(slabs, "rkmem_cache"),
            cpu,
            cpu_limit,
            cpu_batch,
            depot <- new_spinlock!(depot, "rkmem_cache_depot"),
            stats: CacheStats {
                slabs_new: Atomic::new(0),
                slabs_released: Atomic::new(0),
                bad_frees: Atomic::new(0),
                corruptions: Atomic::new(0),
            },
            reports: Atomic::new(0),
            owner,
            arena,
        }))
    }

    /// The cache's name.
    pub(crate) fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Whether KASAN watches this cache's objects.
    pub(crate) fn kasan(&self) -> bool {
        self.kasan
    }

    /// Bytes a caller may use in each object.
    pub(crate) fn object_size(&self) -> usize {
        self.layout.object_size()
    }

    /// Allocates an object.
    ///
    /// In debug mode the caller's source location (`#[track_caller]`) is recorded in the
    /// object's metadata as its allocation call site.
    #[track_caller]
    #[inline]
    pub(crate) fn alloc(&self, may_sleep: bool) -> Result<Obj> {
        // The fast path: per-CPU caches on, no constructor to apply, an object on this CPU.
        if self.use_cpu && self.ctor.is_none() {
            if let Some(addr) = self.cpu.pop().and_then(core::num::NonZeroUsize::new) {
                self.handed_out_hooks(addr.get());
                self.trace_alloc(core::panic::Location::caller(), addr.get());
                return Ok(Obj {
                    addr,
                    cache: self.id,
                });
            }
        }
        let addr = self.alloc_slow(may_sleep, core::panic::Location::caller())?;
        let addr = core::num::NonZeroUsize::new(addr).ok_or(EINVAL)?;
        self.trace_alloc(core::panic::Location::caller(), addr.get());
        Ok(Obj {
            addr,
            cache: self.id,
        })
    }

    /// The `rkmem_cache_alloc` event of the object at `obj`, for the caller at `at`.
    #[inline(always)]
    fn trace_alloc(&self, at: &core::panic::Location<'_>, obj: usize) {
        trace::cache_alloc(
            at,
            obj,
            self.layout.object_size(),
            self.layout.stride(),
            || self.name(),
        );
    }

    /// Everything [`Cache::alloc`] does beyond popping this CPU's array.
    #[inline(never)]
    fn alloc_slow(
        &self,
        may_sleep: bool,
        site: &'static core::panic::Location<'static>,
    ) -> Result<usize> {
        let site = core::ptr::from_ref(site).addr() as u64;
        loop {
            let got = if self.use_cpu {
                match self.cpu.pop() {
                    Some(obj) => Some(obj),
                    None => self.refill_cpu(),
                }
            } else {
                let mut one = [0usize; 1];
                (self.take_from_slabs(&mut one) == 1).then_some(one[0])
            };
            if let Some(obj) = got {
                self.handed_out_hooks(obj);
                // Constructed at slab creation; objects come back constructed only if their
                // users restore them, so (unlike SLUB) rkmem re-applies the constructor.
                if self.layout.is_debug() || self.ctor.is_some() {
                    let mut mem = self.mem();
                    // The object was just taken from its slab: the caller alone holds it (the
                    // `SlabMem` invariant).
                    if let Some(c) =
                        core_cache::on_alloc(&self.layout, &mut mem, obj, site, self.ctor)
                    {
                        inc(&self.stats.corruptions);
                        if self.may_report() {
                            pr_err!(
                                "cache {}: {} in a free object found on allocation (repaired)\n",
                                self.name(),
                                format_args!("{c}")
                            );
                        }
                    }
                }
                return Ok(obj);
            }
            self.new_slab(may_sleep)?;
        }
    }

    /// The slow path of a per-CPU allocation (`rkcore::cache::refill`: a batch from the
    /// depot, else the slabs; one for the caller, the rest on this CPU's array).
    #[inline(never)]
    fn refill_cpu(&self) -> Option<usize> {
        core_cache::refill(self, self.cpu_batch)
    }

    /// KASAN: the object at `obj`, just handed out, is accessible up to its size; the rest of
    /// its slot is a red zone.
    /// kmemleak: the object is registered (its size bytes scanned for pointers, reported if
    /// nothing points to it).
    #[inline(always)]
    fn handed_out_hooks(&self, obj: usize) {
        if KMEMLEAK_BUILD && self.kmemleak {
            // SAFETY: `obj` is an object of this cache just handed out, `object_size` bytes in
            // a mapped slab page; kmemleak only records the range.
            unsafe { rkmem_kmemleak_alloc(obj as *const c_void, self.layout.object_size()) };
        }
        if KASAN_BUILD && self.kasan {
            // SAFETY: `obj` is an object slot of this cache's slabs (just taken from them or
            // from a per-CPU array); only its KASAN shadow changes.
            unsafe {
                rkmem_kasan_unpoison_object(
                    obj as *mut c_void,
                    self.layout.object_size(),
                    self.layout.stride(),
                )
            };
        }
    }

    /// KASAN: the object at `obj` is being freed; its slot is poisoned before any per-CPU
    /// array or slab has it (another CPU may hand it out as soon as one has), if it is one of
    /// this cache's object slots (a bad free is refused later, when it drains, and must not
    /// change any shadow).
    /// kmemleak: the object is unregistered, if it is one of this cache's slots (kmemleak
    /// warns about a free of an address inside an object it knows).
    #[inline(always)]
    fn freed_hooks(&self, obj: usize) {
        let kasan = KASAN_BUILD && self.kasan;
        let kmemleak = KMEMLEAK_BUILD && self.kmemleak;
        if (kasan || kmemleak) && self.inner.lock().is_object(&mut self.mem(), obj) {
            if kmemleak {
                // SAFETY: `obj` is an object slot of this cache (checked above); kmemleak
                // forgets the object registered there (if any: a double free finds none).
                unsafe { rkmem_kmemleak_free(obj as *const c_void) };
            }
            if kasan {
                // SAFETY: `obj` is an object slot of this cache (checked above); only its
                // shadow changes.
                unsafe { rkmem_kasan_poison_object(obj as *mut c_void, self.layout.stride()) };
            }
        }
    }

    /// KASAN: every object slot of the new slab at `slab` (color `color`) is free.
    fn kasan_new_slab(&self, slab: u64, color: u32) {
        if !self.kasan {
            return;
        }
        for i in 0..self.layout.objects() {
            if let Some(off) = self.layout.slot_offset(color, i) {
                // SAFETY: the slot lies in the slab just prepared for this cache; only its
                // shadow changes.
                unsafe {
                    rkmem_kasan_poison_object(
                        (slab as usize + off) as *mut c_void,
                        self.layout.stride(),
                    )
                };
            }
        }
    }

    /// The cache's memory, for its [`SlabSet`] (see [`SlabMem`]'s invariant).
    fn mem(&self) -> SlabMem<'_> {
        SlabMem {
            layout: &self.layout,
            arena: self.arena,
        }
    }

    /// Allocates up to `out.len()` objects from the slabs (partial first, then empty); never takes
    /// a new slab. Returns how many it took.
    fn take_from_slabs(&self, out: &mut [usize]) -> usize {
        self.inner.lock().take(&mut self.mem(), out)
    }

    /// Takes a new slab from the arena (and, for an off-slab layout, its header from the host's
    /// kmalloc) and puts it on the empty list; returns its address.
    fn new_slab(&self, may_sleep: bool) -> Result<u64> {
        let pages = self.arena.alloc(self.layout.order(), may_sleep)?;
        let slab = self.arena.addr_of(pages.first()) as u64;
        if self.layout.off_slab() {
            // SAFETY: allocates zeroed memory; no preconditions.
            let meta = unsafe { rkmem_slab_meta_alloc(self.layout.header_bytes(), may_sleep) };
            if meta.is_null() {
                let _ = self.arena.free(pages);
                return Err(ENOMEM);
            }
            self.arena.set_slab_meta(pages.first(), meta as usize);
        }
        let color = self.inner.lock().next_color();
        // The slab is ours alone until it is on a list (the `SlabMem` invariant).
        let mut mem = self.mem();
        if SlabSet::prepare(&self.layout, self.id, &mut mem, slab, color, self.ctor).is_err() {
            self.free_meta(pages.first());
            let _ = self.arena.free(pages);
            return Err(EINVAL);
        }
        self.kasan_new_slab(slab, color);
        // From here on the cache keeps the slab by address (`release_slab` makes the handle
        // again).
        let _ = pages.into_first();
        self.inner.lock().add(&mut mem, slab);
        inc(&self.stats.slabs_new);
        trace::slab_grow(self.name(), slab as usize, 1 << self.layout.order());
        Ok(slab)
    }

    /// Frees the off-slab header of the slab starting at `page` (if its layout has one), which
    /// nobody reaches any more (the slab is untagged and off the lists, or was never on them).
    fn free_meta(&self, page: usize) {
        let meta = self.arena.slab_meta(page);
        if meta != 0 {
            self.arena.set_slab_meta(page, 0);
            // SAFETY: `meta` came from `rkmem_slab_meta_alloc` in `new_slab` and was recorded
            // for this slab only; it was just cleared, so it is freed once.
            unsafe { rkmem_slab_meta_free(meta as *mut c_void) };
        }
    }

    /// Frees `obj`. In debug mode every check runs; otherwise the object goes to the per-CPU
    /// cache and is checked when it is drained to its slab.
    #[track_caller]
    #[inline]
    pub(crate) fn free(&self, obj: Obj) -> core::result::Result<(), CacheFreeError> {
        if obj.cache != self.id {
            return Err(self.bad_free(FreeError::NotAnObject));
        }
        // SAFETY: the handle was this cache's (checked above) and is consumed here.
        unsafe { self.free_addr(obj.into_raw()) }
    }

    /// [`Cache::free`] of an address whose cache is known otherwise (kfree-style, from the
    /// page's tag).
    ///
    /// # Safety
    ///
    /// `obj` is an object this cache handed out, still allocated, whose handle was given up
    /// (as for [`Obj::from_raw`]).
    #[track_caller]
    #[inline(always)]
    pub(crate) unsafe fn free_addr(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        trace::cache_free(core::panic::Location::caller(), obj, || self.name());
        self.freed_hooks(obj);
        if !self.use_cpu {
            return self.return_to_slab(obj);
        }
        if self.cpu.push(obj) {
            return Ok(());
        }
        self.free_slow(obj)
    }

    /// The slow path of a per-CPU free (`rkcore::cache::overflow`: this CPU's array is full;
    /// its oldest batch goes to the depot, or to the slabs if the depot is full, then `obj` on
    /// the array).
    #[inline(never)]
    fn free_slow(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        core_cache::overflow(self, obj, self.cpu_batch)
    }

    /// Clears `obj`'s bit in its slab, moves the slab between lists and gives an empty slab
    /// beyond the kept ones back to the arena.
    fn return_to_slab(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        self.return_to_slab_released(obj).map(|_| ())
    }

    /// [`Cache::return_to_slab`], saying whether the slab went back to the arena.
    fn return_to_slab_released(&self, obj: usize) -> core::result::Result<bool, CacheFreeError> {
        let mut mem = self.mem();
        let freed = self
            .inner
            .lock()
            .free(&mut mem, obj, &mut |r| self.repaired(r));
        match freed {
            Ok(release) => {
                if let Some(page) = release {
                    self.release_slab(page);
                }
                Ok(release.is_some())
            }
            Err(e) => Err(self.bad_free(e)),
        }
    }

    /// [`Cache::return_to_slab`] for a batch (a per-CPU cache's drain), under one lock
    /// acquisition. Refused objects are counted and reported; the rest of the batch goes on.
    fn return_batch(&self, objs: &[usize]) {
        let mut release = [None; CPU_CAP];
        let mut mem = self.mem();
        let n = self.inner.lock().free_batch(
            &mut mem,
            objs,
            &mut release,
            &mut |_, e| {
                self.bad_free(e);
            },
            &mut |r| self.repaired(r),
        );
        for page in release[..n].iter().flatten() {
            self.release_slab(*page);
        }
    }

    /// Gives the slab at `page`, which [`SlabSet`] took off the lists (and untagged), back to
    /// the arena, with `inner` dropped.
    fn release_slab(&self, page: usize) {
        // SAFETY: `page` is the first page of a slab of this cache, taken from the arena by
        // `new_slab` with this order, whose handle became the slab's address there; the
        // `SlabSet` took it off its lists and hands each slab back once.
        let pages = unsafe { Pages::from_raw_order(page, self.layout.order()) };
        trace::slab_release(self.name(), self.arena.addr_of(page), pages.npages());
        self.free_meta(page);
        let _ = self.arena.free(pages);
        inc(&self.stats.slabs_released);
    }

    /// Counts and reports a refused free.
    fn bad_free(&self, e: FreeError) -> CacheFreeError {
        inc(&self.stats.bad_frees);
        if self.may_report() {
            match e {
                FreeError::DoubleFree { index } => {
                    pr_warn!(
                        "cache {}: refused double free of object {}\n",
                        self.name(),
                        index
                    )
                }
                FreeError::Foreign => pr_warn!(
                    "cache {}: refused free of a pointer outside rkmem's arena\n",
                    self.name()
                ),
                FreeError::NotAnObject => pr_warn!(
                    "cache {}: refused free of a pointer that is not an object of this cache\n",
                    self.name()
                ),
            }
        }
        match e {
            FreeError::Foreign => CacheFreeError::Foreign,
            FreeError::NotAnObject => CacheFreeError::NotAnObject,
            FreeError::DoubleFree { .. } => CacheFreeError::DoubleFree,
        }
    }

    /// Counts and reports damage a debug free found and repaired.
    fn repaired(&self, r: Repaired) {
        inc(&self.stats.corruptions);
        if self.may_report() {
            pr_err!(
                "cache {}: object {}: {} (repaired)\n",
                self.name(),
                r.index,
                format_args!("{}", r.what)
            );
        }
    }

    /// Reports are printed for the first [`MAX_REPORTS`] problems of a cache, then only counted.
    fn may_report(&self) -> bool {
        let n = self.reports.fetch_add(1, Relaxed);
        if n == MAX_REPORTS {
            pr_warn!(
                "cache {}: further reports suppressed (see /proc/rkmem/stats)\n",
                self.name()
            );
        }
        n < MAX_REPORTS
    }

    /// Empties the per-CPU caches into the slabs; returns the objects moved.
    pub(crate) fn drain_cpu(&self) -> usize {
        self.drain_cpu_mode(false)
    }

    /// [`Cache::drain_cpu`]: each CPU that holds objects empties its cache in an IPI. With
    /// `try_only` (reclaim), a CPU whose cache is busy, or any CPU while CPU hotplug is in
    /// progress, is skipped; otherwise a busy cache is tried again (its holder leaves within a
    /// few instructions).
    pub(crate) fn drain_cpu_mode(&self, try_only: bool) -> usize {
        let mut moved = 0;
        for cpu in 0..nr_cpu_ids() {
            if self.cpu.count(cpu) == 0 {
                continue;
            }
            let mut out = [0usize; CPU_CAP];
            let mut tries = 0;
            let n = loop {
                match self.cpu.flush(cpu, try_only, &mut out) {
                    Ok(n) => break n,
                    Err(e) if e == EBUSY && !try_only && tries < 1000 => tries += 1,
                    Err(_) => break 0,
                }
            };
            self.return_batch(&out[..n]);
            moved += n;
        }
        // Then the depot (with `try_only`, unless its lock is busy).
        loop {
            let mut out = [0usize; CPU_CAP];
            let n = match crate::arena::acquire(&self.depot, try_only) {
                Some(mut d) => d.drain(&mut out),
                None => 0,
            };
            if n == 0 {
                break;
            }
            self.return_batch(&out[..n]);
            moved += n;
        }
        moved
    }

    /// The partial slabs and their in-use counts, for a compaction plan (`out`'s length is the
    /// most it fills: [`Cache::partial_slabs_count`]). The caller has drained the per-CPU
    /// arrays, so that free objects are free in the bitmaps.
    pub(crate) fn partial_slabs(&self, out: &mut [SlabUse]) -> usize {
        self.inner.lock().partial_slabs(&mut self.mem(), out)
    }

    /// Partial slabs now.
    pub(crate) fn partial_slabs_count(&self) -> usize {
        self.inner.lock().counts().partial() as usize
    }

    /// How many slabs are 0-9%, ..., 90-99% and 100% full.
    pub(crate) fn occupancy(&self) -> [u64; OCCUPANCY_BUCKETS] {
        self.inner.lock().occupancy(&mut self.mem())
    }

    /// The slab-aligned start of the slab of `addr`.
    pub(crate) fn slab_of(&self, addr: usize) -> u64 {
        (addr & !(self.layout.slab_bytes() - 1)) as u64
    }

    /// Where the object at `obj` sits in its slab and that slab's bitmap (read under the
    /// lock, nothing changes); `None` if `obj` is not an object slot of this cache's slabs.
    pub(crate) fn inspect(&self, obj: usize) -> Option<ObjectView> {
        self.inner.lock().inspect(&mut self.mem(), obj)
    }

    /// Shows `f` every slab of the cache, the full list, then the partial list, then the empty
    /// list, each front to back (the list, the slab's address and its objects in use), and
    /// returns the counts, all under one hold of `inner`: one consistent picture. `f` runs
    /// under the spinlock: it must not sleep or allocate (nothing changes meanwhile).
    pub(crate) fn slabs(&self, f: impl FnMut(SlabList, u64, u32)) -> CacheLists {
        let inner = self.inner.lock();
        inner.slabs(&mut self.mem(), f);
        *inner.counts()
    }

    /// Allocates an object in the slab at `slab` (a compaction target), bypassing the per-CPU
    /// arrays; `None` if the slab is full or not this cache's. In debug mode the object's red
    /// zones and poison are checked as on any allocation.
    #[track_caller]
    pub(crate) fn take_in(&self, slab: u64) -> Option<Obj> {
        let addr = self.inner.lock().take_in(&mut self.mem(), slab)?;
        self.handed_out_hooks(addr);
        if self.layout.is_debug() {
            let site = core::ptr::from_ref(core::panic::Location::caller()).addr() as u64;
            let mut mem = self.mem();
            // The object was just taken from its slab: the caller alone holds it.
            if let Some(c) = core_cache::on_alloc(&self.layout, &mut mem, addr, site, None) {
                inc(&self.stats.corruptions);
                if self.may_report() {
                    pr_err!(
                        "cache {}: {} in a free object found on allocation (repaired)\n",
                        self.name(),
                        format_args!("{c}")
                    );
                }
            }
        }
        core::num::NonZeroUsize::new(addr).map(|addr| Obj {
            addr,
            cache: self.id,
        })
    }

    /// Frees `obj` straight into its slab (not the per-CPU array), so that a slab compaction
    /// empties: returns whether its slab went back to the arena.
    pub(crate) fn free_to_slab(&self, obj: Obj) -> core::result::Result<bool, CacheFreeError> {
        if obj.cache != self.id {
            return Err(self.bad_free(FreeError::NotAnObject));
        }
        let obj = obj.into_raw();
        self.freed_hooks(obj);
        self.return_to_slab_released(obj)
    }

    /// Compacts the slabs: the plan of `rkcore::compact` over the partial slabs, where the
    /// objects `visit` shows are the movable ones (every call must show the same objects, and
    /// nothing else may use them meanwhile: the caller holds the lock of the handles that name
    /// them) and the rest are pinned. Each source object is copied into a slot of the fullest
    /// target and re-pointed in place (`*obj` becomes the new object), the old one freed into
    /// its slab; then the empty slabs go back to the arena. Concurrent allocations and frees of
    /// other objects are fine: a target they filled is passed over, a source they refilled
    /// stays.
    pub(crate) fn compact(&self, visit: &mut VisitObjs<'_>, out: &mut Compacted) -> Result {
        use crate::rkcore::compact::{plan, sort_by_key, Role};
        // Free objects in the per-CPU arrays and the depot are allocated in the bitmaps: back
        // first.
        self.drain_cpu();
        let n = self.partial_slabs_count();
        let pages = self.layout.pages() as u64;
        if n >= 2 {
            let mut slabs = KVec::with_capacity(n, GFP_KERNEL)?;
            slabs.extend_with(n, SlabUse::new(0, 0, 0), GFP_KERNEL)?;
            let k = self.partial_slabs(&mut slabs);
            slabs.truncate(k);
            sort_by_key(&mut slabs, |s| s.slab);
            // Movable objects per slab: the rest are pinned.
            let mut movable = KVec::with_capacity(k, GFP_KERNEL)?;
            movable.extend_with(k, 0u32, GFP_KERNEL)?;
            visit(&mut |obj| {
                let slab = self.slab_of(obj.addr());
                if let Ok(i) = slabs.binary_search_by_key(&slab, |s| s.slab) {
                    if let Some(m) = movable.get_mut(i) {
                        *m += 1;
                    }
                }
            });
            for (s, m) in slabs.iter_mut().zip(movable.iter()) {
                s.pinned = s.in_use.saturating_sub(*m);
            }
            let p = plan(&mut slabs, self.layout.objects(), u64::MAX);
            out.pinned_skips += p.pinned_skips as u64;
            let mut sources = KVec::with_capacity(p.sources, GFP_KERNEL)?;
            let mut targets = KVec::with_capacity(p.targets, GFP_KERNEL)?;
            for s in slabs.iter() {
                match s.role {
                    Role::Source => sources.push(s.slab, GFP_KERNEL)?,
                    Role::Target => targets.push(s.slab, GFP_KERNEL)?,
                    Role::Stay => {}
                }
            }
            sort_by_key(&mut sources, |s| *s);
            // The plan sorted the slabs sparsest first: the fullest target is the last.
            targets.reverse();
            let mut t = 0;
            let mut exhausted = false;
            visit(&mut |obj| {
                if exhausted || sources.binary_search(&self.slab_of(obj.addr())).is_err() {
                    return;
                }
                let new = loop {
                    let Some(&slab) = targets.get(t) else {
                        // Concurrent allocations took the targets' slots: stop moving.
                        exhausted = true;
                        return;
                    };
                    match self.take_in(slab) {
                        Some(o) => break o,
                        None => t += 1,
                    }
                };
                self.move_object(obj, new, out);
            });
            if exhausted {
                crate::stats::inc(&crate::stats::COMPACTION.targets_exhausted);
            }
        }
        // Emptied sources the cache kept as empty slabs go back too.
        let kept = self.release_empty() as u64;
        out.slabs_freed += kept;
        out.pages_freed += kept * pages;
        Ok(())
    }

    /// The slabs holding objects (partial and full) whose address is in `lo..hi`, with their
    /// in-use counts (see `SlabSet::slabs_in`).
    pub(crate) fn slabs_in(&self, lo: u64, hi: u64) -> Result<KVec<SlabUse>> {
        let n = {
            let inner = self.inner.lock();
            (inner.counts().partial() + inner.counts().full()) as usize
        };
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        v.extend_with(n, SlabUse::new(0, 0, 0), GFP_KERNEL)?;
        // Slabs added meanwhile are not listed (`slabs_in` stops at `n`).
        let k = self.inner.lock().slabs_in(&mut self.mem(), lo, hi, &mut v);
        v.truncate(k);
        Ok(v)
    }

    /// Evacuates the slabs in `lo..hi` (the arena slot being emptied, which the arena no
    /// longer allocates from): every object `visit` shows that lies there is copied into a slab
    /// outside it (the fullest partial ones first, then new slabs) and re-pointed in place, the
    /// old one freed into its slab; the slabs emptied go back to the arena. `visit` has
    /// [`Cache::compact`]'s contract. Objects it does not show stay (the slot then does not
    /// empty, and the arena keeps it). Returns `Ok(false)` if it had to stop early (no room
    /// outside the range, or a new slab came from inside it).
    pub(crate) fn evacuate(
        &self,
        lo: u64,
        hi: u64,
        may_sleep: bool,
        visit: &mut VisitObjs<'_>,
        out: &mut Compacted,
    ) -> Result<bool> {
        use crate::rkcore::compact::sort_by_key;
        self.drain_cpu();
        let mut sources: KVec<u64> = KVec::new();
        for s in self.slabs_in(lo, hi)?.iter() {
            sources.push(s.slab, GFP_KERNEL)?;
        }
        if sources.is_empty() {
            self.release_empty();
            return Ok(true);
        }
        sort_by_key(&mut sources, |s| *s);
        // Targets: the partial slabs outside the range, fullest first.
        let n = self.partial_slabs_count();
        let mut targets = KVec::with_capacity(n, GFP_KERNEL)?;
        targets.extend_with(n, SlabUse::new(0, 0, 0), GFP_KERNEL)?;
        let k = self.partial_slabs(&mut targets);
        targets.truncate(k);
        targets.retain(|t| !(lo..hi).contains(&t.slab));
        sort_by_key(&mut targets, |t| u32::MAX - t.in_use);
        let pages = self.layout.pages() as u64;
        let (mut t, mut stopped, mut err) = (0, false, None);
        visit(&mut |obj| {
            if stopped || sources.binary_search(&self.slab_of(obj.addr())).is_err() {
                return;
            }
            let new = loop {
                if let Some(slab) = targets.get(t).map(|t| t.slab) {
                    match self.take_in(slab) {
                        Some(o) => break o,
                        None => t += 1,
                    }
                    continue;
                }
                // Out of targets: a new slab (outside the range: the arena does not allocate
                // from it; a block of it left in a per-CPU page cache could still come back).
                match self.new_slab(may_sleep) {
                    Ok(slab) if !(lo..hi).contains(&slab) => {
                        if targets.push(SlabUse::new(slab, 0, 0), GFP_KERNEL).is_err() {
                            stopped = true;
                            return;
                        }
                    }
                    Ok(_) => {
                        stopped = true;
                        return;
                    }
                    Err(e) => {
                        stopped = true;
                        err = Some(e);
                        return;
                    }
                }
            };
            self.move_object(obj, new, out);
        });
        let kept = self.release_empty() as u64;
        out.slabs_freed += kept;
        out.pages_freed += kept * pages;
        match err {
            // Out of memory outside the range: the slot stays, nothing is lost.
            Some(e) if e != ENOMEM => Err(e),
            _ => Ok(!stopped),
        }
    }

    /// One move of a compaction: copies `*obj` into `new` (a slot just taken in a target
    /// slab), re-points `*obj` there and frees the old object into its slab, counting the move
    /// and the slab if it went back to the arena.
    fn move_object(&self, obj: &mut Obj, new: Obj, out: &mut Compacted) {
        // SAFETY: both are objects of this cache's slabs, `object_size` bytes each and
        // distinct: the old one is the caller's alone while its visitor shows it (the
        // contract of `compact` and `evacuate`), the new one was just taken for this move
        // (nothing else holds it).
        unsafe {
            core::ptr::copy_nonoverlapping(
                obj.addr() as *const u8,
                new.addr() as *mut u8,
                self.object_size(),
            )
        };
        trace::compact_move(obj.addr(), new.addr(), self.object_size(), 0);
        let old = core::mem::replace(obj, new);
        if self.free_to_slab(old).unwrap_or(false) {
            out.slabs_freed += 1;
            out.pages_freed += self.layout.pages() as u64;
        }
        out.moved += 1;
    }

    /// Gives every empty slab back to the arena; returns how many.
    pub(crate) fn release_empty(&self) -> usize {
        self.release_empty_mode(false, usize::MAX)
    }

    /// [`Cache::release_empty`], at most `max` slabs; with `try_only`, stops if the lock is busy.
    pub(crate) fn release_empty_mode(&self, try_only: bool, max: usize) -> usize {
        self.release_empty_checked(try_only, max).0
    }

    /// [`Cache::release_empty_mode`], also saying whether every released slab's pages were
    /// untagged before the cache lock was dropped (the order a concurrent stale free relies
    /// on; the selftest checks it).
    pub(crate) fn release_empty_checked(&self, try_only: bool, max: usize) -> (usize, bool) {
        let (mut released, mut untagged) = (0, true);
        while released < max {
            let slab = {
                let Some(mut inner) = crate::arena::acquire(&self.inner, try_only) else {
                    break;
                };
                let Some(page) = inner.pop_empty(&mut self.mem()) else {
                    break;
                };
                untagged &= page.is_some_and(|p| self.arena.tag_of(p) == 0);
                page
            };
            if let Some(page) = slab {
                self.release_slab(page);
            }
            released += 1;
        }
        (released, untagged)
    }

    /// Adds the pages of each empty slab to `out[slot]` of the arena slot it lies in (a try-lock:
    /// a busy cache adds nothing).
    pub(crate) fn add_empty_pages_by_slot(&self, out: &mut [usize]) {
        let Some(inner) = self.inner.try_lock() else {
            return;
        };
        let pages = self.layout.pages();
        inner.for_each_empty(&mut self.mem(), |slab| {
            if let Some(o) = self
                .arena
                .slot_of_addr(slab as usize)
                .and_then(|s| out.get_mut(s))
            {
                *o += pages;
            }
        });
    }

    /// What the cache could give back now, in pages (try-locks: a busy cache counts nothing):
    /// (pages of empty slabs, an estimate of the pages its per-CPU objects keep in use).
    pub(crate) fn reclaimable(&self) -> (u64, u64) {
        let pages = self.layout.pages() as u64;
        let empty = self.inner.try_lock().map_or(0, |i| i.counts().empty()) * pages;
        let cached = self.cpu_cached_mode(true);
        let per_page = (u64::from(self.layout.objects()) / pages).max(1);
        (empty, cached.div_ceil(per_page))
    }

    /// Objects held by the per-CPU caches (read without stopping their owners) and the depot
    /// (0 if its lock is busy and `try_only`).
    fn cpu_cached_mode(&self, try_only: bool) -> u64 {
        let depot = crate::arena::acquire(&self.depot, try_only).map_or(0, |d| d.len() as u64);
        depot
            + (0..nr_cpu_ids())
                .map(|cpu| self.cpu.count(cpu) as u64)
                .sum::<u64>()
    }

    fn cpu_cached(&self) -> u64 {
        self.cpu_cached_mode(false)
    }

    /// Objects in use (per-CPU cached objects count as free).
    pub(crate) fn objects_in_use(&self) -> u64 {
        let cached = self.cpu_cached();
        self.inner
            .lock()
            .counts()
            .objects_in_use()
            .saturating_sub(cached)
    }

    /// The pages of the cache's slabs (full, partial and kept empty ones) and the bytes of their
    /// off-slab headers, as the host's kmalloc spent them (its bucket's size, not the header's
    /// own): what the cache holds.
    pub(crate) fn footprint(&self) -> (u64, u64) {
        let slabs = self.inner.lock().counts().slabs();
        let meta = if self.layout.off_slab() {
            // SAFETY: computes a size; no preconditions.
            slabs * unsafe { rkmem_slab_meta_size(self.layout.header_bytes()) } as u64
        } else {
            0
        };
        (slabs * self.layout.pages() as u64, meta)
    }

    /// This cache's row of `/proc/rkmem/slabinfo`.
    pub(crate) fn slabinfo_row(&self) -> SlabinfoRow<'_> {
        let counts = *self.inner.lock().counts();
        let row = SlabinfoRow::from_cache(self.name(), &self.layout, &counts);
        if self.use_cpu {
            let shared = self.depot.lock().len() as u64;
            row.with_tunables(self.cpu_limit as u32, self.cpu_batch as u32)
                .with_shared(DEPOT_FACTOR as u32, shared)
        } else {
            row
        }
    }
}

/// The per-CPU arrays, the depot and the slabs of a cache, for `rkcore::cache`'s refill and
/// overflow policy; each call takes one lock (the local lock inside the glue, the depot's or
/// `inner`) and drops it before returning.
impl Front for Cache {
    type Error = CacheFreeError;

    fn depot_take(&self, out: &mut [usize]) -> usize {
        self.depot.lock().take(out)
    }

    fn depot_put(&self, objs: &[usize]) -> bool {
        self.depot.lock().put(objs)
    }

    fn slabs_take(&self, out: &mut [usize]) -> usize {
        self.take_from_slabs(out)
    }

    fn slabs_free(&self, objs: &[usize]) {
        self.return_batch(objs);
    }

    fn slab_free(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        self.return_to_slab(obj)
    }

    fn cpu_refill(&self, objs: &[usize]) -> usize {
        self.cpu.refill(objs)
    }

    fn cpu_drain(&self, out: &mut [usize]) -> usize {
        self.cpu.drain(out)
    }

    fn cpu_push(&self, obj: usize) -> bool {
        self.cpu.push(obj)
    }
}

#[pinned_drop]
impl PinnedDrop for Cache {
    fn drop(mut self: Pin<&mut Self>) {
        // Nobody else holds the cache: every CPU's objects are reached directly.
        for cpu in 0..nr_cpu_ids() {
            let mut out = [0usize; CPU_CAP];
            let n = self.as_mut().project().cpu.take_all(cpu, &mut out);
            self.return_batch(&out[..n]);
        }
        loop {
            let mut out = [0usize; CPU_CAP];
            let n = self.depot.lock().drain(&mut out);
            if n == 0 {
                break;
            }
            self.return_batch(&out[..n]);
        }
        let in_use = self.inner.lock().counts().objects_in_use();
        if in_use != 0 {
            pr_warn!(
                "cache {}: destroyed with {} object(s) in use\n",
                self.name(),
                in_use
            );
        }
        self.release_empty();
        // Slabs still holding objects go back too: the cache is gone and so are its users.
        for list in [SlabList::Partial, SlabList::Full] {
            loop {
                let Some(slab) = self.inner.lock().pop_any(&mut self.mem(), list) else {
                    break;
                };
                if let Some(page) = slab {
                    self.release_slab(page);
                }
            }
        }
    }
}
