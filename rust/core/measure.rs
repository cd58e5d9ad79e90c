// SPDX-License-Identifier: GPL-2.0

//! The benchmarks' pure parts: a seeded random sequence, the mixed-size trace drawn from it,
//! and a latency histogram. The module's `RKMEM_IOC_BENCH` feeds both allocators the same
//! sequence from these, so that rkmem and the host kernel run exactly the same operations.

/// A seeded pseudo-random sequence (splitmix64: every seed, including 0, gives a full-period
/// sequence of well-mixed 64-bit values).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The sequence of `seed`.
    pub const fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 for `n == 0`), by multiply-shift (bias below 2^-32 for the `n`s used
    /// here).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// The smallest request of the trace's size classes: class `c` draws uniformly from
/// `(TRACE_MIN << (c - 1), TRACE_MIN << c]` (class 0: `1..=TRACE_MIN`).
pub const TRACE_MIN: u32 = 8;

/// Each size class is this many 1/1000ths as likely as the one below it (0.6): the tail is a
/// power law, `P(size > s) ~ s^-0.74`, so most requests are small and a few are very large,
/// the shape of mimalloc-bench's `alloc-test`.
pub const TRACE_DECAY_PERMILLE: u64 = 600;

/// A request size of the trace, at most `max` bytes (`max >= TRACE_MIN`).
pub fn trace_size(rng: &mut Rng, max: u32) -> u32 {
    let max = max.max(TRACE_MIN);
    let classes = (max / TRACE_MIN).ilog2();
    // Class c with probability proportional to 0.6^c: climb while a draw says so.
    let mut c = 0;
    while c < classes && rng.below(1000) < TRACE_DECAY_PERMILLE as u32 {
        c += 1;
    }
    let hi = TRACE_MIN << c;
    let lo = if c == 0 { 0 } else { hi / 2 };
    (lo + 1 + rng.below(hi - lo)).min(max)
}

/// One operation of the trace, packed as the C loop reads it: `size << 10 | slot`.
pub fn trace_op(slot: u32, size: u32) -> u32 {
    (size << 10) | (slot & 1023)
}

/// The slot and size of a packed operation.
pub fn trace_unpack(op: u32) -> (u32, u32) {
    (op & 1023, op >> 10)
}

/// Fills `out` with the trace of `seed`: operation `i` frees slot `s` (a random one of
/// `slots <= 1024`) and allocates `trace_size(max)` bytes there.
pub fn fill_trace(out: &mut [u32], seed: u64, slots: u32, max: u32) {
    let mut rng = Rng::new(seed);
    let slots = slots.clamp(1, 1024);
    for op in out.iter_mut() {
        let slot = rng.below(slots);
        *op = trace_op(slot, trace_size(&mut rng, max));
    }
}

/// Sub-buckets per power of two of [`Histogram`]: percentiles within 1/16 of the value.
const SUB: usize = 16;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Values up to 2^32 ns (4 s) are bucketed; larger ones count in the last bucket.
const BUCKETS: usize = (32 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of nanosecond latencies (HdrHistogram's layout with 16 sub-buckets):
/// values below 16 are exact, above that each power of two is cut into 16 equal buckets. The
/// maximum is kept exactly.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    let v = v.min(u64::from(u32::MAX));
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = v.ilog2();
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    ((shift as usize + 1) * SUB + sub).min(BUCKETS - 1)
}

/// The largest value of bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let shift = (b / SUB - 1) as u32;
    let sub = (b % SUB) as u64;
    (((SUB as u64 + sub) + 1) << shift) - 1
}

impl Histogram {
    /// No values.
    pub const fn new() -> Histogram {
        Histogram {
            counts: [0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, ns: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(ns)) {
            *c = c.saturating_add(1);
        }
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (0 if none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at or below which `permille`/1000 of the values lie (the top of its bucket,
    /// never above the maximum); 0 if empty.
    pub fn percentile(&self, permille: u32) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = (self.total * u64::from(permille.min(1000)))
            .div_ceil(1000)
            .max(1);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_top(b).min(self.max);
            }
        }
        self.max
    }

    /// Median, 99th percentile and maximum.
    pub fn summary(&self) -> [u64; 3] {
        [self.percentile(500), self.percentile(990), self.max]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn the_same_seed_gives_the_same_trace_and_another_a_different_one() {
        let (mut a, mut b, mut c) = (vec![0; 4096], vec![0; 4096], vec![0; 4096]);
        fill_trace(&mut a, 7, 1024, 65536);
        fill_trace(&mut b, 7, 1024, 65536);
        fill_trace(&mut c, 8, 1024, 65536);
        assert_eq!(a, b);
        assert_ne!(a, c);
        for op in a {
            let (slot, size) = trace_unpack(op);
            assert!(slot < 1024 && (1..=65536).contains(&size));
        }
    }

    #[test]
    fn trace_sizes_are_heavy_tailed() {
        let mut rng = Rng::new(1);
        let sizes: Vec<u32> = (0..200_000).map(|_| trace_size(&mut rng, 65536)).collect();
        let share = |lo: u32, hi: u32| {
            sizes.iter().filter(|&&s| s > lo && s <= hi).count() as f64 / sizes.len() as f64
        };
        // Class 0 (1..=8 B) has 40%, each class above 0.6 of the one below; the top class
        // (32 KiB..64 KiB) is 0.6^13 / (1 - 0.6^13) * 0.4... of the draws: rare but present.
        assert!((share(0, 8) - 0.4).abs() < 0.01, "{}", share(0, 8));
        assert!((share(8, 16) - 0.24).abs() < 0.01);
        assert!((share(16, 32) - 0.144).abs() < 0.01);
        let top = share(32768, 65536);
        assert!(top > 0.0002 && top < 0.002, "{top}");
        assert!(sizes.iter().all(|&s| (1..=65536).contains(&s)));
        // Small maxima cap the classes.
        let mut rng = Rng::new(2);
        assert!((0..1000).all(|_| trace_size(&mut rng, 100) <= 100));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(0);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = rng.below(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn histogram_percentiles_of_a_known_set() {
        let mut h = Histogram::new();
        assert_eq!(h.summary(), [0, 0, 0]);
        for v in 1..=1000u64 {
            h.record(v);
        }
        let [p50, p99, max] = h.summary();
        assert_eq!(max, 1000);
        assert!((500..=500 + 500 / 16).contains(&p50), "{p50}");
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.count(), 1000);
        // One outlier moves the maximum, not the median.
        h.record(5_000_000);
        assert_eq!(h.max(), 5_000_000);
        assert!(h.percentile(500) <= 532);
        // Exact below 16.
        let mut h = Histogram::new();
        for v in [3, 3, 3, 9] {
            h.record(v);
        }
        assert_eq!(h.summary(), [3, 9, 9]);
    }

    proptest! {
        // Any percentile lies within 1/16 above the exact order statistic (and never above the
        // maximum).
        #[test]
        fn percentiles_are_within_a_sixteenth(
            mut vals in proptest::collection::vec(0u64..10_000_000, 1..400),
            permille in 1u32..=1000,
        ) {
            let mut h = Histogram::new();
            for &v in &vals {
                h.record(v);
            }
            vals.sort_unstable();
            let rank = (vals.len() as u64 * u64::from(permille)).div_ceil(1000).max(1);
            let exact = vals[rank as usize - 1];
            let got = h.percentile(permille);
            prop_assert!(got >= exact, "{got} < {exact}");
            prop_assert!(got <= exact + exact / 16 + 1, "{got} vs {exact}");
            prop_assert_eq!(h.max(), *vals.last().unwrap());
        }
    }
}
