// SPDX-License-Identifier: GPL-2.0

//! The slabs of one cache: the composition the module's `Cache` runs under its lock, and the
//! host benchmark and tests run unchanged.
//!
//! [`SlabSet`] puts the pieces together: the geometry ([`SlabLayout`]), the three lists threaded
//! through the slab headers ([`SlabLists`]), the counts that say when a slab changes lists or
//! goes back ([`CacheLists`]), and the owner tags of the memory under the slabs (the arena's
//! page tags, as `struct page` names its slab cache). Every decision of the slab path lives
//! here: which slab an allocation comes from, how a batch is taken, how a free finds its slab
//! and what it refuses, when a slab moves or is released, and the order that makes release safe
//! against a stale free (a slab is untagged before it is off the caller's lock, so a later free
//! into it is refused from the tag alone, without its memory being read).
//!
//! The memory is reached through [`SlabMemory`]: the module implements it over arena pages
//! (under the cache lock), the tests over a byte buffer with made-up addresses.

use super::compact::{occupancy_bucket, SlabUse, OCCUPANCY_BUCKETS};
use super::depot::MAX_BATCH;
use super::slab::{CacheLists, Corruption, InitError, SlabFreeError, SlabLayout, SlabList};
use super::slablist::{Headers, SlabLists};

/// Most objects [`SlabSet::take`] moves per slab visit (a bound on its stack buffer, which it
/// zeroes on each visit): the largest per-CPU batch, what a refill asks for.
pub const TAKE_CHUNK: usize = MAX_BATCH;

/// The memory of a cache's slabs, reached by address.
///
/// [`SlabSet`] calls [`Headers::header`] and [`SlabMemory::bytes`] only for slabs it owns:
/// slabs on its lists, a slab being added, or a slab whose owner tag ([`SlabMemory::owner`]) is
/// its own (a slab is tagged while it is on the lists); and [`SlabMemory::bytes`] only for the
/// slot of an object that is being allocated or freed, or of a slab not yet on the lists.
pub trait SlabMemory: Headers {
    /// What names a slab's pages when it is given back (the module: the arena page index).
    type Pages: Copy;
    /// The owner tag of the memory at the slab-aligned address `slab`: `None` if it is not memory
    /// that slabs come from, `Some(0)` if no cache owns it, else the owning cache's tag.
    fn owner(&self, slab: u64) -> Option<u32>;
    /// Tags the pages of the slab at `slab` with `owner` (0 clears); returns its pages (`None`
    /// if `slab` is not memory that slabs come from).
    fn set_owner(&mut self, slab: u64, owner: u32) -> Option<Self::Pages>;
    /// The `len` bytes at `offset` in the slab at `slab`.
    fn bytes(&mut self, slab: u64, offset: usize, len: usize) -> &mut [u8];
}

/// Words of bitmap an [`ObjectView`] carries: the first 512 objects of a slab.
pub const VIEW_WORDS: usize = 8;

/// One object and its slab as [`SlabSet::inspect`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectView {
    /// The slab's first byte.
    pub slab: u64,
    /// Bytes from the slab's first byte to the object.
    pub offset: usize,
    /// The object's index in its slab (its bit in the bitmap).
    pub index: u32,
    /// The slab's color (bytes the first object is shifted by).
    pub color: u32,
    /// Objects in use in the slab, from its header.
    pub in_use: u32,
    /// The slab's bitmap: bit `i % 64` of word `i / 64` is object `i` (1 allocated), for the
    /// first `64 * VIEW_WORDS` objects; the rest are zero.
    pub bitmap: [u64; VIEW_WORDS],
}

/// Why a free was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// Not an address of memory that slabs come from.
    Foreign,
    /// Not an object of this cache (another cache's slab, a free page, a header, padding).
    NotAnObject,
    /// The object is free already.
    DoubleFree {
        /// Its index in its slab.
        index: u32,
    },
}

/// Something a free found and repaired, for the caller to count and report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The object's index in its slab.
    pub index: u32,
    /// What was damaged.
    pub what: Corruption,
}

/// The slabs of one cache (see the module documentation).
///
/// # Invariants
///
/// Every slab on `lists` was prepared with [`SlabSet::prepare`] for `id`, added with
/// [`SlabSet::add`] (so tagged with [`SlabSet::tag`]) and is counted in `counts` on the list it
/// is on, the one its in-use count gives.
#[derive(Debug)]
pub struct SlabSet {
    layout: SlabLayout,
    id: u32,
    counts: CacheLists,
    lists: SlabLists,
    seq: u64,
}

impl SlabSet {
    /// No slabs yet; slabs laid out by `layout` for cache `id`; at most `keep_empty` empty slabs
    /// kept (the rest go back when they empty).
    pub fn new(layout: SlabLayout, id: u32, keep_empty: u32) -> SlabSet {
        SlabSet {
            counts: CacheLists::new(layout.objects(), keep_empty),
            layout,
            id,
            lists: SlabLists::new(),
            seq: 0,
        }
    }

    /// The layout of the slabs.
    #[inline]
    pub fn layout(&self) -> &SlabLayout {
        &self.layout
    }

    /// The counts per list.
    #[inline]
    pub fn counts(&self) -> &CacheLists {
        &self.counts
    }

    /// The owner tag of this cache's slabs (its id + 1: 0 means no owner).
    #[inline]
    pub fn tag(&self) -> u32 {
        self.id.wrapping_add(1)
    }

    /// The color offset of the next new slab (slabs take the colors in turn).
    pub fn next_color(&mut self) -> u32 {
        self.seq += 1;
        self.layout.color_offset(self.seq)
    }

    /// Prepares a new slab at `slab` (slab-aligned memory that nobody else reaches) for cache
    /// `id` with color offset `color`: header and bitmap, debug red zones and poison, and every
    /// object filled with `ctor` if given. Needs no lock: the slab is not on a list yet.
    pub fn prepare(
        layout: &SlabLayout,
        id: u32,
        mem: &mut impl SlabMemory,
        slab: u64,
        color: u32,
        ctor: Option<u8>,
    ) -> Result<(), InitError> {
        layout.init(mem.header(slab), color, id)?;
        for i in 0..layout.objects() {
            if layout.is_debug() {
                if let Some(off) = layout.slot_offset(color, i) {
                    let _ = layout.debug_init(mem.bytes(slab, off, layout.stride()));
                }
            } else if let (Some(b), Some(off)) = (ctor, layout.object_offset(color, i)) {
                mem.bytes(slab, off, layout.object_size()).fill(b);
            }
        }
        Ok(())
    }

    /// Adds the prepared slab at `slab` to the empty list, tagging its pages as this cache's
    /// first (under the caller's lock, before any free can find it).
    pub fn add(&mut self, mem: &mut impl SlabMemory, slab: u64) {
        mem.set_owner(slab, self.tag());
        self.lists.push(&self.layout, mem, SlabList::Empty, slab);
        self.counts.slab_added();
    }

