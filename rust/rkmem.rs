// SPDX-License-Identifier: GPL-2.0

//! rkmem: a memory-management playground that runs its own allocators beside the host kernel's,
//! exposes them through `/proc/rkmem/` and `/dev/rkmem`, and is measured against SLUB, the page
//! allocator and `mm/mempool.c` in the same boot.
//!
//! Layout: `rkcore` is the pure logic (tested on the host); `allocators` run it over real
//! memory, locks and per-CPU state; `interfaces` are the misc device (`dev`), procfs (`procfs`
//! with `glue/procfs.c`), the counters (`stats`) and the declarations of the C glue (`ffi`;
//! the glue is `rust/glue/`, one file per concern); `checks` measure and test the allocators.
//!
//! # Lock order
//!
//! One story for the whole module, outermost first (as `mm/slub.c` tells its own):
//!
//! 0. `Shared::compact_lock`: serialises compaction runs (`compaction`; a user's request,
//!    `RKMEM_IOC_TRIM` and `RKMEM_IOC_CACHE_DESTROY` wait for it interruptibly); under it a
//!    run takes one open file's `handles` at a time, never two. `RKMEM_IOC_CACHE_DESTROY` holds it too, around
//!    the registry's mutex, so that no compaction drains the cache while it counts live objects. The list of open files (`Shared::files`) is
//!    held only to add, remove or copy an entry, with no other rkmem lock.
//! 1. An open file's `handles` and `bench` mutexes (`dev`): user copies happen under `handles`;
//!    allocations are made with it dropped and are inserted or taken out under it (a failed
//!    insert frees its allocation under it, which takes only locks below). Compaction holds
//!    `handles` while it moves the file's allocations and re-points their handles: it takes the
//!    registries' mutexes only before, and under `handles` the locks from 3 down (arena
//!    compaction allocates its targets, which may grow the arena).
//! 2. The registries' mutexes (user caches in `caches`, mempools in `mempool`): held while a
//!    cache or pool is created or destroyed, which may take every lock below.
//! 3. The arena's `grow` mutex: held while a 4 MiB block is taken from, or given back to, the
//!    host kernel. Taking a block may enter the host's reclaim and so rkmem's own shrinker,
//!    which therefore only try-locks `grow` (and the registries' mutexes, `compact_lock`, the
//!    list of files and their `handles`). The shrinker takes
//!    the spinlocks below blocking where it must (a slab back to its cache's `inner`, a page
//!    back to the arena): that cannot deadlock, because an allocation that may enter reclaim
//!    may sleep, and nothing sleeps with an rkmem spinlock held.
//! 4. Spinlocks, never held across a sleep: a mempool's `reserve` (its drain frees elements to
//!    their source under it) before a cache's `depot` and `inner`, before the arena's per-CPU
//!    `pcp` slots, before the arena's `inner` (the buddy lists). A slab goes back to the arena
//!    only after its cache's `inner` is dropped.
//!    The read-only views take a cache's `inner` alone, as a leaf: `RKMEM_IOC_HANDLE_INFO` under
//!    the file's `handles` (1), `RKMEM_IOC_CACHE_SLABS` after the registry's mutex (2) was held
//!    only to find the cache and dropped; its answer's buffer is allocated before `inner` is
//!    taken and copied to user space after it is dropped.
//!    The stress engine's `mailbox` and `totals` (`checks::stress`) are leaves: nothing is
//!    allocated or freed under them. In KASAN and kmemleak builds every free checks its slot under the
//!    cache's `inner` (`Cache::freed_hooks`), also on the per-CPU fast path: a free is never
//!    made holding that cache's `depot` or `inner`, so this adds no order.
//! 5. The per-CPU object arrays' `local_trylock_t` (`glue/objs.c`), innermost: taken with
//!    preemption off on the owning CPU; the IPI that empties an array from another CPU only
//!    try-locks it.
//!
//! The rule that keeps reclaim deadlock-free: **`Arena::alloc*`, `Cache::alloc` and everything
//! that may grow the arena are called holding no rkmem spinlock**, with interrupts on. Below the
//! `high` watermark an allocation that may sleep trims synchronously (`reclaim::on_pressure`),
//! which takes every cache's and the arena's spinlocks and sends IPIs; it calls `might_sleep()`
//! first, so on the debug kernel (DEBUG_ATOMIC_SLEEP) a caller that breaks the rule is reported.

use kernel::{
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::atomic::{Acquire, Atomic, Release},
};

// The module's files by role: the allocators users get memory from, the interfaces to user
// space and to the C glue, and the in-kernel checks and benchmarks that measure them.
mod allocators;
mod checks;
mod interfaces;

