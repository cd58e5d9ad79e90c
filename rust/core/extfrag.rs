// SPDX-License-Identifier: GPL-2.0

//! External fragmentation of the arena: `/proc/rkmem/extfrag`.
//!
//! The two indices are the kernel's, computed with the same integer arithmetic as mm/vmstat.c
//! (`fill_contig_page_info`, `unusable_free_index`, `__fragmentation_index`) from the number of
//! free blocks of each order, and printed like the kernel's debugfs files
//! `extfrag/unusable_index` (`unusable_show_print`, `"%d.%03d "`) and `extfrag/extfrag_index`
//! (`extfrag_show_print`, `"%2d.%03d "`), one column per order `0..=max_order`.
//!
//! - The *unusable free space index* of an order is the share of the free pages that sits in
//!   blocks too small for an allocation of that order: 0.000 (none) to 1.000 (all, or nothing
//!   free).
//! - The *fragmentation index* only means something when an allocation of that order would
//!   fail: then towards 0 the failure is for lack of memory, towards 1 for fragmentation. It is
//!   -1.000 when the allocation would succeed and 0.000 when nothing is free. Like the kernel's,
//!   the formula goes below zero when very few blocks are free (one free order-0 page and an
//!   order-1 request give -0.500), and the kernel's format then prints ` 0.-500`; rkmem prints
//!   exactly what the kernel would.
//!
//! # Layout
//!
//! Four `name value` lines, then the two kernel lines, each prefixed by a word so that one file
//! holds both (`grep ^unusable | cut -d' ' -f2-` gives the kernel's `unusable_index` text).
//! Here `\n` marks the ends of the kernel lines, which carry a trailing space as the kernel's do:
//!
//! ```text
//! arena_pages 16
//! arena_mib 0
//! free_pages 12
//! largest_free_order 3
//! unusable Node 0, zone    rkmem 0.000 0.333 0.333 0.333 1.000 \n
//! extfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000  0.650 \n
//! ```
//!
//! `arena_pages` counts the pages of the present slots, `arena_mib` is that in MiB (rounded
//! down), `largest_free_order` is -1 when no page is free.

use super::buddy::{Buddy, PageMeta, ZONE_NAME};
use core::fmt::{self, Write};
use core::ops::DerefMut;

/// The free-block counts that both indices start from (`struct contig_page_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContigPageInfo {
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks of any order.
    pub free_blocks_total: u64,
    /// Free blocks of the requested order that the free blocks of that order and above make.
    pub free_blocks_suitable: u64,
}

/// `fill_contig_page_info`: the counts for `suitable_order` from the number of free blocks of
/// each order (`nr_free[k]` for order `k`).
#[must_use]
pub fn contig_page_info(nr_free: &[usize], suitable_order: u32) -> ContigPageInfo {
    let mut info = ContigPageInfo::default();
    for (order, &blocks) in (0u32..).zip(nr_free) {
        let blocks = blocks as u64;
        info.free_blocks_total += blocks;
        info.free_pages += blocks << order;
        if order >= suitable_order {
            info.free_blocks_suitable += blocks << (order - suitable_order);
        }
    }
    info
}

/// `unusable_free_index`: thousandths of the free pages unusable for an allocation of `order`.
#[must_use]
pub fn unusable_free_index(order: u32, info: &ContigPageInfo) -> i32 {
    if info.free_pages == 0 {
        return 1000;
    }
    let usable = info.free_blocks_suitable << order;
    (info.free_pages.saturating_sub(usable) * 1000 / info.free_pages) as i32
}

/// `__fragmentation_index`: thousandths; -1000 when an allocation of `order` would succeed.
#[must_use]
pub fn fragmentation_index(order: u32, info: &ContigPageInfo) -> i32 {
    if order >= u64::BITS || info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable != 0 {
        return -1000;
    }
    let requested = 1u64 << order;
    let q = (1000 + info.free_pages * 1000 / requested) / info.free_blocks_total;
    // The kernel computes this in u64 and returns it as an int.
    1000u64.wrapping_sub(q) as i32
}