    /// Allocates up to `out.len()` objects from the slabs, partial ones first, then empty ones;
    /// never adds a slab. Returns how many it took (their addresses are `out[..n]`).
    pub fn take(&mut self, mem: &mut impl SlabMemory, out: &mut [usize]) -> usize {
        let layout = &self.layout;
        let mut taken = 0;
        while taken < out.len() {
            let slab = match (
                self.lists.first(SlabList::Partial),
                self.lists.first(SlabList::Empty),
            ) {
                (Some(s), _) | (None, Some(s)) => s,
                (None, None) => break,
            };
            let hdr = mem.header(slab);
            let before = layout.in_use(hdr);
            let color = layout.header_color(hdr);
            let want = (out.len() - taken).min(TAKE_CHUNK);
            let n = if want == 1 {
                // One object (a debug cache, a cache with a constructor): no batch buffer.
                match layout.alloc(hdr) {
                    Some(i) => {
                        if let Some(off) = layout.object_offset(color, i) {
                            out[taken] = slab as usize + off;
                            taken += 1;
                        }
                        1
                    }
                    None => 0,
                }
            } else {
                let mut idx = [0u32; TAKE_CHUNK];
                let n = layout.alloc_bulk(hdr, &mut idx[..want]);
                for i in &idx[..n] {
                    if let Some(off) = layout.object_offset(color, *i) {
                        out[taken] = slab as usize + off;
                        taken += 1;
                    }
                }
                n
            };
            let after = layout.in_use(mem.header(slab));
            let t = self.counts.transition(before, after);
            if let Some(m) = t.moved {
                self.lists.move_to(layout, mem, m.from, m.to, slab);
            } else if n == 0 {
                // Cannot happen (the lists say the slab has room); do not spin on it.
                break;
            }
        }
        taken
    }

    /// The slab-aligned start of the slab `obj` would lie in.
    #[inline]
    pub fn slab_of(&self, obj: usize) -> u64 {
        slab_start(&self.layout, obj)
    }

    /// Whether `obj` is the first byte of an object slot of one of this cache's slabs
    /// (allocated or free), from the owner tag and the slab header's color alone: what a KASAN
    /// build checks before it poisons the slot of a free that the slabs have not validated yet
    /// (a per-CPU free is checked when its array drains).
    pub fn is_object<M: SlabMemory>(&self, mem: &mut M, obj: usize) -> bool {
        let slab = self.slab_of(obj);
        if mem.owner(slab) != Some(self.id.wrapping_add(1)) {
            return false;
        }
        let layout = &self.layout;
        let color = layout.header_color(mem.header(slab));
        layout.object_index(color, obj - slab as usize).is_ok()
    }

    /// Where the object at `obj` sits in its slab and the slab's bitmap, read from the header
    /// (nothing changes): `None` if `obj` is not the first byte of an object slot of one of this
    /// cache's slabs. What `RKMEM_IOC_HANDLE_INFO` shows of an object a file holds.
    pub fn inspect<M: SlabMemory>(&self, mem: &mut M, obj: usize) -> Option<ObjectView> {
        let slab = self.slab_of(obj);
        if mem.owner(slab) != Some(self.id.wrapping_add(1)) {
            return None;
        }
        let layout = &self.layout;
        let hdr = mem.header(slab);
        let color = layout.header_color(hdr);
        let offset = obj.checked_sub(slab as usize)?;
        let index = layout.object_index(color, offset).ok()?;
        let mut bitmap = [0u64; VIEW_WORDS];
        let shown = layout.objects().min(VIEW_WORDS as u32 * 64);
        for i in 0..shown {
            if layout.is_allocated(hdr, i) {
                bitmap[i as usize / 64] |= 1 << (i % 64);
            }
        }
        Some(ObjectView {
            slab,
            offset,
            index,
            color,
            in_use: layout.in_use(hdr),
            bitmap,
        })
    }

    /// Frees the object at `obj`; `Ok(Some(pages))` if its slab emptied and must go back (it
    /// is off the lists and untagged: give `pages` back after dropping the lock). Where `obj`
    /// belongs is decided from the owner tag, without reading the memory it points to; only a
    /// slab of this cache is ever touched. `repaired` hears of damage found (debug layouts).
    pub fn free<M: SlabMemory>(
        &mut self,
        mem: &mut M,
        obj: usize,
        repaired: &mut impl FnMut(Repaired),
    ) -> Result<Option<M::Pages>, FreeError> {
        self.free_in(mem, obj, false, repaired)
    }

    /// [`SlabSet::free`] for a batch under one hold of the caller's lock. Slabs to give back
    /// go to `release` (at most its length; one more would be kept on the empty list); each
    /// refused object goes to `refused`, and the rest of the batch goes on. Returns how many
    /// entries of `release` it filled.
    pub fn free_batch<M: SlabMemory>(
        &mut self,
        mem: &mut M,
        objs: &[usize],
        release: &mut [Option<M::Pages>],
        refused: &mut impl FnMut(usize, FreeError),
        repaired: &mut impl FnMut(Repaired),
    ) -> usize {
        let mut n = 0;
        // A batch often holds neighbours from one slab: once a slab is found to be this cache's,
        // the next object in it skips the tag lookup. It stays this cache's while the caller's
        // lock is held, unless this loop releases it.
        let mut known = None;
        for &obj in objs {
            let slab = self.slab_of(obj);
            match self.free_in(mem, obj, known == Some(slab), repaired) {
                Ok(None) => known = Some(slab),
                Ok(Some(pages)) => {
                    known = None;
                    if let Some(r) = release.get_mut(n) {
                        *r = Some(pages);
                        n += 1;
                    }
                }
                Err(e) => refused(obj, e),
            }
        }
        n
    }

    fn free_in<M: SlabMemory>(
        &mut self,
        mem: &mut M,
        obj: usize,
        slab_known: bool,
        repaired: &mut impl FnMut(Repaired),
    ) -> Result<Option<M::Pages>, FreeError> {
        let slab = self.slab_of(obj);
        let layout = &self.layout;
        if !slab_known {
            match mem.owner(slab) {
                None => return Err(FreeError::Foreign),
                Some(t) if t != self.id.wrapping_add(1) => return Err(FreeError::NotAnObject),
                Some(_) => {}
            }
        }
        // Tagged as this cache's and slab-aligned: one of this cache's slabs, on its lists.
        let hdr = mem.header(slab);
        let index = match layout.locate(hdr, self.id, obj - slab as usize) {
            Ok(i) => i,
            Err(SlabFreeError::DoubleFree { index }) => {
                return Err(FreeError::DoubleFree { index })
            }
            Err(_) => return Err(FreeError::NotAnObject),
        };
        let color = layout.header_color(hdr);
        if layout.is_debug() {
            if let Some(off) = layout.slot_offset(color, index) {
                let slot = mem.bytes(slab, off, layout.stride());
                if let Err(what) = layout.debug_on_free(slot) {
                    let _ = layout.debug_init(slot);
                    repaired(Repaired { index, what });
                }
            }
        }
        let hdr = mem.header(slab);
        let before = layout.in_use(hdr);
        if layout.free(hdr, index).is_err() {
            return Err(FreeError::DoubleFree { index });
        }
        let after = layout.in_use(hdr);
        let t = self.counts.transition(before, after);
        if let Some(m) = t.moved {
            self.lists.move_to(layout, mem, m.from, m.to, slab);
        }
        if t.release {
            let pages = self.unlist(mem, SlabList::Empty, slab);
            self.counts.slab_released();
            return Ok(pages);
        }
        Ok(None)
    }

    /// Takes `slab` off `list` and clears its owner tag (before the caller's lock is dropped:
    /// from here on a stale pointer into the slab is refused without its memory being read,
    /// and its pages may be someone else's as soon as they are given back).
    fn unlist<M: SlabMemory>(
        &mut self,
        mem: &mut M,
        list: SlabList,
        slab: u64,
    ) -> Option<M::Pages> {
        self.lists.remove(&self.layout, mem, list, slab);
        mem.set_owner(slab, 0)
    }

    /// Takes the first empty slab off the lists for release (untagged; give its pages back
    /// after dropping the lock).
    pub fn pop_empty<M: SlabMemory>(&mut self, mem: &mut M) -> Option<Option<M::Pages>> {
        let slab = self.lists.first(SlabList::Empty)?;
        let pages = self.unlist(mem, SlabList::Empty, slab);
        self.counts.slab_released();
        Some(pages)
    }

