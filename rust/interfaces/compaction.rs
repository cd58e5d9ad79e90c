// SPDX-License-Identifier: GPL-2.0

//! Compaction through handles: the runs that move live allocations named by the open files'
//! handles, whoever starts them (`RKMEM_IOC_COMPACT`, `/proc/rkmem/compact`, the shrinker, the
//! proactive check). The decisions are `rkcore::compact`'s; the moves are the allocators'
//! (`Cache::compact`, `Cache::evacuate`, `Arena::alloc_like`); this file walks the handles.
//!
//! # Arena compaction
//!
//! The host gets memory back from rkmem only as whole 4 MiB slots, so arena compaction
//! *evacuates slots*, the way memory offlining empties a memory block: the plan
//! (`rkcore::compact::plan_slots`) picks the least-used slots that hold no pinned page; each is
//! isolated in the buddy allocator (nothing allocates from it, frees into it stay off the free
//! lists); then, file by file under that file's handle lock, every page allocation the file
//! holds in the slot is copied to a block elsewhere and its handle re-pointed, and every slab
//! object it holds there moves to a slab outside (`Cache::evacuate`). A slot left wholly free
//! goes back to the host (or stays as one free 4 MiB block at the arena's minimum); otherwise
//! it is un-isolated and counted as failed. The reverse map is the owner side's: the handles
//! say what each file holds, the page tags which cache a slab page belongs to. Pinned pages
//! (mempool elements, the module's own allocations, benchmark or selftest temporaries) are
//! those no handle names: their slots are never sources.
//!
//! # Locking
//!
//! `Shared::compact_lock` (mutex) serialises runs; under it, one file's handle lock at a time
//! (never two), and under that the allocators' own locks. The list of open files is copied
//! under its mutex and not held while a file is locked. The shrinker only try-locks (reclaim
//! may run inside a task that holds a file's handle lock while it allocates).

use super::dev::{FileHandles, Handles};
use crate::arena::{Arena, PAGE_SIZE, SLOT_PAGES};
use crate::rkcore::compact::{
    check_proactiveness, fragmentation_score, plan_slots, proactive_due, slots_to_gain, SlotUse,
    PROACTIVENESS_DEFAULT,
};
use crate::slab::{Cache, Compacted};
use crate::stats::{inc, COMPACTION};
use crate::trace;
use crate::uapi::{self, RkmemCompact};
use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

/// Who started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `RKMEM_IOC_COMPACT`.
    Ioctl,
    /// A write to `/proc/rkmem/compact`.
    Proc,
    /// The shrinker, asked for memory with no wholly free block to give.
    Shrinker,
    /// Fragmentation crossed the `compaction_proactiveness` threshold.
    Proactive,
}

/// How much a run may do, and how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Allocations of targets may sleep (not from reclaim).
    pub(crate) may_sleep: bool,
    /// Only try-locks (reclaim): a busy lock skips that part.
    pub(crate) try_only: bool,
    /// At most this many pages of arena allocations are planned to move.
    pub(crate) max_pages: u64,
}

impl Limits {
    /// No bound: what a user asked for.
    pub(crate) const ALL: Limits = Limits {
        may_sleep: true,
        try_only: false,
        max_pages: u64::MAX,
    };
}

/// Lets other tasks run between two parts of a run that may sleep (a run can move hundreds of
/// megabytes; on a kernel without preemption, such as UML, it would otherwise hold its CPU
/// until the soft-lockup and RCU-stall detectors report it).
fn yield_cpu(lim: &Limits) {
    if lim.may_sleep {
        // SAFETY: process context (a run that may sleep), no spinlock held.
        let _ = unsafe { crate::ffi::rkmem_bench_resched() };
    }
}

fn lock<'a>(f: &'a FileHandles, try_only: bool) -> Option<kernel::sync::MutexGuard<'a, Handles>> {
    crate::arena::acquire(&f.table, try_only)
}

