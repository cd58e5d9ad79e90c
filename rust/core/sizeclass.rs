// SPDX-License-Identifier: GPL-2.0

//! rkmalloc size classes: which allocator serves a request of a given size.
//!
//! Requests of at most [`MAX_SLAB_SIZE`] bytes go to one of [`NUM_CLASSES`] bitmap slab caches
//! ([`CLASS_SIZES`], the same steps as kmalloc's: powers of two plus 96 and 192). Larger requests
//! up to [`MAX_PAGES`] pages take whole pages from the buddy allocator, and anything beyond that
//! is left to vmalloc. The choice is O(1): a 512-entry table indexed by `(size - 1) / 8`, like
//! kmalloc's `size_index`, for slab sizes, and one division for page counts.

use core::fmt;

/// The object size of each slab size class, smallest first.
pub const CLASS_SIZES: [usize; 12] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096];

/// The number of slab size classes.
pub const NUM_CLASSES: usize = CLASS_SIZES.len();

/// The cache names shown in `/proc/rkmem/slabinfo`, one per class.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "rkmalloc-8",
    "rkmalloc-16",
    "rkmalloc-32",
    "rkmalloc-64",
    "rkmalloc-96",
    "rkmalloc-128",
    "rkmalloc-192",
    "rkmalloc-256",
    "rkmalloc-512",
    "rkmalloc-1k",
    "rkmalloc-2k",
    "rkmalloc-4k",
];

/// The largest request served by a slab cache.
pub const MAX_SLAB_SIZE: usize = 4096;

/// The page size the page route counts in.
pub const PAGE_SIZE: usize = 4096;

/// The largest request served by whole pages, in pages (2^10 pages: 4 MiB).
pub const MAX_PAGES: usize = 1 << super::buddy::MAX_ORDER_LIMIT;

/// Alignment of objects in the class caches: natural alignment (the largest power of two that
/// divides the class size) up to a cache line, so a 64-byte object never straddles two lines
/// and a 4096-byte object does not force its slab to waste a page on alignment.
pub const CLASS_ALIGN_MAX: usize = 64;

/// Slab class index for every `(size - 1) / 8`, size 1..=4096: the smallest class that fits.
const SIZE_INDEX: [u8; MAX_SLAB_SIZE / 8] = {
    let mut table = [0u8; MAX_SLAB_SIZE / 8];
    let mut i = 0;
    let mut class = 0;
    while i < table.len() {
        // Every class size is a multiple of 8, so sizes 8i+1..=8i+8 share one class.
        while CLASS_SIZES[class] < (i + 1) * 8 {
            class += 1;
        }
        table[i] = class as u8;
        i += 1;
    }
    table
};

/// Where a request of a given size is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// By the slab cache of this class index (into [`CLASS_SIZES`]).
    Slab(usize),
    /// By a block of `2^order` pages, for sizes up to [`MAX_ORDER_ROUTE`] pages (as kmalloc
    /// serves sizes beyond its caches: the arena's per-CPU page caches hold these orders, so
    /// the path takes no lock; the rounding wastes less than the block's half).
    Order(u32),
    /// By this many whole pages (exact, not rounded to a power of two) from the buddy allocator,
    /// above [`MAX_ORDER_ROUTE`] pages (where rounding would waste most, as
    /// `alloc_pages_exact` saves).
    Pages(usize),
    /// By vmalloc: more than [`MAX_PAGES`] pages.
    Vmalloc,
}

/// Why a size has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// A request of zero bytes (kmalloc returns `ZERO_SIZE_PTR` for it; rkmalloc refuses it).
    Zero,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Zero => write!(f, "size 0: nothing to allocate"),
        }
    }
}

/// The most pages served by [`Route::Order`]: order 3, the kernel's `PAGE_ALLOC_COSTLY_ORDER`
/// and the highest order the arena's per-CPU page caches hold.
pub const MAX_ORDER_ROUTE: usize = 8;

