// SPDX-License-Identifier: GPL-2.0

//! Compaction decisions for one slab cache: which slabs to empty, where their objects go, and
//! when to stop. The kernel side moves the objects (it holds the handles that name them); this
//! file only decides, on the slabs' occupancy.
//!
//! The rule is zsmalloc's: objects move out of the sparsest slabs into the fullest ones. Among
//! the partial slabs (`0 < in_use < objects`), `m` slabs holding `L` objects of `N` per slab can
//! lose any `k` of them to the others exactly when `L <= (m - k) * N` (objects are all one size,
//! so only the total free space of the slabs that stay matters), so at best `ceil(L / N)` slabs
//! stay; emptying the sparsest `k` moves the fewest objects. A slab holding a pinned object (one
//! that no handle names, such as a mempool's reserve element) cannot be emptied: it is never a
//! source, but its free slots still take moved objects. A bound on the moves per call keeps the
//! work of one call small (the shrinker's case): the plan then empties only the sources whose
//! objects fit in it, sparsest first.

/// One slab's occupancy, as the planner sees it, and the role the plan gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabUse {
    /// The slab (its address; opaque here).
    pub slab: u64,
    /// Objects allocated in it.
    pub in_use: u32,
    /// Of those, objects that may not move.
    pub pinned: u32,
    /// What the plan does with it.
    pub role: Role,
}

impl SlabUse {
    /// A slab with `in_use` objects, `pinned` of them pinned, no role yet.
    pub const fn new(slab: u64, in_use: u32, pinned: u32) -> SlabUse {
        SlabUse {
            slab,
            in_use,
            pinned,
            role: Role::Stay,
        }
    }
}

/// The role of a slab in a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Left as it is.
    Stay,
    /// To be emptied: its objects move into targets.
    Source,
    /// Takes moved objects into its free slots.
    Target,
}

/// What a plan does, in numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Slabs to empty.
    pub sources: usize,
    /// Objects to move (the sources' objects).
    pub moves: u64,
    /// Slabs that take objects.
    pub targets: usize,
    /// Partial slabs skipped as sources because they hold a pinned object.
    pub pinned_skips: usize,
}

/// Sorts `v` by `key`, ascending (not stable): a heapsort, in place, without recursion. The
/// module sorts with this rather than `core`'s `sort_unstable`, whose quicksort objtool reports
/// as falling through to the next function on the x86 kernels.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    let less = |v: &[T], a: usize, b: usize| match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => key(x) < key(y),
        _ => false,
    };
    // Moves the element at `root` down the max-heap `v[..end]`.
    let sift = |v: &mut [T], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(v, child, child + 1) {
            child += 1;
        }
        if !less(v, root, child) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// Plans a compaction of the slabs in `slabs` (any order; full and empty ones are left alone)
/// for slabs of `objects` objects, moving at most `max_moves` objects. Sorts `slabs` by
/// occupancy, sparsest first, and sets each one's role: sources (emptied in that order) come
/// first, targets (to be filled fullest first, that is from the end) last.
pub fn plan(slabs: &mut [SlabUse], objects: u32, max_moves: u64) -> Plan {
    for s in slabs.iter_mut() {
        s.role = Role::Stay;
    }
    sort_by_key(slabs, |s| (s.in_use, s.slab));
    let partial = |s: &SlabUse| s.in_use > 0 && s.in_use < objects;
    let (mut free, mut live, mut m) = (0u64, 0u64, 0u64);
    for s in slabs.iter().filter(|s| partial(s)) {
        free += u64::from(objects - s.in_use);
        live += u64::from(s.in_use);
        m += 1;
    }
    // At most this many partial slabs can be emptied: the rest must hold every object.
    let keep = live.div_ceil(u64::from(objects.max(1)));
    let mut room = m.saturating_sub(keep);
    let mut p = Plan::default();
    // Free slots of the slabs that stay: each source emptied takes its free slots away.
    for s in slabs.iter_mut().filter(|s| partial(s)) {
        if room == 0 {
            break;
        }
        if s.pinned > 0 {
            p.pinned_skips += 1;
            continue;
        }
        let n = u64::from(s.in_use);
        let gone = u64::from(objects - s.in_use);
        if p.moves + n > max_moves || free - gone < p.moves + n {
            break;
        }
        free -= gone;
        p.moves += n;
        p.sources += 1;
        room -= 1;
        s.role = Role::Source;
    }
    // Targets: the fullest partial slabs that are not sources, until their free slots hold the
    // moves.
    let mut need = p.moves;
    for s in slabs.iter_mut().rev() {
        if need == 0 {
            break;
        }
        if partial(s) && s.role == Role::Stay {
            need = need.saturating_sub(u64::from(objects - s.in_use));
            s.role = Role::Target;
            p.targets += 1;
        }
    }
    p
}