/// The open files, copied (the list's lock is not held while a file is locked).
fn open_files(shared: &crate::Shared, try_only: bool) -> Result<KVec<Arc<FileHandles>>> {
    let files = crate::arena::acquire(&shared.files, try_only).ok_or(EBUSY)?;
    let mut v = KVec::with_capacity(files.len(), GFP_KERNEL)?;
    for f in files.iter() {
        v.push(f.clone(), GFP_KERNEL)?;
    }
    Ok(v)
}

/// Every cache whose slabs compaction may move objects out of: the size classes and the user
/// caches.
fn all_caches(shared: &crate::Shared, try_only: bool) -> Result<KVec<Arc<Cache>>> {
    let mut v = KVec::new();
    for i in 0.. {
        let Some(c) = shared.classes.get_arc(i) else {
            break;
        };
        v.push(c, GFP_KERNEL)?;
    }
    if let Some(reg) = crate::arena::acquire(&shared.caches, try_only) {
        for c in reg.iter() {
            v.push(c.clone(), GFP_KERNEL)?;
        }
    }
    Ok(v)
}

fn add(out: &mut RkmemCompact, o: &Compacted) {
    out.objects_moved += o.moved;
    out.slabs_freed += o.slabs_freed;
    out.pages_freed += o.pages_freed;
    out.pinned_skips += o.pinned_skips;
}

/// Slab compaction of the caches of file `f` and of the size classes, moving the objects
/// `f`'s handles name (objects of the classes that other files hold are pinned for this run).
pub(super) fn compact_file_slabs(
    shared: &crate::Shared,
    f: &FileHandles,
    lim: &Limits,
    out: &mut RkmemCompact,
) -> Result {
    let mut caches = all_caches(shared, lim.try_only)?;
    // The size classes (owner 0) and this file's caches.
    caches.retain(|c| c.owner == f.id || c.owner == 0);
    let arena = &*shared.arena;
    // Held for the whole run: no read, write or free of this file's handles meanwhile.
    let Some(mut h) = lock(f, lim.try_only) else {
        return Ok(());
    };
    for c in caches.iter() {
        yield_cpu(lim);
        let mut o = Compacted::default();
        c.compact(
            &mut |g| {
                for a in h.tree.values_mut() {
                    a.visit_object(c, arena, g);
                }
            },
            &mut o,
        )?;
        add(out, &o);
        out.caches += 1;
    }
    Ok(())
}

/// Per cache and slot: objects in use and pages of the slabs holding them.
struct SlabsBySlot {
    nr_slots: usize,
    in_use: KVec<u32>,
    pages: KVec<u32>,
    named: KVec<u32>,
}

impl SlabsBySlot {
    fn new(arena: &Arena, caches: &[Arc<Cache>]) -> Result<SlabsBySlot> {
        let nr_slots = arena.nr_slots();
        let n = nr_slots * caches.len();
        let zeroes = || -> Result<KVec<u32>> {
            let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
            v.extend_with(n, 0, GFP_KERNEL)?;
            Ok(v)
        };
        let mut t = SlabsBySlot {
            nr_slots,
            in_use: zeroes()?,
            pages: zeroes()?,
            named: zeroes()?,
        };
        for (ci, c) in caches.iter().enumerate() {
            let pages = c.layout.pages() as u32;
            for s in c.slabs_in(0, u64::MAX)?.iter() {
                if let Some(i) = arena
                    .slot_of_addr(s.slab as usize)
                    .map(|s| ci * nr_slots + s)
                {
                    t.in_use[i] += s.in_use;
                    t.pages[i] += pages;
                }
            }
        }
        Ok(t)
    }
}

