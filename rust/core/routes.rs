// SPDX-License-Identifier: GPL-2.0

//! The decisions of `RKMEM_IOC_ROUTES`: one size through the host kernel's kmalloc, vmalloc,
//! kvmalloc, `alloc_pages` and `alloc_pages_exact`, and through rkmalloc. Which sizes are
//! accepted, which host routes a size is tried on, and what rkmalloc's own size-class decision
//! ([`super::sizeclass`]) makes of a size: where it comes from and the bytes it holds. The
//! allocations themselves are the glue's (`rust/glue/routes.c`) and `classes::rkmalloc`'s.

use super::sizeclass::{self, Route};

/// The page size the routes count in (x86-64's, and rkmem's arena's).
pub const PAGE_SIZE: usize = sizeclass::PAGE_SIZE;

/// Why a request is refused (`EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Size 0: nothing to allocate (kmalloc answers `ZERO_SIZE_PTR`, rkmalloc refuses it).
    Zero,
    /// Above the stated maximum.
    TooBig,
    /// A reserved field is not zero.
    Reserved,
}

/// Checks a request: `size` in `1..=max`, `reserved` zero. Returns the size.
pub fn check(size: u64, reserved: u64, max: u64) -> Result<usize, Bad> {
    if reserved != 0 {
        return Err(Bad::Reserved);
    }
    if size == 0 {
        return Err(Bad::Zero);
    }
    if size > max {
        return Err(Bad::TooBig);
    }
    usize::try_from(size).map_err(|_| Bad::TooBig)
}

/// The kernel's `get_order(size)`: the smallest `k` with `PAGE_SIZE << k >= size` (size >= 1).
pub fn get_order(size: usize) -> u32 {
    sizeclass::order_for_pages(size.div_ceil(PAGE_SIZE))
}

/// Which of the host's routes a size is tried on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// kmalloc: up to `KMALLOC_MAX_SIZE` (beyond, it can only fail).
    pub kmalloc: bool,
    /// `alloc_pages(get_order(size))` and `alloc_pages_exact(size)`: a block of at most
    /// `MAX_PAGE_ORDER`, the same bound (`KMALLOC_MAX_SIZE` is that block's size).
    pub pages: bool,
    /// `get_order(size)`.
    pub order: u32,
}

/// The plan for `size` on a host whose largest kmalloc is `kmalloc_max_size` bytes. vmalloc,
/// kvmalloc and rkmalloc are tried at every size.
pub fn plan(size: usize, kmalloc_max_size: usize) -> Plan {
    let fits = size <= kmalloc_max_size;
    Plan {
        kmalloc: fits,
        pages: fits,
        order: get_order(size),
    }
}

/// Where an allocation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An object of a slab cache.
    Slab,
    /// Whole pages of a page allocator.
    Pages,
    /// vmalloc.
    Vmalloc,
}

/// Where an allocation came from and the bytes it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// The route.
    pub kind: Kind,
    /// Whole pages, exactly as many as the size needs (not a power-of-two block).
    pub exact: bool,
    /// Bytes the allocation holds: the object size of its class, the pages of its block, the
    /// pages vmalloc maps.
    pub bytes: usize,
}

impl Used {
    /// Bytes held beyond the `size` asked: the internal fragmentation.
    pub fn wasted(&self, size: usize) -> usize {
        self.bytes.saturating_sub(size)
    }
}

/// What rkmalloc's size-class decision ([`sizeclass::class_for`]) makes of `size`: the smallest
/// class that fits, a block of `2^order` pages, exact pages, or vmalloc's pages.
pub fn rkmalloc_used(size: usize) -> Result<Used, sizeclass::SizeError> {
    let pages = |n: usize, exact| Used {
        kind: Kind::Pages,
        exact,
        bytes: n * PAGE_SIZE,
    };
    Ok(match sizeclass::class_for(size)? {
        Route::Slab(class) => Used {
            kind: Kind::Slab,
            exact: false,
            // `class_for` answers only classes of the table.
            bytes: sizeclass::class_size(class).unwrap_or(0),
        },
        Route::Order(o) => pages(1 << o, false),
        Route::Pages(n) => pages(n, true),
        Route::Vmalloc => Used {
            kind: Kind::Vmalloc,
            exact: false,
            bytes: size.div_ceil(PAGE_SIZE) * PAGE_SIZE,
        },
    })
}

