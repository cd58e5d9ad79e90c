// SPDX-License-Identifier: GPL-2.0

//! The page path: the composition the module's arena runs, and the host tests run unchanged.
//!
//! [`alloc`], [`alloc_exact`] and [`free`] put the pieces together: the buddy system
//! ([`Buddy`]), one CPU's page cache in front of it ([`CpuPages`]: [`Pcp`] and its counters),
//! the owner marks that catch bad frees of cached blocks ([`Marks`]), and the retry policy when
//! the buddy system is out of pages (grow the arena by one block; once it cannot grow, drain the
//! per-CPU caches once; then fail). Every decision of the page path lives here.
//!
//! The module owns the memory, the locks and the counters, and hands them in through
//! [`PageEnv`]: this CPU's cache under its lock, the buddy system under its lock, the marks,
//! growing by a 4 MiB block of the host kernel, draining every CPU's cache, the watermark hook.
//! The lock order is the env's: the CPU cache's lock is taken before the buddy system's, never
//! after it; [`PageEnv::grow`], [`PageEnv::drain_cpus`] and [`PageEnv::pressure`] are called
//! with neither held.
//!
//! # Owner marks
//!
//! The mark of a page is `order + 1` for the first page of every live block handed out by
//! [`alloc`] and 0 otherwise. A free exchanges it with 0, so a double free, a free of a page
//! that is not the start of a live block, or a free with the wrong order is caught in O(1),
//! even when the block would go to a per-CPU cache, where the buddy allocator cannot see it.
//! Exact-size allocations bypass the caches and are checked by the buddy allocator itself.

use super::buddy::{AllocError, Buddy, FreeError, PageMeta};
use super::pcp::{Pcp, PcpError, PCP_MAX_ORDER};
use core::ops::DerefMut;

/// One CPU's page cache and its event counters (plain integers: they live under the cache's
/// lock; a shared atomic counter on the fast path would cost more than the allocation).
#[derive(Clone, Debug)]
pub struct CpuPages<const CAP: usize> {
    /// The cached blocks.
    pub pcp: Pcp<CAP>,
    /// Allocations served from the cache without a refill.
    pub hits: u64,
    /// Allocations through the cache.
    pub allocs: u64,
    /// Frees through the cache.
    pub frees: u64,
}

impl<const CAP: usize> CpuPages<CAP> {
    /// An empty cache that drains `batch` pages when it holds `high`.
    pub fn new(high: usize, batch: usize) -> Result<Self, PcpError> {
        Ok(CpuPages {
            pcp: Pcp::new(high, batch)?,
            hits: 0,
            allocs: 0,
            frees: 0,
        })
    }
}

/// The owner marks, one per page (the module: an atomic byte per page of the arena).
pub trait Marks {
    /// Sets the mark of `page`; `false` if there is no such page.
    fn set(&self, page: usize, mark: i8) -> bool;
    /// Sets the mark of `page` to 0 and returns what it was (`None`: no such page).
    fn take(&self, page: usize) -> Option<i8>;
}

/// Slow-path events the module counts (the per-CPU hits are in [`CpuPages`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An allocation served by the buddy system directly.
    Alloc,
    /// A free given to the buddy system directly.
    Free,
    /// A CPU cache refilled from the buddy system.
    Refill,
    /// A CPU cache drained (a batch, or all of it) to the buddy system.
    Drain,
    /// An allocation failed for want of memory.
    NoMemory,
    /// Blocks the buddy system refused when a CPU cache was drained: cannot happen while the
    /// marks guard every free; counted as bad frees if it ever does.
    Rejected(usize),
}

