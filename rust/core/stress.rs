// SPDX-License-Identifier: GPL-2.0

//! The in-kernel stress engine's decisions (`RKMEM_IOC_STRESS`): which operation a worker makes
//! next, what it allocates, and the pattern each allocation is filled with and checked against
//! before it is freed. The module's workers (`rust/checks/stress.rs`, one per online CPU) own
//! the memory and call the allocators; every choice comes from here, from the call's seed.
//!
//! The pattern of an allocation is a sequence of 64-bit words, each the allocation's tag mixed
//! with its word index, written in native byte order from the first byte (the last partial
//! word is cut): a word copied to another offset, a stale copy left by a move, a neighbour's
//! overrun, a zeroed (freed, `init_on_free`) or foreign block all differ from it.

use super::measure::{trace_size, Rng};

/// Slots of a worker: the most allocations one worker holds at once.
pub const SLOTS: usize = 512;

/// The caches a call creates for its objects (size, alignment): tiny, odd (the seed's 117 bytes
/// at alignment 1), cache-line aligned, and large objects of higher-order slabs.
pub const CACHES: [(u32, u32); 9] = [
    (8, 8),
    (24, 8),
    (64, 64),
    (117, 1),
    (192, 8),
    (512, 8),
    (1000, 8),
    (2048, 64),
    (4000, 8),
];

/// Largest rkmalloc request: size classes, page blocks and exact pages (no vmalloc).
pub const RKMALLOC_MAX: u32 = 20000;
/// Largest buddy order of a page allocation.
pub const MAX_ORDER: u8 = 3;
/// Most pages of an exact allocation.
pub const MAX_EXACT: u8 = 7;

/// What a worker allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An object of the call's cache `CACHES[n]`.
    Obj(u8),
    /// rkmalloc of this many bytes (the size classes, page blocks and exact pages behind it).
    Rkmalloc(u32),
    /// A buddy block of this order.
    Pages(u8),
    /// Exactly this many pages (`alloc_pages_exact`).
    Exact(u8),
    /// An element of the call's mempool.
    Pool,
}

/// Kinds, for per-kind counts: [`Kind::index`] is the position.
pub const KINDS: usize = 5;

impl Kind {
    /// The kind's number: objects 0, rkmalloc 1, pages 2, exact pages 3, mempool 4.
    pub fn index(self) -> usize {
        match self {
            Kind::Obj(_) => 0,
            Kind::Rkmalloc(_) => 1,
            Kind::Pages(_) => 2,
            Kind::Exact(_) => 3,
            Kind::Pool => 4,
        }
    }
}

/// The next step of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Allocate `kind`, fill it and keep it in the empty `slot`.
    Alloc {
        /// The slot (empty).
        slot: usize,
        /// What to allocate.
        kind: Kind,
    },
    /// Check the allocation in `slot` and free it.
    Free {
        /// The slot (occupied).
        slot: usize,
    },
    /// Hand the allocation in `slot` over to the other workers: one of them checks and frees it.
    Handoff {
        /// The slot (occupied).
        slot: usize,
    },
    /// Take an allocation another worker handed over (if any), check it and free it here.
    TakeRemote,
}

/// One in this many steps on an occupied slot hands its allocation over, and one in this many
/// on an empty slot takes one that was handed over.
pub const HANDOFF_ONE_IN: u32 = 8;

/// A worker's sequence of steps: its own random sequence from the call's seed and its CPU.
#[derive(Clone, Debug)]
pub struct Engine {
    rng: Rng,
    serial: u64,
    seed: u64,
}

