// SPDX-License-Identifier: GPL-2.0

//! Conservation: every benchmark case leaves both allocators with the free frames (or objects)
//! they started with, both sides of a buddy case end with the same free frames, and the peer's
//! arena is one its documentation allows.

use buddy_system_allocator::FrameAllocator;
use rkmem_bench::objects::{ObjAlloc, PeerZone, RkCache};
use rkmem_bench::pages::{FreeBlocks, PageAlloc, PeerBuddy, RkBuddy};
use rkmem_bench::workload::{
    check_conserved, run_case, Case, Conserved, Side, Visit, ARENA_SLOTS, MAX_ORDER,
};

/// Free blocks `(first frame, order)` of a bare `FrameAllocator`, drained from its largest order
/// down (no split happens: the larger blocks are gone first), then put back.
fn frame_free_blocks<const ORDER: usize>(f: &mut FrameAllocator<ORDER>) -> Vec<(usize, u32)> {
    let mut v = Vec::new();
    for order in (0..ORDER as u32).rev() {
        while let Some(p) = f.alloc(1 << order) {
            v.push((p, order));
        }
    }
    for &(p, order) in v.iter().rev() {
        f.dealloc(p, 1 << order);
    }
    v.sort_unstable();
    v
}

/// The old setup: `FrameAllocator<11>` fed 16384 frames in one `add_frame`, beyond the
/// `2^11 - 1` frames its documentation allows for ORDER 11. Written to show the problem, it
/// shows there is none in 0.13's code: `add_frame` cuts the range into blocks of at most
/// `2^(ORDER - 1)` frames, so nothing is lost and merging stops at order 10. The setup was
/// outside the documented contract, not wrong in effect (the numbers did not depend on it).
#[test]
fn old_feeding_order11_16384_frames_outside_documented_range() {
    let mut f = FrameAllocator::<11>::new();
    f.add_frame(0, 16384);
    let blocks = frame_free_blocks(&mut f);
    let free: usize = blocks.iter().map(|&(_, o)| 1usize << o).sum();
    assert_eq!(free, 16384, "free frames after add_frame(0, 16384)");
    assert_eq!(blocks, (0..16).map(|s| (s << 10, 10)).collect::<Vec<_>>());
}

/// Why the new setup puts gaps between the slots: with a larger ORDER and contiguous slots, the
/// peer would hold one order-14 block and split from there, where rkmem splits from order 10.
#[test]
fn larger_order_with_contiguous_slots_would_merge_past_order_10() {
    let mut f = FrameAllocator::<{ PeerBuddy::ORDER }>::new();
    f.add_frame(0, 16384);
    assert_eq!(frame_free_blocks(&mut f), vec![(0, 14)]);
    let p = f.alloc(1).expect("a frame");
    f.dealloc(p, 1);
    assert_eq!(
        frame_free_blocks(&mut f),
        vec![(0, 14)],
        "merged back to order 14"
    );
}

#[test]
fn peer_arena_within_documented_range() {
    for slots in [1, ARENA_SLOTS] {
        let span = PeerBuddy::span(slots, MAX_ORDER);
        assert!(
            span < 1 << PeerBuddy::ORDER,
            "{slots} slots span {span} frames"
        );
        let mut p = PeerBuddy::new(slots, MAX_ORDER);
        let b = FreeBlocks::take(&mut p);
        let want: Vec<_> = (0..slots)
            .map(|s| (PeerBuddy::slot_start(s, MAX_ORDER), MAX_ORDER))
            .collect();
        assert_eq!(
            b.blocks(),
            want,
            "{slots} slots: one free order-10 block each"
        );
        assert_eq!(b.pages(), slots << MAX_ORDER);
    }
}

#[test]
fn peer_merges_stop_at_order_10_like_rkmem() {
    let mut peer = PeerBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let mut rk = RkBuddy::new(ARENA_SLOTS, MAX_ORDER);
    for order in [0, 3, MAX_ORDER] {
        let p = peer.alloc(order);
        peer.free(p, order);
        let r = rk.alloc(order);
        rk.free(r, order);
    }
    let blocks = FreeBlocks::take(&mut peer);
    assert_eq!(blocks.blocks().len(), ARENA_SLOTS);
    assert!(blocks.blocks().iter().all(|&(_, o)| o == MAX_ORDER));
    assert_eq!(
        peer.try_alloc(MAX_ORDER + 1),
        None,
        "no block above order 10"
    );
    let rk_blocks = FreeBlocks::take(&mut rk);
    assert_eq!(rk_blocks.blocks().len(), ARENA_SLOTS);
    assert!(rk_blocks.blocks().iter().all(|&(_, o)| o == MAX_ORDER));
    // Every slot's order-10 block can be had, on both sides.
    for _ in 0..ARENA_SLOTS {
        peer.alloc(MAX_ORDER);
        rk.alloc(MAX_ORDER);
    }
    assert_eq!(peer.try_alloc(0), None);
    assert_eq!(rk.try_alloc(0), None);
}