use allocators::{arena, classes, mempool, percpu, reclaim, registry, slab};
use checks::{bench, selftest, stress};
use interfaces::{compaction, dev, ffi, procfs, stats, trace};

#[path = "core/mod.rs"]
pub mod rkcore;

pub mod uapi;

use rkcore::params::{self, Params};

module! {
    type: Rkmem,
    name: "rkmem",
    authors: ["rkmem developers"],
    description: "Buddy, slab and mempool allocators beside the host kernel's, with /proc/rkmem and /dev/rkmem",
    license: "GPL",
    params: {
        arena_initial_mb: u32 {
            default: 4,
            description: "MiB the arena takes from the host kernel at load (multiple of 4, <= arena_max_mb)",
        },
        arena_max_mb: u32 {
            default: 64,
            description: "MiB the arena may grow to (multiple of 4, at least 4, at most half of RAM)",
        },
        file_max_mb: u32 {
            default: 128,
            description: "MiB one open file of /dev/rkmem may hold (1..65536; over it: EDQUOT)",
        },
        wmark_low: i64 {
            default: -1,
            description: "Low watermark, free arena pages: below it a background worker trims (-1: max/4, 0: off)",
        },
        wmark_high: i64 {
            default: -1,
            description: "High watermark, free arena pages: below it allocators trim synchronously (-1: max/8, 0: off)",
        },
        slab_debug: bool {
            default: false,
            description: "Slab debug mode: red zones, poison, call sites, checked frees (slower)",
        },
        kasan_check: u32 {
            default: 0,
            description: "KASAN kernels: at load, 1 reads an rkmem object after its free, 2 writes past one's end; KASAN must report it (0: off)",
        },
        kmemleak_check: u32 {
            default: 0,
            description: "kmemleak kernels: at load, 1 leaks an rkmem object and hides a kmalloc'd buffer's only pointer in another; kmemleak must report the first only (0: off)",
        },
        kcsan_check: u32 {
            default: 0,
            description: "KCSAN kernels: at load, 1 races on a counter from every CPU; KCSAN must report it (0: off)",
        },
        compaction_proactiveness: u32 {
            default: 20,
            description: "Proactive compaction, 0..100 as vm.compaction_proactiveness (0: off; runtime: /proc/rkmem/compaction_proactiveness)",
        },
    },
}

/// The module parameters as given at load (read-only afterwards).
pub(crate) fn params() -> Params {
    Params {
        arena_initial_mb: module_parameters::arena_initial_mb.value(),
        arena_max_mb: module_parameters::arena_max_mb.value(),
        file_max_mb: module_parameters::file_max_mb.value(),
    }
}

use crate::ffi::rkmem_totalram_pages;

// The largest order (4 MiB blocks of 4 KiB pages) has one source, `rkcore::buddy::MAX_ORDER_LIMIT`;
// the ABI states it too (user space sees only `uapi`), and the kernel's page size is the core's.
const _: () = assert!(uapi::RKMEM_MAX_ORDER == rkcore::buddy::MAX_ORDER_LIMIT);
const _: () = assert!(kernel::page::PAGE_SIZE == rkcore::sizeclass::PAGE_SIZE);
const _: () =
    assert!((params::ARENA_BLOCK_MB as usize) << 20 == arena::PAGE_SIZE << arena::BLOCK_ORDER);

/// A checker's parameter (`kasan_check`, ...): 0, or 1..=`max` where the kernel has that
/// checker (`supported`); otherwise `EINVAL` with a message saying what it `must` be.
fn check_mode(name: &str, value: u32, supported: bool, must: &str, max: u32) -> Result {
    if value > max || (value != 0 && !supported) {
        pr_err!("invalid parameter {name}: {name}={value}: must be {must}\n");
        return Err(EINVAL);
    }
    Ok(())
}

