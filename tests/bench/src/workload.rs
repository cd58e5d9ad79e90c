// SPDX-License-Identifier: GPL-2.0

//! The benchmark cases, shared by the Criterion benchmarks and the callgrind driver so both
//! measure exactly the same thing.
//!
//! A *run* is the unit a case repeats: one alloc+free pair, or one whole replay of a trace. Each
//! run leaves the allocator in the state it started from, so runs can repeat any number of
//! times. [`run_case`] builds the allocator and the trace (outside any measurement), does one
//! warm-up run, then hands a closure doing one run to a [`Visit`], monomorphised per allocator:
//! no dynamic dispatch in the measured loop.
//!
//! Conservation: [`run_case`] takes the allocator's free frames (the free blocks themselves) or
//! its objects (free, used, slabs) before the warm-up run and compares them after it and after
//! the visitor's runs; a difference panics ([`check_conserved`]). So every benchmark and
//! callgrind count comes from allocators that ended each run as they began it, on both sides.
//! (A slab cache may grow its slabs in the warm-up run; there only its objects in use must be
//! the same.)

use crate::objects::{self, Census, ObjAlloc, PeerZone, RkCache};
use crate::pages::{self, FreeBlocks, PageAlloc, PeerBuddy, RkBuddy};
use crate::trace::{self, Op};
use std::fmt;
use std::hint::black_box;

/// Largest buddy order of both page allocators (rkmem's `MAX_ORDER_LIMIT`).
pub const MAX_ORDER: u32 = 10;
/// Slots (blocks of `2^MAX_ORDER` pages) of the arena for pairs and the random trace: 16384 pages.
pub const ARENA_SLOTS: usize = 16;
/// Operations of the random trace.
pub const RANDOM_LEN: usize = 10_000;
/// Largest order of the random trace.
pub const RANDOM_MAX_ORDER: u8 = 5;
/// Most blocks live at once in the random trace (at most 6400 of the 16384 pages).
pub const RANDOM_MAX_LIVE: usize = 200;
/// Seed of the random trace.
pub const RANDOM_SEED: u64 = 0x726b_6d65_6d5f_6237;
/// Fill-then-drain: a one-slot arena (1024 pages) filled with order-0 blocks, then emptied.
pub const FILL_PAGES: usize = 1 << MAX_ORDER;
/// Object sizes of the slab cases (alignment 1).
pub const SLAB_SIZES: [usize; 3] = [16, 64, 117];
/// Objects per batch: `BATCH` allocations, then `BATCH` frees in allocation order.
pub const BATCH: usize = 1000;

/// Which allocator runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// rkmem's `rust/core`.
    Rkmem,
    /// The peer crate (`buddy_system_allocator` or `slabmalloc`).
    Peer,
}

impl Side {
    /// Both sides, rkmem first.
    pub const ALL: [Side; 2] = [Side::Rkmem, Side::Peer];

    /// `rkmem` or `peer`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Rkmem => "rkmem",
            Side::Peer => "peer",
        }
    }

    /// The side named `s`.
    pub fn parse(s: &str) -> Option<Side> {
        Side::ALL.into_iter().find(|side| side.name() == s)
    }
}

/// One benchmark case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Buddy alloc+free pairs of `order` from a wholly free arena (every pair splits a
    /// max-order block down to `order` and merges it back up).
    BuddyPairsMerged(u32),
    /// Buddy alloc+free pairs of `order` with one order-0 page held, so a free block of every
    /// order below the maximum exists: no split, no merge.
    BuddyPairsReady(u32),
    /// The random trace (orders 0..=5, live set bounded), replayed whole.
    BuddyRandom,
    /// Order-0 fill of a 1024-page arena, then frees in allocation order.
    BuddyFillDrain,
    /// Slab alloc+free pairs of `size`-byte objects; the cache holds one slab and nothing else,
    /// so for rkmem each pair moves it empty -> partial -> empty.
    SlabPairs(usize),
    /// Slab alloc+free pairs of `size`-byte objects with one object held (the slab stays
    /// partial).
    SlabPairsPinned(usize),
    /// `BATCH` allocations then `BATCH` frees of `size`-byte objects.
    SlabBatch(usize),
}

