// SPDX-License-Identifier: GPL-2.0

//! Text of `/proc/rkmem/slabinfo`, in exactly the format of the kernel's `/proc/slabinfo`
//! version 2.1 (`print_slabinfo_header` and `cache_show` in `mm/slab_common.c`), so `slabtop`
//! habits and existing parsers work on it.
//!
//! The fields mean what they mean for SLUB, with two refinements the old SLAB allocator also
//! used: `<limit>` and `<batchcount>` are the per-CPU object cache's limit and batch (SLUB prints
//! 0), and `<active_slabs>` counts slabs with an object in use (SLUB prints all slabs). One
//! difference from the kernel: the header is written even when there are no rows.

use core::fmt::{self, Write};

use super::slab::{CacheLists, SlabLayout};

/// The two header lines, newline-terminated.
pub const SLABINFO_HEADER: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n";

/// One cache's line of slabinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabinfoRow<'a> {
    /// Cache name, left-justified in 17 columns (longer names are not cut).
    pub name: &'a str,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// Bytes per object slot (the stride, red zones and metadata included).
    pub objsize: u32,
    /// Objects per slab.
    pub objperslab: u32,
    /// Pages per slab.
    pub pagesperslab: u32,
    /// Per-CPU cache limit (0 without one).
    pub limit: u32,
    /// Per-CPU cache batch (0 without one).
    pub batchcount: u32,
    /// Batches the cache's depot holds at most (SLAB's shared array; 0 without one).
    pub sharedfactor: u32,
    /// Slabs with at least one object in use.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// Objects in the cache's depot (SLAB's shared array).
    pub sharedavail: u64,
}

impl<'a> SlabinfoRow<'a> {
    /// The row of cache `name` with layout `layout` and list counts `lists`, tunables 0.
    pub fn from_cache(name: &'a str, layout: &SlabLayout, lists: &CacheLists) -> Self {
        SlabinfoRow {
            name,
            active_objs: lists.objects_in_use(),
            num_objs: lists.total_objects(),
            objsize: u32::try_from(layout.stride()).unwrap_or(u32::MAX),
            objperslab: layout.objects(),
            pagesperslab: u32::try_from(layout.pages()).unwrap_or(u32::MAX),
            limit: 0,
            batchcount: 0,
            sharedfactor: 0,
            active_slabs: lists.active_slabs(),
            num_slabs: lists.slabs(),
            sharedavail: 0,
        }
    }

    /// The same row with the depot's `sharedfactor` (batches it holds at most) and
    /// `sharedavail` (objects in it), as SLAB reported its per-node shared array.
    pub fn with_shared(self, sharedfactor: u32, sharedavail: u64) -> Self {
        SlabinfoRow {
            sharedfactor,
            sharedavail,
            ..self
        }
    }

    /// The same row with the per-CPU cache's `limit` and `batchcount`.
    pub fn with_tunables(self, limit: u32, batchcount: u32) -> Self {
        SlabinfoRow {
            limit,
            batchcount,
            ..self
        }
    }
}

/// Writes one row as `cache_show` does:
/// `%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu\n`.
pub fn write_row<W: Write>(w: &mut W, r: &SlabinfoRow<'_>) -> fmt::Result {
    // `%-17s` pads in bytes, as C does.
    w.write_str(r.name)?;
    for _ in r.name.len()..17 {
        w.write_char(' ')?;
    }
    writeln!(
        w,
        " {:6} {:6} {:6} {:4} {:4} : tunables {:4} {:4} {:4} : slabdata {:6} {:6} {:6}",
        r.active_objs,
        r.num_objs,
        r.objsize,
        r.objperslab,
        r.pagesperslab,
        r.limit,
        r.batchcount,
        r.sharedfactor,
        r.active_slabs,
        r.num_slabs,
        r.sharedavail
    )
}

/// Writes the whole file: the header lines, then one row per cache, in the order given (the
/// module's one writer of `/proc/rkmem/slabinfo`).
pub fn write_slabinfo<'a, W: Write>(
    w: &mut W,
    rows: impl IntoIterator<Item = SlabinfoRow<'a>>,
) -> fmt::Result {
    w.write_str(SLABINFO_HEADER)?;
    for r in rows {
        write_row(w, &r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;

    fn row(name: &str) -> SlabinfoRow<'_> {
        SlabinfoRow {
            name,
            active_objs: 0,
            num_objs: 0,
            objsize: 0,
            objperslab: 0,
            pagesperslab: 0,
            limit: 0,
            batchcount: 0,
            sharedfactor: 0,
            active_slabs: 0,
            num_slabs: 0,
            sharedavail: 0,
        }
    }

    #[test]
    fn exact_text_with_header() {
        let rows = [
            SlabinfoRow {
                active_objs: 1234,
                num_objs: 1500,
                objsize: 64,
                objperslab: 62,
                pagesperslab: 1,
                active_slabs: 20,
                num_slabs: 25,
                ..row("rkmalloc-64")
            },
            SlabinfoRow {
                active_objs: 7,
                num_objs: 15,
                objsize: 2048,
                objperslab: 15,
                pagesperslab: 8,
                limit: 120,
                batchcount: 60,
                active_slabs: 1,
                num_slabs: 1,
                ..row("rkmalloc-2k")
            },
        ];
        let mut s = String::new();
        write_slabinfo(&mut s, rows.iter().copied()).unwrap();
        assert_eq!(
            s,
            "slabinfo - version: 2.1\n\
             # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
             rkmalloc-64         1234   1500     64   62    1 : tunables    0    0    0 : slabdata     20     25      0\n\
             rkmalloc-2k            7     15   2048   15    8 : tunables  120   60    0 : slabdata      1      1      0\n"
        );
    }

    #[test]
    fn long_names_and_wide_numbers_are_not_cut() {
        let mut s = String::new();
        let r = SlabinfoRow {
            active_objs: 12_345_678,
            ..row("a_name_longer_than_17")
        };
        write_row(&mut s, &r).unwrap();
        assert_eq!(
            s,
            "a_name_longer_than_17 12345678      0      0    0    0 : tunables    0    0    0 : slabdata      0      0      0\n"
        );
    }

    #[test]
    fn no_caches_still_has_the_header() {
        let mut s = String::new();
        write_slabinfo(&mut s, []).unwrap();
        assert_eq!(s, SLABINFO_HEADER);
        assert_eq!(s.lines().count(), 2);
    }

    #[test]
    fn row_from_a_cache() {
        let l = SlabLayout::new(117, 1, 4096, 3).unwrap();
        let mut lists = CacheLists::new(l.objects(), 5);
        lists.slab_added();
        lists.slab_added();
        lists.transition(0, 10);
        let r = SlabinfoRow::from_cache("thing", &l, &lists).with_tunables(30, 15);
        let mut s = String::new();
        write_row(&mut s, &r).unwrap();
        assert_eq!(
            s,
            "thing                 10     68    117   34    1 : tunables   30   15    0 : slabdata      1      2      0\n"
        );
    }
}
