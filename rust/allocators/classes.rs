// SPDX-License-Identifier: GPL-2.0

//! The slab caches of the module: rkmalloc's size classes (created at load) and the caches
//! user space creates through `/dev/rkmem` (owned by the open file that made them).

use crate::arena::{Arena, Pages};
use crate::rkcore::sizeclass::{self, Route, CLASS_NAMES, CLASS_SIZES};
use crate::rkcore::slabinfo;
use crate::slab::{Cache, Obj};
use crate::trace;
use core::fmt;
use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

/// First id of a user cache; the size classes use 1..=12.
const FIRST_USER_ID: u32 = 100;
/// Most user caches alive at once.
const MAX_USER_CACHES: usize = 256;

/// The user caches.
pub(crate) type Registry = crate::registry::Registry<Cache, MAX_USER_CACHES>;

impl crate::registry::Owned for Cache {
    fn id(&self) -> u32 {
        self.id
    }
    fn owner(&self) -> u64 {
        self.owner
    }
}

/// rkmalloc's size-class caches, indexed like [`CLASS_SIZES`]: filled once at load, before the
/// module's state is published, and read-only afterwards. A plain vector, not a `SetOnce`:
/// its acquire load would sit on rkmalloc's fast path (and on User-Mode Linux, the native
/// benchmark kernel, `smp_load_acquire` is a load plus `mfence`, ~30 ns per call).
pub(crate) struct Classes(KVec<Arc<Cache>>);

impl Classes {
    /// The cache of class `class`.
    #[inline]
    pub(crate) fn get(&self, class: usize) -> Option<&Cache> {
        self.0.get(class).map(|c| &**c)
    }

    /// The cache of class `class`, shared (for an owner that outlives this call: a mempool).
    pub(crate) fn get_arc(&self, class: usize) -> Option<Arc<Cache>> {
        self.0.get(class).cloned()
    }

    /// Every class cache, smallest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Cache> {
        self.0.iter().map(|c| &**c)
    }
}

/// Source of the ids of every cache but the size classes: user caches and the benchmark's and
/// the selftest's temporary caches. Never reused, so the page tags (id + 1) and the slab magics
/// that carry an id tell any two live caches apart, also caches of concurrent calls.
static NEXT_ID: Atomic<u32> = Atomic::new(FIRST_USER_ID);

/// A new cache id (`ENOSPC` once the ids are used up).
fn new_cache_id() -> Result<u32> {
    let id = NEXT_ID.fetch_add(1, Relaxed);
    // After 2^32 - 100 caches the counter wraps: refuse rather than reuse (and keep id + 1,
    // the page tag, from wrapping to 0, which means untagged).
    if !(FIRST_USER_ID..u32::MAX).contains(&id) {
        NEXT_ID.store(u32::MAX, Relaxed);
        return Err(ENOSPC);
    }
    Ok(id)
}

/// The id of a temporary cache (the benchmark's, the selftest's).
pub(crate) fn temporary_cache_id() -> Result<u32> {
    new_cache_id()
}

/// Creates the size-class caches.
pub(crate) fn create_classes(arena: &'static Arena, debug: bool) -> Result<Classes> {
    let mut v = KVec::with_capacity(CLASS_SIZES.len(), GFP_KERNEL)?;
    for (i, (size, name)) in CLASS_SIZES.iter().zip(CLASS_NAMES.iter()).enumerate() {
        let align = sizeclass::class_align(i).ok_or(EINVAL)?;
        let c = Arc::pin_init(
            Cache::new(
                arena,
                i as u32 + 1,
                name.as_bytes(),
                *size,
                align,
                None,
                debug,
                0,
            )?,
            GFP_KERNEL,
        )?;
        v.push(c, GFP_KERNEL)?;
    }
    Ok(Classes(v))
}

/// An object of an rkmalloc size class: its address only, as kmalloc returns a pointer. The
/// free ([`RkAlloc::free`]) finds the class from the address, as kfree must: the tag (the
/// cache id + 1) of the page the object lies in, which the arena mirrors into the host's
/// `struct page` ([`Arena::tag_of_handed_out`]). Owned, neither `Copy` nor `Clone`: safe code gets one only
/// from [`rkmalloc`], so a double or foreign free cannot be expressed.
#[derive(Debug)]
#[must_use]
pub(crate) struct RkObj(core::num::NonZeroUsize);