impl Case {
    /// Every case, in report order.
    pub fn all() -> Vec<Case> {
        let mut v = Vec::new();
        v.extend((0..=3).map(Case::BuddyPairsMerged));
        v.extend((0..=3).map(Case::BuddyPairsReady));
        v.push(Case::BuddyRandom);
        v.push(Case::BuddyFillDrain);
        v.extend(SLAB_SIZES.map(Case::SlabPairs));
        v.extend(SLAB_SIZES.map(Case::SlabPairsPinned));
        v.extend(SLAB_SIZES.map(Case::SlabBatch));
        v
    }

    /// The Criterion group of the case.
    pub fn group(self) -> &'static str {
        match self {
            Case::BuddyPairsMerged(_) => "buddy_pairs_merged",
            Case::BuddyPairsReady(_) => "buddy_pairs_ready",
            Case::BuddyRandom => "buddy_random",
            Case::BuddyFillDrain => "buddy_fill_drain",
            Case::SlabPairs(_) => "slab_pairs",
            Case::SlabPairsPinned(_) => "slab_pairs_pinned",
            Case::SlabBatch(_) => "slab_batch",
        }
    }

    /// The case's parameter in its group (order, size, or the trace's length).
    pub fn param(self) -> String {
        match self {
            Case::BuddyPairsMerged(o) | Case::BuddyPairsReady(o) => format!("order{o}"),
            Case::BuddyRandom => format!("{RANDOM_LEN}ops"),
            Case::BuddyFillDrain => format!("{FILL_PAGES}pages"),
            Case::SlabPairs(s) | Case::SlabPairsPinned(s) | Case::SlabBatch(s) => format!("{s}B"),
        }
    }

    /// The case named `s` (as printed by `Display`: `group/param`).
    pub fn parse(s: &str) -> Option<Case> {
        Case::all().into_iter().find(|c| c.to_string() == s)
    }

    /// Allocator operations (allocations plus frees) in one run.
    pub fn ops_per_run(self) -> usize {
        match self {
            Case::BuddyPairsMerged(_)
            | Case::BuddyPairsReady(_)
            | Case::SlabPairs(_)
            | Case::SlabPairsPinned(_) => 2,
            Case::BuddyRandom => RANDOM_LEN,
            Case::BuddyFillDrain => 2 * FILL_PAGES,
            Case::SlabBatch(_) => 2 * BATCH,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group(), self.param())
    }
}

/// The random buddy trace.
pub fn random_trace() -> Vec<Op> {
    trace::random(RANDOM_LEN, RANDOM_MAX_ORDER, RANDOM_MAX_LIVE, RANDOM_SEED)
}

/// Receives the closure doing one run of a case.
pub trait Visit {
    /// Called once per [`run_case`], with the allocator built, the trace generated and one
    /// warm-up run done.
    fn visit<F: FnMut()>(self, run: F);
}

/// What [`run_case`] found free before the case's first run, and after its last: the same, or
/// it would have panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conserved {
    /// A buddy case: the free blocks of its page allocator.
    Pages(FreeBlocks),
    /// A slab case: its object allocator's slabs.
    Objects(Census),
}

/// Panics unless `after == before`: a run did not give back what it took, or took what it did
/// not give.
pub fn check_conserved<T: PartialEq + fmt::Display>(what: &str, when: &str, before: &T, after: &T) {
    if before != after {
        let (b, a) = (before.to_string(), after.to_string());
        let how = if b == a {
            " (same totals, other blocks)"
        } else {
            ""
        };
        panic!("conservation violated: {what} {when}: before the first run {b}, now {a}{how}");
    }
}

/// Builds `side`'s allocator for `case`, does one warm-up run, gives `v` a closure doing one
/// run, and checks conservation after the warm-up run and after `v`'s runs.
pub fn run_case<V: Visit>(case: Case, side: Side, v: V) -> Conserved {
    let what = format!("{} {case}", side.name());
    match side {
        Side::Rkmem => run_with(
            case,
            &what,
            v,
            |slots| RkBuddy::new(slots, MAX_ORDER),
            |size| RkCache::new(size, 1),
        ),
        Side::Peer => run_with(
            case,
            &what,
            v,
            |slots| PeerBuddy::new(slots, MAX_ORDER),
            |size| PeerZone::new(size, 1),
        ),
    }
}

