// SPDX-License-Identifier: GPL-2.0

//! Reclaim: the shrinker registered with the host kernel, the low/high watermarks, and the
//! background trimmer. The decisions are `rkcore::reclaim`'s; this file runs them.
//!
//! Everything here uses try-locks, as in-kernel Rust shrinkers do (binder's): reclaim can run
//! inside an allocation of the host kernel made while one of rkmem's locks is held (the arena
//! grows under its `grow` mutex), so it never waits for a lock. Reserve elements of mempools are
//! allocated memory as far as the allocators know, so reclaim never takes them.

use crate::rkcore::reclaim::{self, Pressure, ReclaimEnv, Reclaimable, Watermarks};
use crate::rkcore::text;
use crate::trace;
use crate::Shared;
use core::fmt;
use core::ptr::NonNull;
use kernel::{
    bindings,
    ffi::{c_int, c_ulong},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use crate::ffi::{rkmem_reclaim_cancel, rkmem_reclaim_kick};

/// Reclaim counters, shown in `/proc/rkmem/shrinker` and `/proc/rkmem/stats`.
pub(crate) struct ReclaimStats {
    pub(crate) count_calls: Atomic<u64>,
    pub(crate) scan_calls: Atomic<u64>,
    pub(crate) scanned: Atomic<u64>,
    pub(crate) freed: Atomic<u64>,
    pub(crate) stops: Atomic<u64>,
    pub(crate) pages_to_host: Atomic<u64>,
    pub(crate) async_kicks: Atomic<u64>,
    pub(crate) async_runs: Atomic<u64>,
    pub(crate) async_pages: Atomic<u64>,
    pub(crate) sync_runs: Atomic<u64>,
    pub(crate) sync_pages: Atomic<u64>,
}

/// The module's reclaim counters.
pub(crate) static RSTATS: ReclaimStats = ReclaimStats {
    count_calls: Atomic::new(0),
    scan_calls: Atomic::new(0),
    scanned: Atomic::new(0),
    freed: Atomic::new(0),
    stops: Atomic::new(0),
    pages_to_host: Atomic::new(0),
    async_kicks: Atomic::new(0),
    async_runs: Atomic::new(0),
    async_pages: Atomic::new(0),
    sync_runs: Atomic::new(0),
    sync_pages: Atomic::new(0),
};

fn add(c: &Atomic<u64>, n: u64) {
    c.add(n, Relaxed);
}

/// The watermarks in force (free pages; see `rkcore::reclaim`).
static WMARK_LOW: Atomic<u64> = Atomic::new(0);
static WMARK_HIGH: Atomic<u64> = Atomic::new(0);

/// The watermarks in force.
pub(crate) fn watermarks() -> Watermarks {
    Watermarks {
        low: WMARK_LOW.load(Relaxed),
        high: WMARK_HIGH.load(Relaxed),
    }
}

/// Installs checked watermarks.
pub(crate) fn set_watermarks(w: Watermarks) {
    // Two relaxed stores: a reader in between sees a mixed pair for a moment, which at worst
    // wakes the trimmer once for nothing.
    WMARK_LOW.store(w.low, Relaxed);
    WMARK_HIGH.store(w.high, Relaxed);
}

/// Called by the arena after an allocation that reached the buddy allocator, with the free
/// pages left (in the watermark sense), holding no rkmem lock. Below `high` an allocation that
/// may sleep trims synchronously (like the host's direct reclaim, which only allocations that
/// may block enter); one that may not wakes the background worker instead.
pub(crate) fn on_pressure(free: u64, may_sleep: bool) {
    match watermarks().pressure(free) {
        Pressure::None => {}
        Pressure::Sync if may_sleep => {
            // The synchronous trim takes every cache's and the arena's spinlocks and sends
            // IPIs: its caller must hold no spinlock and have interrupts on (the lock order in
            // the crate root). might_sleep() checks exactly that on kernels with
            // DEBUG_ATOMIC_SLEEP (the debug kernel): a caller that breaks the rule is reported.
            kernel::task::might_sleep();
            if let Some(shared) = crate::shared() {
                add(&RSTATS.sync_runs, 1);
                let freed = shrink(shared, reclaim::ASYNC_BATCH_PAGES);
                add(&RSTATS.sync_pages, freed);
                trace::reclaim(true, freed);
            }
        }
        Pressure::Async | Pressure::Sync => {
            add(&RSTATS.async_kicks, 1);
            // SAFETY: the work item is static in the glue; queueing it has no precondition, and
            // it is cancelled (and waited for) before the module's shared state goes away.
            unsafe { rkmem_reclaim_kick() };
        }
    }
}

/// What rkmem could give back now.
fn reclaimable(shared: &Shared) -> Reclaimable {
    let (pcp_pages, free_block_pages) = shared.arena.reclaimable();
    let (empty_slab_pages, cpu_object_pages) =
        crate::classes::reclaimable(&shared.classes, &shared.caches);
    Reclaimable {
        pcp_pages: pcp_pages as u64,
        cpu_object_pages,
        empty_slab_pages,
        free_block_pages: free_block_pages as u64,
        host_pages: host_pages(shared).unwrap_or(free_block_pages as u64),
        compactable_pages: shared.arena.compactable_pages() as u64,
    }
}

/// Pages a scan could give back to the host now ([`reclaim::host_reclaimable_pages`] over the
/// arena's slots), or `None` if a lock is busy or the per-slot buffers cannot be had without
/// waiting (reclaim may run where allocations must not sleep).
fn host_pages(shared: &Shared) -> Option<u64> {
    let n = shared.arena.nr_slots();
    let gfp = GFP_NOWAIT | __GFP_NOWARN;
    let mut free: KVVec<usize> = KVVec::with_capacity(n, gfp).ok()?;
    free.extend_with(n, 0, gfp).ok()?;
    let mut cached: KVVec<usize> = KVVec::with_capacity(n, gfp).ok()?;
    cached.extend_with(n, 0, gfp).ok()?;
    let (present, min) = shared.arena.slot_usage(&mut free, &mut cached)?;
    crate::classes::add_empty_pages_by_slot(&shared.classes, &shared.caches, &mut cached);
    Some(reclaim::host_reclaimable_pages(
        &free,
        &cached,
        crate::arena::SLOT_PAGES,
        present,
        min,
    ))
}

/// The module's caches and arena for `rkcore::reclaim`'s scan and shrink (try-locks only).
impl ReclaimEnv for Shared {
    fn trim_slabs(&self, max_pages: usize) -> usize {
        crate::classes::trim_mode(&self.classes, &self.caches, true, max_pages).1
    }

    fn drain_pcps(&self) -> usize {
        self.arena.drain_pcps_mode(true)
    }

    fn release_blocks(&self, max_pages: usize) -> usize {
        self.arena.release_blocks(true, max_pages)
    }

    fn free_block_pages(&self) -> u64 {
        self.arena.reclaimable().1 as u64
    }

    fn compact(&self, max_pages: u64) -> u64 {
        // At its minimum the arena keeps an emptied slot: nothing for the host.
        if !self.arena.above_min() {
            return 0;
        }
        let lim = crate::compaction::Limits {
            may_sleep: false,
            try_only: true,
            max_pages,
        };
        crate::compaction::run(
            self,
            crate::compaction::Trigger::Shrinker,
            crate::uapi::RKMEM_COMPACT_ARENA,
            None,
            &lim,
        )
        .map_or(0, |o| o.host_pages)
    }
}

/// A shrinker scan for `nr` pages (`rkcore::reclaim::host_scan`); returns the pages the host
/// got.
fn host_scan(shared: &Shared, nr: u64) -> u64 {
    let n = reclaim::host_scan(shared, nr);
    add(&RSTATS.pages_to_host, n);
    n
}

/// The watermark path (`rkcore::reclaim::shrink`); returns the pages freed inside the arena.
fn shrink(shared: &Shared, budget: u64) -> u64 {
    let (freed, to_host) = reclaim::shrink(shared, budget);
    add(&RSTATS.pages_to_host, to_host);
    freed
}

/// The shrinker's `count_objects`: what a scan could give the host now, or `SHRINK_EMPTY`.
///
/// # Safety
///
/// Called by the kernel's reclaim for the shrinker [`Reclaim`] registered.
unsafe extern "C" fn count_objects(
    s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    add(&RSTATS.count_calls, 1);
    // SAFETY: `s` is the shrinker `Reclaim::register` made, which the kernel passes back.
    let shared = unsafe { context(s) };
    let n = reclaimable(shared).count().unwrap_or(0);
    trace::shrink_count(n);
    match n {
        0 => bindings::SHRINK_EMPTY as c_ulong,
        n => c_ulong::try_from(n).unwrap_or(c_ulong::MAX - 2),
    }
}

/// The shrinker's `scan_objects`: the pages given back to the host, or `SHRINK_STOP`.
///
/// # Safety
///
/// Called by the kernel's reclaim for the shrinker [`Reclaim`] registered, with a valid
/// `shrink_control`.
unsafe extern "C" fn scan_objects(
    s: *mut bindings::shrinker,
    sc: *mut bindings::shrink_control,
) -> c_ulong {
    add(&RSTATS.scan_calls, 1);
    // SAFETY: the kernel passes a valid `shrink_control` for the duration of the call.
    let nr = unsafe { (*sc).nr_to_scan } as u64;
    add(&RSTATS.scanned, nr);
    // SAFETY: `s` is the shrinker `Reclaim::register` made, which the kernel passes back.
    let freed = host_scan(unsafe { context(s) }, nr);
    trace::shrink_scan(nr, reclaim::scan_result(freed));
    match reclaim::scan_result(freed) {
        Some(n) => {
            add(&RSTATS.freed, n);
            c_ulong::try_from(n).unwrap_or(c_ulong::MAX - 2)
        }
        None => {
            add(&RSTATS.stops, 1);
            bindings::SHRINK_STOP as c_ulong
        }
    }
}

/// The shared state a shrinker callback works on: the shrinker's `private_data`, set by
/// [`Reclaim::register`] (state passed as context, not through the module's global).
///
/// # Safety
///
/// `s` is the shrinker of a live [`Reclaim`], as the kernel passes it to the callbacks.
unsafe fn context<'a>(s: *mut bindings::shrinker) -> &'a Shared {
    // SAFETY: `register` stored a pointer to a `Shared` that outlives the registration
    // (`Reclaim`'s invariant); `shrinker_free` in `drop` waits for callbacks in progress, so no
    // callback runs after the reference could dangle.
    unsafe { &*(*s).private_data.cast::<Shared>() }
}

/// The background trimmer: batches until the arena is back above the low watermark or nothing
/// more can be freed.
#[no_mangle]
extern "C" fn rkmem_reclaim_work() {
    let Some(shared) = crate::shared() else {
        return;
    };
    // Kicked for a proactive compaction alone: no trimming run to count.
    if crate::compaction::proactive_work(shared)
        && watermarks().pressure(shared.arena.free_for_watermarks()) == Pressure::None
    {
        return;
    }
    add(&RSTATS.async_runs, 1);
    let mut total = 0;
    while watermarks().pressure(shared.arena.free_for_watermarks()) != Pressure::None {
        let freed = shrink(shared, reclaim::ASYNC_BATCH_PAGES);
        add(&RSTATS.async_pages, freed);
        total += freed;
        if freed == 0 {
            break;
        }
    }
    trace::reclaim(false, total);
}

/// Owner of the shrinker registration (made from Rust, as binder makes its own) and of the
/// background trimmer: registered after the shared state exists, removed (waiting for
/// callbacks in progress) before it goes.
///
/// # Invariants
///
/// `shrinker` came from `shrinker_alloc`, is registered, and is freed only in `drop`; its
/// `private_data` points at the [`Shared`] given to `register`, which outlives this value.
pub(crate) struct Reclaim {
    shrinker: NonNull<bindings::shrinker>,
}

// SAFETY: the shrinker is touched only by `register` and `drop` (and by the kernel's reclaim,
// which serialises its own use of it); the pointer may be moved between and used from any task.
unsafe impl Send for Reclaim {}
// SAFETY: as above: `&Reclaim` gives no access to the shrinker.
unsafe impl Sync for Reclaim {}

impl Reclaim {
    /// Installs `w` and registers the shrinker, named `rkmem` (as the kernel lists shrinkers),
    /// with `shared` as its context.
    ///
    /// # Safety
    ///
    /// `shared` outlives the returned value (the module drops its `Reclaim` before the
    /// [`Shared`]; see `Rkmem`'s field order).
    pub(crate) unsafe fn register(w: Watermarks, shared: &Shared) -> Result<Reclaim> {
        set_watermarks(w);
        // SAFETY: a static NUL-terminated name without conversion specifiers.
        let s = unsafe { bindings::shrinker_alloc(0, c"rkmem".as_char_ptr()) };
        let shrinker = NonNull::new(s).ok_or(ENOMEM)?;
        // SAFETY: `shrinker` is freshly allocated and not yet registered, so nobody else reads
        // these fields; the callbacks match the kernel's prototypes.
        unsafe {
            (&raw mut (*s).count_objects).write(Some(count_objects));
            (&raw mut (*s).scan_objects).write(Some(scan_objects));
            (&raw mut (*s).seeks).write(bindings::DEFAULT_SEEKS as c_int);
            (&raw mut (*s).private_data).write(core::ptr::from_ref(shared).cast_mut().cast());
        }
        // SAFETY: fully initialised; called once at load, after the shared state the callbacks
        // read exists. INVARIANT: registered here, freed in `drop`; `shared` outlives us (the
        // caller's promise).
        unsafe { bindings::shrinker_register(s) };
        Ok(Reclaim { shrinker })
    }
}

impl Drop for Reclaim {
    fn drop(&mut self) {
        // SAFETY: registered in `register` (type invariant); `shrinker_free` unregisters it and
        // waits for callbacks in progress.
        unsafe { bindings::shrinker_free(self.shrinker.as_ptr()) };
        // SAFETY: the work item is static; this waits for a run in progress and nothing queues
        // it again (user entry points are gone by now).
        unsafe { rkmem_reclaim_cancel() };
    }
}

/// Renders `/proc/rkmem/shrinker`.
pub(crate) fn show_shrinker(w: &mut impl fmt::Write, shared: &Shared) -> fmt::Result {
    let r = &RSTATS;
    let now = reclaimable(shared);
    text::write_counters(
        w,
        &[
            ("count_calls", r.count_calls.load(Relaxed)),
            ("scan_calls", r.scan_calls.load(Relaxed)),
            ("objects_scanned", r.scanned.load(Relaxed)),
            ("objects_freed", r.freed.load(Relaxed)),
            ("scan_stops", r.stops.load(Relaxed)),
            ("pages_to_host", r.pages_to_host.load(Relaxed)),
            ("reclaimable_now", now.count().unwrap_or(0)),
            ("reclaimable_pcp_pages", now.pcp_pages),
            ("reclaimable_cpu_object_pages", now.cpu_object_pages),
            ("reclaimable_empty_slab_pages", now.empty_slab_pages),
            ("reclaimable_free_block_pages", now.free_block_pages),
            ("reclaimable_host_pages", now.host_pages),
            ("reclaimable_compactable_pages", now.compactable_pages),
        ],
    )
}

/// Renders `/proc/rkmem/watermarks`.
pub(crate) fn show_watermarks(w: &mut impl fmt::Write, shared: &Shared) -> fmt::Result {
    let free = shared.arena.free_for_watermarks();
    crate::rkcore::reclaim::write_watermarks(
        w,
        &watermarks(),
        free,
        shared.arena.max_pages() as u64,
    )
}

/// A write to `/proc/rkmem/watermarks`: `LOW HIGH` in free pages. A bad value is refused with
/// `EINVAL` and nothing changes.
pub(crate) fn write_watermarks(shared: &Shared, text: &str) -> Result {
    let w = Watermarks::parse(text).map_err(|_| EINVAL)?;
    w.validate(shared.arena.max_pages() as u64)
        .map_err(|_| EINVAL)?;
    set_watermarks(w);
    Ok(())
}

/// The counters of `/proc/rkmem/stats` that come from reclaim.
pub(crate) fn stat_counters() -> [(&'static str, u64); 5] {
    let r = &RSTATS;
    [
        ("reclaim_async_kicks", r.async_kicks.load(Relaxed)),
        ("reclaim_async_runs", r.async_runs.load(Relaxed)),
        ("reclaim_async_pages", r.async_pages.load(Relaxed)),
        ("reclaim_sync_runs", r.sync_runs.load(Relaxed)),
        ("reclaim_sync_pages", r.sync_pages.load(Relaxed)),
    ]
}