/// What rkmalloc handed out, freed with [`RkAlloc::free`].
#[must_use]
pub(crate) enum RkAlloc {
    /// An object of a user cache (the handle keeps the cache alive).
    Object(Arc<Cache>, Obj),
    /// An object of a size class. `bytes` is the usable size, kept for the caller's bounds
    /// checks (as a kmalloc caller knows what it asked for); the free does not use it.
    Class { obj: RkObj, bytes: u32 },
    /// Whole pages of the arena.
    Pages(Pages),
    /// vmalloc memory, for sizes beyond the largest buddy block.
    Vmalloc(VVec<u8>),
}

impl RkAlloc {
    /// Usable bytes.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            RkAlloc::Pages(p) => p.bytes(),
            RkAlloc::Object(c, _) => c.object_size(),
            RkAlloc::Class { bytes, .. } => *bytes as usize,
            RkAlloc::Vmalloc(v) => v.len(),
        }
    }

    /// Kernel virtual address of the first byte.
    pub(crate) fn addr(&mut self, arena: &Arena) -> usize {
        match self {
            RkAlloc::Pages(p) => arena.addr_of(p.first()),
            RkAlloc::Object(_, obj) => obj.addr(),
            RkAlloc::Class { obj, .. } => obj.0.get(),
            RkAlloc::Vmalloc(v) => v.as_mut_ptr() as usize,
        }
    }

    /// Gives the allocation back to its allocator; `false` if the allocator refused it
    /// (counted and reported there). The `rkmem_kfree` event names the size classes and
    /// vmalloc; a block of pages shows as `rkmem_page_free` (an rkmalloc of pages and a page
    /// allocation are the same handle).
    #[track_caller]
    #[inline(always)]
    pub(crate) fn free(self, classes: &Classes, arena: &Arena) -> bool {
        let at = core::panic::Location::caller();
        match self {
            RkAlloc::Class { obj, .. } => {
                trace::kfree(at, obj.addr(), trace::ROUTE_CLASS);
                kfree(classes, arena, obj)
            }
            RkAlloc::Object(c, obj) => c.free(obj).is_ok(),
            RkAlloc::Pages(p) => arena.free(p).is_ok(),
            // The vector frees itself.
            RkAlloc::Vmalloc(v) => {
                trace::kfree(at, v.as_ptr() as usize, trace::ROUTE_VMALLOC);
                drop(v);
                true
            }
        }
    }
}

impl RkObj {
    /// The object's kernel virtual address.
    pub(crate) fn addr(&self) -> usize {
        self.0.get()
    }

    /// Shows the object to `f` as a handle of its size class `c` (compaction re-points it
    /// there), if `c` is the class whose slab holds it; the object stays this `RkObj`, at the
    /// address `f` left it at.
    pub(crate) fn with_obj(&mut self, c: &Cache, arena: &Arena, f: &mut dyn FnMut(&mut Obj)) {
        let addr = self.0.get();
        // SAFETY: the object is allocated (this `RkObj` owns it), so its slab's tag is valid.
        let tag = unsafe { arena.tag_of_handed_out(addr) };
        if tag != c.id + 1 {
            return;
        }
        // SAFETY: `self` is the object's only handle and `c` its cache (the page's tag names
        // it); the `Obj` lives only for this call and is turned back into `self` below, so
        // there is one handle at a time.
        let Some(mut obj) = (unsafe { Obj::from_raw(addr, c) }) else {
            return;
        };
        f(&mut obj);
        if let Some(a) = core::num::NonZeroUsize::new(obj.into_raw()) {
            self.0 = a;
        }
    }
}

/// The size class whose slab holds `addr`, from the page's tag alone (the host
/// `struct page`'s copy, as kfree reads `slab->slab_cache`).
///
/// # Safety
///
/// `addr` is an object a size-class cache handed out and that is still allocated.
#[inline(always)]
unsafe fn class_of<'a>(classes: &'a Classes, arena: &Arena, addr: usize) -> Option<&'a Cache> {
    // SAFETY: an allocated object lies in an allocated range (its slab) of the arena.
    let tag = unsafe { arena.tag_of_handed_out(addr) };
    // The class caches have ids 1..=12 (tags 2..=13), in class order.
    let class = (tag as usize).checked_sub(2)?;
    classes.get(class).filter(|c| c.id as usize == class + 1)
}