/// One arena slot (a 4 MiB block of the host kernel) as arena compaction sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotUse {
    /// The slot's index.
    pub slot: usize,
    /// Pages allocated in it.
    pub used: usize,
    /// Of those, pages whose owners are known and may move: the page allocations a file's
    /// handles name, and the slabs whose every object a handle names. The rest are pinned.
    pub movable: usize,
    /// Whether the plan empties it.
    pub source: bool,
}

impl SlotUse {
    /// A slot with `used` pages allocated, `movable` of them movable, not a source yet.
    pub const fn new(slot: usize, used: usize, movable: usize) -> SlotUse {
        SlotUse {
            slot,
            used,
            movable,
            source: false,
        }
    }

    /// Pages that may not move (or whose owner compaction does not know).
    pub fn pinned(&self) -> usize {
        self.used.saturating_sub(self.movable)
    }
}

/// What an arena plan does, in numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotPlan {
    /// Slots to empty.
    pub sources: usize,
    /// Pages to move (the sources' used pages).
    pub pages: u64,
    /// Slots in use skipped as sources because they hold a pinned page.
    pub pinned_skips: usize,
}

/// Plans an arena compaction over the present slots `slots` (any order) of `slot_pages` pages,
/// moving at most `max_pages` pages. The unit the host gets back is a whole slot, so the plan
/// picks slots to *evacuate*, as memory offlining does a memory block: only slots without a
/// pinned page, the least used first (fewest pages to move per slot freed; among equals the
/// highest slot, so the arena shrinks from its top), while the slots that stay have the free
/// pages for everything moved, and never so many that fewer than `ceil(used / slot_pages)`
/// slots would remain. Wholly free slots are no sources (they can go back as they are).
/// Sorts `slots` into evacuation order (sources first) and marks the sources.
pub fn plan_slots(slots: &mut [SlotUse], slot_pages: usize, max_pages: u64) -> SlotPlan {
    for s in slots.iter_mut() {
        s.source = false;
    }
    sort_by_key(slots, |s| (s.used, usize::MAX - s.slot));
    let used: usize = slots.iter().map(|s| s.used).sum();
    let in_use = slots.iter().filter(|s| s.used > 0).count();
    let keep = used.div_ceil(slot_pages.max(1));
    let mut room = in_use.saturating_sub(keep);
    // Free pages of the slots in use that stay (a source's own free pages are no target, and
    // a wholly free slot is better given back than filled).
    let mut free: u64 = slots
        .iter()
        .filter(|s| s.used > 0)
        .map(|s| slot_pages.saturating_sub(s.used) as u64)
        .sum();
    let mut p = SlotPlan::default();
    for s in slots.iter_mut().filter(|s| s.used > 0) {
        if room == 0 {
            break;
        }
        if s.pinned() > 0 {
            p.pinned_skips += 1;
            continue;
        }
        let n = s.used as u64;
        let gone = slot_pages.saturating_sub(s.used) as u64;
        if p.pages + n > max_pages || free - gone < p.pages + n {
            break;
        }
        free -= gone;
        p.pages += n;
        p.sources += 1;
        room -= 1;
        s.source = true;
    }
    p
}

/// The largest `compaction_proactiveness` (as `vm.compaction_proactiveness`).
pub const PROACTIVENESS_MAX: u32 = 100;

/// The default `compaction_proactiveness` (the kernel's).
pub const PROACTIVENESS_DEFAULT: u32 = 20;