/// The route for a request of `size` bytes: the smallest slab class that fits, else a
/// power-of-two block up to [`MAX_ORDER_ROUTE`] pages, else the exact number of pages, else
/// vmalloc.
#[inline]
pub fn class_for(size: usize) -> Result<Route, SizeError> {
    if size == 0 {
        return Err(SizeError::Zero);
    }
    if size <= MAX_SLAB_SIZE {
        // `(size - 1) / 8` is at most 511 here: the `get` never fails.
        return Ok(match SIZE_INDEX.get((size - 1) / 8) {
            Some(&class) => Route::Slab(usize::from(class)),
            None => Route::Pages(1),
        });
    }
    let pages = size.div_ceil(PAGE_SIZE);
    if pages <= MAX_ORDER_ROUTE {
        return Ok(Route::Order(order_for_pages(pages)));
    }
    if pages <= MAX_PAGES {
        return Ok(Route::Pages(pages));
    }
    Ok(Route::Vmalloc)
}

/// The object size of class `class`, or `None` for an index out of range.
pub fn class_size(class: usize) -> Option<usize> {
    CLASS_SIZES.get(class).copied()
}

/// The cache name of class `class` (`rkmalloc-96`, `rkmalloc-1k`), or `None` out of range.
pub fn class_name(class: usize) -> Option<&'static str> {
    CLASS_NAMES.get(class).copied()
}

/// The object alignment of class `class`: natural up to [`CLASS_ALIGN_MAX`]; `None` out of range.
pub fn class_align(class: usize) -> Option<usize> {
    class_size(class).map(|size| (1usize << size.trailing_zeros()).min(CLASS_ALIGN_MAX))
}

