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

/// Owner of the benchmark's caches and pools: no open file.
const NO_OWNER: u64 = u64::MAX;
/// Largest SLUB slab, in bytes (`slub_max_order` 3), for the layout probe's buffer.
const SLUB_MAX_SLAB: usize = PAGE_SIZE << 3;
/// Slabs the layout probe fills (`RKMEM_LAYOUT_SLABS` in glue/bench.c) plus one.
const LAYOUT_SLABS: usize = 17;

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

/// Frees what [`classes::rkmalloc`] returned.
fn rkfree(classes: &classes::Classes, arena: &Arena, a: RkAlloc) -> Result {
    if a.free(classes, arena) {
        Ok(())
    } else {
        Err(EIO)
    }
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

/// Times `rounds` batches of `buf.capacity()` allocations then frees of an rkmem cache.
fn cache_batch(c: &Cache, buf: &mut KVec<Obj>, rounds: u32) -> Result<u64> {
    let batch = buf.capacity();
    let t0 = now_ns();
    for _ in 0..rounds {
        let mut failed = None;
        for _ in 0..batch {
            match c.alloc(true) {
                // Cannot fail: at most `capacity` objects are pushed.
                Ok(o) => drop(buf.push_within_capacity(o)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
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
    let mut r = Ok(());
    for _ in 0..buf.capacity() {
        match c.alloc(true) {
            Ok(o) => drop(buf.push_within_capacity(o)),
            Err(e) => {
                r = Err(e);
                break;
            }
        }
    }
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
    let shared = crate::shared().ok_or(ENODEV)?;
    let arena: &'static Arena = &shared.arena;
    let n = b.iters;
    let warm = n.min(uapi::RKMEM_BENCH_BATCH);
    // Whatever this call does, the file's kept caches are taken out: a slab call with the flag
    // and the same parameters times them and puts them back, any other call drops them.
    let keep = b.flags & uapi::RKMEM_BENCH_KEEP != 0;
    let mut slot = kept.lock();
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
            let rk = |k: u32| -> Result<u64> {
                let t0 = now_ns();
                for _ in 0..k {
                    let a = classes::rkmalloc(&shared.classes, arena, size as u64, true)?;
                    rkfree(&shared.classes, arena, a)?;
                }
                Ok(now_ns() - t0)
            };
            rk(warm)?;
            kmalloc_pairs(size, warm)?;
            repeat(&mut b, u64::from(n), || rk(n), || kmalloc_pairs(size, n))?;
        }
        uapi::RKMEM_BENCH_PAGES => {
            let order = b.order;
            let rk = |k: u32| -> Result<u64> {
                let t0 = now_ns();
                for _ in 0..k {
                    let p: Pages = arena.alloc(order, true)?;
                    arena.free(p).map_err(|_| EIO)?;
                }
                Ok(now_ns() - t0)
            };
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
            let rk = |k: u32| -> Result<u64> {
                let t0 = now_ns();
                for _ in 0..k {
                    let e = p.alloc(true)?;
                    p.free(e).map_err(|_| EIO)?;
                }
                Ok(now_ns() - t0)
            };
            rk(warm)?;
            hp.pairs(warm)?;
            repeat(&mut b, u64::from(n), || rk(n), || hp.pairs(n))?;
        }
        _ => return Err(EINVAL),
    }
    w.write(&b)?;
    Ok(())
}
