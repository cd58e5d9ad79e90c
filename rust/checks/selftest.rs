// SPDX-License-Identifier: GPL-2.0

//! In-kernel checks behind `RKMEM_IOC_SELFTEST`: the bad frees that user space cannot cause
//! through its handle table (it can only name handles it holds), made on purpose against the
//! live allocator. Each must be refused with the right error, counted, and leave the allocator
//! consistent: what was allocated here is freed correctly afterwards.

use crate::arena::{Arena, Pages};
use crate::rkcore::buddy::FreeError;
use crate::slab::{Cache, CacheFreeError, Obj};
use kernel::prelude::*;
use kernel::sync::{atomic::Relaxed, Arc};

/// Checks run and failed, and the bad frees made on purpose that the arena refused.
///
/// Every check judges this call's own results (the errors its frees return, the counters of
/// its own temporary caches), never an arena-wide counter: any number of SELFTEST calls and
/// other allocations may run at the same time.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
    /// Refused arena frees of this call: what it added to the `bad_free_*` counters of
    /// /proc/rkmem/stats (each refusal counts in exactly one), reported in the answer so that a
    /// caller running others at the same time can account for them exactly.
    pub(crate) arena_bad_frees: u64,
}

impl Outcome {
    /// Checks that a deliberately bad arena free was refused with `want` (any error if
    /// `None`), counting the refusal.
    fn refused(
        &mut self,
        name: &str,
        got: core::result::Result<(), FreeError>,
        want: Option<FreeError>,
    ) {
        if let Err(e) = got {
            self.arena_bad_frees += 1;
            self.check(name, want.is_none_or(|w| w == e));
        } else {
            self.check(name, false);
        }
    }

    fn check(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            pr_err!("selftest: {} failed\n", name);
        }
    }
}

/// The arena's checks, on a private arena of one 4 MiB block (with the module's code and
/// per-CPU caches): nobody else allocates from it, so a block this call frees stays free until
/// it forges the second free, and its counters are this call's alone. (On the module's arena a
/// block freed here could be handed to another user before the forged free, which would then
/// free that user's block.)
pub(crate) fn run(o: &mut Outcome) -> Result {
    let arena = KVBox::pin_init(Arena::new(1, 1, None)?, GFP_KERNEL)?;
    arena.populate()?;
    run_on(&arena, o)?;
    let st = &arena.stats;
    let counted = [
        &st.bad_free_double,
        &st.bad_free_foreign,
        &st.bad_free_order,
        &st.bad_free_other,
    ]
    .iter()
    .map(|c| c.load(Relaxed))
    .sum::<u64>();
    o.check(
        "every refused free counted once",
        counted == o.arena_bad_frees,
    );
    o.check(
        "nothing left allocated",
        arena.with_buddy(|b| b.used_pages()) == arena.pcp_pages(),
    );
    Ok(())
}

fn run_on(arena: &Arena, o: &mut Outcome) -> Result {
    // Every bad handle below is forged on purpose with `Pages::from_raw_*` (its second case):
    // the arena refuses it from the owner marks or the buddy system's metadata without
    // touching the pages, and the real handle stays the only one that frees them.

    // Double free through the per-CPU path (order 0) and through the buddy path (order 5).
    for order in [0, 5] {
        let p = arena.alloc(order, true)?;
        let page = p.first();
        o.check("free of a live block", arena.free(p).is_ok());
        // SAFETY: the block was freed just above: a deliberately bad handle.
        let again = unsafe { Pages::from_raw_order(page, order) };
        o.refused(
            "double free refused",
            arena.free(again),
            Some(FreeError::DoubleFree),
        );
    }

    // Wrong order: refused, the block stays live and is then freed with its own order.
    let p = arena.alloc(2, true)?;
    let page = p.first();
    // SAFETY: deliberately bad handles of a live block (another order, an inner page).
    let (wrong, inner) = unsafe {
        (
            Pages::from_raw_order(page, 1),
            Pages::from_raw_order(page + 1, 0),
        )
    };
    o.refused(
        "wrong order refused",
        arena.free(wrong),
        Some(FreeError::WrongOrder { allocated: 2 }),
    );
    o.refused(
        "inner page of a live block refused",
        arena.free(inner),
        None,
    );
    o.check("block intact after refused frees", arena.free(p).is_ok());

    // Foreign pages: past the arena, or in a slot that holds no memory.
    // SAFETY: a deliberately bad handle: no such page.
    let foreign = unsafe { Pages::from_raw_order(usize::MAX / 2, 0) };
    o.refused(
        "foreign page refused",
        arena.free(foreign),
        Some(FreeError::NotOwned),
    );

    // Exact allocations: wrong count refused, then freed with the right one.
    let p = arena.alloc_exact(3, true)?;
    let page = p.first();
    // SAFETY: deliberately bad handles of a live exact allocation.
    let (count, block) = unsafe {
        (
            Pages::from_raw_exact(page, 4),
            Pages::from_raw_order(page, 0),
        )
    };
    o.refused(
        "exact free with the wrong count refused",
        arena.free(count),
        None,
    );
    o.refused(
        "exact allocation freed as a block refused",
        arena.free(block),
        None,
    );
    o.check("exact allocation intact", arena.free(p).is_ok());
    // SAFETY: freed just above: a deliberately bad handle.
    let again = unsafe { Pages::from_raw_exact(page, 3) };
    o.refused("exact double free refused", arena.free(again), None);
    Ok(())
}