/// What to evacuate: the plan over the present slots, from every open file's handles.
fn plan(
    shared: &crate::Shared,
    files: &[Arc<FileHandles>],
    caches: &[Arc<Cache>],
    lim: &Limits,
) -> Result<(KVec<SlotUse>, SlabsBySlot)> {
    let arena = &*shared.arena;
    let mut t = SlabsBySlot::new(arena, caches)?;
    let used = arena.used_by_slot()?;
    let mut movable = KVec::with_capacity(used.len(), GFP_KERNEL)?;
    movable.extend_with(used.len(), 0usize, GFP_KERNEL)?;
    for f in files {
        // A busy file (reclaim) holds what it holds: its pages count as pinned.
        let Some(mut h) = lock(f, lim.try_only) else {
            continue;
        };
        for a in h.tree.values_mut() {
            if let Some(p) = a.pages_mut() {
                if let Some(m) = movable.get_mut(p.first() / SLOT_PAGES) {
                    *m += p.npages();
                }
            } else if let Some(addr) = a.object_addr() {
                // SAFETY: the object is allocated (the handle owns it) and lies in its slab.
                let tag = unsafe { arena.tag_of_handed_out(addr) };
                let ci = caches.iter().position(|c| c.id + 1 == tag);
                if let (Some(ci), Some(s)) = (ci, arena.slot_of_addr(addr)) {
                    t.named[ci * t.nr_slots + s] += 1;
                }
            }
        }
    }
    // A cache's slabs in a slot may move if a handle names every object in them.
    for i in 0..t.in_use.len() {
        if t.in_use[i] > 0 && t.named[i] == t.in_use[i] {
            movable[i % t.nr_slots] += t.pages[i] as usize;
        }
    }
    let mut slots = KVec::new();
    for (s, u) in used.iter().enumerate() {
        if let Some(u) = *u {
            slots.push(SlotUse::new(s, u, movable[s]), GFP_KERNEL)?;
        }
    }
    Ok((slots, t))
}

/// Moves every page allocation file `h` holds in slot `slot` to a block outside it. Returns
/// `false` if it had to stop (no room elsewhere, or a block from inside came back).
fn move_pages(
    arena: &Arena,
    h: &mut Handles,
    slot: usize,
    lim: &Limits,
    out: &mut RkmemCompact,
) -> bool {
    for a in h.tree.values_mut() {
        let Some(p) = a.pages_mut() else {
            continue;
        };
        if p.first() / SLOT_PAGES != slot {
            continue;
        }
        let Ok(new) = arena.alloc_like(p, lim.may_sleep) else {
            return false;
        };
        if new.first() / SLOT_PAGES == slot {
            // From a per-CPU cache (freed there before the slot was isolated).
            let _ = arena.free(new);
            return false;
        }
        // SAFETY: both blocks are `npages` pages of the arena's direct-mapped memory: the old
        // one is this handle's (its file's lock is held, so nothing reads or writes it
        // meanwhile), the new one was just allocated for this move; distinct blocks.
        unsafe {
            core::ptr::copy_nonoverlapping(
                arena.addr_of(p.first()) as *const u8,
                arena.addr_of(new.first()) as *mut u8,
                p.npages() * PAGE_SIZE,
            )
        };
        out.pages_moved += p.npages() as u64;
        trace::compact_move(
            arena.addr_of(p.first()),
            arena.addr_of(new.first()),
            p.npages() * PAGE_SIZE,
            p.npages(),
        );
        let old = core::mem::replace(p, new);
        let _ = arena.free(old);
    }
    true
}

/// Arena compaction over every open file (see the module documentation).
pub(crate) fn compact_arena(
    shared: &crate::Shared,
    lim: &Limits,
    out: &mut RkmemCompact,
) -> Result {
    let arena = &*shared.arena;
    // Cached blocks and empty slabs are free memory the plan should see as free.
    crate::classes::trim_mode(&shared.classes, &shared.caches, lim.try_only, usize::MAX);
    arena.drain_pcps_mode(lim.try_only);
    let files = open_files(shared, lim.try_only)?;
    let caches = all_caches(shared, lim.try_only)?;
    let (mut slots, t) = plan(shared, &files, &caches, lim)?;
    let p = plan_slots(&mut slots, SLOT_PAGES, lim.max_pages);
    out.pinned_slots += p.pinned_skips as u64;
    for s in slots.iter().filter(|s| s.source) {
        // A slot that emptied and went back meanwhile (a trim, the shrinker) is no source.
        if arena.isolate(s.slot).is_err() {
            continue;
        }
        let lo = arena.addr_of(s.slot * SLOT_PAGES) as u64;
        let hi = lo + (SLOT_PAGES * PAGE_SIZE) as u64;
        // Whether every move so far succeeded: once one fails the slot cannot empty.
        let mut ok = true;
        for f in files.iter() {
            if !ok {
                break;
            }
            yield_cpu(lim);
            let Some(mut h) = lock(f, lim.try_only) else {
                ok = false;
                continue;
            };
            ok &= move_pages(arena, &mut h, s.slot, lim, out);
            for (ci, c) in caches.iter().enumerate() {
                if !ok || t.pages[ci * t.nr_slots + s.slot] == 0 {
                    continue;
                }
                yield_cpu(lim);
                let mut o = Compacted::default();
                let tree = &mut h.tree;
                let r = c.evacuate(
                    lo,
                    hi,
                    lim.may_sleep,
                    &mut |g| {
                        for a in tree.values_mut() {
                            a.visit_object(c, arena, g);
                        }
                    },
                    &mut o,
                );
                add(out, &o);
                match r {
                    Ok(done) => ok &= done,
                    Err(e) => {
                        // Only an unexpected error: end the isolation before giving up.
                        drop(h);
                        let _ = arena.end_isolation(lim.try_only);
                        return Err(e);
                    }
                }
            }
        }
        let (empty, host) = arena.end_isolation(lim.try_only);
        if empty {
            out.blocks_freed += 1;
            out.host_pages += host as u64;
        } else {
            out.blocks_failed += 1;
        }
    }
    Ok(())
}

