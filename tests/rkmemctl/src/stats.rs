// SPDX-License-Identifier: GPL-2.0

//! Paired statistics of benchmark repetitions.
//!
//! Each repetition times rkmem and the host kernel back to back, so the unit of evidence is the
//! per-repetition ratio rkmem/host. Its median is reported with a distribution-free confidence
//! interval: the order statistics `x(k)` and `x(n+1-k)` of the sorted ratios, with the largest
//! `k` for which the binomial (sign-test) tail `P(B(n, 1/2) < k)` on each side is at most
//! `(1 - level) / 2`. It assumes nothing about the shape of the distribution (timings are
//! skewed: preemption and cache misses only ever add time), only that repetitions are
//! independent. For 15 repetitions the 95% interval is `[x(4), x(12)]` (96.5% coverage).

/// The median of a sample with a confidence interval, and its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Lower end of the confidence interval of the median.
    pub lo: f64,
    /// Upper end of the confidence interval of the median.
    pub hi: f64,
    /// Coverage of `[lo, hi]`: at least the level asked for, unless `n` is too small to reach
    /// it (then `[lo, hi]` is `[min, max]` and this says what it covers).
    pub coverage: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// `P(B(n, 1/2) <= j)`.
fn binom_cdf_half(n: usize, j: usize) -> f64 {
    let mut c = 1.0f64; // C(n, 0)
    let mut sum = 0.0f64;
    for i in 0..=j.min(n) {
        if i > 0 {
            c = c * (n + 1 - i) as f64 / i as f64;
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// The 1-based rank `k` of the interval's lower end for `n` values, and its coverage.
pub fn ci_rank(n: usize, level: f64) -> (usize, f64) {
    let tail = (1.0 - level) / 2.0;
    let mut k = 1;
    // Widen inward while the tail below rank k+1 still fits: P(B <= k) <= tail.
    while k < n.div_ceil(2) && binom_cdf_half(n, k) <= tail {
        k += 1;
    }
    (k, 1.0 - 2.0 * binom_cdf_half(n, k - 1))
}

/// Median, confidence interval at `level` (e.g. 0.95), min and max of `xs`; `None` if `xs` is
/// empty or holds a value that is not finite.
pub fn summarize(xs: &[f64], level: f64) -> Option<Summary> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let (k, coverage) = ci_rank(n, level);
    Some(Summary {
        n,
        median,
        lo: v[k - 1],
        hi: v[n - k],
        coverage,
        min: v[0],
        max: v[n - 1],
    })
}

/// The median of `xs` (0 for none).
pub fn median(xs: &[f64]) -> f64 {
    summarize(xs, 0.0).map_or(0.0, |s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_match_the_sign_test_tables() {
        // Classic tables of the distribution-free interval for the median at 95%.
        assert_eq!(ci_rank(6, 0.95).0, 1);
        assert_eq!(ci_rank(10, 0.95).0, 2);
        assert_eq!(ci_rank(15, 0.95).0, 4);
        assert_eq!(ci_rank(20, 0.95).0, 6);
        assert_eq!(ci_rank(21, 0.95).0, 6);
        assert_eq!(ci_rank(31, 0.95).0, 10);
        let (_, cov) = ci_rank(15, 0.95);
        assert!((cov - 0.9648).abs() < 1e-4, "{cov}");
    }

    #[test]
    fn coverage_is_at_least_the_level_once_reachable() {
        for n in 6..200 {
            let (k, cov) = ci_rank(n, 0.95);
            assert!(cov >= 0.95, "n {n}: rank {k} covers {cov}");
            // One rank further inward would fall below the level.
            if k < n.div_ceil(2) {
                let inner = 1.0 - 2.0 * binom_cdf_half(n, k);
                assert!(
                    inner < 0.95,
                    "n {n}: rank {} would still cover {inner}",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn small_samples_fall_back_to_the_range() {
        let s = summarize(&[3.0, 1.0, 2.0], 0.95).unwrap();
        assert_eq!((s.lo, s.hi, s.median), (1.0, 3.0, 2.0));
        assert!((s.coverage - 0.75).abs() < 1e-12);
    }

    #[test]
    fn summary_of_fifteen() {
        let xs: Vec<f64> = (1..=15).rev().map(f64::from).collect();
        let s = summarize(&xs, 0.95).unwrap();
        assert_eq!(s.n, 15);
        assert_eq!(s.median, 8.0);
        assert_eq!((s.lo, s.hi), (4.0, 12.0));
        assert_eq!((s.min, s.max), (1.0, 15.0));
    }

    #[test]
    fn even_median_and_bad_input() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(summarize(&[], 0.95).is_none());
        assert!(summarize(&[1.0, f64::NAN], 0.95).is_none());
        assert!(summarize(&[1.0, f64::INFINITY], 0.95).is_none());
    }
}
