// SPDX-License-Identifier: GPL-2.0

//! A small deterministic PRNG and the data patterns written into allocations.
//!
//! The pattern of an allocation depends on its handle and a seed, and each byte on its offset,
//! so a byte that lands in the wrong allocation, at the wrong offset or stale from an earlier
//! owner is caught when it is read back.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for test choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

/// The SplitMix64 finaliser: a bijective mix of a 64-bit word.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// A number in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}

/// The key of the pattern of one allocation.
pub fn key(handle: u64, seed: u64) -> u64 {
    mix64(handle ^ mix64(seed.wrapping_add(GOLDEN)))
}

/// Word `index` (bytes `8 * index ..`) of the pattern `key`.
fn word(key: u64, index: u64) -> u64 {
    mix64(key ^ index.wrapping_mul(GOLDEN))
}

/// Fills `buf` with the pattern `key` as it is at offset `offset` of the allocation.
pub fn fill(key: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(key, pos / 8).to_le_bytes();
        let from = (pos % 8) as usize;
        let n = (8 - from).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[from..from + n]);
        i += n;
        pos += n as u64;
    }
}

/// The first byte of `buf` that differs from the pattern `key` at `offset`: its offset in the
/// allocation, the expected and the found byte.
pub fn first_mismatch(key: u64, offset: u64, buf: &[u8]) -> Option<(u64, u8, u8)> {
    let mut want = [0u8; 4096];
    let mut done = 0;
    while done < buf.len() {
        let n = want.len().min(buf.len() - done);
        let at = offset + done as u64;
        fill(key, at, &mut want[..n]);
        if want[..n] != buf[done..done + n] {
            let i = (0..n).find(|&i| want[i] != buf[done + i]).unwrap_or(0);
            return Some((at + i as u64, want[i], buf[done + i]));
        }
        done += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_independent_of_the_split() {
        let k = key(7, 42);
        let mut whole = vec![0u8; 100];
        fill(k, 3, &mut whole);
        let mut parts = vec![0u8; 100];
        fill(k, 3, &mut parts[..13]);
        fill(k, 16, &mut parts[13..50]);
        fill(k, 53, &mut parts[50..]);
        assert_eq!(whole, parts);
        assert_eq!(first_mismatch(k, 3, &whole), None);
    }

    #[test]
    fn mismatches_are_located() {
        let k = key(1, 2);
        let mut buf = vec![0u8; 10_000];
        fill(k, 5, &mut buf);
        buf[9_000] ^= 0x40;
        let (at, want, got) = first_mismatch(k, 5, &buf).unwrap();
        assert_eq!(at, 9_005);
        assert_eq!(want ^ 0x40, got);
        // Another handle's pattern differs.
        assert!(first_mismatch(key(2, 2), 5, &buf).is_some());
    }

    #[test]
    fn weighted_choices_stay_in_range() {
        let mut r = Rng::new(1);
        let mut seen = [0u32; 3];
        for _ in 0..3000 {
            seen[r.weighted(&[1, 0, 3])] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[2] > seen[0] * 2);
    }
}