/// Writes `/proc/rkmem/extfrag` (see the [module documentation](self)) from the number of free
/// blocks of each order `0..=max_order`, the number of present pages and the page size in KiB.
pub fn write_extfrag<W: Write>(
    w: &mut W,
    nr_free: &[usize],
    present_pages: usize,
    page_kib: u64,
) -> fmt::Result {
    let info = contig_page_info(nr_free, 0);
    let largest = nr_free.iter().rposition(|&n| n != 0);
    writeln!(w, "arena_pages {present_pages}")?;
    writeln!(
        w,
        "arena_mib {}",
        (present_pages as u64).saturating_mul(page_kib) / 1024
    )?;
    writeln!(w, "free_pages {}", info.free_pages)?;
    match largest {
        Some(order) => writeln!(w, "largest_free_order {order}")?,
        None => writeln!(w, "largest_free_order -1")?,
    }
    write!(w, "unusable Node 0, zone {:>8} ", ZONE_NAME)?;
    for order in (0u32..).take(nr_free.len()) {
        let index = unusable_free_index(order, &contig_page_info(nr_free, order));
        write!(w, "{}.{:03} ", index / 1000, index % 1000)?;
    }
    w.write_char('\n')?;
    write!(w, "extfrag Node 0, zone {:>8} ", ZONE_NAME)?;
    for order in (0u32..).take(nr_free.len()) {
        let index = fragmentation_index(order, &contig_page_info(nr_free, order));
        write!(w, "{:2}.{:03} ", index / 1000, index % 1000)?;
    }
    w.write_char('\n')
}