/// Checks of a slab cache's free path, and in debug mode of its red zones and poison, on a
/// temporary cache of 117-byte objects.
pub(crate) fn run_slab(arena: &'static Arena, debug: bool, o: &mut Outcome) -> Result {
    let c = Arc::pin_init(
        Cache::new(
            arena,
            crate::classes::temporary_cache_id()?,
            b"rkmem-selftest",
            117,
            1,
            None,
            debug,
            u64::MAX,
        )?,
        GFP_KERNEL,
    )?;
    let st = &c.stats;
    let a = c.alloc(true)?;
    let b = c.alloc(true)?;
    o.check("objects are distinct", a != b);
    o.check("objects do not overlap", a.addr().abs_diff(b.addr()) >= 117);
    let (a_addr, b_addr) = (a.addr(), b.addr());

    // A pointer into the middle of an object, and one outside the arena: refused at once in
    // debug mode; without it, when the per-CPU cache drains (the fast path does not look).
    let bad = st.bad_frees.load(Relaxed);
    // SAFETY: deliberately bad handles, freed to this cache and drained before it allocates
    // again (`Obj::from_raw`'s second case): the drain refuses them from the tags and bitmap.
    let (inner, foreign) = unsafe { (Obj::from_raw(a_addr + 1, &c), Obj::from_raw(0x1000, &c)) };
    let inner = inner.map_or(Ok(()), |h| c.free(h));
    let foreign = foreign.map_or(Ok(()), |h| c.free(h));
    c.drain_cpu();
    if debug {
        o.check(
            "free of an inner pointer refused",
            inner == Err(CacheFreeError::NotAnObject),
        );
        o.check(
            "free of a foreign pointer refused",
            foreign == Err(CacheFreeError::Foreign),
        );
    }
    o.check("bad frees counted", st.bad_frees.load(Relaxed) == bad + 2);

    // Double free: caught at once in debug mode, when the per-CPU cache drains otherwise.
    o.check("free of a live object", c.free(a).is_ok());
    c.drain_cpu();
    let bad = st.bad_frees.load(Relaxed);
    // SAFETY: `a` was freed above: a deliberately bad handle, drained before the next
    // allocation.
    let twice = unsafe { Obj::from_raw(a_addr, &c) }.map_or(Ok(()), |h| c.free(h));
    c.drain_cpu();
    o.check(
        "double free refused",
        twice == Err(CacheFreeError::DoubleFree) || st.bad_frees.load(Relaxed) == bad + 1,
    );

    if debug {
        let slot = b_addr - c.layout.object_in_slot();
        // SAFETY: `b` is a live object of this debug cache, held by this function: its slot
        // (red zones and metadata included, `stride` bytes) is not touched by anyone else.
        let bytes = unsafe { core::slice::from_raw_parts(slot as *const u8, c.layout.stride()) };
        o.check(
            "allocation call site recorded",
            c.layout
                .debug_call_site(bytes)
                .is_some_and(|site| site != 0),
        );
        // Write one byte past the object (into the right red zone), then free it.
        let corrupt = st.corruptions.load(Relaxed);
        // SAFETY: in debug mode every object is followed by a red zone of at least 16 bytes in
        // its own slot: the byte after the object belongs to this cache and is not in use.
        unsafe { core::ptr::write_volatile((b_addr + 117) as *mut u8, 0x42) };
        o.check("free after an overrun", c.free(b).is_ok());
        o.check(
            "overrun detected",
            st.corruptions.load(Relaxed) == corrupt + 1,
        );

        // Write into a freed object, then allocate it again.
        let corrupt = st.corruptions.load(Relaxed);
        // SAFETY: `b` was freed just above; its slot stays in the slab (the cache is alive),
        // and nothing else uses it until the next allocation, below.
        unsafe { core::ptr::write_volatile(b_addr as *mut u8, 0x42) };
        // First-fit hands out lower free objects first: allocate until `b` comes back.
        let mut got = KVec::with_capacity(c.layout.objects() as usize, GFP_KERNEL)?;
        for _ in 0..c.layout.objects() {
            let x = c.alloc(true)?;
            let again = x.addr() == b_addr;
            got.push(x, GFP_KERNEL)?;
            if again {
                break;
            }
        }
        o.check(
            "freed object handed out again",
            got.last().is_some_and(|x| x.addr() == b_addr),
        );
        o.check(
            "write after free detected",
            st.corruptions.load(Relaxed) == corrupt + 1,
        );
        o.check(
            "repaired objects freed",
            got.into_iter().all(|x| c.free(x).is_ok()),
        );
    } else {
        o.check("free of the second object", c.free(b).is_ok());
    }
    c.drain_cpu();
    o.check("no object left in use", c.objects_in_use() == 0);
    two_temporary_caches(arena, debug, o)
}