/// What the module hands the page path: memory, locks and counters.
pub trait PageEnv<const CAP: usize> {
    /// The buddy system's page metadata.
    type Store: DerefMut<Target = [PageMeta]>;
    /// Why growing failed (beyond "no block": that is `Ok(false)`).
    type Error;
    /// Runs `f` with the buddy system locked.
    fn with_buddy<R>(&self, f: impl FnOnce(&mut Buddy<Self::Store>) -> R) -> R;
    /// Runs `f` with this CPU's cache locked (`f` may lock the buddy system: that order only).
    fn with_cpu<R>(&self, f: impl FnOnce(&mut CpuPages<CAP>) -> R) -> R;
    /// The owner marks.
    fn marks(&self) -> &impl Marks;
    /// Adds one block to the buddy system (no lock held); `Ok(false)`: the arena is at its
    /// maximum or the host had none (or, without `may_sleep`, growing would have to wait).
    fn grow(&self, may_sleep: bool) -> Result<bool, Self::Error>;
    /// Empties every CPU's cache into the buddy system (no lock held); returns the pages moved.
    fn drain_cpus(&self) -> usize;
    /// Told the pages in use after an allocation reached the buddy system (no lock held).
    fn pressure(&self, used_pages: usize, may_sleep: bool);
    /// Counts an event.
    fn event(&self, e: Event);
    /// Whether a freed block at `page` may wait in a CPU's cache: not while its slot is being
    /// evacuated (isolated), where it must reach the buddy system so the slot can empty.
    fn cacheable(&self, _page: usize) -> bool {
        true
    }
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAllocError<E> {
    /// A bad order or page count.
    Invalid,
    /// No memory, after growing and draining.
    NoMemory,
    /// Growing failed.
    Grow(E),
}

/// Allocates with `f` from the buddy system; when it is out of memory, grows the arena until
/// `f` succeeds, and once the arena cannot grow, drains the per-CPU caches once and tries again
/// before failing. Tells the env the pages in use after a success.
fn from_buddy<const CAP: usize, E: PageEnv<CAP>>(
    env: &E,
    may_sleep: bool,
    f: impl Fn(&mut Buddy<E::Store>) -> Result<usize, AllocError>,
) -> Result<usize, PageAllocError<E::Error>> {
    let mut drained = false;
    loop {
        match env.with_buddy(|b| f(b).map(|page| (page, b.used_pages()))) {
            Ok((page, used)) => {
                env.pressure(used, may_sleep);
                return Ok(page);
            }
            Err(AllocError::NoMemory) => {}
            Err(_) => return Err(PageAllocError::Invalid),
        }
        if env.grow(may_sleep).map_err(PageAllocError::Grow)? {
            continue;
        }
        if !drained && env.drain_cpus() > 0 {
            drained = true;
            continue;
        }
        env.event(Event::NoMemory);
        return Err(PageAllocError::NoMemory);
    }
}

/// Allocates a block of `2^order` pages (`order <= max_order`); returns its first page. Orders
/// up to [`PCP_MAX_ORDER`] come from this CPU's cache, refilled from the buddy system when it has
/// none; larger ones, or when even a refill finds nothing, from the buddy system (growing and
/// draining as needed). The block's first page is marked.
pub fn alloc<const CAP: usize, E: PageEnv<CAP>>(
    env: &E,
    order: u32,
    max_order: u32,
    may_sleep: bool,
) -> Result<usize, PageAllocError<E::Error>> {
    if order > max_order {
        return Err(PageAllocError::Invalid);
    }
    let cached = if order <= PCP_MAX_ORDER {
        let (page, refilled) = env.with_cpu(|cpu| {
            if let Some(page) = cpu.pcp.pop(order) {
                cpu.hits += 1;
                cpu.allocs += 1;
                return Ok((Some(page), None));
            }
            let used = env.with_buddy(|b| {
                cpu.pcp
                    .refill(order, b)
                    .map(|_| b.used_pages())
                    .map_err(|_| PageAllocError::Invalid)
            })?;
            let page = cpu.pcp.pop(order);
            if page.is_some() {
                cpu.allocs += 1;
            }
            Ok((page, Some(used)))
        })?;
        if let Some(used) = refilled {
            env.event(Event::Refill);
            env.pressure(used, may_sleep);
        }
        page
    } else {
        None
    };
    let page = match cached {
        Some(page) => page,
        None => {
            let page = from_buddy(env, may_sleep, |b| b.alloc(order))?;
            env.event(Event::Alloc);
            page
        }
    };
    if !env.marks().set(page, order as i8 + 1) {
        // Cannot happen (the buddy system's pages all have marks); give the block back.
        let _ = env.with_buddy(|b| b.free(page, order));
        return Err(PageAllocError::Invalid);
    }
    Ok(page)
}

/// Allocates exactly `npages` pages, `1..=max_pages` (never cached, never marked).
pub fn alloc_exact<const CAP: usize, E: PageEnv<CAP>>(
    env: &E,
    npages: usize,
    max_pages: usize,
    may_sleep: bool,
) -> Result<usize, PageAllocError<E::Error>> {
    if npages == 0 || npages > max_pages {
        return Err(PageAllocError::Invalid);
    }
    let page = from_buddy(env, may_sleep, |b| b.alloc_exact(npages))?;
    env.event(Event::Alloc);
    Ok(page)
}

/// Frees the block of `2^order` pages at `page` (`order <= max_order`). The owner mark decides
/// first: a page that is not the start of a live block of this order is refused (and its mark,
/// if it is another order's live block, put back) before any list is touched; the buddy system
/// then says what the page is. A good block of a cached order goes to this CPU's cache, which
/// drains a batch when it reaches its high mark; a block the cache has no room for, or of a
/// larger order, goes to the buddy system.
pub fn free<const CAP: usize, E: PageEnv<CAP>>(
    env: &E,
    page: usize,
    order: u32,
    max_order: u32,
) -> Result<(), FreeError> {
    if order > max_order {
        return Err(FreeError::BadOrder { order });
    }
    let marks = env.marks();
    let Some(prev) = marks.take(page) else {
        return Err(FreeError::NotOwned);
    };
    if prev != order as i8 + 1 {
        if prev != 0 {
            // A live block of another order: put its mark back.
            marks.set(page, prev);
            return Err(FreeError::WrongOrder {
                allocated: (prev - 1) as u32,
            });
        }
        // Not the start of a live block. Let the buddy system say what it is; a block that it
        // counts as allocated sits in a per-CPU cache: freed already.
        return match env.with_buddy(|b| b.check_free(page, order)) {
            Ok(()) => Err(FreeError::DoubleFree),
            Err(e) => Err(e),
        };
    }
    if order <= PCP_MAX_ORDER && env.cacheable(page) {
        let cached = env.with_cpu(|cpu| match cpu.pcp.push(page, order) {
            Ok(over_high) => {
                cpu.frees += 1;
                if over_high {
                    let d = env.with_buddy(|b| cpu.pcp.drain_batch(order, b));
                    Some(Some(d.rejected))
                } else {
                    Some(None)
                }
            }
            // The list is full: the block goes straight to the buddy system.
            Err(_) => None,
        });
        match cached {
            Some(None) => return Ok(()),
            Some(Some(rejected)) => {
                env.event(Event::Drain);
                if rejected != 0 {
                    env.event(Event::Rejected(rejected));
                }
                return Ok(());
            }
            None => {}
        }
    }
    env.with_buddy(|b| b.free(page, order))?;
    env.event(Event::Free);
    Ok(())
}

/// Pages whose owner bytes would share a 64-byte cache line if they were stored in page order.
pub const MARKS_PER_LINE: usize = 64;

/// Where the owner byte of `page` is stored among `npages` bytes (a multiple of
/// [`MARKS_PER_LINE`]), so that the bytes sharing a 64-byte cache line belong to pages
/// `npages / 64` apart: with `L = npages / 64` lines, page `q * L + r` goes to line `r`, slot
/// `q`. Neighbouring blocks are what two CPUs' caches hold at the same time (each refill takes
/// a run of blocks), and every allocation and free writes the byte: in page order the CPUs
/// would write the same line (measured natively: 2-CPU page pairs at 1.2-1.4x the 1-CPU time).
/// `None` outside `0..npages` or for a bad `npages`.
pub fn mark_index(page: usize, npages: usize) -> Option<usize> {
    if page >= npages || npages == 0 || !npages.is_multiple_of(MARKS_PER_LINE) {
        return None;
    }
    let lines = npages / MARKS_PER_LINE;
    Some((page % lines) * MARKS_PER_LINE + page / lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use core::cell::{Cell, RefCell};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;
    use std::{assert, assert_eq, assert_ne};

    const SLOT: usize = 1 << 10;
    const CAP: usize = 256;

    /// The page path's env over plain memory: `cpus` caches (the current one chosen by the
    /// test), a buddy system of up to `max_slots` slots of which `present` are added at first,
    /// and a log of what was asked of it.
    struct TestEnv {
        buddy: RefCell<Buddy<Vec<PageMeta>>>,
        cpus: Vec<RefCell<CpuPages<CAP>>>,
        cpu: Cell<usize>,
        marks: TestMarks,
        grows_left: Cell<usize>,
        grow_error: Cell<bool>,
        drains: Cell<usize>,
        pressure: RefCell<Vec<usize>>,
        events: RefCell<Vec<Event>>,
        /// Nesting: the CPU cache's lock must never be taken with the buddy system's held.
        buddy_held: Cell<bool>,
        /// Frees of pages below this bypass the CPU caches.
        uncached_below: Cell<usize>,
    }

    struct TestMarks(Vec<Cell<i8>>);

    impl Marks for TestMarks {
        fn set(&self, page: usize, mark: i8) -> bool {
            self.0.get(page).map(|m| m.set(mark)).is_some()
        }
        fn take(&self, page: usize) -> Option<i8> {
            self.0.get(page).map(|m| m.replace(0))
        }
    }

    impl TestEnv {
        fn new(max_slots: usize, present: usize, cpus: usize, high: usize, batch: usize) -> Self {
            let mut buddy = Buddy::new(vec![PageMeta::INIT; max_slots * SLOT], 10).unwrap();
            for _ in 0..present {
                let s = buddy.absent_slot().unwrap();
                buddy.add_block(s).unwrap();
            }
            TestEnv {
                buddy: RefCell::new(buddy),
                cpus: (0..cpus)
                    .map(|_| RefCell::new(CpuPages::new(high, batch).unwrap()))
                    .collect(),
                cpu: Cell::new(0),
                marks: TestMarks((0..max_slots * SLOT).map(|_| Cell::new(0)).collect()),
                grows_left: Cell::new(max_slots - present),
                grow_error: Cell::new(false),
                drains: Cell::new(0),
                pressure: RefCell::new(Vec::new()),
                events: RefCell::new(Vec::new()),
                buddy_held: Cell::new(false),
                uncached_below: Cell::new(0),
            }
        }
        fn cached(&self) -> usize {
            self.cpus.iter().map(|c| c.borrow().pcp.count()).sum()
        }
        fn used(&self) -> usize {
            self.buddy.borrow().used_pages()
        }
        fn count(&self, e: Event) -> usize {
            self.events.borrow().iter().filter(|&&x| x == e).count()
        }
    }

    impl PageEnv<CAP> for TestEnv {
        type Store = Vec<PageMeta>;
        type Error = &'static str;
        fn cacheable(&self, page: usize) -> bool {
            page >= self.uncached_below.get()
        }
        fn with_buddy<R>(&self, f: impl FnOnce(&mut Buddy<Vec<PageMeta>>) -> R) -> R {
            self.buddy_held.set(true);
            let r = f(&mut self.buddy.borrow_mut());
            self.buddy_held.set(false);
            r
        }
        fn with_cpu<R>(&self, f: impl FnOnce(&mut CpuPages<CAP>) -> R) -> R {
            assert!(
                !self.buddy_held.get(),
                "CPU cache locked inside the buddy lock"
            );
            f(&mut self.cpus[self.cpu.get()].borrow_mut())
        }
        fn marks(&self) -> &impl Marks {
            &self.marks
        }
        fn grow(&self, _may_sleep: bool) -> Result<bool, &'static str> {
            assert!(!self.buddy_held.get());
            if self.grow_error.get() {
                return Err("grow failed");
            }
            if self.grows_left.get() == 0 {
                return Ok(false);
            }
            self.grows_left.set(self.grows_left.get() - 1);
            let mut b = self.buddy.borrow_mut();
            let s = b.absent_slot().unwrap();
            b.add_block(s).unwrap();
            Ok(true)
        }
        fn drain_cpus(&self) -> usize {
            assert!(!self.buddy_held.get());
            self.drains.set(self.drains.get() + 1);
            let mut moved = 0;
            for c in &self.cpus {
                let d = self.with_buddy(|b| c.borrow_mut().pcp.drain_all(b));
                assert_eq!(d.rejected, 0);
                moved += d.pages;
            }
            moved
        }
        fn pressure(&self, used_pages: usize, _may_sleep: bool) {
            assert!(!self.buddy_held.get());
            self.pressure.borrow_mut().push(used_pages);
        }
        fn event(&self, e: Event) {
            self.events.borrow_mut().push(e);
        }
    }

    #[test]
    fn small_orders_come_from_the_cpu_cache_and_large_ones_from_the_buddy_system() {
        let env = TestEnv::new(2, 1, 1, 32, 8);
        let p = alloc(&env, 0, 10, true).unwrap();
        assert_eq!(env.count(Event::Refill), 1);
        assert_eq!(
            env.cached(),
            7,
            "a refill of batch 8 keeps 7 after handing one out"
        );
        let q = alloc(&env, 0, 10, true).unwrap();
        assert_ne!(p, q);
        assert_eq!(env.cpus[0].borrow().hits, 1);
        let big = alloc(&env, 4, 10, true).unwrap();
        assert_eq!(env.count(Event::Alloc), 1);
        free(&env, big, 4, 10).unwrap();
        assert_eq!(env.count(Event::Free), 1);
        free(&env, p, 0, 10).unwrap();
        assert_eq!(env.cpus[0].borrow().frees, 1);
        assert_eq!(env.cached(), 7);
        free(&env, q, 0, 10).unwrap();
        assert_eq!(env.drain_cpus(), 8);
        assert_eq!(env.used(), 0);
    }

    #[test]
    fn blocks_that_may_not_be_cached_go_straight_to_the_buddy_system() {
        let env = TestEnv::new(2, 1, 1, 32, 8);
        let p = alloc(&env, 1, 10, true).unwrap();
        let cached = env.cached();
        env.uncached_below.set(usize::MAX);
        free(&env, p, 1, 10).unwrap();
        assert_eq!(
            env.cached(),
            cached,
            "the block did not wait in the CPU cache"
        );
        assert_eq!(env.count(Event::Free), 1);
        // Still a checked free: a second one is refused.
        assert_eq!(free(&env, p, 1, 10), Err(FreeError::DoubleFree));
    }

    #[test]
    fn pressure_hears_the_pages_in_use_after_each_trip_to_the_buddy_system() {
        let env = TestEnv::new(2, 1, 1, 32, 8);
        alloc(&env, 0, 10, true).unwrap();
        alloc(&env, 5, 10, true).unwrap();
        assert_eq!(*env.pressure.borrow(), vec![8, 8 + 32]);
        alloc(&env, 0, 10, true).unwrap(); // a hit: no trip, no call
        assert_eq!(env.pressure.borrow().len(), 2);
    }

    #[test]
    fn bad_frees_are_caught_even_for_blocks_sitting_in_a_cpu_cache() {
        let env = TestEnv::new(1, 1, 1, 32, 8);
        let p = alloc(&env, 1, 10, true).unwrap();
        let q = alloc(&env, 2, 10, true).unwrap();
        assert_eq!(
            free(&env, q, 1, 10),
            Err(FreeError::WrongOrder { allocated: 2 })
        );
        assert_eq!(free(&env, q + 1, 0, 10), Err(FreeError::NotAHead));
        assert_eq!(free(&env, 5 * SLOT, 0, 10), Err(FreeError::NotOwned));
        assert_eq!(
            free(&env, q, 11, 10),
            Err(FreeError::BadOrder { order: 11 })
        );
        free(&env, q, 2, 10).unwrap();
        free(&env, p, 1, 10).unwrap();
        // Both blocks are in the CPU cache now, allocated as far as the buddy system knows.
        assert_eq!(free(&env, p, 1, 10), Err(FreeError::DoubleFree));
        assert_eq!(free(&env, q, 2, 10), Err(FreeError::DoubleFree));
        // A cached block that is not the head of a block of that order, either.
        assert!(free(&env, q + 2, 1, 10).is_err());
        env.drain_cpus();
        assert_eq!(env.used(), 0, "the refusals lost and duplicated nothing");
        assert_eq!(free(&env, p, 1, 10), Err(FreeError::DoubleFree));
    }

    #[test]
    fn out_of_pages_grows_first_then_drains_once_then_fails() {
        // One slot present, one more may be added; two CPUs.
        let env = TestEnv::new(2, 1, 2, 64, 16);
        // CPU 1 caches 16 pages of slot 0: no order-10 block is free there any more.
        env.cpu.set(1);
        let a = alloc(&env, 0, 10, true).unwrap();
        free(&env, a, 0, 10).unwrap();
        assert_eq!(env.cached(), 16);
        env.cpu.set(0);
        let first = alloc(&env, 10, 10, true).unwrap();
        assert_eq!(
            (env.grows_left.get(), env.drains.get()),
            (0, 0),
            "grown, not drained"
        );
        let second = alloc(&env, 10, 10, true).unwrap();
        assert_eq!(
            env.drains.get(),
            1,
            "cannot grow: drained, and the drain made slot 0 whole"
        );
        assert_eq!(env.cached(), 0);
        assert_eq!(alloc(&env, 10, 10, true), Err(PageAllocError::NoMemory));
        assert_eq!(
            env.drains.get(),
            2,
            "one drain more, which moved nothing: fail"
        );
        assert_eq!(env.count(Event::NoMemory), 1);
        free(&env, first, 10, 10).unwrap();
        free(&env, second, 10, 10).unwrap();
        assert_eq!(env.used(), 0);
    }

    #[test]
    fn a_grow_error_is_passed_up_and_nothing_leaks() {
        let env = TestEnv::new(2, 1, 1, 32, 8);
        let big = alloc(&env, 10, 10, true).unwrap();
        env.grow_error.set(true);
        assert_eq!(
            alloc(&env, 10, 10, true),
            Err(PageAllocError::Grow("grow failed"))
        );
        env.grow_error.set(false);
        free(&env, big, 10, 10).unwrap();
        assert_eq!(env.used(), 0);
    }

    #[test]
    fn exact_allocations_bypass_the_caches_and_the_marks() {
        let env = TestEnv::new(1, 1, 1, 32, 8);
        assert_eq!(
            alloc_exact(&env, 0, SLOT, true),
            Err(PageAllocError::Invalid)
        );
        assert_eq!(
            alloc_exact(&env, SLOT + 1, SLOT, true),
            Err(PageAllocError::Invalid)
        );
        let p = alloc_exact(&env, 3, SLOT, true).unwrap();
        assert_eq!(env.cached(), 0);
        assert_eq!(env.used(), 3);
        // An order free of an exact allocation: no mark, the buddy system says what it is.
        assert_eq!(
            free(&env, p, 1, 10),
            Err(FreeError::AllocatedExact { npages: 3 })
        );
        env.with_buddy(|b| b.free_exact(p, 3)).unwrap();
        assert_eq!(env.used(), 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc {
            cpu: usize,
            order: u32,
        },
        Exact {
            npages: usize,
        },
        Free {
            which: usize,
            cpu: usize,
        },
        BadFree {
            which: usize,
            delta: usize,
            order: u32,
        },
        Drain,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                4 => (0usize..3, prop_oneof![4 => 0u32..4, 1 => 4u32..11])
                    .prop_map(|(cpu, order)| Op::Alloc { cpu, order }),
                1 => (1usize..40).prop_map(|npages| Op::Exact { npages }),
                4 => (any::<usize>(), 0usize..3).prop_map(|(which, cpu)| Op::Free { which, cpu }),
                1 => (any::<usize>(), 0usize..3, 0u32..11)
                    .prop_map(|(which, delta, order)| Op::BadFree { which, delta, order }),
                1 => Just(Op::Drain),
            ],
            1..200,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against a model (the live blocks): no page is handed out twice; every good free is
        /// accepted and every bad one refused, changing nothing; pages in use in the buddy
        /// system equal live pages plus cached pages after every step; after freeing everything
        /// and draining, nothing is in use.
        #[test]
        fn page_path_matches_a_model(
            limits in prop::sample::select(vec![(8usize, 1usize), (8, 4), (32, 4), (32, 32), (256, 32)]),
            ops in ops(),
        ) {
            let (high, batch) = limits;
            let env = TestEnv::new(4, 1, 3, high, batch);
            // page -> (order, exact pages or 0)
            let mut live: BTreeMap<usize, (u32, usize)> = BTreeMap::new();
            let live_pages = |live: &BTreeMap<usize, (u32, usize)>| -> usize {
                live.values().map(|&(o, n)| if n > 0 { n } else { 1 << o }).sum()
            };
            for op in ops {
                match op {
                    Op::Alloc { cpu, order } => {
                        env.cpu.set(cpu);
                        if let Ok(p) = alloc(&env, order, 10, true) {
                            for (&q, &(o, n)) in &live {
                                let len = if n > 0 { n } else { 1 << o };
                                prop_assert!(p + (1 << order) <= q || q + len <= p, "overlap");
                            }
                            live.insert(p, (order, 0));
                        }
                    }
                    Op::Exact { npages } => {
                        if let Ok(p) = alloc_exact(&env, npages, SLOT, true) {
                            live.insert(p, (0, npages));
                        }
                    }
                    Op::Free { which, cpu } if !live.is_empty() => {
                        let (&p, &(o, n)) = live.iter().nth(which % live.len()).unwrap();
                        env.cpu.set(cpu);
                        if n > 0 {
                            env.with_buddy(|b| b.free_exact(p, n)).unwrap();
                        } else {
                            prop_assert_eq!(free(&env, p, o, 10), Ok(()));
                        }
                        live.remove(&p);
                    }
                    Op::BadFree { which, delta, order } if !live.is_empty() => {
                        let (&p, _) = live.iter().nth(which % live.len()).unwrap();
                        // Wrong order, inside a block, an exact allocation, or a free page.
                        let (page, ord) = (p + delta, order);
                        let good = live.get(&page) == Some(&(ord, 0));
                        if !good {
                            let used = env.used();
                            let cached = env.cached();
                            prop_assert!(free(&env, page, ord, 10).is_err());
                            prop_assert_eq!((env.used(), env.cached()), (used, cached));
                        }
                    }
                    Op::Drain => {
                        env.drain_cpus();
                    }
                    _ => {}
                }
                prop_assert_eq!(env.used(), live_pages(&live) + env.cached());
            }
            for (&p, &(o, n)) in &live {
                if n > 0 {
                    env.with_buddy(|b| b.free_exact(p, n)).unwrap();
                } else {
                    prop_assert_eq!(free(&env, p, o, 10), Ok(()));
                }
            }
            env.drain_cpus();
            prop_assert_eq!(env.used(), 0);
            prop_assert_eq!(env.count(Event::Rejected(1)), 0);
        }
    }

    #[test]
    fn mark_index_is_a_bijection_that_spreads_neighbours() {
        for npages in [64usize, 1024, 4096, 16384] {
            let lines = npages / MARKS_PER_LINE;
            let mut seen = vec![false; npages];
            for p in 0..npages {
                let i = mark_index(p, npages).unwrap();
                assert!(!seen[i], "index {i} used twice");
                seen[i] = true;
                // Every other page closer than `lines` lies in another 64-byte line.
                for q in p.saturating_sub(lines - 1)..(p + lines).min(npages) {
                    if q != p {
                        let j = mark_index(q, npages).unwrap();
                        assert_ne!(i / 64, j / 64, "pages {p} and {q} share a line");
                    }
                }
            }
            assert!(seen.iter().all(|&s| s));
            assert_eq!(mark_index(npages, npages), None);
        }
        assert_eq!(mark_index(0, 100), None);
        assert_eq!(mark_index(0, 0), None);
    }
}