/// The buddy order that holds `pages` pages: the smallest `k` with `2^k >= pages` (0 for 0).
pub fn order_for_pages(pages: usize) -> u32 {
    match pages.checked_next_power_of_two() {
        Some(p) => p.trailing_zeros(),
        None => usize::BITS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_slab_size_gets_the_smallest_class_that_fits() {
        for size in 1..=MAX_SLAB_SIZE {
            let Ok(Route::Slab(class)) = class_for(size) else {
                panic!("size {size} not routed to a slab");
            };
            let expected = CLASS_SIZES.iter().position(|&c| c >= size).unwrap();
            assert_eq!(class, expected, "size {size}");
            assert!(CLASS_SIZES[class] >= size);
            if class > 0 {
                assert!(CLASS_SIZES[class - 1] < size);
            }
        }
    }

    #[test]
    fn class_boundaries() {
        let cases = [
            (1, 0),
            (8, 0),
            (9, 1),
            (16, 1),
            (17, 2),
            (64, 3),
            (65, 4),
            (96, 4),
            (97, 5),
            (128, 5),
            (129, 6),
            (192, 6),
            (193, 7),
            (256, 7),
            (257, 8),
            (1024, 9),
            (1025, 10),
            (2049, 11),
            (4096, 11),
        ];
        for (size, class) in cases {
            assert_eq!(class_for(size), Ok(Route::Slab(class)), "size {size}");
        }
    }

    #[test]
    fn pages_and_vmalloc_routes() {
        assert_eq!(class_for(0), Err(SizeError::Zero));
        assert_eq!(class_for(4097), Ok(Route::Order(1)));
        assert_eq!(class_for(8192), Ok(Route::Order(1)));
        assert_eq!(class_for(8193), Ok(Route::Order(2)));
        assert_eq!(class_for(5 * 4096), Ok(Route::Order(3)));
        assert_eq!(class_for(8 * 4096), Ok(Route::Order(3)));
        assert_eq!(class_for(8 * 4096 + 1), Ok(Route::Pages(9)));
        assert_eq!(class_for(4 << 20), Ok(Route::Pages(1024)));
        assert_eq!(class_for((4 << 20) + 1), Ok(Route::Vmalloc));
        assert_eq!(class_for(usize::MAX), Ok(Route::Vmalloc));
    }

    #[test]
    fn names_sizes_and_alignments() {
        for class in 0..NUM_CLASSES {
            let size = class_size(class).unwrap();
            let name = class_name(class).unwrap();
            let suffix = if size >= 1024 {
                std::format!("{}k", size / 1024)
            } else {
                std::format!("{size}")
            };
            assert_eq!(name, std::format!("rkmalloc-{suffix}"));
            let align = class_align(class).unwrap();
            assert!(align.is_power_of_two() && align <= 64 && size.is_multiple_of(align));
        }
        assert_eq!(class_align(4), Some(32)); // 96
        assert_eq!(class_align(6), Some(64)); // 192
        assert_eq!(class_align(0), Some(8));
        assert_eq!(class_size(NUM_CLASSES), None);
        assert_eq!(class_name(NUM_CLASSES), None);
        assert_eq!(class_align(NUM_CLASSES), None);
    }

    #[test]
    fn every_class_has_a_slab_layout() {
        use super::super::slab::SlabLayout;
        for (class, &size) in CLASS_SIZES.iter().enumerate() {
            let align = class_align(class).unwrap();
            let l = SlabLayout::new(size, align, PAGE_SIZE, 3).unwrap();
            assert!(l.objects() >= 1);
            let d = SlabLayout::new_debug(size, align, PAGE_SIZE, 3).unwrap();
            assert!(d.objects() >= 1);
            // As the host's kmalloc-<size> (SLUB, alignment 8): as many objects in as many
            // pages, on machines of 1 to 64 CPUs.
            for cpus in [1, 2, 4, 64] {
                let l = SlabLayout::for_cpus(size, align, PAGE_SIZE, 3, cpus, false).unwrap();
                let slub = SlabLayout::for_cpus(size, 8, PAGE_SIZE, 3, cpus, false).unwrap();
                assert_eq!((l.objects(), l.pages()), (slub.objects(), slub.pages()));
            }
        }
        let k4 = SlabLayout::for_cpus(4096, 8, PAGE_SIZE, 3, 2, false).unwrap();
        assert_eq!((k4.objects(), k4.pages()), (8, 8));
        let k8 = SlabLayout::for_cpus(8, 8, PAGE_SIZE, 3, 2, false).unwrap();
        assert_eq!((k8.objects(), k8.pages()), (512, 1));
    }

    #[test]
    fn orders_for_pages() {
        assert_eq!(order_for_pages(0), 0);
        assert_eq!(order_for_pages(1), 0);
        assert_eq!(order_for_pages(2), 1);
        assert_eq!(order_for_pages(3), 2);
        assert_eq!(order_for_pages(1024), 10);
        assert_eq!(order_for_pages(usize::MAX), usize::BITS);
    }

    extern crate std;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // The page route holds the request in the fewest whole pages.
        #[test]
        fn pages_route_is_exact(size in (MAX_ORDER_ROUTE * PAGE_SIZE + 1)..=(MAX_PAGES * PAGE_SIZE)) {
            let Ok(Route::Pages(n)) = class_for(size) else { panic!("not pages") };
            prop_assert!(n * PAGE_SIZE >= size);
            prop_assert!((n - 1) * PAGE_SIZE < size);
            prop_assert!(n <= MAX_PAGES);
        }

        // The order route holds the request in the smallest block.
        #[test]
        fn order_route_is_the_smallest_block(size in (MAX_SLAB_SIZE + 1)..=(MAX_ORDER_ROUTE * PAGE_SIZE)) {
            let Ok(Route::Order(o)) = class_for(size) else { panic!("not an order") };
            prop_assert!(PAGE_SIZE << o >= size);
            prop_assert!(o == 0 || PAGE_SIZE << (o - 1) < size);
        }
    }
}