/// kfree: frees an object of a size class, found from its address.
#[inline(always)]
fn kfree(classes: &Classes, arena: &Arena, obj: RkObj) -> bool {
    let addr = obj.0.get();
    // SAFETY: `obj` came from `rkmalloc` (the only maker of an `RkObj`) and is given up here.
    let Some(c) = (unsafe { class_of(classes, arena, addr) }) else {
        pr_err!("rkfree: no size class holds {:#x} (leaked)\n", addr);
        return false;
    };
    // SAFETY: `c` is the cache whose slab holds the object (the page's tag names it, and the
    // slab cannot have been released while the object is allocated); `obj` was that cache's
    // only handle, turned into an address by `rkmalloc` and consumed here, once.
    unsafe { c.free_addr(addr) }.is_ok()
}

/// rkmalloc: a size class for small sizes, a block of up to 8 pages up to 32 KiB, exact pages
/// up to 4 MiB, vmalloc beyond (like kvmalloc). `EINVAL` for 0 or more than `RKMEM_RKMALLOC_MAX` bytes.
/// Each allocation fires `rkmem_kmalloc` for the caller (and a size class's cache its
/// `rkmem_cache_alloc`, a block its `rkmem_page_alloc`).
#[track_caller]
#[inline(always)]
pub(crate) fn rkmalloc(
    classes: &Classes,
    arena: &Arena,
    size: u64,
    may_sleep: bool,
) -> Result<RkAlloc> {
    let at = core::panic::Location::caller();
    let mut a = rkmalloc_route(classes, arena, size, may_sleep)?;
    trace::kmalloc(at, size as usize, || {
        let route = match sizeclass::class_for(size as usize) {
            Ok(Route::Slab(_)) | Err(_) => trace::ROUTE_CLASS,
            Ok(Route::Order(_)) => trace::ROUTE_ORDER,
            Ok(Route::Pages(_)) => trace::ROUTE_EXACT,
            Ok(Route::Vmalloc) => trace::ROUTE_VMALLOC,
        };
        (a.addr(arena), a.bytes(), route)
    });
    Ok(a)
}

/// [`rkmalloc`]'s allocation, by size.
#[inline(always)]
fn rkmalloc_route(classes: &Classes, arena: &Arena, size: u64, may_sleep: bool) -> Result<RkAlloc> {
    if size > crate::uapi::RKMEM_RKMALLOC_MAX {
        return Err(EINVAL);
    }
    let size = usize::try_from(size).map_err(|_| EINVAL)?;
    match sizeclass::class_for(size).map_err(|_| EINVAL)? {
        Route::Slab(class) => {
            let c = classes.get(class).ok_or(ENODEV)?;
            let obj = c.alloc(may_sleep)?;
            let bytes = c.object_size() as u32;
            // The address only: the free finds the class from it.
            let addr = core::num::NonZeroUsize::new(obj.into_raw()).ok_or(EINVAL)?;
            Ok(RkAlloc::Class {
                obj: RkObj(addr),
                bytes,
            })
        }
        Route::Order(o) => Ok(RkAlloc::Pages(arena.alloc(o, may_sleep)?)),
        Route::Pages(n) => Ok(RkAlloc::Pages(arena.alloc_exact(n, may_sleep)?)),
        // Charged to the caller's memory cgroup.
        Route::Vmalloc => Ok(RkAlloc::Vmalloc(VVec::from_elem(
            0u8,
            size,
            GFP_KERNEL_ACCOUNT,
        )?)),
    }
}

/// Creates a user cache owned by `owner`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    reg: &Mutex<Registry>,
    arena: &'static Arena,
    name: &[u8],
    size: usize,
    align: usize,
    ctor: Option<u8>,
    debug: bool,
    cpu_arrays: bool,
    owner: u64,
) -> Result<Arc<Cache>> {
    if size == 0 || size > crate::uapi::RKMEM_CACHE_SIZE_MAX as usize {
        return Err(EINVAL);
    }
    let mut r = reg.lock();
    r.check_room()?;
    let taken = r.iter().any(|c| c.name().as_bytes() == name)
        || CLASS_NAMES.iter().any(|n| n.as_bytes() == name);
    if taken {
        return Err(EEXIST);
    }
    let id = new_cache_id()?;
    let c = Arc::pin_init(
        Cache::new_opts(arena, id, name, size, align, ctor, debug, cpu_arrays, owner)?,
        GFP_KERNEL,
    )?;
    r.push(c.clone())?;
    Ok(c)
}

