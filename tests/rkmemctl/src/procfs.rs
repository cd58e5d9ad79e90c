// SPDX-License-Identifier: GPL-2.0

//! Readers of `/proc/rkmem`: strict parsers of the kernel formats the module promises.

use crate::uapi::RKMEM_MAX_ORDER;
use std::collections::HashMap;

/// Orders of the buddy allocator: `0..=RKMEM_MAX_ORDER`.
pub const NR_ORDERS: usize = RKMEM_MAX_ORDER as usize + 1;

/// `/proc/rkmem/buddyinfo`.
pub const BUDDYINFO: &str = "/proc/rkmem/buddyinfo";
/// `/proc/rkmem/extfrag`.
pub const EXTFRAG: &str = "/proc/rkmem/extfrag";
/// `/proc/rkmem/stats`.
pub const STATS: &str = "/proc/rkmem/stats";
/// `/proc/rkmem/slabinfo`.
pub const SLABINFO: &str = "/proc/rkmem/slabinfo";

/// The free-block count of each order, as in one `/proc/buddyinfo` line.
pub type FreeCounts = [u64; NR_ORDERS];

/// Reads a file of `/proc/rkmem`.
pub fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The line prefix of `/proc/buddyinfo` for rkmem's zone: `"Node %d, zone %8s "`.
pub const ZONE_PREFIX: &str = "Node 0, zone    rkmem ";

/// Renders the free counts exactly as the kernel's `frag_show_print` does.
pub fn format_buddyinfo(counts: &FreeCounts) -> String {
    let mut s = String::from(ZONE_PREFIX);
    for n in counts {
        s.push_str(&format!("{n:6} "));
    }
    s.push('\n');
    s
}

/// Parses `/proc/rkmem/buddyinfo`, checking the exact layout: one line, the zone prefix, then
/// per order a number right-aligned in 6 columns (wider only if it needs more) and a space, then
/// the newline.
pub fn parse_buddyinfo(text: &str) -> Result<FreeCounts, String> {
    let line = text
        .strip_suffix('\n')
        .ok_or_else(|| format!("buddyinfo does not end with a newline: {text:?}"))?;
    if line.contains('\n') {
        return Err(format!("buddyinfo has more than one line: {text:?}"));
    }
    let mut rest = line
        .strip_prefix(ZONE_PREFIX)
        .ok_or_else(|| format!("buddyinfo does not start with {ZONE_PREFIX:?}: {text:?}"))?;
    let mut counts = [0u64; NR_ORDERS];
    for (order, count) in counts.iter_mut().enumerate() {
        let end = rest
            .find(|c: char| c.is_ascii_digit())
            .and_then(|start| rest[start..].find(' ').map(|len| start + len))
            .ok_or_else(|| format!("buddyinfo: order {order} missing or no trailing space"))?;
        let field = &rest[..end];
        let digits = field.trim_start_matches(' ');
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("buddyinfo: order {order}: bad field {field:?}"));
        }
        if field.len() != digits.len().max(6) {
            return Err(format!(
                "buddyinfo: order {order}: field {field:?} is not \"%6lu\""
            ));
        }
        *count = digits
            .parse()
            .map_err(|e| format!("buddyinfo: order {order}: {e}"))?;
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "buddyinfo: text after order {RKMEM_MAX_ORDER}: {rest:?}"
        ));
    }
    let again = format_buddyinfo(&counts);
    if again != text {
        return Err(format!(
            "buddyinfo is {text:?}, the kernel would print {again:?}"
        ));
    }
    Ok(counts)
}

/// Reads and parses `/proc/rkmem/buddyinfo`.
pub fn buddyinfo() -> Result<FreeCounts, String> {
    parse_buddyinfo(&read(BUDDYINFO)?)
}

/// Free pages that the counts describe.
pub fn free_pages(counts: &FreeCounts) -> u64 {
    counts.iter().enumerate().map(|(k, n)| n << k).sum()
}

/// `/proc/rkmem/extfrag`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extfrag {
    /// Pages of the present slots.
    pub arena_pages: u64,
    /// The same in MiB.
    pub arena_mib: u64,
    /// Free pages in the buddy allocator.
    pub free_pages: u64,
    /// Largest order with a free block, -1 if none.
    pub largest_free_order: i64,
    /// Unusable free space index per order, in thousandths.
    pub unusable: Vec<i32>,
    /// Fragmentation index per order, in thousandths.
    pub extfrag: Vec<i32>,
}

