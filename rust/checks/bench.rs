// SPDX-License-Identifier: GPL-2.0

//! `RKMEM_IOC_BENCH`: rkmem's allocators timed against the host kernel's, in the same call.
//!
//! Each repetition runs `iters` alloc+free operations of rkmem and then of the host kernel's
//! counterpart (the order alternates between repetitions, so neither side always runs on the
//! caches the other warmed; `RKMEM_BENCH_HOST_FIRST` starts with the host's), after one untimed
//! warm-up round of each. The median and the fastest
//! repetition are returned in picoseconds per operation. The host kernel's loops are C in
//! `glue/bench.c`, so it is called exactly as a C driver calls it; rkmem's loops are here and call
//! the module's allocators directly.
//!
//! Every call frees everything it allocated before it returns, also on an error, and lets other
//! tasks run between repetitions (`cond_resched`); a pending signal ends it with `EINTR`.
//! Caches and pools are created for the call and destroyed at its end, except rkmalloc's size
//! classes and kmalloc's caches, which are the shared ones (so on all CPUs at once they are
//! contended as in real use).

use crate::arena::{Arena, Pages, PAGE_SIZE};
use crate::classes::{self, RkAlloc};
use crate::mempool::{Mempool, Source};
use crate::slab::{Cache, Obj};
use crate::uapi::{self, RkmemBench};
use core::ptr::NonNull;
use kernel::ffi::c_void;
use kernel::{
    prelude::*,
    str::CString,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    uaccess::UserSlice,
};

use crate::ffi::{
    rkmem_bench_kmalloc_pairs, rkmem_bench_mempool_create, rkmem_bench_mempool_destroy,
    rkmem_bench_mempool_pairs, rkmem_bench_now_ns, rkmem_bench_pages_pairs, rkmem_bench_resched,
    rkmem_bench_slub_batch, rkmem_bench_slub_create, rkmem_bench_slub_destroy,
    rkmem_bench_slub_layout, rkmem_bench_slub_pairs, HostMempool, KmemCache,
};
use crate::ffi::{
    rkmem_bench_latency, rkmem_bench_on_cpu, rkmem_bench_other_cpu, rkmem_bench_slab_pages,
    rkmem_bench_slub_alloc, rkmem_bench_slub_free, rkmem_bench_slub_remote,
    rkmem_bench_slub_shrink, rkmem_bench_trace_kfree_all, rkmem_bench_trace_kmalloc,
};

/// Owner of the benchmark's caches and pools: no open file.
const NO_OWNER: u64 = u64::MAX;
/// Largest SLUB slab, in bytes (`slub_max_order` 3), for the layout probe's buffer.
const SLUB_MAX_SLAB: usize = PAGE_SIZE << 3;
/// Slabs the layout probe fills (`RKMEM_LAYOUT_SLABS` in glue/bench.c) plus one.
const LAYOUT_SLABS: usize = 17;

/// Most objects of a footprint benchmark.
const FOOTPRINT_MAX_OBJECTS: u32 = 100_000;
/// Most bytes of a footprint benchmark's objects (each side allocates them at once).
const FOOTPRINT_MAX_BYTES: u64 = 32 << 20;

/// Source of unique SLUB cache names (each cache gets a sysfs directory named after it).
static NEXT_NAME: Atomic<u64> = Atomic::new(0);

/// Nanoseconds of the monotonic clock.
fn now_ns() -> u64 {
    // SAFETY: `ktime_get_ns` only reads the clock.
    unsafe { rkmem_bench_now_ns() }
}

/// Maps a C loop's result (nanoseconds or a negative errno) to a `Result`.
fn c_result(r: i64) -> Result<u64> {
    if r < 0 {
        Err(Error::from_errno(r as i32))
    } else {
        Ok(r as u64)
    }
}

/// A unique name for a SLUB cache, `rkmem_bench_<n>`.
fn slub_name() -> Result<CString> {
    let n = NEXT_NAME.fetch_add(1, Relaxed);
    CString::try_from_fmt(fmt!("rkmem_bench_{n}"))
}

/// A SLUB cache of the host kernel, created with `SLAB_NO_MERGE`, destroyed on drop.
///
/// # Invariants
///
/// `0` is a cache returned by `kmem_cache_create` and not yet destroyed.
struct SlubCache(NonNull<KmemCache>);

impl SlubCache {
    fn new(size: u32, align: u32) -> Result<SlubCache> {
        let name = slub_name()?;
        // SAFETY: `name` is a NUL-terminated string; the kernel copies it (`kstrdup_const`).
        let s = unsafe { rkmem_bench_slub_create(name.as_char_ptr(), size, align) };
        // INVARIANT: a non-null result is a live cache.
        NonNull::new(s).map(SlubCache).ok_or(ENOMEM)
    }

    /// Times `n` alloc+free pairs; nanoseconds.
    fn pairs(&self, n: u32) -> Result<u64> {
        // SAFETY: the cache is live (type invariant).
        c_result(unsafe { rkmem_bench_slub_pairs(self.0.as_ptr(), n) })
    }

    /// Times `rounds` batches of `buf.len()` allocations and frees; nanoseconds. With `held`,
    /// also stores the bytes of the slabs holding one batch (measured after the timing).
    fn batch(&self, buf: &mut [*mut c_void], rounds: u32, held: Option<&mut u64>) -> Result<u64> {
        let held = held.map_or(core::ptr::null_mut(), core::ptr::from_mut);
        // SAFETY: the cache is live (type invariant); `buf` is writable for `buf.len()` pointers
        // and `held` is null or points to a writable `u64`, both for the whole call; the C side
        // frees every object it allocated before it returns.
        c_result(unsafe {
            rkmem_bench_slub_batch(
                self.0.as_ptr(),
                buf.as_mut_ptr(),
                buf.len() as u32,
                rounds,
                held,
            )
        })
    }
}