    /// Takes the first slab of `list` off the lists, whatever it holds (a cache being
    /// destroyed: its users are gone). Its counts stay: the set is not used again.
    pub fn pop_any<M: SlabMemory>(
        &mut self,
        mem: &mut M,
        list: SlabList,
    ) -> Option<Option<M::Pages>> {
        let slab = self.lists.first(list)?;
        Some(self.unlist(mem, list, slab))
    }

    /// Calls `f` with each slab of `list` and its header, front to back (at most as many as the
    /// counts say are on it).
    fn walk(&self, mem: &mut impl SlabMemory, list: SlabList, mut f: impl FnMut(u64, &[u8])) {
        let max = match list {
            SlabList::Full => self.counts.full(),
            SlabList::Partial => self.counts.partial(),
            SlabList::Empty => self.counts.empty(),
        };
        let mut slab = self.lists.first(list).unwrap_or(0);
        for _ in 0..max {
            if slab == 0 {
                break;
            }
            let hdr = mem.header(slab);
            f(slab, hdr);
            slab = self.layout.links(hdr).0;
        }
    }

    /// Calls `f` with every slab of the cache, list by list: the full list, then the partial
    /// list, then the empty list, each front (where allocations look first) to back, with the
    /// list and the slab's in-use count from its header. Nothing changes; under the caller's
    /// lock the three lists are one consistent picture. What `RKMEM_IOC_CACHE_SLABS` shows.
    pub fn slabs(&self, mem: &mut impl SlabMemory, mut f: impl FnMut(SlabList, u64, u32)) {
        let layout = &self.layout;
        for list in [SlabList::Full, SlabList::Partial, SlabList::Empty] {
            self.walk(mem, list, |slab, hdr| f(list, slab, layout.in_use(hdr)));
        }
    }

    /// Fills `out` with the partial slabs, front to back: their addresses and in-use counts
    /// (`pinned` 0: the caller knows which objects may move). At most `out.len()`; returns how
    /// many. The input of [`super::compact::plan`].
    pub fn partial_slabs(&self, mem: &mut impl SlabMemory, out: &mut [SlabUse]) -> usize {
        let mut k = 0;
        let layout = &self.layout;
        self.walk(mem, SlabList::Partial, |slab, hdr| {
            if let Some(o) = out.get_mut(k) {
                *o = SlabUse::new(slab, layout.in_use(hdr), 0);
                k += 1;
            }
        });
        k
    }

    /// Fills `out` with the slabs holding objects (partial and full) whose address is in
    /// `lo..hi` (an arena slot being evacuated): their addresses and in-use counts. At most
    /// `out.len()`; returns how many.
    pub fn slabs_in(
        &self,
        mem: &mut impl SlabMemory,
        lo: u64,
        hi: u64,
        out: &mut [SlabUse],
    ) -> usize {
        let mut k = 0;
        let layout = &self.layout;
        for list in [SlabList::Partial, SlabList::Full] {
            self.walk(mem, list, |slab, hdr| {
                if (lo..hi).contains(&slab) {
                    if let Some(o) = out.get_mut(k) {
                        *o = SlabUse::new(slab, layout.in_use(hdr), 0);
                        k += 1;
                    }
                }
            });
        }
        k
    }

    /// How many slabs are 0-9%, 10-19%, ..., 90-99% and 100% full ([`occupancy_bucket`]),
    /// as zsmalloc's classes show.
    pub fn occupancy(&self, mem: &mut impl SlabMemory) -> [u64; OCCUPANCY_BUCKETS] {
        let mut h = [0u64; OCCUPANCY_BUCKETS];
        let objects = self.layout.objects();
        let layout = &self.layout;
        self.walk(mem, SlabList::Partial, |_, hdr| {
            if let Some(b) = h.get_mut(occupancy_bucket(layout.in_use(hdr), objects)) {
                *b += 1;
            }
        });
        h[0] += self.counts.empty();
        h[OCCUPANCY_BUCKETS - 1] += self.counts.full();
        h
    }

    /// Allocates one object in the slab at `slab` (a compaction target), moving the slab
    /// between lists as its count changes; `None` if the slab is not one of this cache's (by its
    /// owner tag) or is full.
    pub fn take_in(&mut self, mem: &mut impl SlabMemory, slab: u64) -> Option<usize> {
        if mem.owner(slab) != Some(self.tag()) {
            return None;
        }
        let layout = &self.layout;
        let hdr = mem.header(slab);
        let before = layout.in_use(hdr);
        let color = layout.header_color(hdr);
        let i = layout.alloc(hdr)?;
        let after = layout.in_use(mem.header(slab));
        if let Some(m) = self.counts.transition(before, after).moved {
            self.lists.move_to(layout, mem, m.from, m.to, slab);
        }
        layout
            .object_offset(color, i)
            .map(|off| slab as usize + off)
    }

    /// Calls `f` with each empty slab.
    pub fn for_each_empty(&self, mem: &mut impl SlabMemory, f: impl FnMut(u64)) {
        let n = self.counts.empty() as usize;
        self.lists
            .for_each(&self.layout, mem, SlabList::Empty, n, f);
    }
}

/// The slab-aligned start of the slab of `layout` that `obj` would lie in.
#[inline]
fn slab_start(layout: &SlabLayout, obj: usize) -> u64 {
    (obj & !(layout.slab_bytes() - 1)) as u64
}

/// Prepares the object at `obj`, just taken from its slab, for its user: in a debug layout its
/// slot's red zones and poison are checked (and repaired: the damage is returned) and
/// `call_site` recorded; then `ctor`, if any, fills it.
pub fn on_alloc(
    layout: &SlabLayout,
    mem: &mut impl SlabMemory,
    obj: usize,
    call_site: u64,
    ctor: Option<u8>,
) -> Option<Corruption> {
    let slab = slab_start(layout, obj);
    let off = obj - slab as usize;
    let mut damage = None;
    if layout.is_debug() {
        let slot = mem.bytes(slab, off - layout.object_in_slot(), layout.stride());
        if let Err(c) = layout.debug_on_alloc(slot, call_site) {
            damage = Some(c);
            let _ = layout.debug_init(slot);
            let _ = layout.debug_on_alloc(slot, call_site);
        }
    }
    if let Some(b) = ctor {
        mem.bytes(slab, off, layout.object_size()).fill(b);
    }
    damage
}

/// What sits in front of a cache's slabs, as the module has it: this CPU's array of free
/// objects, the depot of full batches, and the slabs, each behind its own lock, taken inside
/// these calls (never two at once).
pub trait Front {
    /// Why a free to the slabs was refused.
    type Error;
    /// A whole batch from the depot into `out` (`out.len()` objects), or nothing: returns how
    /// many.
    fn depot_take(&self, out: &mut [usize]) -> usize;
    /// Gives a batch to the depot; `false` (nothing taken) if it is full.
    fn depot_put(&self, objs: &[usize]) -> bool;
    /// Up to `out.len()` objects from the slabs (never adds a slab): returns how many.
    fn slabs_take(&self, out: &mut [usize]) -> usize;
    /// Frees a batch to the slabs (refusals are counted and reported by the implementation).
    fn slabs_free(&self, objs: &[usize]);
    /// Frees one object to its slab.
    fn slab_free(&self, obj: usize) -> Result<(), Self::Error>;
    /// Puts `objs` on this CPU's array; returns how many fit (the first ones).
    fn cpu_refill(&self, objs: &[usize]) -> usize;
    /// Takes up to `out.len()` of the oldest objects off this CPU's array: returns how many.
    fn cpu_drain(&self, out: &mut [usize]) -> usize;
    /// Pushes `obj` onto this CPU's array; `false` if it is full.
    fn cpu_push(&self, obj: usize) -> bool;
}