/// Parses one kernel index value, `"%d.%03d"` of `index / 1000` and `index % 1000` (which
/// gives `0.-500` for -500, as the kernel prints it).
fn parse_index(tok: &str) -> Option<i32> {
    let (int, frac) = tok.split_once('.')?;
    let i: i32 = int.parse().ok()?;
    let f: i32 = frac.parse().ok()?;
    let frac_ok = frac.len() == 3 || (frac.starts_with('-') && frac.len() == 4);
    if !frac_ok || frac.starts_with('+') || int.starts_with('+') {
        return None;
    }
    Some(i * 1000 + f)
}

/// Parses an index line: `"<word> Node 0, zone    rkmem "` then one value and a space per
/// order (`width` is the `%Nd` of the integer part), then the end of the line.
fn parse_index_line(line: &str, word: &str, width: usize) -> Result<Vec<i32>, String> {
    let prefix = format!("{word} {ZONE_PREFIX}");
    let rest = line
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("extfrag: {word} line does not start with {prefix:?}: {line:?}"))?;
    let body = rest
        .strip_suffix(' ')
        .ok_or_else(|| format!("extfrag: {word} line lacks the kernel's trailing space"))?;
    let values = body
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| parse_index(t).ok_or_else(|| format!("extfrag: {word}: bad value {t:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() != NR_ORDERS {
        return Err(format!(
            "extfrag: {word} has {} values, want {NR_ORDERS}",
            values.len()
        ));
    }
    let mut again = prefix.clone();
    for v in &values {
        again.push_str(&format!("{:width$}.{:03} ", v / 1000, v % 1000));
    }
    if again != line {
        return Err(format!(
            "extfrag: {word} line is {line:?}, the kernel would print {again:?}"
        ));
    }
    Ok(values)
}

/// Parses `/proc/rkmem/extfrag`: four `name value` lines, then the `unusable` and `extfrag`
/// lines in the kernel's formats.
pub fn parse_extfrag(text: &str) -> Result<Extfrag, String> {
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .ok_or("extfrag does not end with a newline")?
        .split('\n')
        .collect();
    if lines.len() != 6 {
        return Err(format!(
            "extfrag has {} lines, want 6: {text:?}",
            lines.len()
        ));
    }
    let value = |i: usize, name: &str| -> Result<i64, String> {
        let (k, v) = lines[i]
            .split_once(' ')
            .ok_or_else(|| format!("extfrag line {}: {:?}", i + 1, lines[i]))?;
        if k != name {
            return Err(format!(
                "extfrag line {} is {:?}, want {name}",
                i + 1,
                lines[i]
            ));
        }
        v.parse()
            .map_err(|_| format!("extfrag: {name}: bad value {v:?}"))
    };
    let nonneg = |v: i64, name: &str| -> Result<u64, String> {
        u64::try_from(v).map_err(|_| format!("extfrag: {name} is negative"))
    };
    Ok(Extfrag {
        arena_pages: nonneg(value(0, "arena_pages")?, "arena_pages")?,
        arena_mib: nonneg(value(1, "arena_mib")?, "arena_mib")?,
        free_pages: nonneg(value(2, "free_pages")?, "free_pages")?,
        largest_free_order: value(3, "largest_free_order")?,
        unusable: parse_index_line(lines[4], "unusable", 1)?,
        extfrag: parse_index_line(lines[5], "extfrag", 2)?,
    })
}

/// Reads and parses `/proc/rkmem/extfrag`.
pub fn extfrag() -> Result<Extfrag, String> {
    parse_extfrag(&read(EXTFRAG)?)
}

/// The first line of `/proc/slabinfo` version 2.1 (`print_slabinfo_header`).
pub const SLABINFO_VERSION_LINE: &str = "slabinfo - version: 2.1";

/// The second line of `/proc/slabinfo` version 2.1: the column names.
pub const SLABINFO_COLUMNS_LINE: &str = "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>";

/// One cache's row of `/proc/rkmem/slabinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlabRow {
    /// Cache name.
    pub name: String,
    /// Objects in use (objects held in per-CPU caches count as in use, as with SLUB).
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// Bytes per object slot (the stride).
    pub objsize: u32,
    /// Objects per slab.
    pub objperslab: u32,
    /// Pages per slab.
    pub pagesperslab: u32,
    /// Per-CPU cache limit (0: no per-CPU cache, as in debug mode).
    pub limit: u32,
    /// Per-CPU cache batch.
    pub batchcount: u32,
    /// Shared cache factor.
    pub sharedfactor: u32,
    /// Slabs with at least one object in use.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// Objects in shared caches.
    pub sharedavail: u64,
}