/// Checks a `compaction_proactiveness` value: `0..=100` (0: no proactive compaction).
pub fn check_proactiveness(v: u32) -> Result<u32, u32> {
    if v <= PROACTIVENESS_MAX {
        Ok(v)
    } else {
        Err(v)
    }
}

/// The fragmentation score proactive compaction watches: the unusable free space index at the
/// largest order, in percent (what share of the free pages lies outside wholly free 4 MiB
/// blocks), as the kernel's `fragmentation_score_zone` uses the index at the huge page order.
/// `nr_free[k]`: free blocks of order `k`, `0..=max_order`. 0 with no free page (nothing to
/// gain).
pub fn fragmentation_score(nr_free: &[usize], max_order: u32) -> u32 {
    let info = super::extfrag::contig_page_info(nr_free, max_order);
    if info.free_pages == 0 {
        return 0;
    }
    (super::extfrag::unusable_free_index(max_order, &info) / 10) as u32
}

/// Whether proactive compaction is due: the score is above the high mark of
/// `proactiveness`, as the kernel's `fragmentation_score_wmark` sets it (low mark
/// `max(100 - proactiveness, 5)`, high mark 10 above it, at most 100). 0 turns it off.
pub fn proactive_due(score: u32, proactiveness: u32) -> bool {
    if proactiveness == 0 {
        return false;
    }
    let low = PROACTIVENESS_MAX.saturating_sub(proactiveness).max(5);
    score > (low + 10).min(PROACTIVENESS_MAX)
}

/// Slots an ideal arena compaction would empty: of `present` slots, `free_slots` wholly
/// free, `used` pages allocated, `slot_pages` per slot, the slots in use beyond
/// `ceil(used / slot_pages)`. Proactive compaction is pointless at 0.
pub fn slots_to_gain(present: usize, free_slots: usize, used: usize, slot_pages: usize) -> usize {
    present
        .saturating_sub(free_slots)
        .saturating_sub(used.div_ceil(slot_pages.max(1)))
}

/// Buckets of [`occupancy_bucket`]: `0-9%`, `10-19%`, ..., `90-99%`, `100%`.
pub const OCCUPANCY_BUCKETS: usize = 11;

/// The occupancy bucket of a slab with `in_use` of `objects` objects: `10 * in_use / objects`
/// (rounded down), so a full slab is in the last bucket alone.
pub fn occupancy_bucket(in_use: u32, objects: u32) -> usize {
    if objects == 0 {
        return 0;
    }
    ((u64::from(in_use.min(objects)) * 10 / u64::from(objects)) as usize).min(OCCUPANCY_BUCKETS - 1)
}

/// The header of `/proc/rkmem/occupancy`.
pub const OCCUPANCY_HEADER: &str =
    "# name                  0-9%  10-19%  20-29%  30-39%  40-49%  50-59%  60-69%  70-79%  80-89%  90-99%    100%";