/// Checks the module parameters; a bad one fails the load with a message naming it.
fn checked_params() -> Result<Params> {
    let p = params();
    // SAFETY: `totalram_pages()` only reads an atomic counter.
    let ram_pages = unsafe { rkmem_totalram_pages() } as u64;
    let ram_mb = (ram_pages << kernel::page::PAGE_SHIFT) >> 20;
    params::validate(&p, ram_mb).map_err(|e| {
        pr_err!(
            "invalid parameter {}: {}\n",
            e.parameter(),
            format_args!("{e}")
        );
        EINVAL
    })?;
    // SAFETY: each of the three calls reads a build-time fact.
    let (kasan, kmemleak, kcsan) = unsafe {
        (
            crate::ffi::rkmem_kasan_enabled(),
            crate::ffi::rkmem_kmemleak_enabled(),
            crate::ffi::rkmem_kcsan_enabled(),
        )
    };
    check_mode(
        "kasan_check",
        module_parameters::kasan_check.value(),
        kasan,
        "0, or 1 or 2 on a KASAN kernel",
        2,
    )?;
    check_mode(
        "kmemleak_check",
        module_parameters::kmemleak_check.value(),
        kmemleak,
        "0, or 1 on a kmemleak kernel",
        1,
    )?;
    check_mode(
        "kcsan_check",
        module_parameters::kcsan_check.value(),
        kcsan,
        "0, or 1 on a KCSAN kernel",
        1,
    )?;
    let cp = module_parameters::compaction_proactiveness.value();
    compaction::set_proactiveness(cp).inspect_err(|_| {
        pr_err!(
            "invalid parameter compaction_proactiveness: compaction_proactiveness={}: must be 0..=100\n",
            cp
        );
    })?;
    Ok(p)
}

/// The watermarks from `wmark_low`/`wmark_high`, checked against the arena's maximum.
fn checked_watermarks(p: &Params) -> Result<rkcore::reclaim::Watermarks> {
    let max_pages = u64::from(p.arena_max_mb) << (20 - kernel::page::PAGE_SHIFT);
    let d = rkcore::reclaim::Watermarks::defaults(max_pages);
    let pick = |name: &str, v: i64, default: u64| -> Result<u64> {
        match v {
            -1 => Ok(default),
            v if v >= 0 => Ok(v as u64),
            _ => {
                pr_err!(
                    "invalid parameter {}: {}={}: must be -1 (default) or a page count\n",
                    name,
                    name,
                    v
                );
                Err(EINVAL)
            }
        }
    };
    let w = rkcore::reclaim::Watermarks {
        low: pick("wmark_low", module_parameters::wmark_low.value(), d.low)?,
        high: pick("wmark_high", module_parameters::wmark_high.value(), d.high)?,
    };
    w.validate(max_pages).map_err(|e| {
        pr_err!(
            "invalid parameters wmark_low/wmark_high: {}\n",
            format_args!("{e}")
        );
        EINVAL
    })?;
    Ok(w)
}

/// Whether slab caches are created in debug mode (`slab_debug`).
pub(crate) fn slab_debug() -> bool {
    module_parameters::slab_debug.value()
}

/// State that callbacks without a context pointer reach: ioctls, /proc reads. Where 7.3 gives
/// a context the state goes through it (the shrinker: its `private_data`); the misc device in
/// 7.3 has no registration data for `open` and the procfs glue is C, so those reach it
/// through [`shared`], and so does the work item (a static C `work_struct`, README).
///
/// Fields drop in declaration order: the caches (which hold `&'static` references to the
/// arena) go before the arena.
#[pin_data]
pub(crate) struct Shared {
    /// The mempools created by user space (they hold caches: dropped first).
    #[pin]
    pub(crate) pools: kernel::sync::Mutex<mempool::Pools>,
    /// rkmalloc's size-class caches.
    pub(crate) classes: classes::Classes,
    /// The caches created by user space.
    #[pin]
    pub(crate) caches: kernel::sync::Mutex<classes::Registry>,
    /// rkmem's page allocator.
    pub(crate) arena: Pin<KVBox<arena::Arena>>,
    /// The handle tables of the open files of /dev/rkmem (what compaction may move).
    #[pin]
    pub(crate) files: kernel::sync::Mutex<KVec<kernel::sync::Arc<dev::FileHandles>>>,
    /// Held by a compaction run (see [`compaction`]).
    #[pin]
    pub(crate) compact_lock: kernel::sync::Mutex<()>,
}

impl Shared {
    /// Trims what `flags` (`RKMEM_TRIM_*`) name; returns (slabs released, the arena's trim).
    pub(crate) fn trim(&self, flags: u32) -> (usize, arena::Trimmed) {
        let slabs = if flags & uapi::RKMEM_TRIM_SLABS != 0 {
            classes::trim(&self.classes, &self.caches)
        } else {
            0
        };
        let t = self.arena.trim(
            flags & uapi::RKMEM_TRIM_PCP != 0,
            flags & uapi::RKMEM_TRIM_ARENA != 0,
        );
        (slabs, t)
    }
}

/// Points at the module's [`Shared`] while /dev/rkmem or /proc/rkmem can be reached.
static SHARED: Atomic<*const Shared> = Atomic::new(core::ptr::null());