impl SlabRow {
    /// Bytes of memory the cache's slabs take (`num_slabs * pagesperslab` pages).
    pub fn cache_bytes(&self) -> u64 {
        self.num_slabs * u64::from(self.pagesperslab) * PAGE_BYTES
    }

    /// Checks the relations every row must satisfy: objects and slabs in use never exceed the
    /// totals, and every slab holds `objperslab` objects.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        if self.num_objs != self.num_slabs * u64::from(self.objperslab) {
            return Err(format!(
                "slabinfo {n}: num_objs {} != num_slabs {} * objperslab {}",
                self.num_objs, self.num_slabs, self.objperslab
            ));
        }
        if self.active_objs > self.num_objs {
            return Err(format!(
                "slabinfo {n}: active_objs {} > num_objs {}",
                self.active_objs, self.num_objs
            ));
        }
        if self.active_slabs > self.num_slabs {
            return Err(format!(
                "slabinfo {n}: active_slabs {} > num_slabs {}",
                self.active_slabs, self.num_slabs
            ));
        }
        // Objects in use sit in active slabs, and an active slab holds at least one.
        if self.active_objs > self.active_slabs * u64::from(self.objperslab)
            || self.active_slabs > self.active_objs
        {
            return Err(format!(
                "slabinfo {n}: {} active objects in {} active slabs of {}",
                self.active_objs, self.active_slabs, self.objperslab
            ));
        }
        if self.objperslab == 0 || self.pagesperslab == 0 || self.objsize == 0 {
            return Err(format!(
                "slabinfo {n}: objsize {}, objperslab {}, pagesperslab {}",
                self.objsize, self.objperslab, self.pagesperslab
            ));
        }
        if u64::from(self.objsize) * u64::from(self.objperslab)
            > u64::from(self.pagesperslab) * PAGE_BYTES
        {
            return Err(format!(
                "slabinfo {n}: {} objects of {} bytes do not fit {} pages",
                self.objperslab, self.objsize, self.pagesperslab
            ));
        }
        Ok(())
    }
}

/// Bytes of a page, for the slab sizes of slabinfo.
const PAGE_BYTES: u64 = 4096;

/// Renders a row exactly as the kernel's `cache_show` does:
/// `%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu %6lu %6lu\n`.
pub fn format_slab_row(r: &SlabRow) -> String {
    format!(
        "{:<17} {:6} {:6} {:6} {:4} {:4} : tunables {:4} {:4} {:4} : slabdata {:6} {:6} {:6}\n",
        r.name,
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

/// Parses one row (without its newline): the fields are taken by position around the two
/// `:` separators, then the row is rendered again and must be the same text.
fn parse_slab_row(line: &str) -> Result<SlabRow, String> {
    let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
    // name, 5 numbers, ":", "tunables", 3 numbers, ":", "slabdata", 3 numbers.
    if tokens.len() != 16
        || tokens[6] != ":"
        || tokens[7] != "tunables"
        || tokens[11] != ":"
        || tokens[12] != "slabdata"
    {
        return Err(format!("slabinfo row is not in the 2.1 layout: {line:?}"));
    }
    let name = tokens[0];
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
    {
        return Err(format!(
            "slabinfo: cache name {name:?} has characters outside [A-Za-z0-9_.-]"
        ));
    }
    let num = |i: usize| -> Result<u64, String> {
        let t = tokens[i];
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("slabinfo {name}: field {i} is {t:?}, not a number"));
        }
        t.parse()
            .map_err(|e| format!("slabinfo {name}: field {i} {t:?}: {e}"))
    };
    let num32 = |i: usize| -> Result<u32, String> {
        u32::try_from(num(i)?)
            .map_err(|_| format!("slabinfo {name}: field {i} does not fit 32 bits"))
    };
    let r = SlabRow {
        name: name.to_string(),
        active_objs: num(1)?,
        num_objs: num(2)?,
        objsize: num32(3)?,
        objperslab: num32(4)?,
        pagesperslab: num32(5)?,
        limit: num32(8)?,
        batchcount: num32(9)?,
        sharedfactor: num32(10)?,
        active_slabs: num(13)?,
        num_slabs: num(14)?,
        sharedavail: num(15)?,
    };
    let again = format_slab_row(&r);
    if again.strip_suffix('\n') != Some(line) {
        return Err(format!(
            "slabinfo row is {line:?}, the kernel would print {:?}",
            again.trim_end_matches('\n')
        ));
    }
    Ok(r)
}