/// Two temporary caches of the same geometry, made as the benchmark and the selftest make
/// theirs (concurrent calls make such pairs): each has its own id, so the page tags and slab
/// magics that carry it refuse an object of the one freed into the other.
fn two_temporary_caches(arena: &'static Arena, debug: bool, o: &mut Outcome) -> Result {
    let new = || -> Result<Arc<Cache>> {
        let id = crate::classes::temporary_cache_id()?;
        Arc::pin_init(
            Cache::new(arena, id, b"rkmem-selftest", 117, 1, None, debug, u64::MAX)?,
            GFP_KERNEL,
        )
    };
    let (c1, c2) = (new()?, new()?);
    o.check("temporary caches have distinct ids", c1.id != c2.id);
    let x = c1.alloc(true)?;
    let x_addr = x.addr();
    let bad = c2.stats.bad_frees.load(Relaxed);
    // The handle names c1: refused at once, before c2's per-CPU array could take it.
    // SAFETY: a second handle of `x`, naming c1, given to c2, which refuses it without
    // touching the object: `x` stays c1's alone.
    let named = unsafe { Obj::from_raw(x_addr, &c1) }.map_or(Ok(()), |h| c2.free(h));
    o.check(
        "a handle of another cache is refused at once",
        named == Err(CacheFreeError::NotAnObject) && c2.stats.bad_frees.load(Relaxed) == bad + 1,
    );
    // A handle forged for c2: the page tags (id + 1) refuse it, at once in debug mode,
    // otherwise when c2's per-CPU array drains into its slabs.
    // SAFETY: deliberately bad for c2 (`Obj::from_raw`'s second case), drained at once.
    let wrong = unsafe { Obj::from_raw(x_addr, &c2) }.map_or(Ok(()), |h| c2.free(h));
    c2.drain_cpu();
    o.check(
        "an object of another temporary cache is refused",
        wrong == Err(CacheFreeError::NotAnObject) || c2.stats.bad_frees.load(Relaxed) == bad + 2,
    );
    o.check("c2 holds nothing", c2.objects_in_use() == 0);
    o.check("the object is still c1's", c1.free(x).is_ok());
    c1.drain_cpu();
    o.check("c1 holds nothing", c1.objects_in_use() == 0);
    // Its slab is empty now: released, its pages untagged while the cache lock is still held
    // (a stale free racing the release is then refused by the tag, never reads the slab).
    let (released, untagged) = c1.release_empty_checked(false, usize::MAX);
    o.check("an empty slab is released", released >= 1);
    o.check("released slabs are untagged under the cache lock", untagged);
    Ok(())
}

use crate::ffi::{rkmem_pin_cpu, rkmem_unpin_cpu};