impl SlubCache {
    /// `rounds` x (`buf.len()` allocations on this CPU, their frees on `cpu`): the two sides'
    /// own time, nanoseconds. The caller keeps this task on its CPU.
    fn remote(&self, buf: &mut [*mut c_void], rounds: u32, cpu: i32) -> Result<u64> {
        // SAFETY: the cache is live (type invariant); `buf` is writable for `buf.len()` pointers
        // for the whole call, which frees every object it allocated before it returns.
        c_result(unsafe {
            rkmem_bench_slub_remote(
                self.0.as_ptr(),
                buf.as_mut_ptr(),
                buf.len() as u32,
                rounds,
                cpu,
            )
        })
    }

    /// One object (null on failure).
    fn alloc(&self) -> *mut c_void {
        // SAFETY: the cache is live (type invariant).
        unsafe { rkmem_bench_slub_alloc(self.0.as_ptr()) }
    }

    /// Gives SLUB's empty slabs of this cache back (`kmem_cache_shrink`).
    fn shrink(&self) {
        // SAFETY: the cache is live (type invariant).
        unsafe { rkmem_bench_slub_shrink(self.0.as_ptr()) }
    }

    /// Frees `p`.
    ///
    /// # Safety
    ///
    /// `p` came from [`SlubCache::alloc`] of this cache and is not used after this.
    unsafe fn free(&self, p: *mut c_void) {
        // SAFETY: the cache is live (type invariant); `p` is one of its objects (the caller).
        unsafe { rkmem_bench_slub_free(self.0.as_ptr(), p) }
    }
}

// SAFETY: a `struct kmem_cache` may be used and destroyed from any task; the pointer is only
// handed to the kernel's own (internally locked) kmem_cache functions.
unsafe impl Send for SlubCache {}

impl Drop for SlubCache {
    fn drop(&mut self) {
        // SAFETY: the cache is live (type invariant) and every object of it has been freed
        // (the C loops free what they allocate); it is not used after this.
        unsafe { rkmem_bench_slub_destroy(self.0.as_ptr()) };
    }
}

/// A mempool of the host kernel over kmalloc, destroyed on drop.
///
/// # Invariants
///
/// `0` is a pool returned by `mempool_create_kmalloc_pool` and not yet destroyed.
struct HostPool(NonNull<HostMempool>);

impl HostPool {
    fn new(min: u32, size: usize) -> Result<HostPool> {
        // SAFETY: plain arguments; the pool preallocates `min` elements or fails.
        let p = unsafe { rkmem_bench_mempool_create(min, size) };
        // INVARIANT: a non-null result is a live pool.
        NonNull::new(p).map(HostPool).ok_or(ENOMEM)
    }

    /// Times `n` alloc+free pairs; nanoseconds.
    fn pairs(&self, n: u32) -> Result<u64> {
        // SAFETY: the pool is live (type invariant).
        c_result(unsafe { rkmem_bench_mempool_pairs(self.0.as_ptr(), n) })
    }
}

impl Drop for HostPool {
    fn drop(&mut self) {
        // SAFETY: the pool is live (type invariant) and every element is back in it.
        unsafe { rkmem_bench_mempool_destroy(self.0.as_ptr()) };
    }
}

/// The rkmem cache and the SLUB cache of a slab benchmark, kept in an open file between calls
/// that ask for it (`RKMEM_BENCH_KEEP`).
pub(crate) struct Kept {
    kind: u32,
    size: u32,
    align: u32,
    rk: Arc<Cache>,
    slub: SlubCache,
}

/// A temporary rkmem cache for `b`'s size and alignment (its own id; no owner).
fn bench_cache(arena: &'static Arena, b: &RkmemBench) -> Result<Arc<Cache>> {
    Arc::pin_init(
        Cache::new(
            arena,
            crate::classes::temporary_cache_id()?,
            b"rkmem-bench",
            b.size as usize,
            b.align as usize,
            None,
            crate::slab_debug(),
            NO_OWNER,
        )?,
        GFP_KERNEL,
    )
}

impl Kept {
    fn new(arena: &'static Arena, b: &RkmemBench) -> Result<Kept> {
        let rk = bench_cache(arena, b)?;
        let slub = SlubCache::new(b.size, b.align)?;
        Ok(Kept {
            kind: b.kind,
            size: b.size,
            align: b.align,
            rk,
            slub,
        })
    }

    fn serves(&self, b: &RkmemBench) -> bool {
        (self.kind, self.size, self.align) == (b.kind, b.size, b.align)
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        // The per-CPU arrays hold objects of the cache: back to its slabs, which go back to the
        // arena when the cache is dropped after this.
        self.rk.drain_cpu();
    }
}

/// Times `n` kmalloc+kfree pairs of `size`; nanoseconds.
fn kmalloc_pairs(size: usize, n: u32) -> Result<u64> {
    // SAFETY: plain arguments; the C loop frees what it allocates.
    c_result(unsafe { rkmem_bench_kmalloc_pairs(size, n) })
}

/// Times `n` alloc_pages+__free_pages pairs of `order`; nanoseconds.
fn pages_pairs(order: u32, n: u32) -> Result<u64> {
    // SAFETY: plain arguments (order <= 10 is checked by the caller); the loop frees each block.
    c_result(unsafe { rkmem_bench_pages_pairs(order, n) })
}

/// SLUB's objects per slab and slab order for `size`/`align`, measured from a fresh cache.
fn slub_layout(size: u32, align: u32) -> Result<(u32, u32)> {
    let per_slab = SLUB_MAX_SLAB / (size as usize).max(8);
    let max = (LAYOUT_SLABS * per_slab).min(1 << 16);
    let mut buf: KVVec<*mut c_void> = KVVec::with_capacity(max, GFP_KERNEL)?;
    buf.extend_with(max, core::ptr::null_mut(), GFP_KERNEL)?;
    let name = slub_name()?;
    let (mut objs, mut order) = (0u32, 0u32);
    // SAFETY: `name` is NUL-terminated; `buf` has room for `max` pointers; `objs` and `order`
    // are writable. The C side creates, empties and destroys its own cache.
    let r = unsafe {
        rkmem_bench_slub_layout(
            name.as_char_ptr(),
            size,
            align,
            buf.as_mut_ptr(),
            max as u32,
            &mut objs,
            &mut order,
        )
    };
    if r < 0 {
        return Err(Error::from_errno(r));
    }
    Ok((objs, 1 << order))
}