/// The warm-up run, the visitor's runs and the checks around them, for a page allocator.
fn visit_pages<V: Visit, P: PageAlloc>(
    what: &str,
    v: V,
    a: &mut P,
    mut run: impl FnMut(&mut P),
) -> Conserved {
    let before = FreeBlocks::take(a);
    run(a);
    check_conserved(what, "after the warm-up run", &before, &FreeBlocks::take(a));
    v.visit(|| run(a));
    check_conserved(
        what,
        "after the measured runs",
        &before,
        &FreeBlocks::take(a),
    );
    Conserved::Pages(before)
}

/// The same for an object allocator. A cache is built with no slab (or with the one its
/// pinned object needed) and keeps the slabs it gets: the warm-up run may add slabs, so there
/// the check is that the objects in use are the same (the free objects grew by the new slabs'
/// objects only); the visitor's runs must then leave the census whole (free objects, used
/// objects and slabs) as the warm-up run left it.
fn visit_objects<V: Visit, O: ObjAlloc>(
    what: &str,
    v: V,
    a: &mut O,
    mut run: impl FnMut(&mut O),
) -> Conserved {
    let before = a.census();
    run(a);
    let warm = a.census();
    check_conserved(
        what,
        "after the warm-up run",
        &InUse(before.used),
        &InUse(warm.used),
    );
    v.visit(|| run(a));
    check_conserved(what, "after the measured runs", &warm, &a.census());
    Conserved::Objects(warm)
}

/// Objects in use, as [`check_conserved`] prints them.
#[derive(PartialEq)]
struct InUse(usize);

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} objects in use", self.0)
    }
}

fn run_with<V: Visit, P: PageAlloc, O: ObjAlloc>(
    case: Case,
    what: &str,
    v: V,
    new_pages: impl Fn(usize) -> P,
    new_objects: impl Fn(usize) -> O,
) -> Conserved {
    match case {
        Case::BuddyPairsMerged(order) => {
            let mut a = new_pages(ARENA_SLOTS);
            visit_pages(what, v, &mut a, |a| pages::pair(a, order))
        }
        Case::BuddyPairsReady(order) => {
            let mut a = new_pages(ARENA_SLOTS);
            let _held = a.alloc(0);
            visit_pages(what, v, &mut a, |a| pages::pair(a, order))
        }
        Case::BuddyRandom | Case::BuddyFillDrain => {
            let (mut a, t) = if case == Case::BuddyRandom {
                (new_pages(ARENA_SLOTS), random_trace())
            } else {
                (
                    new_pages(FILL_PAGES >> MAX_ORDER),
                    trace::fill_then_drain(FILL_PAGES, 0),
                )
            };
            assert_eq!(t.len(), case.ops_per_run());
            assert!(t
                .iter()
                .all(|op| !matches!(*op, Op::Alloc(o) if u32::from(o) > MAX_ORDER)));
            let mut live = Vec::with_capacity(trace::max_live(&t));
            let t = black_box(t);
            visit_pages(what, v, &mut a, |a| pages::replay(a, &t, &mut live))
        }
        Case::SlabPairs(size) => {
            let mut a = new_objects(size);
            visit_objects(what, v, &mut a, |a| objects::pair(a))
        }
        Case::SlabPairsPinned(size) => {
            let mut a = new_objects(size);
            let _held = a.alloc();
            visit_objects(what, v, &mut a, |a| objects::pair(a))
        }
        Case::SlabBatch(size) => {
            let mut a = new_objects(size);
            let t = trace::fill_then_drain(BATCH, 0);
            assert_eq!(t.len(), case.ops_per_run());
            let mut live = Vec::with_capacity(BATCH);
            let t = black_box(t);
            visit_objects(what, v, &mut a, |a| objects::replay(a, &t, &mut live))
        }
    }
}
