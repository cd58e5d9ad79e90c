// SPDX-License-Identifier: GPL-2.0

//! Per-CPU object caches: the fast path of the slab caches, over glue/objs.c's `rkmem_objs`.
//!
//! Each possible CPU has an array of up to [`CAP`] free objects behind a `local_trylock_t`,
//! like SLUB's per-CPU sheaves. [`ObjCache::pop`] and [`ObjCache::push`] work on the array of
//! the CPU they run on with that lock taken, which on a !RT kernel only disables preemption:
//! no atomic instruction, no cache line shared with another CPU, one call into the glue. The
//! slow paths move batches ([`ObjCache::refill`], [`ObjCache::drain`]). Another CPU's array is
//! emptied only on that CPU, in an IPI ([`ObjCache::flush`]), or with `&mut self`
//! ([`ObjCache::take_all`]: nobody else holds the cache).

use core::ptr::NonNull;
use kernel::ffi::c_uint;
use kernel::prelude::*;

/// Most objects one CPU's array holds: the one source of the capacity, passed to
/// `rkmem_objs_create` (glue/objs.c sizes the arrays with it) and sizing every buffer handed
/// to `take_all` and `flush`.
pub(crate) const CAP: usize = 64;

use crate::ffi::{
    rkmem_objs_count, rkmem_objs_create, rkmem_objs_destroy, rkmem_objs_drain, rkmem_objs_flush,
    rkmem_objs_pop, rkmem_objs_push, rkmem_objs_refill, rkmem_objs_take_all, RkmemObjs,
};

/// Possible CPU ids are below this.
pub(crate) fn nr_cpu_ids() -> u32 {
    kernel::cpu::nr_cpu_ids()
}

/// The per-CPU arrays of one slab cache.
///
/// # Invariants
///
/// `ptr` came from `rkmem_objs_create` and is destroyed only on drop. The glue accesses a
/// CPU's array only on that CPU under its local lock, in an IPI to it under the same lock, or
/// while it is offline; `take_all` (with `&mut self`) is the only other access.
pub(crate) struct ObjCache {
    ptr: NonNull<RkmemObjs>,
}

// SAFETY: the glue serialises every access to the arrays (type invariant); the handle is a
// pointer to per-CPU memory valid on any CPU.
unsafe impl Send for ObjCache {}
// SAFETY: as above: shared use only reaches the arrays through the glue's locked paths.
unsafe impl Sync for ObjCache {}

