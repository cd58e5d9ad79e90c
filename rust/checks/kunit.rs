// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the module, built when the kernel has KUnit (the debug kernel). KUnit runs
//! them when the module goes live (after `init`), against the module's real allocators: the
//! bad-free, slab and mempool checks of `selftest.rs` must all hold. Results: dmesg (TAP) and
//! /sys/kernel/debug/kunit/rkmem/results.

use kernel::macros::kunit_tests;

#[kunit_tests(rkmem)]
mod tests {
    use crate::arena::Arena;
    use crate::selftest::{self, Outcome};
    use kernel::prelude::*;

    /// Gives back what a test left cached (slabs, per-CPU pages, grown blocks), so that the
    /// module is as it was right after load when KUnit is done with it.
    fn tidy() {
        if let Some(shared) = crate::shared() {
            let all = crate::uapi::RKMEM_TRIM_SLABS
                | crate::uapi::RKMEM_TRIM_PCP
                | crate::uapi::RKMEM_TRIM_ARENA;
            let _ = shared.trim(all);
        }
    }

    fn arena() -> Result<&'static Arena> {
        Ok(&crate::shared().ok_or(ENODEV)?.arena)
    }

    #[test]
    fn bad_frees_are_refused_and_counted() -> Result {
        let mut o = Outcome::default();
        selftest::run(&mut o)?;
        tidy();
        assert!(o.passed > 0);
        assert_eq!(o.failed, 0);
        // The eight deliberate bad frees of `selftest::run` were refused (so counted once each
        // in bad_free_*), whatever runs beside it.
        assert_eq!(o.arena_bad_frees, 8);
        Ok(())
    }

    #[test]
    fn slab_frees_are_checked() -> Result {
        let mut o = Outcome::default();
        selftest::run_slab(arena()?, crate::slab_debug(), &mut o)?;
        tidy();
        assert!(o.passed > 0);
        assert_eq!(o.failed, 0);
        Ok(())
    }

    #[test]
    fn per_cpu_object_arrays_match_a_model() -> Result {
        let mut o = Outcome::default();
        selftest::run_percpu(&mut o)?;
        assert!(o.passed > 0);
        assert_eq!(o.failed, 0);
        Ok(())
    }

    #[test]
    fn rkmalloc_frees_find_the_class_from_the_address() -> Result {
        let shared = crate::shared().ok_or(ENODEV)?;
        let mut o = Outcome::default();
        selftest::run_rkmalloc(&shared.classes, &shared.arena, &mut o)?;
        tidy();
        assert!(o.passed > 0);
        assert_eq!(o.failed, 0);
        Ok(())
    }

    #[test]
    fn mempool_reserve_serves_and_refills() -> Result {
        let mut o = Outcome::default();
        selftest::run_mempool(arena()?, &mut o)?;
        tidy();
        assert!(o.passed > 0);
        assert_eq!(o.failed, 0);
        Ok(())
    }
}