/// Parses `/proc/rkmem/slabinfo` strictly: the two header lines of version 2.1, then one row
/// per cache, each exactly as the kernel's `cache_show` prints it; names are unique.
pub fn parse_slabinfo(text: &str) -> Result<Vec<SlabRow>, String> {
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| format!("slabinfo does not end with a newline: {text:?}"))?;
    let mut lines = body.split('\n');
    match lines.next() {
        Some(SLABINFO_VERSION_LINE) => {}
        other => {
            return Err(format!(
                "slabinfo line 1 is {other:?}, want {SLABINFO_VERSION_LINE:?}"
            ))
        }
    }
    match lines.next() {
        Some(SLABINFO_COLUMNS_LINE) => {}
        other => {
            return Err(format!(
                "slabinfo line 2 is {other:?}, want {SLABINFO_COLUMNS_LINE:?}"
            ))
        }
    }
    let mut rows: Vec<SlabRow> = Vec::new();
    for (i, line) in lines.enumerate() {
        let r = parse_slab_row(line).map_err(|e| format!("line {}: {e}", i + 3))?;
        if rows.iter().any(|o| o.name == r.name) {
            return Err(format!("slabinfo: cache {} is listed twice", r.name));
        }
        rows.push(r);
    }
    Ok(rows)
}

/// Reads and parses `/proc/rkmem/slabinfo`.
pub fn slabinfo() -> Result<Vec<SlabRow>, String> {
    parse_slabinfo(&read(SLABINFO)?)
}

/// One counter of `/proc/rkmem/stats`.
pub fn stat(name: &str) -> Result<u64, String> {
    read(STATS)?
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
        .ok_or_else(|| format!("no counter '{name}' in {STATS}"))
}

/// `name value` lines into `into`; a line of another shape is an error.
pub fn parse_counters(
    file: &str,
    text: &str,
    into: &mut HashMap<String, u64>,
) -> Result<(), String> {
    for l in text.lines() {
        let (k, v) = l
            .split_once(' ')
            .ok_or_else(|| format!("{file}: not a 'name value' line: {l:?}"))?;
        let v = v
            .trim()
            .parse()
            .map_err(|_| format!("{file}: {k}: bad value {v:?}"))?;
        into.insert(k.to_string(), v);
    }
    Ok(())
}

/// The module's `bad_free_*` counters of /proc/rkmem/stats, summed.
pub fn bad_frees() -> Result<u64, String> {
    [
        "bad_free_double",
        "bad_free_foreign",
        "bad_free_order",
        "bad_free_other",
    ]
    .iter()
    .map(|c| stat(c))
    .sum()
}