/// The cache `id` of `owner`.
pub(crate) fn find(reg: &Mutex<Registry>, id: u32, owner: u64) -> Option<Arc<Cache>> {
    reg.lock().find(id, owner)
}

/// Destroys cache `id` of `owner`: `ENOENT` if there is none, `EBUSY` (and a report of the
/// leak) while objects of it are allocated.
pub(crate) fn destroy(reg: &Mutex<Registry>, id: u32, owner: u64) -> Result {
    // The last reference goes with the file's handles (none left: no live objects), so the
    // cache and its slabs are freed here.
    reg.lock().remove(id, owner, |c| {
        c.drain_cpu();
        let live = c.objects_in_use();
        if live != 0 {
            pr_warn!(
                "cache {}: destroy refused, {} object(s) still allocated (leak)\n",
                c.name(),
                live
            );
            return Err(EBUSY);
        }
        Ok(())
    })
}

/// Destroys every cache of `owner` (its file is being closed; its objects are freed already).
pub(crate) fn destroy_owned(reg: &Mutex<Registry>, owner: u64) {
    reg.lock().remove_owned(owner);
}

/// Trims every cache: per-CPU objects back to their slabs, empty slabs back to the arena.
/// Returns the slabs released.
pub(crate) fn trim(classes: &Classes, reg: &Mutex<Registry>) -> usize {
    trim_mode(classes, reg, false, usize::MAX).0
}

/// [`trim`] for reclaim: with `try_only`, busy locks are skipped; stops once `max_pages` pages
/// went back to the arena. Returns (slabs, pages) released.
pub(crate) fn trim_mode(
    classes: &Classes,
    reg: &Mutex<Registry>,
    try_only: bool,
    max_pages: usize,
) -> (usize, usize) {
    let (mut slabs, mut pages) = (0, 0);
    let mut one = |c: &Cache| {
        if pages >= max_pages {
            return;
        }
        c.drain_cpu_mode(try_only);
        let per = c.layout.pages();
        let n = c.release_empty_mode(try_only, (max_pages - pages).div_ceil(per));
        slabs += n;
        pages += n * per;
    };
    for c in classes.iter() {
        one(c);
    }
    if let Some(r) = crate::arena::acquire(reg, try_only) {
        for c in r.iter() {
            one(c);
        }
    }
    (slabs, pages)
}

/// What the caches could give back now (try-locks): (empty slab pages, per-CPU object pages).
pub(crate) fn reclaimable(classes: &Classes, reg: &Mutex<Registry>) -> (u64, u64) {
    let (mut empty, mut cpu) = (0, 0);
    let mut add = |c: &Cache| {
        let (e, p) = c.reclaimable();
        empty += e;
        cpu += p;
    };
    for c in classes.iter() {
        add(c);
    }
    if let Some(r) = reg.try_lock() {
        for c in r.iter() {
            add(c);
        }
    }
    (empty, cpu)
}

/// Adds the pages of every cache's empty slabs to `out[slot]` of their arena slot (try-locks).
pub(crate) fn add_empty_pages_by_slot(classes: &Classes, reg: &Mutex<Registry>, out: &mut [usize]) {
    for c in classes.iter() {
        c.add_empty_pages_by_slot(out);
    }
    if let Some(r) = reg.try_lock() {
        for c in r.iter() {
            c.add_empty_pages_by_slot(out);
        }
    }
}

/// Renders `/proc/rkmem/occupancy`, caches in slabinfo's order.
pub(crate) fn show_occupancy(
    w: &mut impl fmt::Write,
    classes: &Classes,
    reg: &Mutex<Registry>,
) -> fmt::Result {
    let r = reg.lock();
    let files = r.iter().rev().map(|c| &**c);
    let own = classes.iter().rev();
    crate::rkcore::compact::write_occupancy(
        w,
        Iterator::chain(files, own).map(|c| (c.name(), c.occupancy())),
    )
}

/// Renders `/proc/rkmem/slabinfo` in the format of `/proc/slabinfo` version 2.1.
pub(crate) fn show_slabinfo(
    w: &mut impl fmt::Write,
    classes: &Classes,
    reg: &Mutex<Registry>,
) -> fmt::Result {
    let r = reg.lock();
    // The files' caches, newest first, then the size classes, largest first.
    let files = r.iter().rev().map(|c| &**c);
    let own = classes.iter().rev();
    slabinfo::write_slabinfo(w, Iterator::chain(files, own).map(|c| c.slabinfo_row()))
}
