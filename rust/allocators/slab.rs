// SPDX-License-Identifier: GPL-2.0

//! Bitmap slab caches on top of the arena: the kernel side of `rkcore::slab`.
//!
//! A cache takes slabs (2^order pages, naturally aligned) from the arena, lays them out with
//! `SlabLayout` (header + bitmap + objects), keeps them on full/partial/empty lists threaded
//! through the slab headers (`rkcore::slablist`), and fronts them with per-CPU object caches
//! ([`ObjCache`]) refilled and drained in batches, like SLUB's per-CPU sheaves.
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
use crate::percpu::{nr_cpu_ids, ObjCache, CAP as CPU_CAP};
use crate::rkcore::depot::{cpu_tunables, Depot, DEPOT_FACTOR, MAX_BATCH};
use crate::rkcore::slab::{CacheLists, SlabFreeError, SlabLayout, SlabList, Transition};
use crate::rkcore::slabinfo::SlabinfoRow;
use crate::rkcore::slablist::{Headers, SlabLists};
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        SpinLock,
    },
};

/// Longest cache name (bytes, without the terminating NUL).
pub(crate) const NAME_MAX: usize = 31;
/// The largest batch a per-CPU array moves at a time (see `rkcore::depot::cpu_tunables`).
const CPU_BATCH: usize = MAX_BATCH;
/// Problems reported in dmesg per cache before the reports are only counted.
const MAX_REPORTS: u32 = 5;

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

struct Inner {
    counts: CacheLists,
    lists: SlabLists,
    seq: u64,
}

/// Slab headers reached by address.
///
/// # Invariants
///
/// Only used under the cache's `inner` lock, with addresses of slabs of this cache (on its lists,
/// or just initialised and about to be put on one): each is the start of a live slab of
/// `layout.slab_bytes()` bytes taken from the arena, whose first `layout.header_bytes()` bytes
/// only the cache touches, under that lock.
struct SlabHeaders<'a> {
    layout: &'a SlabLayout,
}

impl Headers for SlabHeaders<'_> {
    fn header(&mut self, slab: u64) -> &mut [u8] {
        // SAFETY: by the type invariant `slab` is the start of a live slab of this cache, its
        // header bytes are touched by nobody else while `inner` is held, and `header_bytes` is
        // within the slab.
        unsafe {
            core::slice::from_raw_parts_mut(slab as usize as *mut u8, self.layout.header_bytes())
        }
    }
}