/// One run: what `flags` (`RKMEM_COMPACT_*`) names, for `trigger`, within `lim`. `file`: the
/// file whose caches slab compaction covers (every open file's if `None`). Counts the run and
/// its results in `/proc/rkmem/compaction`.
pub(crate) fn run(
    shared: &crate::Shared,
    trigger: Trigger,
    flags: u32,
    file: Option<&FileHandles>,
    lim: &Limits,
) -> Result<RkmemCompact> {
    let st = &COMPACTION;
    // A user's request waits interruptibly behind another run (it may be long under TCG).
    let _serial = match trigger {
        Trigger::Ioctl | Trigger::Proc if !lim.try_only => {
            crate::arena::lock_interruptible(&shared.compact_lock)?
        }
        _ => crate::arena::acquire(&shared.compact_lock, lim.try_only).ok_or(EBUSY)?,
    };
    inc(match trigger {
        Trigger::Ioctl => &st.runs_ioctl,
        Trigger::Proc => &st.runs_proc,
        Trigger::Shrinker => &st.runs_shrinker,
        Trigger::Proactive => &st.runs_proactive,
    });
    // SAFETY: reads the clock.
    let t0 = unsafe { crate::ffi::rkmem_bench_now_ns() };
    let mut out = RkmemCompact::default();
    let mut res = Ok(());
    if flags & uapi::RKMEM_COMPACT_SLABS != 0 {
        res = match file {
            Some(f) => compact_file_slabs(shared, f, lim, &mut out),
            None => open_files(shared, lim.try_only).and_then(|files| {
                files
                    .iter()
                    .try_for_each(|f| compact_file_slabs(shared, f, lim, &mut out))
            }),
        };
    }
    if res.is_ok() && flags & uapi::RKMEM_COMPACT_ARENA != 0 {
        res = compact_arena(shared, lim, &mut out);
    }
    // SAFETY: reads the clock.
    let ns = unsafe { crate::ffi::rkmem_bench_now_ns() }.saturating_sub(t0);
    st.time_ns.add(ns, Relaxed);
    st.objects_moved.add(out.objects_moved, Relaxed);
    st.slabs_freed.add(out.slabs_freed, Relaxed);
    st.pages_freed.add(out.pages_freed, Relaxed);
    st.pinned_skips.add(out.pinned_skips, Relaxed);
    st.pages_moved.add(out.pages_moved, Relaxed);
    st.blocks_freed.add(out.blocks_freed, Relaxed);
    st.host_pages.add(out.host_pages, Relaxed);
    st.blocks_failed.add(out.blocks_failed, Relaxed);
    st.pinned_slots.add(out.pinned_slots, Relaxed);
    res.map(|()| out)
}