impl<S: DerefMut<Target = [PageMeta]>> Buddy<S> {
    /// Writes `/proc/rkmem/extfrag` for this allocator: see [`write_extfrag`].
    pub fn write_extfrag<W: Write>(&self, w: &mut W, page_kib: u64) -> fmt::Result {
        write_extfrag(w, self.nr_free_orders(), self.present_pages(), page_kib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    fn text(nr_free: &[usize], present_pages: usize, page_kib: u64) -> String {
        let mut s = String::new();
        write_extfrag(&mut s, nr_free, present_pages, page_kib).unwrap();
        s
    }

    #[test]
    fn a_fragmented_arena_by_hand() {
        // One slot of 16 pages: 16 order-0 allocations, then pages 0, 2, 4, 6 and 8..16 freed.
        let mut b = Buddy::new(vec![PageMeta::INIT; 16], 4).unwrap();
        b.add_block(0).unwrap();
        let pages: Vec<usize> = (0..16).map(|_| b.alloc(0).unwrap()).collect();
        assert_eq!(pages, (0..16).collect::<Vec<_>>());
        for p in [0, 2, 4, 6].into_iter().chain(8..16) {
            b.free(p, 0).unwrap();
        }
        assert_eq!(b.nr_free_orders(), [4, 0, 0, 1, 0]);
        // free_pages 12, free_blocks_total 5. Order 1: suitable = 8 >> 1 = 4 blocks, so
        // (12 - 4*2) * 1000 / 12 = 333. Order 4: nothing suitable: unusable 1000, and the
        // fragmentation index is 1000 - (1000 + 12*1000/16) / 5 = 1000 - 1750/5 = 650.
        let info = contig_page_info(b.nr_free_orders(), 1);
        assert_eq!(
            info,
            ContigPageInfo {
                free_pages: 12,
                free_blocks_total: 5,
                free_blocks_suitable: 4
            }
        );
        assert_eq!(unusable_free_index(1, &info), 333);
        let info = contig_page_info(b.nr_free_orders(), 4);
        assert_eq!(unusable_free_index(4, &info), 1000);
        assert_eq!(fragmentation_index(4, &info), 650);
        let mut s = String::new();
        b.write_extfrag(&mut s, 4).unwrap();
        assert_eq!(
            s,
            "arena_pages 16\n\
             arena_mib 0\n\
             free_pages 12\n\
             largest_free_order 3\n\
             unusable Node 0, zone    rkmem 0.000 0.333 0.333 0.333 1.000 \n\
             extfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000  0.650 \n"
        );
    }

    #[test]
    fn mixed_orders_by_hand() {
        // 4 order-0, 2 order-1, 1 order-3: 16 free pages in 7 blocks.
        // Order 1: suitable 2 + 4 = 6, unusable (16 - 12) * 1000 / 16 = 250.
        // Order 2: suitable 2 (the order-3 block), unusable (16 - 8) * 1000 / 16 = 500.
        // Order 4: fragmentation 1000 - (1000 + 16*1000/16) / 7 = 1000 - 285 = 715.
        assert_eq!(
            text(&[4, 2, 0, 1, 0], 32, 4),
            "arena_pages 32\n\
             arena_mib 0\n\
             free_pages 16\n\
             largest_free_order 3\n\
             unusable Node 0, zone    rkmem 0.000 0.250 0.500 0.500 1.000 \n\
             extfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000  0.715 \n"
        );
    }

    #[test]
    fn whole_and_empty_arenas() {
        // The module's geometry: two free 4 MiB blocks of 4 KiB pages.
        let mut nr_free = [0; 11];
        nr_free[10] = 2;
        assert_eq!(
            text(&nr_free, 2048, 4),
            "arena_pages 2048\n\
             arena_mib 8\n\
             free_pages 2048\n\
             largest_free_order 10\n\
             unusable Node 0, zone    rkmem 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 \n\
             extfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 \n"
        );
        // Nothing free: everything unusable, and no fragmentation to speak of.
        assert_eq!(
            text(&[0, 0, 0], 4, 4),
            "arena_pages 4\n\
             arena_mib 0\n\
             free_pages 0\n\
             largest_free_order -1\n\
             unusable Node 0, zone    rkmem 1.000 1.000 1.000 \n\
             extfrag Node 0, zone    rkmem  0.000  0.000  0.000 \n"
        );
    }

    #[test]
    fn negative_indices_print_like_the_kernel() {
        // One free page. Order 1: 1000 - (1000 + 1*1000/2) / 1 = -500, which the kernel's
        // "%2d.%03d" prints as " 0.-500"; order 3: 1000 - (1000 + 125) = -125.
        let info = contig_page_info(&[1, 0, 0, 0], 1);
        assert_eq!(fragmentation_index(1, &info), -500);
        assert_eq!(
            text(&[1, 0, 0, 0], 8, 4),
            "arena_pages 8\n\
             arena_mib 0\n\
             free_pages 1\n\
             largest_free_order 0\n\
             unusable Node 0, zone    rkmem 0.000 1.000 1.000 1.000 \n\
             extfrag Node 0, zone    rkmem -1.000  0.-500  0.-250  0.-125 \n"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn indices_stay_in_the_kernels_range(
            nr_free in prop::collection::vec(0usize..1000, 1..=11),
        ) {
            let total: usize = nr_free.iter().enumerate().map(|(k, n)| n << k).sum();
            for order in 0..nr_free.len() as u32 {
                let info = contig_page_info(&nr_free, order);
                prop_assert_eq!(info.free_pages, total as u64);
                let u = unusable_free_index(order, &info);
                prop_assert!((0..=1000).contains(&u));
                let f = fragmentation_index(order, &info);
                prop_assert!(f == -1000 || (-1000 < f && f <= 1000));
                // -1000 exactly when a block of that order is free.
                let fits = nr_free[order as usize..].iter().any(|&n| n != 0);
                prop_assert_eq!(f == -1000, fits);
                if !fits {
                    prop_assert_eq!(u, 1000);
                }
            }
        }
    }
}