/// Frees what [`classes::rkmalloc`] returned (inlined: it is part of the timed loops).
#[inline(always)]
fn rkfree(classes: &classes::Classes, arena: &Arena, a: RkAlloc) -> Result {
    if a.free(classes, arena) {
        Ok(())
    } else {
        Err(EIO)
    }
}

// The timed loops of rkmem are functions of their own (`inline(never)`), so that each is
// compiled alone and not as part of `run`, whose size would otherwise change their code.

/// Times `n` rkmalloc+rkfree pairs of `size`; nanoseconds.
#[inline(never)]
fn rkmalloc_pairs(classes: &classes::Classes, arena: &Arena, size: u64, n: u32) -> Result<u64> {
    let t0 = now_ns();
    for _ in 0..n {
        let a = classes::rkmalloc(classes, arena, size, true)?;
        rkfree(classes, arena, a)?;
    }
    Ok(now_ns() - t0)
}

/// Times `n` alloc+free pairs of `order` from the arena; nanoseconds.
#[inline(never)]
fn arena_pairs(arena: &Arena, order: u32, n: u32) -> Result<u64> {
    let t0 = now_ns();
    for _ in 0..n {
        let p: Pages = arena.alloc(order, true)?;
        arena.free(p).map_err(|_| EIO)?;
    }
    Ok(now_ns() - t0)
}

/// Times `n` alloc+free pairs of an rkmem mempool; nanoseconds.
#[inline(never)]
fn mempool_pairs(p: &Mempool, n: u32) -> Result<u64> {
    let t0 = now_ns();
    for _ in 0..n {
        let e = p.alloc(true)?;
        p.free(e).map_err(|_| EIO)?;
    }
    Ok(now_ns() - t0)
}

/// One run of the mixed trace `ops` on `held`'s slots through rkmalloc: nanoseconds; with
/// `peak`, the largest growth of the arena's used pages, sampled every 64 operations. Every
/// slot is empty again at the end.
#[inline(never)]
fn rkmalloc_trace(
    classes: &classes::Classes,
    arena: &Arena,
    ops: &[u32],
    held: &mut [Option<RkAlloc>],
    peak: Option<&mut u64>,
) -> Result<u64> {
    use crate::rkcore::measure::trace_unpack;
    let base = arena.used_pages();
    let mut top = 0usize;
    let sample = peak.is_some();
    let t0 = now_ns();
    let mut r = Ok(());
    for (i, &op) in ops.iter().enumerate() {
        let (slot, size) = trace_unpack(op);
        let Some(cell) = held.get_mut(slot as usize) else {
            continue;
        };
        if let Some(a) = cell.take() {
            if let Err(e) = rkfree(classes, arena, a) {
                r = Err(e);
                break;
            }
        }
        match classes::rkmalloc(classes, arena, u64::from(size), true) {
            Ok(a) => *cell = Some(a),
            Err(e) => {
                r = Err(e);
                break;
            }
        }
        if sample && i % 64 == 63 {
            top = top.max(arena.used_pages().saturating_sub(base));
        }
    }
    let t = now_ns() - t0;
    let mut freed = Ok(());
    for a in held.iter_mut().filter_map(Option::take) {
        let f = rkfree(classes, arena, a);
        freed = freed.and(f);
    }
    r?;
    freed?;
    if let Some(p) = peak {
        *p = top as u64;
    }
    Ok(t)
}

/// Times `n` alloc+free pairs of an rkmem cache; nanoseconds.
fn cache_pairs(c: &Cache, n: u32) -> Result<u64> {
    let t0 = now_ns();
    for _ in 0..n {
        let o = c.alloc(true)?;
        c.free(o).map_err(|_| EIO)?;
    }
    Ok(now_ns() - t0)
}

/// Fills `buf` to its capacity with objects of `c`; on a failure `buf` keeps what it got.
fn fill(c: &Cache, buf: &mut KVec<Obj>) -> Result {
    while buf.len() < buf.capacity() {
        // Cannot fail: the length is below the capacity.
        drop(buf.push_within_capacity(c.alloc(true)?));
    }
    Ok(())
}

/// Times `rounds` batches of `buf.capacity()` allocations then frees of an rkmem cache.
fn cache_batch(c: &Cache, buf: &mut KVec<Obj>, rounds: u32) -> Result<u64> {
    let t0 = now_ns();
    for _ in 0..rounds {
        let failed = fill(c, buf).err();
        let mut bad = false;
        for o in buf.drain_all() {
            bad |= c.free(o).is_err();
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if bad {
            return Err(EIO);
        }
    }
    Ok(now_ns() - t0)
}

/// Bytes of the slabs that hold one batch of an rkmem cache (counted as for SLUB: the slabs
/// holding the live objects).
fn cache_held(c: &Cache, buf: &mut KVec<Obj>) -> Result<u64> {
    let slab_bytes = c.layout.pages() * PAGE_SIZE;
    let r = fill(c, buf);
    // Slabs are naturally aligned blocks of the buddy allocator: count the distinct bases.
    let base = |o: &Obj| o.addr() & !(slab_bytes - 1);
    let slabs = buf
        .iter()
        .enumerate()
        .filter(|(i, o)| !buf.iter().take(*i).any(|p| base(p) == base(o)))
        .count();
    for o in buf.drain_all() {
        let _ = c.free(o);
    }
    r?;
    Ok(slabs as u64 * slab_bytes as u64)
}

/// The consumer of [`cache_remote`]: the objects to free on the CPU it runs on.
struct RemoteFree<'a> {
    cache: &'a Cache,
    objs: &'a mut KVec<Obj>,
    bad: bool,
}