/// A slab cache.
///
/// # Invariants
///
/// Every slab on `inner.lists` was taken from the arena with `layout.order()` and initialised
/// for this cache (`layout.init` with `id`); `inner.counts` counts them per list. Objects in the
/// per-CPU caches are allocated in their slabs' bitmaps.
#[pin_data(PinnedDrop)]
pub(crate) struct Cache {
    pub(crate) id: u32,
    name: [u8; NAME_MAX],
    name_len: usize,
    pub(crate) layout: SlabLayout,
    ctor: Option<u8>,
    use_cpu: bool,
    #[pin]
    inner: SpinLock<Inner>,
    /// The per-CPU arrays of free objects.
    cpu: ObjCache,
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
        if name.is_empty()
            || name.len() > NAME_MAX
            || !name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(c))
        {
            return Err(EINVAL);
        }
        let layout = if debug {
            SlabLayout::new_debug(size, align, PAGE_SIZE, 3)
        } else {
            SlabLayout::new(size, align, PAGE_SIZE, 3)
        }
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
        let keep = crate::rkcore::slab::default_keep_empty(size);
        Ok(try_pin_init!(Self {
            id,
            name: n,
            name_len,
            layout,
            ctor,
            use_cpu: !debug,
            inner <- new_spinlock!(Inner {
                counts: CacheLists::new(layout.objects(), keep),
                lists: SlabLists::new(),
                seq: 0,
            }, "rkmem_cache"),
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

    /// Bytes a caller may use in each object.
    pub(crate) fn object_size(&self) -> usize {
        self.layout.object_size()
    }

    /// Allocates an object; returns its kernel virtual address.
    ///
    /// In debug mode the caller's source location (`#[track_caller]`) is recorded in the
    /// object's metadata as its allocation call site.
    #[track_caller]
    #[inline]
    pub(crate) fn alloc(&self, may_sleep: bool) -> Result<usize> {
        // The fast path: per-CPU caches on, no constructor to apply, an object on this CPU.
        if self.use_cpu && self.ctor.is_none() {
            if let Some(obj) = self.cpu.pop() {
                return Ok(obj);
            }
        }
        self.alloc_slow(may_sleep, core::panic::Location::caller())
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
                if self.layout.is_debug() {
                    self.debug_on_alloc(obj, site);
                } else if let Some(b) = self.ctor {
                    // Constructed at slab creation; objects come back constructed only if their
                    // users restore them, so (unlike SLUB) rkmem re-applies the constructor.
                    self.fill(obj, b);
                }
                return Ok(obj);
            }
            self.new_slab(may_sleep)?;
        }
    }

    /// The slow path of a per-CPU allocation: takes a batch from the depot or else from the
    /// slabs, keeps one object for the caller and puts the rest on this CPU's array (what does
    /// not fit goes back to the slabs).
    #[inline(never)]
    fn refill_cpu(&self) -> Option<usize> {
        let mut buf = [0usize; CPU_BATCH];
        let buf = buf.get_mut(..self.cpu_batch)?;
        let mut n = self.depot.lock().take(buf);
        if n == 0 {
            n = self.take_from_slabs(buf);
        }
        let (&mut obj, rest) = buf.get_mut(..n)?.split_last_mut()?;
        let kept = self.cpu.refill(rest);
        if let Some(back) = rest.get(kept..) {
            self.return_batch(back);
        }
        Some(obj)
    }

    fn fill(&self, obj: usize, byte: u8) {
        // SAFETY: `obj` is an object this cache is handing out: nobody else holds it, and it
        // spans `object_size` bytes inside its slab.
        unsafe { core::ptr::write_bytes(obj as *mut u8, byte, self.object_size()) };
    }

    /// Allocates up to `out.len()` objects from the slabs (partial first, then empty); never takes
    /// a new slab. Returns how many it took.
    fn take_from_slabs(&self, out: &mut [usize]) -> usize {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let layout = &self.layout;
        let mut h = SlabHeaders { layout };
        let mut taken = 0;
        while taken < out.len() {
            let (list, slab) = match (
                inner.lists.first(SlabList::Partial),
                inner.lists.first(SlabList::Empty),
            ) {
                (Some(s), _) => (SlabList::Partial, s),
                (None, Some(s)) => (SlabList::Empty, s),
                (None, None) => break,
            };
            let hdr = h.header(slab);
            let before = layout.in_use(hdr);
            let color = layout.header_color(hdr);
            let mut idx = [0u32; CPU_BATCH];
            let want = (out.len() - taken).min(CPU_BATCH);
            let n = layout.alloc_bulk(hdr, &mut idx[..want]);
            let after = layout.in_use(hdr);
            for i in &idx[..n] {
                if let Some(off) = layout.object_offset(color, *i) {
                    out[taken] = slab as usize + off;
                    taken += 1;
                }
            }
            let t = inner.counts.transition(before, after);
            if let Some(m) = t.moved {
                inner.lists.move_to(layout, &mut h, m.from, m.to, slab);
            } else if n == 0 {
                // Cannot happen (the lists say the slab has room); do not spin on it.
                let _ = list;
                break;
            }
        }
        taken
    }

    /// Takes a new slab from the arena and puts it on the empty list.
    fn new_slab(&self, may_sleep: bool) -> Result {
        let pages = self.arena.alloc(self.layout.order(), may_sleep)?;
        let slab = self.arena.addr_of(pages.first());
        let seq = {
            let mut inner = self.inner.lock();
            inner.seq += 1;
            inner.seq
        };
        let color = self.layout.color_offset(seq);
        {
            let mut h = SlabHeaders {
                layout: &self.layout,
            };
            // The slab is ours alone until it is on a list; the headers invariant holds.
            if self
                .layout
                .init(h.header(slab as u64), color, self.id)
                .is_err()
            {
                let _ = self.arena.free(pages);
                return Err(EINVAL);
            }
        }
        for i in 0..self.layout.objects() {
            if self.layout.is_debug() {
                if let Some(off) = self.layout.slot_offset(color, i) {
                    // SAFETY: the slot lies inside the new slab, which nobody else can reach yet.
                    let slot = unsafe {
                        core::slice::from_raw_parts_mut(
                            (slab + off) as *mut u8,
                            self.layout.stride(),
                        )
                    };
                    let _ = self.layout.debug_init(slot);
                }
            } else if let (Some(b), Some(off)) = (self.ctor, self.layout.object_offset(color, i)) {
                self.fill(slab + off, b);
            }
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let mut h = SlabHeaders {
            layout: &self.layout,
        };
        self.arena.set_tag(pages, self.id + 1);
        inner
            .lists
            .push(&self.layout, &mut h, SlabList::Empty, slab as u64);
        inner.counts.slab_added();
        inc(&self.stats.slabs_new);
        Ok(())
    }

    /// Frees the object at `obj`. In debug mode every check runs; otherwise the object goes to
    /// the per-CPU cache and is checked when it is drained to its slab.
    #[inline]
    pub(crate) fn free(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        if !self.use_cpu {
            return self.return_to_slab(obj);
        }
        if self.cpu.push(obj) {
            return Ok(());
        }
        self.free_slow(obj)
    }

    /// The slow path of a per-CPU free: this CPU's array is full; a batch of its oldest
    /// objects goes to the depot, or to the slabs if the depot is full, then `obj` goes on the
    /// array (or to its slab).
    #[inline(never)]
    fn free_slow(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        let mut out = [0usize; CPU_BATCH];
        let n = self.cpu.drain(&mut out[..self.cpu_batch]);
        if !self.depot.lock().put(&out[..n]) {
            self.return_batch(&out[..n]);
        }
        if self.cpu.push(obj) {
            Ok(())
        } else {
            self.return_to_slab(obj)
        }
    }

    /// Clears `obj`'s bit in its slab, moves the slab between lists and gives an empty slab
    /// beyond the kept ones back to the arena.
    fn return_to_slab(&self, obj: usize) -> core::result::Result<(), CacheFreeError> {
        let release = self.free_locked(&mut self.inner.lock(), obj)?;
        if let Some(page) = release {
            self.release_slab(page);
        }
        Ok(())
    }

    /// [`Cache::return_to_slab`] for a batch (a per-CPU cache's drain), under one lock
    /// acquisition. Refused objects are counted and reported; the rest of the batch goes on.
    fn return_batch(&self, objs: &[usize]) {
        let mut release = [0usize; CPU_CAP];
        let mut n = 0;
        {
            let mut inner = self.inner.lock();
            // A batch often holds neighbours from one slab: once a slab is found to be this
            // cache's, the next object in it skips the page lookup. It stays this cache's while
            // `inner` is held, unless this loop releases it.
            let mut known = None;
            for obj in objs {
                let slab = obj & !(self.layout.slab_bytes() - 1);
                match self.free_locked_at(&mut inner, *obj, known == Some(slab)) {
                    Ok(None) => known = Some(slab),
                    Ok(Some(page)) => {
                        known = None;
                        if let Some(r) = release.get_mut(n) {
                            *r = page;
                            n += 1;
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        for page in &release[..n] {
            self.release_slab(*page);
        }
    }

    /// Frees `obj` in its slab with `inner` held; returns the slab's first page if it must go
    /// back to the arena (after the lock is dropped, by [`Cache::release_slab`]).
    fn free_locked(
        &self,
        inner: &mut Inner,
        obj: usize,
    ) -> core::result::Result<Option<usize>, CacheFreeError> {
        self.free_locked_at(inner, obj, false)
    }

    /// [`Cache::free_locked`]; `slab_known`: the caller found `obj`'s slab to be this cache's
    /// under the same hold of `inner` and has not seen it released since.
    fn free_locked_at(
        &self,
        inner: &mut Inner,
        obj: usize,
        slab_known: bool,
    ) -> core::result::Result<Option<usize>, CacheFreeError> {
        let layout = &self.layout;
        let slab = obj & !(layout.slab_bytes() - 1);
        if !slab_known {
            // Where the pointer belongs is decided from the arena's page tags, without reading
            // the memory it points to: only a slab of this cache is ever touched.
            let Some(page) = self.arena.page_of(slab) else {
                return Err(self.bad_free(obj, CacheFreeError::Foreign, None));
            };
            // Checked under `inner`: a slab of this cache is tagged while it is on the lists.
            if self.arena.tag_of(page) != self.id + 1 {
                return Err(self.bad_free(obj, CacheFreeError::NotAnObject, None));
            }
        }
        let mut h = SlabHeaders { layout };
        // The page is tagged with this cache and `slab` is aligned to the slab size, so it is
        // the start of one of this cache's slabs: the headers invariant holds.
        let hdr = h.header(slab as u64);
        let index = match layout.locate(hdr, self.id, obj - slab) {
            Ok(i) => i,
            Err(SlabFreeError::DoubleFree { index }) => {
                return Err(self.bad_free(obj, CacheFreeError::DoubleFree, Some(index)))
            }
            Err(_) => return Err(self.bad_free(obj, CacheFreeError::NotAnObject, None)),
        };
        let color = layout.header_color(hdr);
        if layout.is_debug() {
            self.debug_on_free(slab, color, index);
        }
        let hdr = h.header(slab as u64);
        let before = layout.in_use(hdr);
        if layout.free(hdr, index).is_err() {
            return Err(self.bad_free(obj, CacheFreeError::DoubleFree, Some(index)));
        }
        let after = layout.in_use(hdr);
        let t: Transition = inner.counts.transition(before, after);
        if let Some(m) = t.moved {
            inner
                .lists
                .move_to(layout, &mut h, m.from, m.to, slab as u64);
        }
        if t.release {
            let page = self.unlist(inner, SlabList::Empty, slab as u64);
            inner.counts.slab_released();
            return Ok(page);
        }
        Ok(None)
    }

    /// Takes `slab` off `list` for release, with `inner` held, and clears its pages' tags
    /// before the lock is dropped. A free checks the tag under `inner`, so from here on a stale
    /// pointer into the slab is refused without its memory being read: the slab's pages may
    /// belong to someone else as soon as [`Cache::release_slab`] has given them back. (Tags are
    /// set under `inner` too, in `new_slab`, before the slab goes on a list.)
    /// Returns the slab's first page, for [`Cache::release_slab`].
    fn unlist(&self, inner: &mut Inner, list: SlabList, slab: u64) -> Option<usize> {
        let mut h = SlabHeaders {
            layout: &self.layout,
        };
        inner.lists.remove(&self.layout, &mut h, list, slab);
        let page = self.arena.page_of(slab as usize)?;
        self.arena.set_tag(self.slab_pages(page), 0);
        Some(page)
    }

    /// The slab whose first page is `page`.
    fn slab_pages(&self, page: usize) -> Pages {
        Pages::Order {
            page,
            order: self.layout.order(),
        }
    }

    /// Gives the slab at `page` that [`Cache::unlist`] took off the lists (so untagged) back to
    /// the arena, with `inner` dropped.
    fn release_slab(&self, page: usize) {
        let _ = self.arena.free(self.slab_pages(page));
        inc(&self.stats.slabs_released);
    }

    fn bad_free(&self, obj: usize, e: CacheFreeError, index: Option<u32>) -> CacheFreeError {
        inc(&self.stats.bad_frees);
        let what = match e {
            CacheFreeError::Foreign => "pointer outside rkmem's arena",
            CacheFreeError::NotAnObject => "pointer that is not an object of this cache",
            CacheFreeError::DoubleFree => "double free",
        };
        let _ = obj;
        if self.may_report() {
            match index {
                Some(i) => pr_warn!("cache {}: refused {} of object {}\n", self.name(), what, i),
                None => pr_warn!("cache {}: refused free of a {}\n", self.name(), what),
            }
        }
        e
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

    fn debug_on_alloc(&self, obj: usize, site: u64) {
        let layout = &self.layout;
        let slot = obj - layout.object_in_slot();
        // SAFETY: the object was just taken from its slab by this cache: its slot is ours.
        let bytes = unsafe { core::slice::from_raw_parts_mut(slot as *mut u8, layout.stride()) };
        if let Err(c) = layout.debug_on_alloc(bytes, site) {
            inc(&self.stats.corruptions);
            if self.may_report() {
                pr_err!(
                    "cache {}: {} in a free object found on allocation (repaired)\n",
                    self.name(),
                    format_args!("{c}")
                );
            }
            let _ = layout.debug_init(bytes);
            let _ = layout.debug_on_alloc(bytes, site);
        }
        if let Some(b) = self.ctor {
            self.fill(obj, b);
        }
    }

    fn debug_on_free(&self, slab: usize, color: u32, index: u32) {
        let layout = &self.layout;
        let Some(off) = layout.slot_offset(color, index) else {
            return;
        };
        // SAFETY: the object is allocated in its slab (checked by `locate`) and is being freed
        // by its holder: nobody else uses its slot now.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut((slab + off) as *mut u8, layout.stride()) };
        if let Err(c) = layout.debug_on_free(bytes) {
            inc(&self.stats.corruptions);
            if self.may_report() {
                pr_err!(
                    "cache {}: object {}: {} (repaired)\n",
                    self.name(),
                    index,
                    format_args!("{c}")
                );
            }
            let _ = layout.debug_init(bytes);
        }
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
                let inner = &mut *inner;
                let Some(slab) = inner.lists.first(SlabList::Empty) else {
                    break;
                };
                let page = self.unlist(inner, SlabList::Empty, slab);
                inner.counts.slab_released();
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
        let Some(mut inner) = self.inner.try_lock() else {
            return;
        };
        let inner = &mut *inner;
        let mut h = SlabHeaders {
            layout: &self.layout,
        };
        let pages = self.layout.pages();
        let n = inner.counts.empty() as usize;
        inner
            .lists
            .for_each(&self.layout, &mut h, SlabList::Empty, n, |slab| {
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
        let empty = self.inner.try_lock().map_or(0, |i| i.counts.empty()) * pages;
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
            .counts
            .objects_in_use()
            .saturating_sub(cached)
    }

    /// This cache's row of `/proc/rkmem/slabinfo`.
    pub(crate) fn slabinfo_row(&self) -> SlabinfoRow<'_> {
        let counts = self.inner.lock().counts;
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
        let in_use = self.inner.lock().counts.objects_in_use();
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
                let slab = {
                    let mut inner = self.inner.lock();
                    let inner = &mut *inner;
                    let Some(slab) = inner.lists.first(list) else {
                        break;
                    };
                    self.unlist(inner, list, slab)
                };
                if let Some(page) = slab {
                    self.release_slab(page);
                }
            }
        }
    }
}