/// Checks of the per-CPU object arrays (glue/objs.c behind [`ObjCache`]) against a model: a bounded
/// stack whose drains take the oldest objects, under a pseudo-random sequence of pops, pushes,
/// refills and drains on one CPU (migration disabled), then emptied by `flush` (an IPI to the
/// CPU) and by `take_all`.
pub(crate) fn run_percpu(o: &mut Outcome) -> Result {
    use crate::percpu::{nr_cpu_ids, ObjCache, CAP};
    const LIMIT: usize = 8;
    let mut c = ObjCache::new(LIMIT)?;
    o.check("limit 0 refused", ObjCache::new(0).err() == Some(EINVAL));
    o.check(
        "limit above the capacity refused",
        ObjCache::new(CAP + 1).err() == Some(EINVAL),
    );
    let mut model = [0usize; LIMIT];
    let mut len = 0usize;
    let mut next = 0x1000usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut ok = true;
    // SAFETY: paired with `rkmem_unpin_cpu` below, in the same task; nothing in between sleeps
    // in a way that needs migration.
    let cpu = unsafe { rkmem_pin_cpu() };
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed >> 8) as usize % (LIMIT + 3);
        match seed % 4 {
            0 => {
                let want = len.checked_sub(1).map(|top| {
                    len = top;
                    model[top]
                });
                ok &= c.pop() == want;
            }
            1 => {
                let fits = len < LIMIT;
                ok &= c.push(next) == fits;
                if fits {
                    model[len] = next;
                    len += 1;
                }
                next += 8;
            }
            2 => {
                let mut objs = [0usize; LIMIT + 2];
                let n = n.min(objs.len());
                for slot in objs.iter_mut().take(n) {
                    *slot = next;
                    next += 8;
                }
                let took = c.refill(&objs[..n]);
                ok &= took == n.min(LIMIT - len);
                model[len..len + took].copy_from_slice(&objs[..took]);
                len += took;
            }
            _ => {
                let mut out = [0usize; LIMIT + 2];
                let n = n.min(out.len());
                let got = c.drain(&mut out[..n]);
                ok &= got == n.min(len) && out[..got] == model[..got];
                model.copy_within(got..len, 0);
                len -= got;
            }
        }
        ok &= c.count(cpu) == len;
    }
    o.check("per-CPU array matches the model", ok);
    let mut out = [0usize; CAP];
    let flushed = c.flush(cpu, false, &mut out);
    o.check(
        "flush (IPI) empties the array, oldest first",
        flushed.is_ok_and(|n| n == len && out[..n] == model[..len]) && c.count(cpu) == 0,
    );
    for i in 0..3 {
        c.push(0x10 + i * 8);
    }
    // SAFETY: ends the section begun above.
    unsafe { rkmem_unpin_cpu() };
    o.check(
        "flush of an impossible CPU refused",
        c.flush(nr_cpu_ids(), false, &mut out).err() == Some(EINVAL),
    );
    let taken: usize = (0..nr_cpu_ids()).map(|cpu| c.take_all(cpu, &mut out)).sum();
    o.check("take_all finds what was left", taken == 3);
    o.check(
        "every array empty",
        (0..nr_cpu_ids()).all(|cpu| c.count(cpu) == 0),
    );
    Ok(())
}

/// Checks of a mempool's reserve with its source made to fail: non-sleeping allocations are
/// served from the reserve, then fail at once; frees refill the reserve; destroying it gives
/// every element back.
pub(crate) fn run_mempool(arena: &'static Arena, o: &mut Outcome) -> Result {
    use crate::mempool::{Mempool, Source};
    {
        let p = Arc::pin_init(
            Mempool::new(arena, 0, u64::MAX, Source::Order(0), 4, true)?,
            GFP_KERNEL,
        )?;
        p.fill()?;
        let mut got = KVec::with_capacity(4, GFP_KERNEL)?;
        for _ in 0..4 {
            match p.alloc(false) {
                Ok(e) => got.push(e, GFP_KERNEL)?,
                Err(_) => o.check("reserve element served", false),
            }
        }
        o.check("four reserve elements", got.len() == 4);
        o.check("empty reserve fails at once", p.alloc(false) == Err(ENOMEM));
        if let Some(e) = got.pop() {
            o.check("an element freed to its pool", p.free(e).is_ok());
        }
        o.check(
            "a free refills the reserve",
            p.alloc(false).is_ok_and(|e| {
                let _ = p.free(e);
                true
            }),
        );
        for e in got.drain_all() {
            let _ = p.free(e);
        }
        o.check("no element out", p.out() == 0);
        // Destroying the pool drains its reserve the same way (then finds nothing left).
        let before = p.source_frees();
        p.drain_reserve();
        o.check(
            "destroying the pool gives its reserve back",
            p.source_frees() == before + 4,
        );
    }
    Ok(())
}

/// rkmalloc's kfree-style frees: for an object of every size class, the tag mirrored into the
/// host's `struct page` (which the free reads) equals the arena's own record for that page,
/// and the free, which finds the class from the address alone, gives the object back.
pub(crate) fn run_rkmalloc(
    classes: &crate::classes::Classes,
    arena: &Arena,
    o: &mut Outcome,
) -> Result {
    for &size in crate::rkcore::sizeclass::CLASS_SIZES.iter() {
        let mut a = crate::classes::rkmalloc(classes, arena, size as u64, true)?;
        let is_class = matches!(a, crate::classes::RkAlloc::Class { .. });
        o.check("rkmalloc of a class size is a size-class object", is_class);
        let addr = a.addr(arena);
        // SAFETY: `addr` is the object just allocated above, not yet freed.
        let mirrored = unsafe { arena.tag_of_handed_out(addr) };
        let recorded = arena.page_of(addr).map_or(0, |p| arena.tag_of(p));
        o.check(
            "struct page tag mirrors the arena's",
            recorded != 0 && mirrored == recorded,
        );
        o.check("kfree-style free of a class object", a.free(classes, arena));
    }
    Ok(())
}