/// The drain behind the check agrees with rkmem's own free-page count, and leaves the allocator
/// as it found it.
#[test]
fn free_blocks_drain_matches_rkmem_count_and_restores() {
    let mut rk = RkBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let held: Vec<_> = [0, 2, 5, 0, 1].iter().map(|&o| (rk.alloc(o), o)).collect();
    let b = FreeBlocks::take(&mut rk);
    assert_eq!(b.pages(), rk.free_pages());
    assert_eq!(b.pages(), (ARENA_SLOTS << MAX_ORDER) - (1 + 4 + 32 + 1 + 2));
    assert_eq!(FreeBlocks::take(&mut rk), b);
    // The free lists' order is back too: a twin that was never drained hands out the same
    // blocks (rkmem takes the head of a LIFO list, so this would see a reordering).
    let mut twin = RkBuddy::new(ARENA_SLOTS, MAX_ORDER);
    for &(_, o) in &held {
        twin.alloc(o);
    }
    for o in [0, 0, 1, 3, 0, 10, 2, 0] {
        assert_eq!(rk.alloc(o), twin.alloc(o), "order {o}");
    }
    let mut peer = PeerBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let mut peer_twin = PeerBuddy::new(ARENA_SLOTS, MAX_ORDER);
    for &(_, o) in &held {
        peer.alloc(o);
        peer_twin.alloc(o);
    }
    FreeBlocks::take(&mut peer);
    for o in [0, 0, 1, 3, 0, 10, 2, 0] {
        assert_eq!(peer.alloc(o), peer_twin.alloc(o), "order {o}");
    }
    for (p, o) in held {
        rk.free(p, o);
    }
    assert!(rk.free_pages() < ARENA_SLOTS << MAX_ORDER);
}

/// One run per case (after `run_case`'s warm-up run and checks).
struct Once;

impl Visit for Once {
    fn visit<F: FnMut()>(self, mut run: F) {
        run();
    }
}

#[test]
fn buddy_cases_conserve_free_frames_on_both_sides() {
    let mut n = 0;
    for case in Case::all()
        .into_iter()
        .filter(|c| c.group().starts_with("buddy"))
    {
        let free = Side::ALL.map(|side| match run_case(case, side, Once) {
            Conserved::Pages(b) => b.pages(),
            other => panic!("{case}: {other:?}"),
        });
        let arena = match case {
            Case::BuddyFillDrain => 1 << MAX_ORDER,
            _ => ARENA_SLOTS << MAX_ORDER,
        };
        let held = usize::from(matches!(case, Case::BuddyPairsReady(_)));
        assert_eq!(
            free,
            [arena - held; 2],
            "{case}: free frames, rkmem and peer"
        );
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn slab_cases_conserve_free_objects_on_both_sides() {
    let mut n = 0;
    for case in Case::all()
        .into_iter()
        .filter(|c| c.group().starts_with("slab"))
    {
        let census = Side::ALL.map(|side| match run_case(case, side, Once) {
            Conserved::Objects(c) => c,
            other => panic!("{case}: {other:?}"),
        });
        let held = usize::from(matches!(case, Case::SlabPairsPinned(_)));
        for c in census {
            assert_eq!(c.used, held, "{case}: objects in use after the runs");
            assert!(c.slabs > 0 && c.free > 0, "{case}: {c}");
        }
        n += 1;
    }
    assert_eq!(n, 9);
}

#[test]
#[should_panic(expected = "conservation violated: rkmem leak after the measured runs")]
fn check_catches_rkmem_page_leak() {
    let mut a = RkBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let before = FreeBlocks::take(&mut a);
    a.alloc(0);
    check_conserved(
        "rkmem leak",
        "after the measured runs",
        &before,
        &FreeBlocks::take(&mut a),
    );
}

#[test]
#[should_panic(expected = "16383 free pages")]
fn check_catches_peer_page_leak() {
    let mut a = PeerBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let before = FreeBlocks::take(&mut a);
    a.alloc(0);
    check_conserved(
        "peer leak",
        "after the measured runs",
        &before,
        &FreeBlocks::take(&mut a),
    );
}

#[test]
#[should_panic(expected = "same totals, other blocks")]
fn check_catches_same_count_other_blocks() {
    // One page held either way, but another one: the counts agree, the free blocks do not.
    let mut a = PeerBuddy::new(ARENA_SLOTS, MAX_ORDER);
    let x = a.alloc(0);
    let y = a.alloc(0);
    a.free(x, 0);
    let before = FreeBlocks::take(&mut a);
    a.free(y, 0);
    a.alloc(0);
    let after = FreeBlocks::take(&mut a);
    assert_eq!(before.pages(), after.pages());
    check_conserved("peer", "after the measured runs", &before, &after);
}

#[test]
#[should_panic(expected = "conservation violated: rkmem slab leak")]
fn check_catches_rkmem_object_leak() {
    let mut a = RkCache::new(64, 1);
    let p = a.alloc();
    a.free(p);
    let before = a.census();
    a.alloc();
    check_conserved("rkmem slab leak", "after", &before, &a.census());
}

#[test]
#[should_panic(expected = "conservation violated: peer slab leak")]
fn check_catches_peer_object_leak() {
    let mut a = PeerZone::new(64, 1);
    let p = a.alloc();
    a.free(p);
    let before = a.census();
    a.alloc();
    check_conserved("peer slab leak", "after", &before, &a.census());
}