/// Writes `/proc/rkmem/occupancy`: the header, then per cache its name and how many of its
/// slabs are in each occupancy bucket (zsmalloc's per-class fullness table).
pub fn write_occupancy<'a>(
    w: &mut impl core::fmt::Write,
    rows: impl Iterator<Item = (&'a str, [u64; OCCUPANCY_BUCKETS])>,
) -> core::fmt::Result {
    writeln!(w, "{OCCUPANCY_HEADER}")?;
    for (name, h) in rows {
        write!(w, "{name:<20}")?;
        for n in h {
            write!(w, " {n:>7}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    extern crate std;
    use std::vec::Vec;

    /// Applies `plan`'s roles to a model: every source's objects go into targets, fullest
    /// first. Returns the in-use counts afterwards, or panics if the plan does not fit.
    fn apply(slabs: &[SlabUse], objects: u32) -> Vec<u32> {
        let mut used: Vec<u32> = slabs.iter().map(|s| s.in_use).collect();
        let mut targets: Vec<usize> = (0..slabs.len())
            .rev()
            .filter(|&i| slabs[i].role == Role::Target)
            .collect();
        for i in (0..slabs.len()).filter(|&i| slabs[i].role == Role::Source) {
            while used[i] > 0 {
                let t = *targets.first().expect("the plan's targets hold its moves");
                if used[t] == objects {
                    targets.remove(0);
                    continue;
                }
                used[i] -= 1;
                used[t] += 1;
            }
        }
        used
    }

    #[test]
    fn sparse_slabs_empty_into_the_fullest() {
        // 8 objects per slab: 1, 2, 7, 5 in use (15 live: 2 slabs must stay).
        let mut s = [
            SlabUse::new(0xa000, 1, 0),
            SlabUse::new(0xb000, 2, 0),
            SlabUse::new(0xc000, 7, 0),
            SlabUse::new(0xd000, 5, 0),
        ];
        let p = plan(&mut s, 8, u64::MAX);
        assert_eq!(
            p,
            Plan {
                sources: 2,
                moves: 3,
                targets: 2,
                pinned_skips: 0
            }
        );
        let roles: Vec<(u64, Role)> = s.iter().map(|s| (s.slab, s.role)).collect();
        assert_eq!(
            roles,
            [
                (0xa000, Role::Source),
                (0xb000, Role::Source),
                (0xd000, Role::Target),
                (0xc000, Role::Target)
            ]
        );
        // The fullest (7) takes 1 and is full, the next (5) takes the other 2.
        assert_eq!(apply(&s, 8), [0, 0, 7, 8]);
    }

    #[test]
    fn pinned_slabs_stay_but_take_objects_and_full_or_empty_ones_are_left_alone() {
        let mut s = [
            SlabUse::new(1, 1, 1),
            SlabUse::new(2, 3, 0),
            SlabUse::new(3, 8, 0),
            SlabUse::new(4, 0, 0),
            SlabUse::new(5, 4, 0),
        ];
        // 8 live in the partial slabs: one must stay, and the pinned one cannot go, so it
        // takes the other two slabs' 7 objects.
        let p = plan(&mut s, 8, u64::MAX);
        assert_eq!((p.sources, p.moves, p.pinned_skips), (2, 7, 1));
        for x in &s {
            match x.slab {
                1 => assert_eq!(x.role, Role::Target),
                2 | 5 => assert_eq!(x.role, Role::Source),
                3 | 4 => assert_eq!(x.role, Role::Stay),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn a_bound_on_moves_stops_at_a_whole_slab() {
        let mut s = [
            SlabUse::new(1, 2, 0),
            SlabUse::new(2, 3, 0),
            SlabUse::new(3, 3, 0),
            SlabUse::new(4, 1, 0),
        ];
        // 9 live of 16 per slab: 3 could go; 4 moves allow the 1 and the 2 only.
        let p = plan(&mut s, 16, 4);
        assert_eq!((p.sources, p.moves), (2, 3));
        assert_eq!(plan(&mut s, 16, 0), Plan::default());
        assert!(s.iter().all(|x| x.role == Role::Stay));
    }

    #[test]
    fn occupancy_text() {
        let mut out = std::string::String::new();
        let mut h = [0u64; OCCUPANCY_BUCKETS];
        h[0] = 2;
        h[10] = 12345;
        write_occupancy(&mut out, [("rkmalloc-64", h)].into_iter()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], OCCUPANCY_HEADER);
        assert_eq!(
            lines[1],
            "rkmalloc-64                2       0       0       0       0       0       0       0       0       0   12345"
        );
        // Columns line up with the header's labels (right-aligned, 8 wide each).
        assert_eq!(lines[0].len(), lines[1].len());
    }

    #[test]
    fn occupancy_buckets() {
        assert_eq!(occupancy_bucket(0, 10), 0);
        assert_eq!(occupancy_bucket(1, 10), 1);
        assert_eq!(occupancy_bucket(9, 10), 9);
        assert_eq!(occupancy_bucket(10, 10), 10);
        assert_eq!(occupancy_bucket(511, 512), 9);
        assert_eq!(occupancy_bucket(3, 0), 0);
        assert_eq!(occupancy_bucket(99, 10), 10);
    }

    proptest! {
        #[test]
        fn sort_by_key_sorts(mut v in proptest::collection::vec(0u32..50, 0..200)) {
            let mut want = v.clone();
            want.sort_unstable();
            sort_by_key(&mut v, |x| *x);
            prop_assert_eq!(v, want);
        }

        // Without pinned objects and without a bound, exactly ceil(L / N) partial slabs keep
        // objects afterwards, targets never overflow, nothing is lost, and the sources are the
        // sparsest slabs (so no other choice of as many sources moves fewer objects).
        #[test]
        fn plans_are_optimal_and_fit(
            objects in 1u32..64,
            used in proptest::collection::vec(0u32..64, 0..40),
        ) {
            let mut s: Vec<SlabUse> = used
                .iter()
                .enumerate()
                .map(|(i, &u)| SlabUse::new(i as u64, u % (objects + 1), 0))
                .collect();
            let p = plan(&mut s, objects, u64::MAX);
            let after = apply(&s, objects);
            let total: u64 = s.iter().map(|x| u64::from(x.in_use)).sum();
            prop_assert_eq!(after.iter().map(|&u| u64::from(u)).sum::<u64>(), total);
            prop_assert!(after.iter().all(|&u| u <= objects));
            let partial: Vec<&SlabUse> =
                s.iter().filter(|x| x.in_use > 0 && x.in_use < objects).collect();
            let live: u64 = partial.iter().map(|x| u64::from(x.in_use)).sum();
            let keep = live.div_ceil(u64::from(objects));
            prop_assert_eq!(p.sources as u64, partial.len() as u64 - keep.min(partial.len() as u64));
            let mut sorted: Vec<u32> = partial.iter().map(|x| x.in_use).collect();
            sorted.sort_unstable();
            let fewest: u64 = sorted.iter().take(p.sources).map(|&u| u64::from(u)).sum();
            prop_assert_eq!(p.moves, fewest);
            for (x, &a) in s.iter().zip(&after) {
                if x.role == Role::Source {
                    prop_assert_eq!(a, 0);
                }
                if x.role == Role::Stay {
                    prop_assert_eq!(a, x.in_use);
                }
            }
        }

        // With pinned objects and a bound: no pinned slab is a source, the moves stay within
        // the bound, and the plan still fits.
        #[test]
        fn pinned_and_bounded_plans_fit(
            objects in 1u32..32,
            used in proptest::collection::vec((0u32..32, 0u32..3), 0..30),
            bound in 0u64..100,
        ) {
            let mut s: Vec<SlabUse> = used
                .iter()
                .enumerate()
                .map(|(i, &(u, p))| {
                    let u = u % (objects + 1);
                    SlabUse::new(i as u64, u, p.min(u))
                })
                .collect();
            let p = plan(&mut s, objects, bound);
            prop_assert!(p.moves <= bound);
            prop_assert!(s.iter().all(|x| x.role != Role::Source || x.pinned == 0));
            let after = apply(&s, objects);
            prop_assert!(after.iter().all(|&u| u <= objects));
        }
    }

    fn slot_plan(used_movable: &[(usize, usize)], max: u64) -> (Vec<SlotUse>, SlotPlan) {
        let mut v: Vec<SlotUse> = used_movable
            .iter()
            .enumerate()
            .map(|(i, &(u, m))| SlotUse::new(i, u, m))
            .collect();
        let p = plan_slots(&mut v, 1024, max);
        (v, p)
    }

    fn sources(v: &[SlotUse]) -> Vec<usize> {
        v.iter().filter(|s| s.source).map(|s| s.slot).collect()
    }

    #[test]
    fn the_least_used_unpinned_slots_are_evacuated() {
        // 100 + 200 + 700 + 900 pages in four slots fit in two: the two sparsest go.
        let (v, p) = slot_plan(&[(700, 700), (100, 100), (900, 900), (200, 200)], u64::MAX);
        assert_eq!(sources(&v), [1, 3]);
        assert_eq!((p.sources, p.pages, p.pinned_skips), (2, 300, 0));
        // A pinned page keeps its slot (whose free pages take moved ones); the next ones go
        // instead, as long as they fit.
        let (v, p) = slot_plan(&[(700, 700), (100, 99), (900, 900), (200, 200)], u64::MAX);
        assert_eq!(sources(&v), [3, 0]);
        assert_eq!(p.pinned_skips, 1);
        // Wholly free slots are neither sources nor targets.
        let (v, p) = slot_plan(&[(0, 0), (1000, 1000), (30, 30)], u64::MAX);
        assert_eq!(sources(&v), Vec::<usize>::new());
        assert_eq!(p, SlotPlan::default());
        // Among equals, the highest slot goes first; the bound on pages stops the plan.
        let (v, p) = slot_plan(&[(10, 10), (10, 10), (10, 10)], 20);
        assert_eq!(sources(&v), [2, 1]);
        assert_eq!(p.pages, 20);
        let (v, _) = slot_plan(&[(10, 10), (10, 10), (10, 10)], 9);
        assert!(sources(&v).is_empty());
    }

    proptest! {
        #[test]
        fn slot_plans_fit_and_are_optimal(
            slots in proptest::collection::vec((0usize..=1024, 0usize..=1024), 0..12),
            pin in proptest::collection::vec(proptest::bool::weighted(0.2), 12),
            max in proptest::option::of(0u64..4096),
        ) {
            let um: Vec<(usize, usize)> = slots
                .iter()
                .zip(pin.iter())
                .map(|(&(u, _), &p)| (u, if p && u > 0 { u - 1 } else { u }))
                .collect();
            let (v, p) = slot_plan(&um, max.unwrap_or(u64::MAX));
            let moved: usize = v.iter().filter(|s| s.source).map(|s| s.used).sum();
            let room: usize = v
                .iter()
                .filter(|s| !s.source && s.used > 0)
                .map(|s| 1024 - s.used)
                .sum();
            prop_assert_eq!(p.pages, moved as u64);
            prop_assert_eq!(p.sources, v.iter().filter(|s| s.source).count());
            prop_assert!(moved <= room, "the slots that stay hold what moves");
            prop_assert!(p.pages <= max.unwrap_or(u64::MAX));
            for s in v.iter().filter(|s| s.source) {
                prop_assert!(s.used > 0 && s.pinned() == 0);
            }
            let used: usize = v.iter().map(|s| s.used).sum();
            let left = v.iter().filter(|s| s.used > 0 && !s.source).count();
            prop_assert!(left >= used.div_ceil(1024));
            // Nothing pinned and no bound: exactly the optimum stays in use.
            if max.is_none() && v.iter().all(|s| s.pinned() == 0) {
                prop_assert_eq!(left, used.div_ceil(1024));
            }
        }
    }

    #[test]
    fn proactive_compaction_follows_the_kernels_marks() {
        // Order 2 is the largest here: 4 free pages in one block, 4 in order-0 blocks.
        assert_eq!(fragmentation_score(&[4, 0, 1], 2), 50);
        assert_eq!(fragmentation_score(&[0, 0, 3], 2), 0);
        assert_eq!(fragmentation_score(&[8, 0, 0], 2), 100);
        assert_eq!(
            fragmentation_score(&[0, 0, 0], 2),
            0,
            "no free page: nothing to gain"
        );
        // proactiveness 20 (the default): marks 80 and 90.
        assert!(!proactive_due(90, 20));
        assert!(proactive_due(91, 20));
        // 100: marks 5 and 15; 0: never.
        assert!(proactive_due(16, 100));
        assert!(!proactive_due(15, 100));
        assert!(!proactive_due(100, 0));
        // 1: the high mark is capped at 100, which no score passes.
        assert!(!proactive_due(100, 1));
        assert_eq!(check_proactiveness(100), Ok(100));
        assert_eq!(check_proactiveness(0), Ok(0));
        assert_eq!(check_proactiveness(101), Err(101));
        // Three slots, one wholly free, 1000 pages used: one of the two in use can go.
        assert_eq!(slots_to_gain(3, 1, 1000, 1024), 1);
        assert_eq!(slots_to_gain(3, 1, 1025, 1024), 0);
        assert_eq!(slots_to_gain(1, 0, 0, 1024), 1);
        assert_eq!(slots_to_gain(1, 1, 0, 1024), 0);
    }
}