/// The buddyinfo of an idle arena right after load: one free order-10 block per 4 MiB of
/// `arena_initial_mb`.
pub fn load_time_buddyinfo(arena_initial_mb: u64) -> FreeCounts {
    let mut counts = [0; NR_ORDERS];
    counts[NR_ORDERS - 1] = arena_initial_mb / 4;
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: &str = "Node 0, zone    rkmem      0      0      0      0      0      0      0      0      0      0      1 \n";

    #[test]
    fn idle_buddyinfo_parses() {
        let c = parse_buddyinfo(IDLE).unwrap();
        assert_eq!(c, load_time_buddyinfo(4));
        assert_eq!(format_buddyinfo(&c), IDLE);
        assert_eq!(free_pages(&c), 1024);
    }

    #[test]
    fn wide_counts_parse() {
        let mut c = [3u64; NR_ORDERS];
        c[0] = 1_234_567;
        let text = format_buddyinfo(&c);
        assert!(text.contains(" 1234567 "));
        assert_eq!(parse_buddyinfo(&text).unwrap(), c);
    }

    #[test]
    fn buddyinfo_layout_errors() {
        // No trailing space, no newline, a missing order, another zone, two spaces too few.
        for bad in [
            IDLE.replace(" \n", "\n"),
            IDLE.trim_end_matches('\n').to_string(),
            IDLE.replacen("      0 ", "", 1),
            IDLE.replace("   rkmem", "  Normal"),
            IDLE.replacen("      0", "    0", 1),
            format!("{IDLE}{IDLE}"),
            IDLE.replacen("      0", "     -1", 1),
        ] {
            assert!(parse_buddyinfo(&bad).is_err(), "{bad:?}");
        }
    }

    const EXTFRAG_TEXT: &str = "arena_pages 16\narena_mib 0\nfree_pages 12\nlargest_free_order 3\nunusable Node 0, zone    rkmem 0.000 0.333 0.333 0.333 1.000 1.000 1.000 1.000 1.000 1.000 1.000 \nextfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000  0.650  0.-500  0.000  0.000  0.000  0.000  0.000 \n";

    #[test]
    fn extfrag_parses() {
        let e = parse_extfrag(EXTFRAG_TEXT).unwrap();
        assert_eq!(e.arena_pages, 16);
        assert_eq!(e.arena_mib, 0);
        assert_eq!(e.free_pages, 12);
        assert_eq!(e.largest_free_order, 3);
        assert_eq!(e.unusable[..5], [0, 333, 333, 333, 1000]);
        assert_eq!(e.extfrag[..6], [-1000, -1000, -1000, -1000, 650, -500]);
    }

    #[test]
    fn extfrag_layout_errors() {
        for bad in [
            EXTFRAG_TEXT.replace("arena_mib", "arena_mb"),
            EXTFRAG_TEXT.replace(" \nextfrag", "\nextfrag"),
            EXTFRAG_TEXT.replace(" 0.650", "0.650"),
            EXTFRAG_TEXT.replace("0.333 1.000", "0.333"),
            EXTFRAG_TEXT.replace("largest_free_order 3\n", ""),
        ] {
            assert!(parse_extfrag(&bad).is_err(), "{bad:?}");
        }
    }

    const SLABINFO_TEXT: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
demo-117              50     68    117   34    1 : tunables   32   16    0 : slabdata      2      2      0\n\
a_name_longer_than_17 12345678 12345688     64   62    1 : tunables    0    0    0 : slabdata 199124 199124      0\n\
rkmalloc-2k            7     15   2048   15    8 : tunables   32   16    0 : slabdata      1      1      0\n";

    #[test]
    fn slabinfo_parses() {
        let rows = parse_slabinfo(SLABINFO_TEXT).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            SlabRow {
                name: "demo-117".into(),
                active_objs: 50,
                num_objs: 68,
                objsize: 117,
                objperslab: 34,
                pagesperslab: 1,
                limit: 32,
                batchcount: 16,
                sharedfactor: 0,
                active_slabs: 2,
                num_slabs: 2,
                sharedavail: 0,
            }
        );
        assert_eq!(rows[1].active_objs, 12_345_678);
        assert_eq!(rows[2].cache_bytes(), 8 * 4096);
        for r in &rows {
            r.check().unwrap();
        }
        let again: String = rows.iter().map(format_slab_row).collect();
        assert!(SLABINFO_TEXT.ends_with(&again));
    }

    #[test]
    fn slabinfo_without_caches_parses() {
        let header = SLABINFO_TEXT.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
        assert_eq!(parse_slabinfo(&header).unwrap(), vec![]);
    }

    #[test]
    fn slabinfo_layout_errors() {
        let row = "demo-117              50     68    117   34    1 : tunables   32   16    0 : slabdata      2      2      0";
        for bad in [
            SLABINFO_TEXT.replace("2.1", "2.0"),
            SLABINFO_TEXT.replace("<sharedavail>", "<shared>"),
            SLABINFO_TEXT.trim_end_matches('\n').to_string(),
            SLABINFO_TEXT.replace(row, &row.replacen("    50", "   50", 1)),
            SLABINFO_TEXT.replace(row, &row.replacen("demo-117    ", "demo-117   ", 1)),
            SLABINFO_TEXT.replace(row, &row.replace(" : slabdata", " slabdata")),
            SLABINFO_TEXT.replace(row, &row.replace("    0 : slab", "   -1 : slab")),
            SLABINFO_TEXT.replace(row, &format!("{row} ")),
            SLABINFO_TEXT.replace(row, &row.replace("demo-117 ", "demo/117 ")),
            SLABINFO_TEXT.replace("rkmalloc-2k ", "demo-117    "),
            format!("{SLABINFO_TEXT}\n"),
        ] {
            assert!(parse_slabinfo(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slab_row_relations() {
        let ok = parse_slabinfo(SLABINFO_TEXT).unwrap().remove(0);
        for bad in [
            SlabRow {
                num_objs: 67,
                ..ok.clone()
            },
            SlabRow {
                active_objs: 69,
                ..ok.clone()
            },
            SlabRow {
                active_slabs: 3,
                ..ok.clone()
            },
            SlabRow {
                active_slabs: 1,
                ..ok.clone()
            },
            SlabRow {
                objsize: 121,
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