/// Mixes `x` (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Engine {
    /// The engine of worker `cpu` of a call with `seed`.
    pub fn new(seed: u64, cpu: u32) -> Engine {
        let own = mix(seed ^ mix(u64::from(cpu) + 1));
        Engine {
            rng: Rng::new(own),
            serial: 0,
            seed: own,
        }
    }

    /// The next step, given which slots are occupied.
    pub fn step(&mut self, occupied: impl Fn(usize) -> bool) -> Step {
        let slot = self.rng.below(SLOTS as u32) as usize;
        let one_in = self.rng.below(HANDOFF_ONE_IN) == 0;
        match (occupied(slot), one_in) {
            (true, true) => Step::Handoff { slot },
            (true, false) => Step::Free { slot },
            (false, true) => Step::TakeRemote,
            (false, false) => Step::Alloc {
                slot,
                kind: self.kind(),
            },
        }
    }

    /// A kind drawn from the mix: objects 45%, rkmalloc 30% (heavy-tailed sizes), pages 12%
    /// (order 0 most often), exact pages 5%, mempool elements 8%.
    pub fn kind(&mut self) -> Kind {
        let r = self.rng.below(100);
        match r {
            0..45 => Kind::Obj(self.rng.below(CACHES.len() as u32) as u8),
            45..75 => Kind::Rkmalloc(trace_size(&mut self.rng, RKMALLOC_MAX)),
            75..87 => {
                // Order o with probability 1/2^(o+1), the rest at the top.
                let lz = (self.rng.next_u64() | 1 << 63).trailing_zeros() as u8;
                Kind::Pages(lz.min(MAX_ORDER))
            }
            87..92 => Kind::Exact(1 + self.rng.below(u32::from(MAX_EXACT)) as u8),
            _ => Kind::Pool,
        }
    }

    /// The tag of the next allocation: unique within the call's worker, never zero.
    pub fn next_tag(&mut self) -> u64 {
        self.serial += 1;
        mix(self.seed ^ self.serial.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
    }
}

/// Word `i` of the pattern of `tag`.
#[inline(always)]
fn word(tag: u64, i: usize) -> u64 {
    tag ^ (i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93)
}

/// Fills `buf` with the pattern of `tag`.
pub fn fill(buf: &mut [u8], tag: u64) {
    let mut chunks = buf.chunks_exact_mut(8);
    for (i, c) in chunks.by_ref().enumerate() {
        c.copy_from_slice(&word(tag, i).to_ne_bytes());
    }
    let i = buf.len() / 8;
    let rest = buf.len() % 8;
    let last = word(tag, i).to_ne_bytes();
    if let (Some(tail), Some(src)) = (buf.get_mut(i * 8..), last.get(..rest)) {
        tail.copy_from_slice(src);
    }
}

/// The offset of the first byte of `buf` that is not the pattern of `tag`, or `None`.
pub fn check(buf: &[u8], tag: u64) -> Option<usize> {
    let mut chunks = buf.chunks_exact(8);
    for (i, c) in chunks.by_ref().enumerate() {
        if c != word(tag, i).to_ne_bytes() {
            return first_diff(c, &word(tag, i).to_ne_bytes()).map(|d| i * 8 + d);
        }
    }
    let i = buf.len() / 8;
    let rest = chunks.remainder();
    let last = word(tag, i).to_ne_bytes();
    first_diff(rest, &last).map(|d| i * 8 + d)
}

/// The first index where `a` differs from `b` (over `a`'s length).
fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// A call's totals over its workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Allocations and frees made.
    pub ops: u64,
    /// Allocations made, by [`Kind::index`].
    pub allocs: [u64; KINDS],
    /// Frees made (after the check).
    pub frees: u64,
    /// Frees of an allocation another worker made.
    pub remote_frees: u64,
    /// Bytes checked against their pattern before their free.
    pub bytes_verified: u64,
    /// Allocations refused for lack of memory (the arena has a maximum): not failures.
    pub enomem: u64,
    /// Patterns found changed, and frees the allocator refused.
    pub failures: u64,
}

