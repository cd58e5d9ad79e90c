// SPDX-License-Identifier: GPL-2.0

//! The per-cache depot of free objects between the per-CPU arrays and the slabs, and the
//! per-CPU tunables.
//!
//! A per-CPU array that is full gives its oldest `batch` objects to the depot instead of to
//! their slabs; one that is empty takes `batch` objects from the depot before it looks at the
//! slabs. This is SLAB's per-node shared array (slabinfo's `<sharedfactor>` and
//! `<sharedavail>`), Bonwick's magazine depot, and the role of SLUB's per-node barn of full
//! sheaves: objects freed on one CPU and allocated on another, or a burst of allocations
//! followed by a burst of frees, move in whole batches under one lock and never touch a slab's
//! bitmap. The depot holds at most `factor` batches; past that, batches go to the slabs.

use core::fmt;
use core::ops::DerefMut;

/// Batches a depot holds at most (slabinfo's `<sharedfactor>`). 16 batches of 32 small objects
/// is about what SLUB's barn keeps per node (10 full sheaves of about 60).
pub const DEPOT_FACTOR: usize = 16;

/// The largest per-CPU batch [`cpu_tunables`] gives.
pub const MAX_BATCH: usize = 32;

/// The per-CPU array's `(limit, batch)` for objects of `stride` bytes, scaled down with the
/// object size as SLUB scales its sheaves (`calculate_sheaf_capacity`): small objects are
/// cheap to keep cached, page-sized ones are not.
pub const fn cpu_tunables(stride: usize) -> (usize, usize) {
    if stride < 256 {
        (2 * MAX_BATCH, MAX_BATCH)
    } else if stride < 1024 {
        (32, 16)
    } else if stride < 4096 {
        (16, 8)
    } else {
        (8, 4)
    }
}

/// Why a [`Depot`] configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepotError {
    /// `batch * factor` is zero or above the storage's length.
    BadSize {
        /// Objects per batch.
        batch: usize,
        /// Batches.
        factor: usize,
        /// The storage's length.
        capacity: usize,
    },
}

impl fmt::Display for DepotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DepotError::BadSize {
                batch,
                factor,
                capacity,
            } => write!(
                f,
                "depot of {factor} batches of {batch}: must hold 1..={capacity} objects"
            ),
        }
    }
}

/// A bounded stack of free objects that moves whole batches, in storage `B` (a vector the
/// kernel allocates: a depot can be kilobytes, too big for a kernel stack).
///
/// # Invariants
///
/// `len <= limit <= objs.len()`; `objs[..len]` are the objects held, newest last.
#[derive(Clone, Debug)]
pub struct Depot<B> {
    objs: B,
    len: usize,
    batch: usize,
    limit: usize,
}

impl<B: DerefMut<Target = [usize]>> Depot<B> {
    /// An empty depot of at most `factor` batches of `batch` objects, kept in `objs`.
    pub fn new(objs: B, batch: usize, factor: usize) -> Result<Self, DepotError> {
        let limit = batch.saturating_mul(factor);
        if batch == 0 || factor == 0 || limit > objs.len() {
            return Err(DepotError::BadSize {
                batch,
                factor,
                capacity: objs.len(),
            });
        }
        Ok(Depot {
            objs,
            len: 0,
            batch,
            limit,
        })
    }

    /// Takes `objs` (at most one batch) whole, or nothing if they do not fit: `false`, the
    /// caller keeps them.
    pub fn put(&mut self, objs: &[usize]) -> bool {
        if objs.len() > self.batch || self.len + objs.len() > self.limit {
            return false;
        }
        match self.objs.get_mut(self.len..self.len + objs.len()) {
            Some(dst) => {
                dst.copy_from_slice(objs);
                self.len += objs.len();
                true
            }
            None => false,
        }
    }

    /// Moves the newest objects, at most one batch and at most `out.len()`, to `out`; returns
    /// how many.
    pub fn take(&mut self, out: &mut [usize]) -> usize {
        let n = out.len().min(self.batch);
        out.get_mut(..n).map_or(0, |out| self.drain(out))
    }