/// Whether rkmalloc serves `size` with exact pages (the kernel side's flag for its answer).
pub fn rkmalloc_exact(size: usize) -> bool {
    matches!(sizeclass::class_for(size), Ok(Route::Pages(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        assert_eq!(check(0, 0, 8 << 20), Err(Bad::Zero));
        assert_eq!(check(1, 0, 8 << 20), Ok(1));
        assert_eq!(check(8 << 20, 0, 8 << 20), Ok(8 << 20));
        assert_eq!(check((8 << 20) + 1, 0, 8 << 20), Err(Bad::TooBig));
        assert_eq!(
            check(u64::MAX, 0, u64::MAX),
            usize::try_from(u64::MAX).map_err(|_| Bad::TooBig)
        );
        // The reserved field is looked at first: a bad size with it set is still "reserved".
        assert_eq!(check(0, 1, 8 << 20), Err(Bad::Reserved));
        assert_eq!(check(100, 1 << 63, 8 << 20), Err(Bad::Reserved));
    }

    #[test]
    fn orders_as_get_order() {
        assert_eq!(get_order(1), 0);
        assert_eq!(get_order(4096), 0);
        assert_eq!(get_order(4097), 1);
        assert_eq!(get_order(5 * 4096), 3);
        assert_eq!(get_order(9 * 4096), 4);
        assert_eq!(get_order(17 * 4096), 5);
        assert_eq!(get_order(1 << 20), 8);
        assert_eq!(get_order(4 << 20), 10);
        assert_eq!(get_order((4 << 20) + 1), 11);
    }

    #[test]
    fn host_routes_end_at_kmalloc_max_size() {
        let max = 4 << 20;
        assert_eq!(
            plan(8, max),
            Plan {
                kmalloc: true,
                pages: true,
                order: 0
            }
        );
        assert_eq!(plan(max, max).order, 10);
        assert!(plan(max, max).kmalloc && plan(max, max).pages);
        let over = plan(max + 1, max);
        assert!(!over.kmalloc && !over.pages);
        assert_eq!(plan(8 << 20, max).order, 11);
    }

    #[test]
    fn rkmalloc_routes_and_bytes() {
        let slab = |bytes| Used {
            kind: Kind::Slab,
            exact: false,
            bytes,
        };
        assert_eq!(rkmalloc_used(8), Ok(slab(8)));
        assert_eq!(rkmalloc_used(100), Ok(slab(128)));
        assert_eq!(rkmalloc_used(200), Ok(slab(256)));
        assert_eq!(rkmalloc_used(96), Ok(slab(96)));
        assert_eq!(rkmalloc_used(3000), Ok(slab(4096)));
        assert_eq!(rkmalloc_used(4096), Ok(slab(4096)));
        let block = rkmalloc_used(5000).unwrap();
        assert_eq!(
            (block.kind, block.exact, block.bytes),
            (Kind::Pages, false, 8192)
        );
        assert_eq!(rkmalloc_used(20000).unwrap().bytes, 32768);
        let exact = rkmalloc_used(100_000).unwrap();
        assert_eq!(
            (exact.kind, exact.exact, exact.bytes),
            (Kind::Pages, true, 25 * 4096)
        );
        assert!(rkmalloc_exact(100_000) && !rkmalloc_exact(20000) && !rkmalloc_exact(100));
        assert_eq!(rkmalloc_used(1 << 20).unwrap().bytes, 1 << 20);
        let v = rkmalloc_used((8 << 20) + 1).unwrap();
        assert_eq!((v.kind, v.bytes), (Kind::Vmalloc, (8 << 20) + 4096));
        assert_eq!(rkmalloc_used(0), Err(sizeclass::SizeError::Zero));
        assert_eq!(rkmalloc_used(100).unwrap().wasted(100), 28);
        assert_eq!(slab(8).wasted(100), 0);
    }

    extern crate std;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // rkmalloc holds at least the size, and less than twice it once past the smallest
        // class (a block of pages wastes less than its half, exact pages less than a page).
        #[test]
        fn rkmalloc_holds_the_size(size in 1usize..=(16 << 20)) {
            let u = rkmalloc_used(size).unwrap();
            prop_assert!(u.bytes >= size);
            prop_assert!(size <= 8 || u.bytes < 2 * size);
            if u.exact || u.kind == Kind::Vmalloc {
                prop_assert!(u.wasted(size) < PAGE_SIZE);
            }
            prop_assert_eq!(u.exact, rkmalloc_exact(size));
        }

        // get_order's block holds the size and its half does not.
        #[test]
        fn get_order_is_the_smallest_block(size in 1usize..=(8 << 20)) {
            let o = get_order(size);
            prop_assert!(PAGE_SIZE << o >= size);
            prop_assert!(o == 0 || PAGE_SIZE << (o - 1) < size);
        }
    }
}