impl Totals {
    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &Totals) {
        self.ops += o.ops;
        for (a, b) in self.allocs.iter_mut().zip(o.allocs) {
            *a += b;
        }
        self.frees += o.frees;
        self.remote_frees += o.remote_frees;
        self.bytes_verified += o.bytes_verified;
        self.enomem += o.enomem;
        self.failures += o.failures;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert_eq, proptest};
    extern crate std;
    use std::collections::HashSet;
    use std::vec;
    use std::vec::Vec;
    use std::{assert, assert_eq, assert_ne};

    #[test]
    fn engines_are_deterministic_and_differ_by_cpu() {
        let run = |seed, cpu| {
            let mut e = Engine::new(seed, cpu);
            let mut held = [false; SLOTS];
            (0..1000)
                .map(|_| {
                    let s = e.step(|i| held[i]);
                    match s {
                        Step::Alloc { slot, .. } => held[slot] = true,
                        Step::Free { slot } | Step::Handoff { slot } => held[slot] = false,
                        Step::TakeRemote => {}
                    }
                    s
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7, 0), run(7, 0));
        assert_ne!(run(7, 0), run(7, 1));
        assert_ne!(run(7, 0), run(8, 0));
    }

    #[test]
    fn the_mix_reaches_every_kind_and_step_in_bounds() {
        let mut e = Engine::new(0x5eed, 3);
        let mut held = [false; SLOTS];
        let mut kinds = [0u64; KINDS];
        let (mut frees, mut handoffs, mut takes) = (0u64, 0u64, 0u64);
        let mut orders = [0u64; MAX_ORDER as usize + 1];
        let mut caches = [0u64; CACHES.len()];
        let n = 200_000;
        for _ in 0..n {
            match e.step(|i| held[i]) {
                Step::Alloc { slot, kind } => {
                    assert!(!held[slot], "allocation into an occupied slot");
                    held[slot] = true;
                    kinds[kind.index()] += 1;
                    match kind {
                        Kind::Obj(c) => caches[c as usize] += 1,
                        Kind::Rkmalloc(s) => assert!((1..=RKMALLOC_MAX).contains(&s)),
                        Kind::Pages(o) => orders[o as usize] += 1,
                        Kind::Exact(p) => assert!((1..=MAX_EXACT).contains(&p)),
                        Kind::Pool => {}
                    }
                }
                Step::Free { slot } => {
                    assert!(held[slot], "free of an empty slot");
                    held[slot] = false;
                    frees += 1;
                }
                Step::Handoff { slot } => {
                    assert!(held[slot], "handoff of an empty slot");
                    held[slot] = false;
                    handoffs += 1;
                }
                Step::TakeRemote => takes += 1,
            }
        }
        let allocs: u64 = kinds.iter().sum();
        // Weights 45/30/12/5/8 percent, within 2 points each.
        for (k, want) in kinds.iter().zip([45, 30, 12, 5, 8]) {
            let pct = k * 100 / allocs;
            assert!(
                pct.abs_diff(want) <= 2,
                "kind share {pct}%, want {want}%: {kinds:?}"
            );
        }
        assert!(caches.iter().all(|&c| c > 0), "every cache: {caches:?}");
        assert!(orders.iter().all(|&o| o > 0), "every order: {orders:?}");
        assert!(orders[0] > orders[1] && orders[1] > orders[2], "{orders:?}");
        // Handoffs and takes: about one step in eight of their slot state.
        assert!(
            handoffs * 12 > frees && handoffs * 5 < frees,
            "{handoffs} vs {frees}"
        );
        assert!(takes > 0);
        assert_eq!(
            allocs,
            frees + handoffs + held.iter().filter(|&&h| h).count() as u64
        );
    }

    #[test]
    fn tags_are_unique_and_nonzero() {
        let mut e = Engine::new(1, 0);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let t = e.next_tag();
            assert_ne!(t, 0);
            assert!(seen.insert(t));
        }
    }

    #[test]
    fn zeroed_and_other_tags_fail_the_check() {
        for len in [1usize, 7, 8, 9, 117, 4096] {
            let mut b = vec![0u8; len];
            // Tags are odd: the first byte of a zeroed block already differs.
            assert_eq!(check(&b, 0x1235), Some(0), "zeros pass for {len}");
            fill(&mut b, 0x1235);
            assert_eq!(check(&b, 0x1235), None);
            assert!(check(&b, 0x1237).is_some(), "another tag passes for {len}");
        }
    }

    #[test]
    fn a_word_moved_by_eight_bytes_fails_the_check() {
        let mut b = vec![0u8; 64];
        fill(&mut b, 99);
        b.copy_within(0..8, 8);
        assert_eq!(check(&b, 99), Some(8));
    }

    proptest! {
        /// Any one changed byte is found, at its offset.
        #[test]
        fn one_changed_byte_is_found(len in 1usize..5000, at in any::<usize>(), flip in 1u8..=255, tag in any::<u64>()) {
            let mut b = vec![0u8; len];
            fill(&mut b, tag);
            prop_assert_eq!(check(&b, tag), None);
            let at = at % len;
            b[at] ^= flip;
            prop_assert_eq!(check(&b, tag), Some(at));
        }
    }
}