    /// Moves objects, at most `out.len()`, to `out` (for a trim or a shrinker); returns how
    /// many.
    pub fn drain(&mut self, out: &mut [usize]) -> usize {
        let n = out.len().min(self.len);
        let start = self.len - n;
        match (out.get_mut(..n), self.objs.get(start..self.len)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                self.len = start;
                n
            }
            _ => 0,
        }
    }

    /// Objects held (slabinfo's `<sharedavail>`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most objects held.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Objects per batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    extern crate std;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn tunables_shrink_with_the_object_size() {
        assert_eq!(cpu_tunables(8), (64, 32));
        assert_eq!(cpu_tunables(255), (64, 32));
        assert_eq!(cpu_tunables(256), (32, 16));
        assert_eq!(cpu_tunables(1023), (32, 16));
        assert_eq!(cpu_tunables(1024), (16, 8));
        assert_eq!(cpu_tunables(4095), (16, 8));
        assert_eq!(cpu_tunables(4096), (8, 4));
        let mut last = usize::MAX;
        for s in 1..=4096 {
            let (limit, batch) = cpu_tunables(s);
            assert_eq!(limit, 2 * batch);
            assert!(batch <= MAX_BATCH && limit <= last);
            last = limit;
        }
    }

    #[test]
    fn batches_in_and_out() {
        assert_eq!(
            Depot::new(vec![0; 8], 3, 3).unwrap_err(),
            DepotError::BadSize {
                batch: 3,
                factor: 3,
                capacity: 8
            }
        );
        assert!(Depot::new(vec![0; 8], 0, 1).is_err());
        assert!(Depot::new(vec![0; 8], 1, 0).is_err());
        let mut d = Depot::new(vec![0; 8], 2, 3).unwrap();
        assert!(d.is_empty());
        assert!(d.put(&[1, 2]));
        assert!(!d.put(&[3, 4, 5]), "more than a batch");
        assert!(d.put(&[3, 4]));
        assert!(d.put(&[5]));
        assert!(!d.put(&[6, 7]), "past the limit");
        assert!(d.put(&[6]));
        assert_eq!(d.len(), 6);
        let mut out = [0; 4];
        assert_eq!(d.take(&mut out), 2);
        assert_eq!(out[..2], [5, 6]);
        let mut all = [0; 8];
        assert_eq!(d.drain(&mut all), 4);
        assert_eq!(all[..4], [1, 2, 3, 4]);
        assert_eq!(d.take(&mut out), 0);
        assert_eq!((d.limit(), d.batch()), (6, 2));
        assert_eq!(
            DepotError::BadSize {
                batch: 40,
                factor: 8,
                capacity: 512
            }
            .to_string(),
            "depot of 8 batches of 40: must hold 1..=512 objects"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // The depot is a bounded stack that takes batches whole and never loses or
        // duplicates an object.
        #[test]
        fn depot_matches_a_model(batch in 1usize..=8, factor in 1usize..=4,
                                 ops in proptest::collection::vec((0u8..3, 0usize..10), 1..200)) {
            let mut d = Depot::new(vec![0; 32], batch, factor).unwrap();
            let mut model: Vec<usize> = Vec::new();
            let mut next = 1;
            for (kind, n) in ops {
                match kind {
                    0 => {
                        let objs: Vec<usize> = (next..next + n).collect();
                        next += n;
                        let fits = n <= batch && model.len() + n <= batch * factor;
                        prop_assert_eq!(d.put(&objs), fits);
                        if fits {
                            model.extend_from_slice(&objs);
                        }
                    }
                    1 => {
                        let mut out = vec![0; n];
                        let got = d.take(&mut out);
                        let want = n.min(batch).min(model.len());
                        prop_assert_eq!(got, want);
                        let tail = model.split_off(model.len() - got);
                        prop_assert_eq!(&out[..got], &tail[..]);
                    }
                    _ => {
                        let mut out = vec![0; n];
                        let got = d.drain(&mut out);
                        prop_assert_eq!(got, n.min(model.len()));
                        let tail = model.split_off(model.len() - got);
                        prop_assert_eq!(&out[..got], &tail[..]);
                    }
                }
                prop_assert_eq!(d.len(), model.len());
                prop_assert!(d.len() <= d.limit());
            }
        }
    }
}
