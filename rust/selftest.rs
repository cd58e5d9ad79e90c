// SPDX-License-Identifier: GPL-2.0

//! In-kernel checks behind `RKMEM_IOC_SELFTEST`: the bad frees that user space cannot cause
//! through its handle table (it can only name handles it holds), made on purpose against the
//! live allocator. Each must be refused with the right error, counted, and leave the allocator
//! consistent: what was allocated here is freed correctly afterwards.

use crate::arena::{Arena, Pages};
use crate::rkcore::buddy::FreeError;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;

/// Checks run and failed.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
}

impl Outcome {
    fn check(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            pr_err!("selftest: {} failed\n", name);
        }
    }
}

/// Runs every check against `arena`.
pub(crate) fn run(arena: &Arena) -> Result<Outcome> {
    let mut o = Outcome::default();
    let st = &arena.stats;

    // Double free through the per-CPU path (order 0) and through the buddy path (order 5).
    for order in [0, 5] {
        let p = arena.alloc(order, true)?;
        let before = st.bad_free_double.load(Relaxed);
        o.check("free of a live block", arena.free(p).is_ok());
        o.check(
            "double free refused",
            arena.free(p) == Err(FreeError::DoubleFree),
        );
        o.check(
            "double free counted",
            st.bad_free_double.load(Relaxed) == before + 1,
        );
    }

    // Wrong order: refused, the block stays live and is then freed with its own order.
    let p = arena.alloc(2, true)?;
    let Pages::Order { page, .. } = p else {
        return Err(EINVAL);
    };
    o.check(
        "wrong order refused",
        arena.free(Pages::Order { page, order: 1 }) == Err(FreeError::WrongOrder { allocated: 2 }),
    );
    o.check(
        "inner page of a live block refused",
        arena
            .free(Pages::Order {
                page: page + 1,
                order: 0,
            })
            .is_err(),
    );
    o.check("block intact after refused frees", arena.free(p).is_ok());

    // Foreign pages: past the arena, or in a slot that holds no memory.
    o.check(
        "foreign page refused",
        arena.free(Pages::Order {
            page: usize::MAX / 2,
            order: 0,
        }) == Err(FreeError::NotOwned),
    );

    // Exact allocations: wrong count refused, then freed with the right one.
    let p = arena.alloc_exact(3, true)?;
    let page = p.first();
    o.check(
        "exact free with the wrong count refused",
        arena.free(Pages::Exact { page, npages: 4 }).is_err(),
    );
    o.check(
        "exact allocation freed as a block refused",
        arena.free(Pages::Order { page, order: 0 }).is_err(),
    );
    o.check("exact allocation intact", arena.free(p).is_ok());
    o.check("exact double free refused", arena.free(p).is_err());
    Ok(o)
}