/// The module's shared state; `None` only outside the module's lifetime.
pub(crate) fn shared() -> Option<&'static Shared> {
    let p = SHARED.load(Acquire);
    // SAFETY: a non-null `SHARED` points into the pinned `KVBox` owned by `SharedOwner`, which
    // publishes it after the `Shared` is fully initialised and clears it before freeing it.
    // Every caller is reached through /dev/rkmem or /proc/rkmem, which are registered after the
    // owner is created and removed (waiting for callers in progress) before it is dropped, so
    // the reference does not outlive the pointee.
    unsafe { p.as_ref() }
}

/// Owner of the module's [`Shared`]: publishes it in [`SHARED`] and withdraws it on drop.
struct SharedOwner {
    _shared: Pin<KVBox<Shared>>,
}

impl SharedOwner {
    fn new(p: &Params) -> Result<SharedOwner> {
        let block = params::ARENA_BLOCK_MB as usize;
        let arena = arena::Arena::new(
            p.arena_initial_mb as usize / block,
            p.arena_max_mb as usize / block,
            Some(reclaim::on_pressure),
        )?;
        // The arena first, in a box of its own: the size-class caches are made before the
        // shared state and hold a reference to it.
        let arena = KVBox::pin_init(arena, GFP_KERNEL)?;
        // On failure the arena's drop gives back what it took.
        arena.populate()?;
        // SAFETY: the arena is pinned in its box, which `shared` owns until this owner is
        // dropped. The caches holding this reference are owned by `shared` itself (declared
        // before `arena`, so dropped first) or by open files, which are all closed before the
        // module (and so this owner) goes away.
        let arena_ref: &'static arena::Arena = unsafe { &*core::ptr::from_ref(&*arena) };
        let classes = classes::create_classes(arena_ref, slab_debug())?;
        let shared = KVBox::pin_init(
            try_pin_init!(Shared {
                pools <- kernel::new_mutex!(mempool::Pools::new(), "rkmem_pools"),
                classes,
                caches <- kernel::new_mutex!(classes::Registry::new(), "rkmem_caches"),
                arena,
                files <- kernel::new_mutex!(KVec::new(), "rkmem_files"),
                compact_lock <- kernel::new_mutex!((), "rkmem_compact"),
            }),
            GFP_KERNEL,
        )?;
        SHARED.store(core::ptr::from_ref::<Shared>(&shared), Release);
        Ok(SharedOwner { _shared: shared })
    }
}

impl SharedOwner {
    /// The state this owner keeps (pinned in its box: the address does not change).
    fn get(&self) -> &Shared {
        &self._shared
    }
}

impl Drop for SharedOwner {
    fn drop(&mut self) {
        SHARED.store(core::ptr::null(), Release);
    }
}

/// The loaded module. Fields are dropped in declaration order: `/proc/rkmem` goes first, then
/// `/dev/rkmem`, then the allocators (they are initialised in the opposite order).
#[pin_data(PinnedDrop)]
struct Rkmem {
    params: Params,
    _proc: procfs::ProcDir,
    #[pin]
    _misc: MiscDeviceRegistration<dev::RkmemFile>,
    _reclaim: reclaim::Reclaim,
    _shared: SharedOwner,
}

impl kernel::InPlaceModule for Rkmem {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            params: checked_params()?,
            _shared: SharedOwner::new(params)?,
            // SAFETY: `_reclaim` is declared before `_shared`, so it is dropped (and the
            // shrinker unregistered) before the state it points at.
            _reclaim: unsafe { reclaim::Reclaim::register(checked_watermarks(params)?, _shared.get())? },
            _proc: procfs::ProcDir::new()?,
            _misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"rkmem" }),
        })
        .pin_chain(|m| {
            pr_info!(
                "loaded: /dev/rkmem, /proc/rkmem (arena_initial_mb={}, arena_max_mb={})\n",
                m.params.arena_initial_mb,
                m.params.arena_max_mb
            );
            let check = module_parameters::kasan_check.value();
            if check != 0 {
                checks::kasan::run(check)?;
            }
            if module_parameters::kmemleak_check.value() == 1 {
                checks::kmemleak::run()?;
            }
            if module_parameters::kcsan_check.value() == 1 {
                pr_info!("kcsan_check=1: every CPU races on one counter; KCSAN must report it\n");
                // SAFETY: the C function only queues work on rkmem's own workqueue and waits
                // for it; it takes no argument and touches only its own static counter.
                let cpus = unsafe { crate::ffi::rkmem_kcsan_race_check() };
                pr_info!("kcsan_check=1: done on {} CPUs\n", cpus);
            }
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Rkmem {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloading\n");
        // What `kmemleak_check=1` took (nothing otherwise), before the caches go.
        checks::kmemleak::release();
    }
}