/// `compaction_proactiveness` in force (module parameter, then `/proc/rkmem/compaction_proactiveness`).
static PROACTIVENESS: Atomic<u32> = Atomic::new(PROACTIVENESS_DEFAULT);
/// When the fragmentation score was last looked at (ns), for the rate limit.
static LAST_CHECK_NS: Atomic<u64> = Atomic::new(0);
/// A proactive run is queued for the background worker.
static PROACTIVE_PENDING: Atomic<bool> = Atomic::new(false);
/// The score is looked at no more often than this (kcompactd's `HPAGE_FRAG_CHECK_INTERVAL_MSEC`).
const CHECK_INTERVAL_NS: u64 = 500_000_000;

/// Installs a checked `compaction_proactiveness` (`EINVAL` above 100).
pub(crate) fn set_proactiveness(v: u32) -> Result {
    let v = check_proactiveness(v).map_err(|_| EINVAL)?;
    PROACTIVENESS.store(v, Relaxed);
    Ok(())
}

/// Renders `/proc/rkmem/compaction_proactiveness`: the value, as `/proc/sys/vm/` shows it.
pub(crate) fn show_proactiveness(w: &mut impl core::fmt::Write) -> core::fmt::Result {
    writeln!(w, "{}", PROACTIVENESS.load(Relaxed))
}

/// A write to `/proc/rkmem/compaction_proactiveness`: a number `0..=100`.
pub(crate) fn write_proactiveness(text: &str) -> Result {
    let v: u32 = text.trim().parse().map_err(|_| EINVAL)?;
    set_proactiveness(v)
}

/// A write to `/proc/rkmem/compact` (root only, as `/proc/sys/vm/compact_memory`): `1`
/// compacts everything (every open file's slabs, then the arena); `slabs` or `arena` one
/// part. Anything else: `EINVAL`.
pub(crate) fn write_compact(shared: &crate::Shared, text: &str) -> Result {
    let flags = match text.trim() {
        "1" => uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA,
        "slabs" => uapi::RKMEM_COMPACT_SLABS,
        "arena" => uapi::RKMEM_COMPACT_ARENA,
        _ => return Err(EINVAL),
    };
    run(shared, Trigger::Proc, flags, None, &Limits::ALL).map(|_| ())
}

/// After user space freed an allocation (no rkmem lock held): at most every 500 ms, looks at
/// the fragmentation score and, if proactive compaction is due, queues it for the background
/// worker (as kcompactd runs it, not in the freeing task).
pub(crate) fn after_free(shared: &crate::Shared) {
    let p = PROACTIVENESS.load(Relaxed);
    if p == 0 {
        return;
    }
    // SAFETY: reads the clock.
    let now = unsafe { crate::ffi::rkmem_bench_now_ns() };
    let last = LAST_CHECK_NS.load(Relaxed);
    if now.saturating_sub(last) < CHECK_INTERVAL_NS
        || LAST_CHECK_NS.cmpxchg(last, now, Relaxed).is_err()
    {
        return;
    }
    let max = crate::arena::BLOCK_ORDER;
    let (score, gain) = shared.arena.with_buddy(|b| {
        let free_slots = b.nr_free(max);
        (
            fragmentation_score(b.nr_free_orders(), max),
            slots_to_gain(b.nr_present_slots(), free_slots, b.used_pages(), SLOT_PAGES),
        )
    });
    if gain > 0 && proactive_due(score, p) && shared.arena.isolated_slot().is_none() {
        PROACTIVE_PENDING.store(true, Relaxed);
        // SAFETY: the work item is static in the glue; queueing it has no precondition, and it
        // is cancelled (and waited for) before the module's shared state goes away.
        unsafe { crate::ffi::rkmem_reclaim_kick() };
    }
}

/// The background worker's part: a queued proactive run (may sleep; no rkmem lock held).
/// Arena compaction only, as the kernel's proactive compaction defragments pages: slab
/// compaction stays the user's choice. Returns whether one was queued.
pub(crate) fn proactive_work(shared: &crate::Shared) -> bool {
    if !PROACTIVE_PENDING.xchg(false, Relaxed) {
        return false;
    }
    let _ = run(
        shared,
        Trigger::Proactive,
        uapi::RKMEM_COMPACT_ARENA,
        None,
        &Limits::ALL,
    );
    true
}