/// The slow path of a per-CPU allocation (this CPU's array is empty): a batch of `batch`
/// objects (at most [`MAX_BATCH`]) from the depot, else from the slabs; one is for the caller,
/// the rest go on this CPU's array, and what does not fit goes back to the slabs. `None`: the
/// depot and the slabs had nothing (the caller adds a slab and tries again).
pub fn refill<F: Front>(f: &F, batch: usize) -> Option<usize> {
    let mut buf = [0usize; MAX_BATCH];
    let buf = buf.get_mut(..batch.clamp(1, MAX_BATCH))?;
    let mut n = f.depot_take(buf);
    if n == 0 {
        n = f.slabs_take(buf);
    }
    let (&mut obj, rest) = buf.get_mut(..n)?.split_last_mut()?;
    let kept = f.cpu_refill(rest);
    if let Some(back) = rest.get(kept..) {
        if !back.is_empty() {
            f.slabs_free(back);
        }
    }
    Some(obj)
}

/// The slow path of a per-CPU free (this CPU's array is full): the array's oldest `batch`
/// objects go to the depot, or to the slabs if the depot is full; then `obj` goes on the
/// array, or to its slab if there is still no room.
pub fn overflow<F: Front>(f: &F, obj: usize, batch: usize) -> Result<(), F::Error> {
    let mut out = [0usize; MAX_BATCH];
    let n = f.cpu_drain(&mut out[..batch.clamp(1, MAX_BATCH)]);
    if n > 0 && !f.depot_put(&out[..n]) {
        f.slabs_free(&out[..n]);
    }
    if f.cpu_push(obj) {
        Ok(())
    } else {
        f.slab_free(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    extern crate std;
    use std::collections::{HashMap, HashSet};
    use std::vec;
    use std::vec::Vec;
    use std::{assert, assert_eq, panic};

    const PAGE: usize = 4096;
    /// Made-up address of the first page of the test memory (slab-aligned for every order).
    const BASE: usize = 0x4000_0000;

    /// Slab memory over a byte buffer: `pages` pages at made-up addresses from `BASE`, with an
    /// owner tag per page and a count of reads of pages not owned by the set under test.
    struct TestMem {
        bytes: Vec<u8>,
        tags: Vec<u32>,
        order: u32,
        header_bytes: usize,
        /// Headers of an off-slab layout, by slab (the module keeps them beside the arena).
        off_slab: Option<HashMap<u64, Vec<u8>>>,
        /// The tag the set under test uses: any header read of a page not carrying it is a bug.
        tag: u32,
        bad_reads: usize,
        /// A new slab being prepared (not tagged yet, reached by nobody else).
        preparing: Option<u64>,
    }

    impl TestMem {
        fn new(pages: usize, layout: &SlabLayout, tag: u32) -> TestMem {
            TestMem {
                bytes: vec![0xee; pages * PAGE],
                tags: vec![0; pages],
                order: layout.order(),
                header_bytes: layout.header_bytes(),
                off_slab: layout.off_slab().then(HashMap::new),
                tag,
                bad_reads: 0,
                preparing: None,
            }
        }
        fn page(&self, addr: u64) -> Option<usize> {
            let off = (addr as usize).checked_sub(BASE)?;
            (off < self.bytes.len()).then_some(off / PAGE)
        }
        /// A free slab-aligned block of the set's order (as the arena would hand out).
        fn new_slab(&mut self, used: &mut HashSet<u64>) -> Option<u64> {
            let step = 1usize << self.order;
            (0..self.tags.len())
                .step_by(step)
                .map(|p| (BASE + p * PAGE) as u64)
                .find(|s| used.insert(*s))
        }
    }

    impl Headers for TestMem {
        fn header(&mut self, slab: u64) -> &mut [u8] {
            let p = self
                .page(slab)
                .expect("header of an address outside the memory");
            if self.tags[p] != self.tag && self.preparing != Some(slab) {
                self.bad_reads += 1;
            }
            let len = self.header_bytes;
            if let Some(headers) = &mut self.off_slab {
                return headers.entry(slab).or_insert_with(|| vec![0xee; len]);
            }
            let off = p * PAGE;
            &mut self.bytes[off..off + len]
        }
    }

    impl SlabMemory for TestMem {
        type Pages = usize;
        fn owner(&self, slab: u64) -> Option<u32> {
            self.page(slab).map(|p| self.tags[p])
        }
        fn set_owner(&mut self, slab: u64, owner: u32) -> Option<usize> {
            let p = self.page(slab)?;
            for t in self.tags.iter_mut().skip(p).take(1 << self.order) {
                *t = owner;
            }
            Some(p)
        }
        fn bytes(&mut self, slab: u64, offset: usize, len: usize) -> &mut [u8] {
            let off = (slab as usize - BASE) + offset;
            &mut self.bytes[off..off + len]
        }
    }

    fn set_and_mem(size: usize, debug: bool, keep: u32) -> (SlabSet, TestMem) {
        let layout = if debug {
            SlabLayout::new_debug(size, 8, PAGE, 1)
        } else {
            SlabLayout::new(size, 8, PAGE, 1)
        }
        .unwrap();
        let set = SlabSet::new(layout, 4, keep);
        let mem = TestMem::new(64, &layout, set.tag());
        (set, mem)
    }

    /// Adds a slab the way the module does: color under the lock, prepare outside, add.
    fn grow(set: &mut SlabSet, mem: &mut TestMem, used: &mut HashSet<u64>) -> bool {
        let Some(slab) = mem.new_slab(used) else {
            return false;
        };
        let color = set.next_color();
        let layout = *set.layout();
        mem.preparing = Some(slab);
        SlabSet::prepare(&layout, 4, mem, slab, color, Some(0x5a)).unwrap();
        mem.preparing = None;
        set.add(mem, slab);
        true
    }

    /// A compaction as the module runs it: plan on the partial slabs, then for each source's
    /// live object take a slot in the fullest target, copy, and free the old one (which
    /// releases the emptied source). Rewrites `live` with the new addresses; returns the objects
    /// moved and the slabs released.
    fn compact(set: &mut SlabSet, mem: &mut TestMem, live: &mut [usize]) -> (usize, usize) {
        use super::super::compact::{plan, Role};
        let size = set.layout().object_size();
        let mut slabs = vec![SlabUse::new(0, 0, 0); set.counts().partial() as usize];
        let n = set.partial_slabs(mem, &mut slabs);
        slabs.truncate(n);
        let p = plan(&mut slabs, set.layout().objects(), u64::MAX);
        let targets: Vec<u64> = slabs
            .iter()
            .rev()
            .filter(|s| s.role == Role::Target)
            .map(|s| s.slab)
            .collect();
        let (mut moved, mut released, mut t) = (0, 0, 0);
        for src in slabs
            .iter()
            .filter(|s| s.role == Role::Source)
            .map(|s| s.slab)
        {
            let slab_bytes = set.layout().slab_bytes();
            for obj in live
                .iter_mut()
                .filter(|o| (**o & !(slab_bytes - 1)) as u64 == src)
            {
                let new = loop {
                    match set.take_in(mem, targets[t]) {
                        Some(a) => break a,
                        None => t += 1,
                    }
                };
                let bytes = mem
                    .bytes(set.slab_of(*obj), *obj - set.slab_of(*obj) as usize, size)
                    .to_vec();
                mem.bytes(set.slab_of(new), new - set.slab_of(new) as usize, size)
                    .copy_from_slice(&bytes);
                if set.free(mem, *obj, &mut |_| {}).unwrap().is_some() {
                    released += 1;
                }
                *obj = new;
                moved += 1;
            }
        }
        assert_eq!(moved as u64, p.moves);
        (moved, released)
    }

    #[test]
    fn compaction_empties_the_sparse_slabs_and_keeps_every_byte() {
        let (mut set, mut mem) = set_and_mem(100, false, 0);
        let mut used = HashSet::new();
        let per = set.layout().objects() as usize;
        let mut live = Vec::new();
        for _ in 0..per * 10 {
            live.push(alloc(&mut set, &mut mem, &mut used).unwrap());
        }
        // Keep every 4th object: 10 slabs a quarter full.
        let mut kept = Vec::new();
        for (i, o) in live.into_iter().enumerate() {
            if i % 4 == 0 {
                kept.push(o);
            } else {
                let _ = set.free(&mut mem, o, &mut |_| {}).unwrap();
            }
        }
        for (k, &o) in kept.iter().enumerate() {
            let s = set.slab_of(o);
            mem.bytes(s, o - s as usize, 100).fill(k as u8);
        }
        let before = set.occupancy(&mut mem);
        assert_eq!(before.iter().sum::<u64>(), 10);
        assert_eq!(before[2], 10, "{before:?}");
        let live_n = kept.len();
        let (moved, released) = compact(&mut set, &mut mem, &mut kept);
        let want = live_n.div_ceil(per);
        assert_eq!(set.counts().slabs() as usize, want);
        assert_eq!(released, 10 - want);
        assert!(moved > 0);
        assert_eq!(set.counts().objects_in_use() as usize, live_n);
        for (k, &o) in kept.iter().enumerate() {
            let s = set.slab_of(o);
            assert!(mem
                .bytes(s, o - s as usize, 100)
                .iter()
                .all(|&b| b == k as u8));
        }
        let after = set.occupancy(&mut mem);
        assert_eq!(after.iter().sum::<u64>(), want as u64);
        assert_eq!(mem.bad_reads, 0);
        // Nothing left to do.
        assert_eq!(compact(&mut set, &mut mem, &mut kept), (0, 0));
    }

    #[test]
    fn take_in_refuses_full_and_foreign_slabs() {
        let (mut set, mut mem) = set_and_mem(512, false, 4);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let slab = set.slab_of(a);
        let per = set.layout().objects() as usize;
        for _ in 1..per {
            assert!(set.take_in(&mut mem, slab).is_some());
        }
        assert_eq!(set.take_in(&mut mem, slab), None);
        assert_eq!(set.counts().full(), 1);
        // A slab-aligned address no slab of this set is at.
        assert_eq!(
            set.take_in(&mut mem, slab + set.layout().slab_bytes() as u64 * 4),
            None
        );
        assert_eq!(mem.bad_reads, 0);
    }

    #[test]
    fn slabs_in_lists_the_partial_and_full_slabs_of_a_range() {
        let (mut set, mut mem) = set_and_mem(512, false, 4);
        let mut used = HashSet::new();
        let per = set.layout().objects() as usize;
        // Three slabs: the first full, the second partial, the third empty.
        let mut objs = Vec::new();
        for _ in 0..per + 1 {
            objs.push(alloc(&mut set, &mut mem, &mut used).unwrap());
        }
        assert!(grow(&mut set, &mut mem, &mut used));
        let full = set.slab_of(objs[0]);
        let partial = set.slab_of(objs[per]);
        assert_ne!(full, partial);
        let mut out = [SlabUse::new(0, 0, 0); 4];
        let n = set.slabs_in(&mut mem, 0, u64::MAX, &mut out);
        let mut got: Vec<(u64, u32)> = out[..n].iter().map(|s| (s.slab, s.in_use)).collect();
        got.sort();
        let mut want = vec![(full, per as u32), (partial, 1)];
        want.sort();
        assert_eq!(got, want, "empty slabs are not listed");
        // A range holding only the partial one.
        let n = set.slabs_in(&mut mem, partial, partial + 1, &mut out);
        assert_eq!((n, out[0].slab, out[0].in_use), (1, partial, 1));
        // Room for fewer than there are: only that many.
        assert_eq!(set.slabs_in(&mut mem, 0, u64::MAX, &mut out[..1]), 1);
    }

    fn alloc(set: &mut SlabSet, mem: &mut TestMem, used: &mut HashSet<u64>) -> Option<usize> {
        loop {
            let mut one = [0usize];
            if set.take(mem, &mut one) == 1 {
                return Some(one[0]);
            }
            if !grow(set, mem, used) {
                return None;
            }
        }
    }

    fn no_repair(r: Repaired) {
        panic!("unexpected repair {r:?}")
    }

    /// The cache's lists as [`SlabSet::slabs`] shows them: (list, slab, in use) in its order.
    fn lists(set: &SlabSet, mem: &mut TestMem) -> Vec<(SlabList, u64, u32)> {
        let mut v = Vec::new();
        set.slabs(mem, |l, s, n| v.push((l, s, n)));
        v
    }

    #[test]
    fn slabs_walks_full_partial_empty_front_to_back() {
        use SlabList::{Empty, Full, Partial};
        let (mut set, mut mem) = set_and_mem(512, false, 2);
        let mut used = HashSet::new();
        let per = set.layout().objects() as usize;
        assert!(per >= 3);
        assert_eq!(lists(&set, &mut mem), []);
        // Three full slabs a, b, c (each new one in front of the last), then d with one object.
        let objs: Vec<usize> = (0..3 * per + 1)
            .map(|_| alloc(&mut set, &mut mem, &mut used).unwrap())
            .collect();
        let slab = |i: usize| set.slab_of(objs[i]);
        let (a, b, c, d) = (slab(0), slab(per), slab(2 * per), slab(3 * per));
        let p = per as u32;
        assert_eq!(
            lists(&set, &mut mem),
            [(Full, c, p), (Full, b, p), (Full, a, p), (Partial, d, 1)]
        );
        // One object of b freed: b moves to the front of the partial list.
        set.free(&mut mem, objs[per], &mut no_repair).unwrap();
        assert_eq!(
            lists(&set, &mut mem),
            [
                (Full, c, p),
                (Full, a, p),
                (Partial, b, p - 1),
                (Partial, d, 1)
            ]
        );
        // d emptied, then a: the empty list front to back is a, d.
        set.free(&mut mem, objs[3 * per], &mut no_repair).unwrap();
        for o in &objs[..per] {
            set.free(&mut mem, *o, &mut no_repair).unwrap();
        }
        assert_eq!(
            lists(&set, &mut mem),
            [
                (Full, c, p),
                (Partial, b, p - 1),
                (Empty, a, 0),
                (Empty, d, 0)
            ]
        );
        // The next allocation takes from the partial slab b, not an empty one.
        let o = alloc(&mut set, &mut mem, &mut used).unwrap();
        assert_eq!(set.slab_of(o), b);
        assert_eq!(lists(&set, &mut mem)[..2], [(Full, b, p), (Full, c, p)]);
        // Counts and the walk agree; nothing read outside the set's slabs.
        let c = *set.counts();
        assert_eq!(lists(&set, &mut mem).len() as u64, c.slabs());
        assert_eq!(mem.bad_reads, 0);
    }

    #[test]
    fn inspect_reads_index_offset_and_bitmap() {
        let (mut set, mut mem) = set_and_mem(64, false, 8);
        let mut used = HashSet::new();
        let objs: Vec<usize> = (0..5)
            .map(|_| alloc(&mut set, &mut mem, &mut used).unwrap())
            .collect();
        set.free(&mut mem, objs[2], &mut no_repair).unwrap();
        let v = set.inspect(&mut mem, objs[3]).unwrap();
        let layout = *set.layout();
        assert_eq!(v.index, 3);
        assert_eq!(v.slab, set.slab_of(objs[3]));
        assert_eq!(
            Some(v.offset),
            layout.object_offset(v.color, 3),
            "offset of object 3"
        );
        assert_eq!(v.in_use, 4);
        assert_eq!(v.bitmap[0], 0b11011);
        assert!(v.bitmap[1..].iter().all(|w| *w == 0));
        // A free object is still an object slot; an interior byte and foreign memory are not.
        assert_eq!(set.inspect(&mut mem, objs[2]).unwrap().index, 2);
        assert_eq!(set.inspect(&mut mem, objs[3] + 1), None);
        assert_eq!(set.inspect(&mut mem, BASE + 40 * PAGE + 64), None);
        assert_eq!(mem.bad_reads, 0);
    }

    #[test]
    fn take_prefers_partial_slabs_then_empty_ones() {
        let (mut set, mut mem) = set_and_mem(64, false, 8);
        let mut used = HashSet::new();
        assert!(grow(&mut set, &mut mem, &mut used));
        assert!(grow(&mut set, &mut mem, &mut used));
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let b = alloc(&mut set, &mut mem, &mut used).unwrap();
        assert_eq!(
            set.slab_of(a),
            set.slab_of(b),
            "second object from the partial slab"
        );
        assert_eq!((set.counts().partial(), set.counts().empty()), (1, 1));
        assert_eq!(set.counts().objects_in_use(), 2);
    }

    #[test]
    fn take_fills_a_batch_across_slabs_and_moves_full_slabs() {
        let (mut set, mut mem) = set_and_mem(512, false, 8);
        let mut used = HashSet::new();
        let per = set.layout().objects() as usize;
        for _ in 0..3 {
            assert!(grow(&mut set, &mut mem, &mut used));
        }
        let mut out = vec![0usize; per * 2 + 1];
        assert_eq!(set.take(&mut mem, &mut out), per * 2 + 1);
        let distinct: HashSet<_> = out.iter().collect();
        assert_eq!(distinct.len(), out.len(), "every object handed out once");
        let c = set.counts();
        assert_eq!((c.full(), c.partial(), c.empty()), (2, 1, 0));
        let mut more = vec![0usize; per * 2];
        assert_eq!(set.take(&mut mem, &mut more), per - 1, "never adds a slab");
    }

    #[test]
    fn is_object_knows_object_starts_of_this_cache_only() {
        let (mut set, mut mem) = set_and_mem(64, false, 8);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let b = alloc(&mut set, &mut mem, &mut used).unwrap();
        assert!(set.is_object(&mut mem, a) && set.is_object(&mut mem, b));
        assert!(!set.is_object(&mut mem, a + 1), "an interior pointer");
        if !set.layout().off_slab() {
            assert!(
                !set.is_object(&mut mem, set.slab_of(a) as usize),
                "the header"
            );
        }
        assert!(
            !set.is_object(
                &mut mem,
                a + set.layout().stride() * set.layout().objects() as usize
            ),
            "past the last object"
        );
        let other = (BASE + 40 * PAGE) as u64;
        assert!(
            !set.is_object(&mut mem, other as usize + 64),
            "untagged memory"
        );
        mem.set_owner(other, 99);
        assert!(
            !set.is_object(&mut mem, other as usize + 64),
            "another cache's slab"
        );
        // Free objects are objects too (a KASAN build poisons the slot of any valid free).
        let mut r = no_repair;
        assert_eq!(set.free(&mut mem, a, &mut r), Ok(None));
        assert!(set.is_object(&mut mem, a));
        assert_eq!(mem.bad_reads, 0, "no memory of another owner was read");
    }

    #[test]
    fn free_refuses_foreign_other_cache_double_and_interior_pointers() {
        let (mut set, mut mem) = set_and_mem(64, false, 8);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let before = set.counts().objects_in_use();
        let mut r = no_repair;
        assert_eq!(set.free(&mut mem, 0x10, &mut r), Err(FreeError::Foreign));
        // A page no cache owns, and a page another cache owns.
        let other = (BASE + 40 * PAGE) as u64;
        assert_eq!(
            set.free(&mut mem, other as usize + 64, &mut r),
            Err(FreeError::NotAnObject)
        );
        mem.set_owner(other, 99);
        assert_eq!(
            set.free(&mut mem, other as usize + 64, &mut r),
            Err(FreeError::NotAnObject)
        );
        assert_eq!(
            set.free(&mut mem, a + 1, &mut r),
            Err(FreeError::NotAnObject)
        );
        assert_eq!(
            set.counts().objects_in_use(),
            before,
            "refusals change nothing"
        );
        assert_eq!(mem.bad_reads, 0, "no memory of another owner was read");
        assert_eq!(set.free(&mut mem, a, &mut r), Ok(None));
        assert!(matches!(
            set.free(&mut mem, a, &mut r),
            Err(FreeError::DoubleFree { .. })
        ));
    }

    #[test]
    fn a_released_slab_is_untagged_so_a_stale_free_into_it_reads_nothing() {
        // keep_empty 0: the slab goes back as soon as it empties.
        let (mut set, mut mem) = set_and_mem(64, false, 0);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let mut r = no_repair;
        let released = set.free(&mut mem, a, &mut r).unwrap();
        let page = released.expect("the emptied slab is released");
        assert_eq!(
            mem.tags[page], 0,
            "untagged before the caller drops its lock"
        );
        assert_eq!(set.counts().slabs(), 0);
        // The pages now belong to someone else (say another cache); a stale free is refused
        // from the tag alone.
        mem.set_owner(set.slab_of(a), 77);
        mem.tag = 77;
        assert_eq!(set.free(&mut mem, a, &mut r), Err(FreeError::NotAnObject));
        assert_eq!(mem.bad_reads, 0);
    }

    #[test]
    fn free_batch_releases_what_empties_and_reports_each_refusal() {
        let (mut set, mut mem) = set_and_mem(256, false, 1);
        let mut used = HashSet::new();
        let per = set.layout().objects() as usize;
        let objs: Vec<usize> = (0..per * 3)
            .map(|_| alloc(&mut set, &mut mem, &mut used).unwrap())
            .collect();
        assert_eq!(set.counts().full(), 3);
        let mut batch = objs.clone();
        batch.insert(5, objs[0]); // freed twice in the batch
        batch.push(0x10); // foreign
        let mut release = [None; 4];
        let mut refusals = Vec::new();
        let n = set.free_batch(
            &mut mem,
            &batch,
            &mut release,
            &mut |o, e| refusals.push((o, e)),
            &mut no_repair,
        );
        assert_eq!(n, 2, "three slabs empty, one is kept");
        assert_eq!(refusals.len(), 2);
        assert!(matches!(refusals[0].1, FreeError::DoubleFree { .. }));
        assert_eq!(refusals[1], (0x10, FreeError::Foreign));
        let c = set.counts();
        assert_eq!((c.slabs(), c.empty(), c.objects_in_use()), (1, 1, 0));
    }

    #[test]
    fn pop_empty_and_for_each_empty_see_exactly_the_empty_slabs() {
        let (mut set, mut mem) = set_and_mem(128, false, 8);
        let mut used = HashSet::new();
        for _ in 0..3 {
            assert!(grow(&mut set, &mut mem, &mut used));
        }
        let _a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let mut seen = 0;
        set.for_each_empty(&mut mem, |_| seen += 1);
        assert_eq!(seen, 2);
        let mut pages = Vec::new();
        while let Some(p) = set.pop_empty(&mut mem) {
            pages.push(p.unwrap());
        }
        assert_eq!(pages.len(), 2);
        assert!(pages.iter().all(|&p| mem.tags[p] == 0));
        assert_eq!((set.counts().empty(), set.counts().partial()), (0, 1));
        assert!(set.pop_any(&mut mem, SlabList::Partial).is_some());
        assert!(set.pop_any(&mut mem, SlabList::Partial).is_none());
    }

    #[test]
    fn constructor_fills_new_and_allocated_objects() {
        let (mut set, mut mem) = set_and_mem(48, false, 8);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let layout = *set.layout();
        let slab = set.slab_of(a);
        let off = a - slab as usize;
        assert!(
            mem.bytes(slab, off, 48).iter().all(|&b| b == 0x5a),
            "prepared with ctor"
        );
        mem.bytes(slab, off, 48).fill(1);
        assert_eq!(on_alloc(&layout, &mut mem, a, 0, Some(0x33)), None);
        assert!(mem.bytes(slab, off, 48).iter().all(|&b| b == 0x33));
    }

    #[test]
    fn debug_free_repairs_a_red_zone_and_says_so_and_alloc_records_the_site() {
        let (mut set, mut mem) = set_and_mem(40, true, 8);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let layout = *set.layout();
        assert_eq!(on_alloc(&layout, &mut mem, a, 0xabc, None), None);
        let slab = set.slab_of(a);
        let slot_off = a - slab as usize - layout.object_in_slot();
        assert_eq!(
            layout.debug_call_site(mem.bytes(slab, slot_off, layout.stride())),
            Some(0xabc)
        );
        // Write one byte past the object: the right red zone.
        let off = a - slab as usize + 40;
        mem.bytes(slab, off, 1)[0] = 0;
        let mut seen = Vec::new();
        assert_eq!(set.free(&mut mem, a, &mut |r| seen.push(r)), Ok(None));
        assert_eq!(seen.len(), 1);
        // Repaired: the next allocation of the slot finds it intact.
        let b = alloc(&mut set, &mut mem, &mut used).unwrap();
        assert_eq!(b, a);
        assert_eq!(on_alloc(&layout, &mut mem, b, 1, None), None);
    }

    #[test]
    fn debug_alloc_finds_a_write_after_free() {
        let (mut set, mut mem) = set_and_mem(40, true, 8);
        let mut used = HashSet::new();
        let a = alloc(&mut set, &mut mem, &mut used).unwrap();
        let layout = *set.layout();
        assert_eq!(on_alloc(&layout, &mut mem, a, 1, None), None);
        assert_eq!(set.free(&mut mem, a, &mut no_repair), Ok(None));
        let slab = set.slab_of(a);
        mem.bytes(slab, a - slab as usize, 1)[0] = 7;
        let b = alloc(&mut set, &mut mem, &mut used).unwrap();
        assert_eq!(b, a);
        assert!(on_alloc(&layout, &mut mem, b, 2, None).is_some());
        assert_eq!(on_alloc(&layout, &mut mem, b, 2, None), None, "repaired");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc,
        Take(usize),
        Free(usize),
        FreeBatch(usize),
        DoubleFree(usize),
        Stray(usize),
        PopEmpty,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                4 => Just(Op::Alloc),
                1 => (1usize..40).prop_map(Op::Take),
                3 => any::<usize>().prop_map(Op::Free),
                1 => (1usize..40).prop_map(Op::FreeBatch),
                1 => any::<usize>().prop_map(Op::DoubleFree),
                1 => any::<usize>().prop_map(Op::Stray),
                1 => Just(Op::PopEmpty),
            ],
            1..300,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against a model (the set of live objects): every object handed out once and inside
        /// a slab the set owns; counts, lists and tags agree with the model after every step;
        /// refused frees change nothing; released pages are untagged; no header of a page the
        /// set does not own is ever read.
        #[test]
        fn slab_set_matches_a_model(
            size in prop::sample::select(vec![8usize, 24, 40, 64, 100, 256, 700, 2000]),
            keep in 0u32..3,
            ops in ops(),
        ) {
            let (mut set, mut mem) = set_and_mem(size, false, keep);
            let mut used = HashSet::new();
            let mut live: Vec<usize> = Vec::new();
            let mut freed: Vec<usize> = Vec::new();
            let mut r = no_repair;
            let give_back = |mem: &TestMem, used: &mut HashSet<u64>, page: usize| {
                assert_eq!(mem.tags[page], 0, "released pages are untagged");
                assert!(used.remove(&((BASE + page * PAGE) as u64)));
            };
            for op in ops {
                match op {
                    Op::Alloc => {
                        if let Some(o) = alloc(&mut set, &mut mem, &mut used) {
                            live.push(o);
                        }
                    }
                    Op::Take(n) => {
                        let mut out = vec![0usize; n];
                        let got = set.take(&mut mem, &mut out);
                        live.extend_from_slice(&out[..got]);
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let o = live.swap_remove(i % live.len());
                        if let Some(p) = set.free(&mut mem, o, &mut r).unwrap() {
                            give_back(&mem, &mut used, p);
                        }
                        freed.push(o);
                    }
                    Op::FreeBatch(n) => {
                        let n = n.min(live.len());
                        let batch: Vec<usize> = live.drain(..n).collect();
                        let mut release = [None; 64];
                        let k = set.free_batch(&mut mem, &batch, &mut release,
                            &mut |o, e| panic!("refused {o:#x}: {e:?}"), &mut r);
                        for p in release[..k].iter().flatten() {
                            give_back(&mem, &mut used, *p);
                        }
                        freed.extend(batch);
                    }
                    Op::DoubleFree(i) if !freed.is_empty() => {
                        let o = freed[i % freed.len()];
                        if !live.contains(&o) {
                            let before = *set.counts();
                            prop_assert!(set.free(&mut mem, o, &mut r).is_err());
                            prop_assert_eq!(*set.counts(), before);
                        }
                    }
                    Op::Stray(x) => {
                        // Any address at all, inside the memory or not.
                        let o = BASE - PAGE + x % (66 * PAGE);
                        if !live.contains(&o) {
                            let before = *set.counts();
                            prop_assert!(set.free(&mut mem, o, &mut r).is_err());
                            prop_assert_eq!(*set.counts(), before);
                        }
                    }
                    Op::PopEmpty => {
                        if let Some(p) = set.pop_empty(&mut mem) {
                            give_back(&mem, &mut used, p.unwrap());
                        }
                    }
                    _ => {}
                }
                let distinct: HashSet<_> = live.iter().collect();
                prop_assert_eq!(distinct.len(), live.len());
                for o in &live {
                    prop_assert_eq!(mem.owner(set.slab_of(*o)), Some(set.tag()));
                }
                let c = *set.counts();
                prop_assert_eq!(c.objects_in_use(), live.len() as u64);
                prop_assert_eq!(c.slabs() as usize, used.len());
                // Empty slabs beyond `keep` go back as they empty; only a new slab can be one more.
                prop_assert!(c.empty() <= u64::from(keep.max(1)));
                let mut empties = 0;
                set.for_each_empty(&mut mem, |_| empties += 1);
                prop_assert_eq!(empties, c.empty());
                // The three lists as RKMEM_IOC_CACHE_SLABS reads them: every slab once, on the
                // list its in-use count gives, the lists in order, the counts per list.
                let walked = lists(&set, &mut mem);
                let objects = set.layout().objects();
                let mut per_list = [0u64; 3];
                let mut last = 0;
                for (l, slab, n) in &walked {
                    prop_assert_eq!(*l, SlabList::of(*n, objects));
                    let rank = match l {
                        SlabList::Full => 0,
                        SlabList::Partial => 1,
                        SlabList::Empty => 2,
                    };
                    prop_assert!(rank >= last, "lists out of order: {:?}", walked);
                    last = rank;
                    per_list[rank] += 1;
                    prop_assert!(used.contains(slab));
                }
                let distinct: HashSet<_> = walked.iter().map(|w| w.1).collect();
                prop_assert_eq!(distinct.len(), used.len());
                prop_assert_eq!(per_list, [c.full(), c.partial(), c.empty()]);
                prop_assert_eq!(walked.iter().map(|w| u64::from(w.2)).sum::<u64>(), live.len() as u64);
                prop_assert_eq!(mem.bad_reads, 0);
            }
        }
    }

    /// A front over plain vectors: this CPU's array (capacity `cap`), a depot of at most
    /// `depot_max` batches, and slabs as a pool of free objects; with a log of the calls.
    struct TestFront {
        cpu: core::cell::RefCell<Vec<usize>>,
        cap: usize,
        depot: core::cell::RefCell<Vec<Vec<usize>>>,
        depot_max: usize,
        slabs: core::cell::RefCell<Vec<usize>>,
        log: core::cell::RefCell<Vec<&'static str>>,
    }

    impl TestFront {
        fn new(cap: usize, depot_max: usize, slab_objs: usize) -> TestFront {
            TestFront {
                cpu: Default::default(),
                cap,
                depot: Default::default(),
                depot_max,
                slabs: core::cell::RefCell::new((1..=slab_objs).map(|i| i * 64).collect()),
                log: Default::default(),
            }
        }
        fn total(&self) -> usize {
            self.cpu.borrow().len()
                + self.depot.borrow().iter().map(Vec::len).sum::<usize>()
                + self.slabs.borrow().len()
        }
    }

    impl Front for TestFront {
        type Error = ();
        fn depot_take(&self, out: &mut [usize]) -> usize {
            self.log.borrow_mut().push("depot_take");
            match self.depot.borrow_mut().pop() {
                Some(b) => {
                    assert_eq!(b.len(), out.len(), "the depot moves whole batches");
                    out.copy_from_slice(&b);
                    b.len()
                }
                None => 0,
            }
        }
        fn depot_put(&self, objs: &[usize]) -> bool {
            self.log.borrow_mut().push("depot_put");
            let mut d = self.depot.borrow_mut();
            if d.len() == self.depot_max {
                return false;
            }
            d.push(objs.to_vec());
            true
        }
        fn slabs_take(&self, out: &mut [usize]) -> usize {
            self.log.borrow_mut().push("slabs_take");
            let mut s = self.slabs.borrow_mut();
            let n = out.len().min(s.len());
            for o in out.iter_mut().take(n) {
                *o = s.pop().unwrap();
            }
            n
        }
        fn slabs_free(&self, objs: &[usize]) {
            self.log.borrow_mut().push("slabs_free");
            self.slabs.borrow_mut().extend_from_slice(objs);
        }
        fn slab_free(&self, obj: usize) -> Result<(), ()> {
            self.log.borrow_mut().push("slab_free");
            self.slabs.borrow_mut().push(obj);
            Ok(())
        }
        fn cpu_refill(&self, objs: &[usize]) -> usize {
            let mut c = self.cpu.borrow_mut();
            let n = objs.len().min(self.cap - c.len());
            c.extend_from_slice(&objs[..n]);
            n
        }
        fn cpu_drain(&self, out: &mut [usize]) -> usize {
            let mut c = self.cpu.borrow_mut();
            let n = out.len().min(c.len());
            for (o, x) in out.iter_mut().zip(c.drain(..n)) {
                *o = x;
            }
            n
        }
        fn cpu_push(&self, obj: usize) -> bool {
            let mut c = self.cpu.borrow_mut();
            if c.len() == self.cap {
                return false;
            }
            c.push(obj);
            true
        }
    }

    #[test]
    fn refill_prefers_the_depot_then_the_slabs_and_keeps_one_for_the_caller() {
        let f = TestFront::new(64, 4, 100);
        f.depot.borrow_mut().push((1000..1008).collect());
        assert_eq!(refill(&f, 8), Some(1007));
        assert_eq!(*f.cpu.borrow(), (1000..1007).collect::<Vec<_>>());
        assert_eq!(*f.log.borrow(), ["depot_take"], "the slabs untouched");
        f.cpu.borrow_mut().clear();
        f.log.borrow_mut().clear();
        assert!(refill(&f, 8).is_some());
        assert_eq!(*f.log.borrow(), ["depot_take", "slabs_take"]);
        assert_eq!(f.cpu.borrow().len(), 7);
    }

    #[test]
    fn refill_returns_what_the_array_cannot_hold_and_none_when_all_is_empty() {
        let f = TestFront::new(3, 4, 100);
        let before = f.total();
        let got = refill(&f, 8).unwrap();
        assert_eq!(f.cpu.borrow().len(), 3);
        assert!(
            f.log.borrow().contains(&"slabs_free"),
            "4 objects back to the slabs"
        );
        assert_eq!(
            f.total() + 1,
            before,
            "one object for the caller, none lost"
        );
        assert!(!f.cpu.borrow().contains(&got) && !f.slabs.borrow().contains(&got));
        let empty = TestFront::new(8, 4, 0);
        assert_eq!(refill(&empty, 8), None);
    }

    #[test]
    fn overflow_moves_the_oldest_batch_to_the_depot_or_else_the_slabs() {
        let f = TestFront::new(8, 1, 0);
        f.cpu.borrow_mut().extend(1..=8);
        overflow(&f, 99, 4).unwrap();
        assert_eq!(
            *f.depot.borrow(),
            [vec![1, 2, 3, 4]],
            "the oldest four, as a batch"
        );
        assert_eq!(*f.cpu.borrow(), [5, 6, 7, 8, 99]);
        // The depot is full now: the next batch goes to the slabs.
        f.cpu.borrow_mut().extend([10, 11, 12]);
        overflow(&f, 100, 4).unwrap();
        assert_eq!(*f.slabs.borrow(), [5, 6, 7, 8]);
        assert_eq!(*f.cpu.borrow(), [99, 10, 11, 12, 100]);
    }

    #[test]
    fn overflow_frees_to_the_slab_when_the_array_still_has_no_room() {
        // An array of capacity 0 (a cache whose limit is 0): every free goes to its slab.
        let f = TestFront::new(0, 1, 0);
        overflow(&f, 7, 4).unwrap();
        assert_eq!(*f.slabs.borrow(), [7]);
        assert_eq!(f.log.borrow().last(), Some(&"slab_free"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of per-CPU allocations and frees through the front loses and duplicates
        /// nothing: every object is in exactly one place (caller, array, depot, slabs).
        #[test]
        fn the_front_conserves_objects(
            (cap, batch) in (1usize..70).prop_flat_map(|cap| (Just(cap), 1..=cap.min(MAX_BATCH))),
            depot_max in 0usize..4,
            ops in prop::collection::vec(any::<bool>(), 1..400),
        ) {
            let f = TestFront::new(cap, depot_max, 150);
            let mut held: Vec<usize> = Vec::new();
            for alloc_op in ops {
                if alloc_op {
                    let got = f.cpu.borrow_mut().pop();
                    let got = got.or_else(|| refill(&f, batch));
                    if let Some(o) = got {
                        held.push(o);
                    }
                } else if let Some(o) = held.pop() {
                    if !f.cpu_push(o) {
                        overflow(&f, o, batch).unwrap();
                    }
                }
                let mut all: Vec<usize> = held.clone();
                all.extend(f.cpu.borrow().iter());
                all.extend(f.depot.borrow().iter().flatten());
                all.extend(f.slabs.borrow().iter());
                all.sort_unstable();
                let want: Vec<usize> = (1..=150).map(|i| i * 64).collect();
                prop_assert_eq!(all, want);
                prop_assert!(f.cpu.borrow().len() <= cap);
            }
        }
    }
}