/// Frees a [`RemoteFree`]'s objects on this CPU; its own time, nanoseconds.
///
/// # Safety
///
/// `arg` points to a live `RemoteFree` that nothing else uses until this returns.
unsafe extern "C" fn remote_consume(arg: *mut c_void) -> kernel::ffi::c_long {
    // SAFETY: the caller's promise (`cache_remote` passes its own `RemoteFree` and waits).
    let r = unsafe { &mut *arg.cast::<RemoteFree<'_>>() };
    let t0 = now_ns();
    for o in r.objs.drain_all() {
        r.bad |= r.cache.free(o).is_err();
    }
    (now_ns() - t0) as kernel::ffi::c_long
}

/// `rounds` x (`buf.capacity()` allocations of an rkmem cache on this CPU, their frees on
/// `cpu`): both sides' own time, nanoseconds. The caller keeps this task on its CPU.
fn cache_remote(c: &Cache, buf: &mut KVec<Obj>, rounds: u32, cpu: i32) -> Result<u64> {
    let mut total = 0u64;
    for _ in 0..rounds {
        let t0 = now_ns();
        let failed = fill(c, buf).err();
        total += now_ns() - t0;
        let mut r = RemoteFree {
            cache: c,
            objs: buf,
            bad: false,
        };
        // SAFETY: `remote_consume` gets `r`, which lives until `rkmem_bench_on_cpu` returns
        // (it waits for the work item) and is not touched here meanwhile.
        let t = unsafe {
            rkmem_bench_on_cpu(
                cpu,
                Some(remote_consume),
                core::ptr::from_mut(&mut r).cast(),
            )
        };
        if t < 0 {
            // The CPU went offline and the consumer did not run: free here.
            for o in r.objs.drain_all() {
                r.bad |= c.free(o).is_err();
            }
        }
        if r.bad {
            return Err(EIO);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        total += c_result(t as i64)?;
    }
    Ok(total)
}

/// Keeps this task on its CPU while alive (`migrate_disable`: it may still sleep).
struct Pinned;

impl Pinned {
    fn new() -> Pinned {
        // SAFETY: process context; undone by `drop`.
        unsafe { crate::ffi::rkmem_pin_cpu() };
        Pinned
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: pairs with `rkmem_pin_cpu` in `new`.
        unsafe { crate::ffi::rkmem_unpin_cpu() };
    }
}

/// SLUB's exact slab pages (`NR_SLAB_UNRECLAIMABLE_B` with every CPU's unfolded difference).
fn host_slab_pages() -> u64 {
    // SAFETY: reads counters; no preconditions.
    unsafe { rkmem_bench_slab_pages() }
}

/// The footprint and compaction sequences: `n` allocations, then each object kept with
/// probability `1 / keep_one_in` (from `seed`) and freed otherwise, then `more` allocations;
/// `alloc` and `free` are one side's. The survivors are left in `live`.
#[allow(clippy::too_many_arguments)]
fn footprint_sequence<T>(
    n: u32,
    keep_one_in: u32,
    more: u32,
    seed: u64,
    live: &mut KVec<T>,
    mut alloc: impl FnMut() -> Result<T>,
    mut free: impl FnMut(T),
) -> Result {
    let mut rng = crate::rkcore::measure::Rng::new(seed);
    let mut all = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    let mut r = Ok(());
    for _ in 0..n {
        match alloc() {
            Ok(o) => drop(all.push_within_capacity(o)),
            Err(e) => {
                r = Err(e);
                break;
            }
        }
    }
    for o in all.drain_all() {
        if rng.below(keep_one_in) != 0 || r.is_err() {
            free(o);
        } else {
            drop(live.push_within_capacity(o));
        }
    }
    r?;
    for _ in 0..more {
        drop(live.push_within_capacity(alloc()?));
    }
    Ok(())
}

/// The latencies of `n` allocations then `n` frees, recorded one by one into `h` (allocations
/// in `h[0]`, frees in `h[1]`), in batches of up to `batch` live objects; `one(buf, k, a, f)`
/// runs one batch of `k` and stores each operation's nanoseconds in `a` and `f`.
fn latency(
    n: u32,
    batch: u32,
    h: &mut [KBox<crate::rkcore::measure::Histogram>; 2],
    mut one: impl FnMut(u32, &mut [u32], &mut [u32]) -> Result,
) -> Result {
    let mut a = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
    a.extend_with(batch as usize, 0u32, GFP_KERNEL)?;
    let mut f = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
    f.extend_with(batch as usize, 0u32, GFP_KERNEL)?;
    let mut left = n;
    while left > 0 {
        let k = left.min(batch);
        let (ak, fk) = (&mut a[..k as usize], &mut f[..k as usize]);
        one(k, ak, fk)?;
        for &v in ak.iter() {
            h[0].record(u64::from(v));
        }
        for &v in fk.iter() {
            h[1].record(u64::from(v));
        }
        left -= k;
        // SAFETY: process context (an ioctl).
        if unsafe { rkmem_bench_resched() } {
            return Err(EINTR);
        }
    }
    Ok(())
}

/// Objects live at once in a latency run (slab and kmalloc kinds).
const BATCH: usize = uapi::RKMEM_BENCH_BATCH as usize;

/// The cycle counter that times single operations (glue/bench.c: the clock is too coarse on
/// UML); [`lat_summary`] converts to nanoseconds.
fn cycles() -> u64 {
    // SAFETY: reads the cycle counter; no preconditions.
    unsafe { crate::ffi::rkmem_bench_cycles() }
}

/// One latency batch of rkmem: `k` allocations into `buf`, each timed into `a` (cycles), then
/// their frees, each timed into `f`. `EIO` if a free is refused; on an allocation failure the batch's
/// objects are freed.
fn lat_run<T>(
    k: u32,
    a: &mut [u32],
    f: &mut [u32],
    buf: &mut KVec<T>,
    mut alloc: impl FnMut() -> Result<T>,
    mut free: impl FnMut(T) -> bool,
) -> Result {
    let mut failed = None;
    for slot in a.iter_mut().take(k as usize) {
        let t0 = cycles();
        let r = alloc();
        *slot = (cycles() - t0).min(u64::from(u32::MAX)) as u32;
        match r {
            // Cannot fail: at most `k <= capacity` objects are pushed.
            Ok(o) => drop(buf.push_within_capacity(o)),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let mut bad = false;
    for (slot, o) in f.iter_mut().zip(buf.drain_all()) {
        let t0 = cycles();
        bad |= !free(o);
        *slot = (cycles() - t0).min(u64::from(u32::MAX)) as u32;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if bad {
        return Err(EIO);
    }
    Ok(())
}

/// One latency batch of the host kernel's `kind` (0: SLUB cache `s`, 1: kmalloc of `size`,
/// 2: pages of `order`), in C.
#[allow(clippy::too_many_arguments)]
fn host_lat(
    kind: i32,
    s: *mut KmemCache,
    size: usize,
    order: u32,
    buf: &mut [*mut c_void],
    k: u32,
    a: &mut [u32],
    f: &mut [u32],
) -> Result {
    let k = k
        .min(buf.len() as u32)
        .min(a.len() as u32)
        .min(f.len() as u32);
    // SAFETY: `s` is a live cache for kind 0 (unused otherwise); `buf`, `a` and `f` are
    // writable for `k` entries for the whole call, which frees what it allocates.
    let r = unsafe {
        rkmem_bench_latency(
            kind,
            s,
            size,
            order,
            buf.as_mut_ptr(),
            k,
            a.as_mut_ptr(),
            f.as_mut_ptr(),
        )
    };
    c_result(i64::from(r)).map(|_| ())
}

/// The medians, 99th percentiles and maxima of `h` (allocations, then frees; cycles), in
/// nanoseconds at `per_ms` cycles per millisecond.
fn lat_summary(h: &[KBox<crate::rkcore::measure::Histogram>; 2], per_ms: u64) -> [u64; 6] {
    let [a, f] = [h[0].summary(), h[1].summary()];
    // Cycles were clamped to u32 when recorded: the product fits in a u64.
    [a[0], a[1], a[2], f[0], f[1], f[2]].map(|c| {
        c.min(u64::from(u32::MAX))
            .saturating_mul(1_000_000)
            .checked_div(per_ms)
            .unwrap_or(0)
    })
}

/// Two empty histograms, on the heap (each is about 2 KiB).
fn histograms() -> Result<[KBox<crate::rkcore::measure::Histogram>; 2]> {
    use crate::rkcore::measure::Histogram;
    Ok([
        KBox::new(Histogram::new(), GFP_KERNEL)?,
        KBox::new(Histogram::new(), GFP_KERNEL)?,
    ])
}

/// The `k`-th smallest of `v` (0-based), without sorting or indexing.
fn kth(v: &[u64], k: usize) -> u64 {
    v.iter()
        .copied()
        .find(|x| {
            let less = v.iter().filter(|y| *y < x).count();
            let equal = v.iter().filter(|y| *y == x).count();
            less <= k && k < less + equal
        })
        .unwrap_or(0)
}

/// Median and minimum of `v`.
fn median_min(v: &[u64]) -> (u64, u64) {
    let n = v.len();
    let med = if n % 2 == 1 {
        kth(v, n / 2)
    } else {
        (kth(v, n / 2 - 1) + kth(v, n / 2)) / 2
    };
    (med, v.iter().copied().min().unwrap_or(0))
}

/// Runs the repetitions: `rk` and `host` each time one repetition of `ops` operations (in
/// nanoseconds); fills the times of `b`.
fn repeat(
    b: &mut RkmemBench,
    ops: u64,
    mut rk: impl FnMut() -> Result<u64>,
    mut host: impl FnMut() -> Result<u64>,
) -> Result {
    let do_rk = b.flags & uapi::RKMEM_BENCH_ONLY_HOST == 0;
    let do_host = b.flags & uapi::RKMEM_BENCH_ONLY_RKMEM == 0;
    let host_first = b.flags & uapi::RKMEM_BENCH_HOST_FIRST != 0;
    let reps = b.reps as usize;
    let mut rk_t = [0u64; uapi::RKMEM_BENCH_MAX_REPS as usize];
    let mut host_t = [0u64; uapi::RKMEM_BENCH_MAX_REPS as usize];
    for (i, (rt, ht)) in rk_t
        .iter_mut()
        .zip(host_t.iter_mut())
        .take(reps)
        .enumerate()
    {
        if (i % 2 == 1) == host_first {
            if do_rk {
                *rt = rk()?;
            }
            if do_host {
                *ht = host()?;
            }
        } else {
            if do_host {
                *ht = host()?;
            }
            if do_rk {
                *rt = rk()?;
            }
        }
        // SAFETY: `cond_resched` and `signal_pending(current)` have no preconditions in process
        // context, which an ioctl is.
        if unsafe { rkmem_bench_resched() } {
            return Err(EINTR);
        }
    }
    let ps = |ns: u64| ns.saturating_mul(1000).checked_div(ops).unwrap_or(0);
    let reps = reps.min(rk_t.len());
    if do_rk {
        let (med, min) = median_min(rk_t.get(..reps).unwrap_or(&[]));
        b.rkmem_ps = ps(med);
        b.rkmem_min_ps = ps(min);
    }
    if do_host {
        let (med, min) = median_min(host_t.get(..reps).unwrap_or(&[]));
        b.host_ps = ps(med);
        b.host_min_ps = ps(min);
    }
    Ok(())
}

/// Checks the request; `EINVAL` for anything out of range.
fn validate(b: &RkmemBench) -> Result {
    let only = uapi::RKMEM_BENCH_ONLY_RKMEM | uapi::RKMEM_BENCH_ONLY_HOST;
    let known = only | uapi::RKMEM_BENCH_HOST_FIRST | uapi::RKMEM_BENCH_KEEP;
    if b.reserved != 0 || b.flags & !known != 0 || b.flags & only == only {
        return Err(EINVAL);
    }
    let seeded = matches!(
        b.kind,
        uapi::RKMEM_BENCH_FOOTPRINT | uapi::RKMEM_BENCH_TRACE | uapi::RKMEM_BENCH_COMPACT
    );
    if b.seed != 0 && !seeded {
        return Err(EINVAL);
    }
    let size_ok = (1..=uapi::RKMEM_CACHE_SIZE_MAX).contains(&b.size);
    let align_ok = b.align.is_power_of_two() && b.align <= PAGE_SIZE as u32;
    let timed_ok = (1..=uapi::RKMEM_BENCH_MAX_ITERS).contains(&b.iters)
        && (1..=uapi::RKMEM_BENCH_MAX_REPS).contains(&b.reps);
    let ok = match b.kind {
        uapi::RKMEM_BENCH_SLAB_PAIR | uapi::RKMEM_BENCH_SLAB_BATCH => {
            size_ok && align_ok && b.order == 0 && timed_ok
        }
        uapi::RKMEM_BENCH_KMALLOC | uapi::RKMEM_BENCH_MEMPOOL => {
            size_ok && b.align == 0 && b.order == 0 && timed_ok
        }
        uapi::RKMEM_BENCH_PAGES => {
            b.size == 0 && b.align == 0 && b.order <= uapi::RKMEM_MAX_ORDER && timed_ok
        }
        uapi::RKMEM_BENCH_LAYOUT => {
            size_ok && align_ok && b.order == 0 && b.iters == 0 && b.reps == 0 && b.flags == 0
        }
        uapi::RKMEM_BENCH_REMOTE => size_ok && align_ok && b.order == 0 && timed_ok,
        uapi::RKMEM_BENCH_FOOTPRINT | uapi::RKMEM_BENCH_COMPACT => {
            size_ok
                && align_ok
                && b.order == 0
                && (1..=FOOTPRINT_MAX_OBJECTS).contains(&b.iters)
                && u64::from(b.iters) * u64::from(b.size) <= FOOTPRINT_MAX_BYTES
                && b.reps == 0
                && b.flags == 0
        }
        uapi::RKMEM_BENCH_TRACE => {
            (1..=uapi::RKMEM_BENCH_TRACE_MAX_SIZE).contains(&b.size)
                && b.align == 0
                && b.order == 0
                && timed_ok
        }
        uapi::RKMEM_BENCH_LATENCY => {
            let what = if b.size == 0 {
                b.align == 0 && b.order <= uapi::RKMEM_MAX_ORDER
            } else {
                size_ok && (b.align == 0 || align_ok) && b.order == 0
            };
            what && timed_ok && b.reps == 1 && b.flags & (only | uapi::RKMEM_BENCH_KEEP) == 0
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// `RKMEM_IOC_BENCH` on a file whose kept caches (`RKMEM_BENCH_KEEP`) are in `kept`.
pub(crate) fn run(user: UserSlice, kept: &Mutex<Option<Kept>>) -> Result {
    let (mut r, mut w) = user.reader_writer();
    let mut b: RkmemBench = r.read()?;
    validate(&b)?;
    b.cpu = kernel::cpu::CpuId::current().as_u32();
    for out in [
        &mut b.rkmem_ps,
        &mut b.host_ps,
        &mut b.rkmem_min_ps,
        &mut b.host_min_ps,
        &mut b.rkmem_bytes,
        &mut b.host_bytes,
    ] {
        *out = 0;
    }
    (b.rkmem_objs, b.rkmem_pages, b.host_objs, b.host_pages) = (0, 0, 0, 0);
    (b.rkmem_lat_ns, b.host_lat_ns) = ([0; 6], [0; 6]);
    (b.rkmem_pages_held, b.host_pages_held) = (0, 0);
    let shared = crate::shared().ok_or(ENODEV)?;
    let arena: &'static Arena = &shared.arena;
    let n = b.iters;
    let warm = n.min(uapi::RKMEM_BENCH_BATCH);
    // Whatever this call does, the file's kept caches are taken out: a slab call with the flag
    // and the same parameters times them and puts them back, any other call drops them.
    let keep = b.flags & uapi::RKMEM_BENCH_KEEP != 0;
    // Another thread's call on this file may hold it for a long time (the maximum counts):
    // wait interruptibly.
    let mut slot = crate::arena::lock_interruptible(kept)?;
    let old = slot.take();
    match b.kind {
        uapi::RKMEM_BENCH_LAYOUT => {
            let c = bench_cache(arena, &b)?;
            b.rkmem_objs = c.layout.objects();
            b.rkmem_pages = c.layout.pages() as u32;
            (b.host_objs, b.host_pages) = slub_layout(b.size, b.align)?;
        }
        uapi::RKMEM_BENCH_SLAB_PAIR | uapi::RKMEM_BENCH_SLAB_BATCH => {
            let k = match old {
                Some(k) if keep && k.serves(&b) => k,
                other => {
                    drop(other);
                    Kept::new(arena, &b)?
                }
            };
            let (c, s) = (&k.rk, &k.slub);
            b.rkmem_objs = c.layout.objects();
            b.rkmem_pages = c.layout.pages() as u32;
            if b.kind == uapi::RKMEM_BENCH_SLAB_PAIR {
                cache_pairs(c, warm)?;
                s.pairs(warm)?;
                repeat(&mut b, u64::from(n), || cache_pairs(c, n), || s.pairs(n))?;
            } else {
                let batch = n.min(uapi::RKMEM_BENCH_BATCH);
                let rounds = n.div_ceil(batch);
                let mut buf = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
                let mut sbuf: KVec<*mut c_void> = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
                sbuf.extend_with(batch as usize, core::ptr::null_mut(), GFP_KERNEL)?;
                cache_batch(c, &mut buf, 1)?;
                s.batch(&mut sbuf, 1, None)?;
                let ops = u64::from(rounds) * u64::from(batch);
                let mut held = 0u64;
                repeat(
                    &mut b,
                    ops,
                    || cache_batch(c, &mut buf, rounds),
                    || s.batch(&mut sbuf, rounds, None),
                )?;
                b.rkmem_bytes = cache_held(c, &mut buf)?;
                s.batch(&mut sbuf, 1, Some(&mut held))?;
                b.host_bytes = held;
            }
            if keep {
                *slot = Some(k);
            }
            // Otherwise both caches go here (the rkmem cache's slabs back to the arena).
        }
        uapi::RKMEM_BENCH_KMALLOC => {
            let size = b.size as usize;
            let rk = |k: u32| rkmalloc_pairs(&shared.classes, arena, size as u64, k);
            rk(warm)?;
            kmalloc_pairs(size, warm)?;
            repeat(&mut b, u64::from(n), || rk(n), || kmalloc_pairs(size, n))?;
        }
        uapi::RKMEM_BENCH_PAGES => {
            let order = b.order;
            let rk = |k: u32| arena_pairs(arena, order, k);
            rk(warm)?;
            pages_pairs(order, warm)?;
            repeat(&mut b, u64::from(n), || rk(n), || pages_pairs(order, n))?;
        }
        uapi::RKMEM_BENCH_MEMPOOL => {
            let min = uapi::RKMEM_BENCH_POOL_MIN;
            let source = Source::rkmalloc(&shared.classes, u64::from(b.size))?;
            let p = Arc::pin_init(
                Mempool::new(arena, 0, NO_OWNER, source, min as usize, false)?,
                GFP_KERNEL,
            )?;
            // On failure the pool's drop gives back what it preallocated.
            p.fill()?;
            let hp = HostPool::new(min, b.size as usize)?;
            let rk = |k: u32| mempool_pairs(&p, k);
            rk(warm)?;
            hp.pairs(warm)?;
            repeat(&mut b, u64::from(n), || rk(n), || hp.pairs(n))?;
        }
        uapi::RKMEM_BENCH_REMOTE => {
            let c = bench_cache(arena, &b)?;
            let slub = SlubCache::new(b.size, b.align)?;
            let batch = n.min(uapi::RKMEM_BENCH_BATCH);
            let rounds = n.div_ceil(batch);
            let mut buf = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
            let mut sbuf: KVec<*mut c_void> = KVec::with_capacity(batch as usize, GFP_KERNEL)?;
            sbuf.extend_with(batch as usize, core::ptr::null_mut(), GFP_KERNEL)?;
            let _pinned = Pinned::new();
            // SAFETY: reads the online mask; no preconditions.
            let cpu = unsafe { rkmem_bench_other_cpu() };
            if cpu < 0 {
                return Err(ENODEV);
            }
            cache_remote(&c, &mut buf, 1, cpu)?;
            slub.remote(&mut sbuf, 1, cpu)?;
            let ops = u64::from(rounds) * u64::from(batch);
            repeat(
                &mut b,
                ops,
                || cache_remote(&c, &mut buf, rounds, cpu),
                || slub.remote(&mut sbuf, rounds, cpu),
            )?;
            b.rkmem_objs = c.layout.objects();
            b.rkmem_pages = c.layout.pages() as u32;
            // The objects freed on the other CPU sit in its array: back to the slabs before
            // the cache goes.
            c.drain_cpu();
        }
        uapi::RKMEM_BENCH_FOOTPRINT => {
            let c = bench_cache(arena, &b)?;
            let slub = SlubCache::new(b.size, b.align)?;
            let cap = (n + n / 4) as usize;
            let mut live: KVec<Obj> = KVec::with_capacity(cap, GFP_KERNEL)?;
            let r = footprint_sequence(
                n,
                2,
                n / 4,
                b.seed,
                &mut live,
                || c.alloc(true),
                |o| {
                    let _ = c.free(o);
                },
            );
            let (pages, meta) = c.footprint();
            for o in live.drain_all() {
                let _ = c.free(o);
            }
            c.drain_cpu();
            r?;
            b.rkmem_pages_held = pages;
            b.rkmem_bytes = meta;
            let mut hlive: KVec<*mut c_void> = KVec::with_capacity(cap, GFP_KERNEL)?;
            let base = host_slab_pages();
            let r = footprint_sequence(
                n,
                2,
                n / 4,
                b.seed,
                &mut hlive,
                || {
                    NonNull::new(slub.alloc())
                        .map(NonNull::as_ptr)
                        .ok_or(ENOMEM)
                },
                // SAFETY: each object came from `slub.alloc` and is freed once.
                |p| unsafe { slub.free(p) },
            );
            b.host_pages_held = host_slab_pages().saturating_sub(base);
            for p in hlive.drain_all() {
                // SAFETY: as above.
                unsafe { slub.free(p) };
            }
            r?;
        }
        uapi::RKMEM_BENCH_COMPACT => {
            let c = bench_cache(arena, &b)?;
            let slub = SlubCache::new(b.size, b.align)?;
            let mut live: KVec<Obj> = KVec::with_capacity(n as usize, GFP_KERNEL)?;
            let mut r = footprint_sequence(
                n,
                10,
                0,
                b.seed,
                &mut live,
                || c.alloc(true),
                |o| {
                    let _ = c.free(o);
                },
            );
            if r.is_ok() {
                // The benchmark holds its objects as a file holds handles: all of them move.
                let mut o = crate::slab::Compacted::default();
                let t0 = now_ns();
                r = c.compact(
                    &mut |f| {
                        for obj in live.iter_mut() {
                            f(obj);
                        }
                    },
                    &mut o,
                );
                let t = now_ns() - t0;
                let (pages, meta) = c.footprint();
                b.rkmem_pages_held = pages;
                b.rkmem_bytes = meta;
                b.rkmem_objs = o.moved.min(u64::from(u32::MAX)) as u32;
                b.rkmem_ps = t.saturating_mul(1000).checked_div(o.moved).unwrap_or(0);
            }
            for o in live.drain_all() {
                let _ = c.free(o);
            }
            c.drain_cpu();
            r?;
            let mut hlive: KVec<*mut c_void> = KVec::with_capacity(n as usize, GFP_KERNEL)?;
            let base = host_slab_pages();
            let r = footprint_sequence(
                n,
                10,
                0,
                b.seed,
                &mut hlive,
                || {
                    NonNull::new(slub.alloc())
                        .map(NonNull::as_ptr)
                        .ok_or(ENOMEM)
                },
                // SAFETY: each object came from `slub.alloc` and is freed once.
                |p| unsafe { slub.free(p) },
            );
            slub.shrink();
            b.host_pages_held = host_slab_pages().saturating_sub(base);
            for p in hlive.drain_all() {
                // SAFETY: as above.
                unsafe { slub.free(p) };
            }
            r?;
        }
        uapi::RKMEM_BENCH_TRACE => {
            use crate::rkcore::measure::fill_trace;
            let slots = uapi::RKMEM_BENCH_TRACE_SLOTS as usize;
            let mut ops: KVVec<u32> = KVVec::with_capacity(n as usize, GFP_KERNEL)?;
            ops.extend_with(n as usize, 0, GFP_KERNEL)?;
            fill_trace(&mut ops, b.seed, slots as u32, b.size);
            let mut held: KVec<Option<RkAlloc>> = KVec::with_capacity(slots, GFP_KERNEL)?;
            for _ in 0..slots {
                held.push(None, GFP_KERNEL)?;
            }
            let mut hslots: KVec<*mut c_void> = KVec::with_capacity(slots, GFP_KERNEL)?;
            hslots.extend_with(slots, core::ptr::null_mut(), GFP_KERNEL)?;
            let mut rk = |peak: Option<&mut u64>| {
                rkmalloc_trace(&shared.classes, arena, &ops, &mut held, peak)
            };
            let mut host = |peak: Option<&mut u64>| -> Result<u64> {
                let peak = peak.map_or(core::ptr::null_mut(), core::ptr::from_mut);
                // SAFETY: `ops` holds `n` operations whose slots are below `slots`, the length
                // of `hslots`; `peak` is null or a writable `u64`; all for the whole call.
                let t = unsafe {
                    rkmem_bench_trace_kmalloc(ops.as_ptr(), n, hslots.as_mut_ptr(), peak)
                };
                // SAFETY: `hslots` holds kmalloc'd pointers or null, freed once here.
                unsafe { rkmem_bench_trace_kfree_all(hslots.as_mut_ptr(), slots as u32) };
                c_result(t)
            };
            let mut rk_peak = 0u64;
            let mut host_peak = 0u64;
            rk(Some(&mut rk_peak))?;
            host(Some(&mut host_peak))?;
            repeat(&mut b, u64::from(n), || rk(None), || host(None))?;
            b.rkmem_pages_held = rk_peak;
            b.host_pages_held = host_peak;
        }
        uapi::RKMEM_BENCH_LATENCY => {
            let mut rh = histograms()?;
            let mut hh = histograms()?;
            if b.size != 0 && b.align != 0 {
                let c = bench_cache(arena, &b)?;
                let slub = SlubCache::new(b.size, b.align)?;
                let mut buf: KVec<Obj> = KVec::with_capacity(BATCH, GFP_KERNEL)?;
                latency(n, BATCH as u32, &mut rh, |k, a, f| {
                    lat_run(k, a, f, &mut buf, || c.alloc(true), |o| c.free(o).is_ok())
                })?;
                let mut sbuf: KVec<*mut c_void> = KVec::with_capacity(BATCH, GFP_KERNEL)?;
                sbuf.extend_with(BATCH, core::ptr::null_mut(), GFP_KERNEL)?;
                latency(n, BATCH as u32, &mut hh, |k, a, f| {
                    host_lat(0, slub.0.as_ptr(), 0, 0, &mut sbuf, k, a, f)
                })?;
                c.drain_cpu();
            } else if b.size != 0 {
                let size = u64::from(b.size);
                let mut buf: KVec<RkAlloc> = KVec::with_capacity(BATCH, GFP_KERNEL)?;
                latency(n, BATCH as u32, &mut rh, |k, a, f| {
                    lat_run(
                        k,
                        a,
                        f,
                        &mut buf,
                        || classes::rkmalloc(&shared.classes, arena, size, true),
                        |x| x.free(&shared.classes, arena),
                    )
                })?;
                let mut sbuf: KVec<*mut c_void> = KVec::with_capacity(BATCH, GFP_KERNEL)?;
                sbuf.extend_with(BATCH, core::ptr::null_mut(), GFP_KERNEL)?;
                latency(n, BATCH as u32, &mut hh, |k, a, f| {
                    host_lat(
                        1,
                        core::ptr::null_mut(),
                        b.size as usize,
                        0,
                        &mut sbuf,
                        k,
                        a,
                        f,
                    )
                })?;
            } else {
                let order = b.order;
                // At most 4 MiB live at once.
                let batch = BATCH.min((1024usize >> order).max(1));
                let mut buf: KVec<Pages> = KVec::with_capacity(batch, GFP_KERNEL)?;
                latency(n, batch as u32, &mut rh, |k, a, f| {
                    lat_run(
                        k,
                        a,
                        f,
                        &mut buf,
                        || arena.alloc(order, true),
                        |p| arena.free(p).is_ok(),
                    )
                })?;
                let mut sbuf: KVec<*mut c_void> = KVec::with_capacity(batch, GFP_KERNEL)?;
                sbuf.extend_with(batch, core::ptr::null_mut(), GFP_KERNEL)?;
                latency(n, batch as u32, &mut hh, |k, a, f| {
                    host_lat(2, core::ptr::null_mut(), 0, order, &mut sbuf, k, a, f)
                })?;
            }
            // SAFETY: a 2 ms calibration loop in process context; no preconditions.
            let per_ms = unsafe { crate::ffi::rkmem_bench_cycles_per_ms() };
            b.rkmem_lat_ns = lat_summary(&rh, per_ms);
            b.host_lat_ns = lat_summary(&hh, per_ms);
        }
        _ => return Err(EINVAL),
    }
    w.write(&b)?;
    Ok(())
}
