// SPDX-License-Identifier: GPL-2.0

//! Allocation traces, generated once and replayed by every allocator.
//!
//! A trace names blocks by their position in the replayer's list of live blocks, never by
//! address, so allocators that hand out different addresses still do the same work: `Alloc`
//! appends the new block to the list, `Free(i)` frees the block at position `i` and moves the
//! last block into its place (`Vec::swap_remove`).

/// One operation of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate a block of `2^order` pages (buddy) or one object (slab).
    Alloc(u8),
    /// Free the live block at this position.
    Free(u32),
}

/// A small deterministic generator (SplitMix64): the traces must not depend on a crate version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the bias is negligible for the small `n` used here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Tracks a trace's live list while it is generated, by allocation number.
#[derive(Default)]
struct Model {
    trace: Vec<Op>,
    live: Vec<usize>,
    next_id: usize,
}

impl Model {
    fn alloc(&mut self, order: u8) -> usize {
        self.trace.push(Op::Alloc(order));
        self.live.push(self.next_id);
        self.next_id += 1;
        self.next_id - 1
    }

    fn free_at(&mut self, pos: usize) {
        self.trace.push(Op::Free(pos as u32));
        self.live.swap_remove(pos);
    }

    fn free_id(&mut self, id: usize) {
        let pos = self.live.iter().position(|&x| x == id).expect("id is live");
        self.free_at(pos);
    }
}

/// `len` operations: allocations of orders `0..=max_order` and frees of random live blocks, at
/// most `max_live` blocks live at once; the last operations free whatever is still live, so the
/// trace can be replayed again from the same state. Deterministic in `seed`.
pub fn random(len: usize, max_order: u8, max_live: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut m = Model::default();
    while m.trace.len() + m.live.len() < len {
        let n = m.live.len();
        // Allocate with probability 1/2 while below half the bound, falling to 0 at the bound.
        let p_alloc = if n < max_live / 2 {
            512
        } else {
            (max_live - n) as u64 * 1024 / max_live as u64
        };
        if n == 0 || rng.below(1024) < p_alloc {
            let order = rng.below(u64::from(max_order) + 1) as u8;
            m.alloc(order);
        } else {
            let pos = rng.below(n as u64) as usize;
            m.free_at(pos);
        }
    }
    while let Some(&id) = m.live.last() {
        m.free_id(id);
    }
    m.trace
}

/// `n` allocations of `order`, then `n` frees in allocation order (first allocated, first freed).
pub fn fill_then_drain(n: usize, order: u8) -> Vec<Op> {
    let mut m = Model::default();
    let ids: Vec<usize> = (0..n).map(|_| m.alloc(order)).collect();
    for id in ids {
        m.free_id(id);
    }
    m.trace
}

/// Number of allocations in `trace`.
pub fn allocs(trace: &[Op]) -> usize {
    trace.iter().filter(|op| matches!(op, Op::Alloc(_))).count()
}

/// The most blocks live at once during `trace`.
pub fn max_live(trace: &[Op]) -> usize {
    let (mut live, mut max) = (0usize, 0usize);
    for op in trace {
        match op {
            Op::Alloc(_) => live += 1,
            Op::Free(_) => live -= 1,
        }
        max = max.max(live);
    }
    max
}