impl ObjCache {
    /// Arrays holding at most `limit` objects each: `EINVAL` unless `1..=CAP`, `ENOMEM`.
    pub(crate) fn new(limit: usize) -> Result<Self> {
        if limit == 0 || limit > CAP {
            return Err(EINVAL);
        }
        // SAFETY: plain allocation; `limit` is in range (checked) and `CAP` is what every
        // buffer this type hands to the glue is sized with.
        let ptr = unsafe { rkmem_objs_create(limit as c_uint, CAP as c_uint) };
        Ok(ObjCache {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Takes the newest object of this CPU's array; `None` if it is empty.
    #[inline]
    pub(crate) fn pop(&self) -> Option<usize> {
        // SAFETY: `ptr` is live (type invariant); the glue locks this CPU's array.
        let obj = unsafe { rkmem_objs_pop(self.ptr.as_ptr()) };
        (obj != 0).then_some(obj)
    }

    /// Puts `obj` (never 0) on this CPU's array; `false` if it is full.
    #[inline]
    pub(crate) fn push(&self, obj: usize) -> bool {
        // SAFETY: as in `pop`.
        unsafe { rkmem_objs_push(self.ptr.as_ptr(), obj) }
    }

    /// Adds objects to this CPU's array; returns how many fitted (the rest stay with the
    /// caller).
    pub(crate) fn refill(&self, objs: &[usize]) -> usize {
        let n = objs.len().min(CAP) as c_uint;
        // SAFETY: as in `pop`; the glue reads at most `n <= objs.len()` entries.
        unsafe { rkmem_objs_refill(self.ptr.as_ptr(), objs.as_ptr(), n) as usize }
    }

    /// Moves the oldest objects of this CPU's array, at most `out.len()`, to `out`; returns
    /// how many.
    pub(crate) fn drain(&self, out: &mut [usize]) -> usize {
        let n = out.len().min(CAP) as c_uint;
        // SAFETY: as in `pop`; the glue writes at most `n <= out.len()` entries.
        unsafe { rkmem_objs_drain(self.ptr.as_ptr(), out.as_mut_ptr(), n) as usize }
    }

    /// Objects in CPU `cpu`'s array, read while its owner may be changing it.
    pub(crate) fn count(&self, cpu: u32) -> usize {
        // SAFETY: as in `pop`; the glue only reads the count (READ_ONCE).
        unsafe { rkmem_objs_count(self.ptr.as_ptr(), cpu) as usize }
    }

    /// Empties CPU `cpu`'s array into `out`, on that CPU (an IPI). With `try_only` it does not
    /// wait for the CPU hotplug lock. Returns how many; `EBUSY` if the array's lock (its owner
    /// is in a fast path) or, with `try_only`, the hotplug lock is held; `EINVAL` for an
    /// impossible CPU. Sleeps unless `try_only`.
    pub(crate) fn flush(&self, cpu: u32, try_only: bool, out: &mut [usize; CAP]) -> Result<usize> {
        // SAFETY: as in `pop`; `out` has room for the `CAP` objects an array can hold.
        let r = unsafe { rkmem_objs_flush(self.ptr.as_ptr(), cpu, try_only, out.as_mut_ptr()) };
        kernel::error::to_result(r)?;
        Ok(r as usize)
    }

    /// Empties CPU `cpu`'s array into `out` directly: nobody else holds the cache.
    pub(crate) fn take_all(&mut self, cpu: u32, out: &mut [usize; CAP]) -> usize {
        // SAFETY: `ptr` is live; `&mut self` means no other thread uses the cache, so no CPU
        // is in its fast path; `out` has room for `CAP` objects.
        unsafe { rkmem_objs_take_all(self.ptr.as_ptr(), cpu, out.as_mut_ptr()) as usize }
    }
}

impl Drop for ObjCache {
    fn drop(&mut self) {
        // SAFETY: from `rkmem_objs_create`, destroyed once; nobody uses it any more.
        unsafe { rkmem_objs_destroy(self.ptr.as_ptr()) };
    }
}

/// `N` event counters per CPU (glue/counters.c): [`Counters::add`] changes this CPU's copy
/// (`this_cpu_add`: no lock, no atomic instruction, no shared cache line), [`Counters::sum`]
/// adds up every CPU's, exactly once the adders are quiescent.
///
/// # Invariants
///
/// `ptr` came from `rkmem_counters_create(N)` and is freed only on drop.
pub(crate) struct Counters<const N: usize> {
    ptr: NonNull<i64>,
}

// SAFETY: each CPU writes only its own copy, with a preemption-safe per-CPU add; readers sum
// with READ_ONCE. The handle is a per-CPU pointer valid on any CPU.
unsafe impl<const N: usize> Send for Counters<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> Sync for Counters<N> {}

impl<const N: usize> Counters<N> {
    /// `N` zeroed counters per CPU (`ENOMEM`).
    pub(crate) fn new() -> Result<Self> {
        const { assert!(N > 0 && N <= 64) };
        // SAFETY: plain allocation of `N` counters (in range: checked at compile time).
        let ptr = unsafe { crate::ffi::rkmem_counters_create(N as c_uint) };
        Ok(Counters {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Adds `delta` to counter `i` (this CPU's copy).
    #[inline]
    pub(crate) fn add(&self, i: usize, delta: i64) {
        if i < N {
            // SAFETY: `ptr` is live (type invariant) and `i < N`.
            unsafe { crate::ffi::rkmem_counter_add(self.ptr.as_ptr(), i as c_uint, delta) };
        }
    }

    /// Counter `i` summed over every possible CPU (0 for `i >= N`).
    pub(crate) fn sum(&self, i: usize) -> i64 {
        if i >= N {
            return 0;
        }
        // SAFETY: as in `add`.
        unsafe { crate::ffi::rkmem_counter_sum(self.ptr.as_ptr(), i as c_uint) }
    }
}

impl<const N: usize> Drop for Counters<N> {
    fn drop(&mut self) {
        // SAFETY: from `rkmem_counters_create`, freed once; nobody uses it any more.
        unsafe { crate::ffi::rkmem_counters_destroy(self.ptr.as_ptr()) };
    }
}
