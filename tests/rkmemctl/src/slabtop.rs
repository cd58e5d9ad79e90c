// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl slabtop`: procps `slabtop` for `/proc/rkmem/slabinfo`: a summary of all caches and
//! a table with one line per cache, in slabtop's own columns and widths.
//!
//! No curses: `--once` prints one view and exits (for scripts and tests); otherwise the view is
//! reprinted every `--interval` seconds after an ANSI "home + clear screen".

use crate::procfs::{self, SlabRow};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

/// The order of the table's lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// Most active objects first.
    Active,
    /// Largest cache (bytes of its slabs) first.
    Size,
    /// By name.
    Name,
}

/// The totals of slabtop's summary header.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// Objects in use, in all caches.
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// Slabs with an object in use.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
    /// Caches with an object in use.
    pub active_caches: u64,
    /// All caches.
    pub caches: u64,
    /// Bytes of the objects in use (`active_objs * objsize`).
    pub active_bytes: u64,
    /// Bytes of all objects (`num_objs * objsize`).
    pub total_bytes: u64,
    /// Smallest object size of any cache.
    pub min_objsize: u32,
    /// Average object size over all objects (over the caches when there are none).
    pub avg_objsize: f64,
    /// Largest object size of any cache.
    pub max_objsize: u32,
}

/// The totals over `rows`.
pub fn summarize(rows: &[SlabRow]) -> Summary {
    let mut s = Summary {
        caches: rows.len() as u64,
        min_objsize: rows.iter().map(|r| r.objsize).min().unwrap_or(0),
        max_objsize: rows.iter().map(|r| r.objsize).max().unwrap_or(0),
        ..Default::default()
    };
    for r in rows {
        s.active_objs += r.active_objs;
        s.num_objs += r.num_objs;
        s.active_slabs += r.active_slabs;
        s.num_slabs += r.num_slabs;
        s.active_caches += u64::from(r.active_objs > 0);
        s.active_bytes += r.active_objs * u64::from(r.objsize);
        s.total_bytes += r.num_objs * u64::from(r.objsize);
    }
    s.avg_objsize = if s.num_objs > 0 {
        s.total_bytes as f64 / s.num_objs as f64
    } else if !rows.is_empty() {
        rows.iter().map(|r| f64::from(r.objsize)).sum::<f64>() / rows.len() as f64
    } else {
        0.0
    };
    s
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub(crate) fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn kib(bytes: f64) -> f64 {
    bytes / 1024.0
}

/// The table header, as procps slabtop prints it (`%6s %6s %4s %8s %6s %8s %10s %-23s`).
pub const TABLE_HEADER: &str = "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME";

/// Sorts `rows` for the table.
pub fn sort(rows: &mut [SlabRow], by: SortBy) {
    match by {
        SortBy::Active => rows.sort_by(|a, b| {
            b.active_objs
                .cmp(&a.active_objs)
                .then_with(|| b.num_objs.cmp(&a.num_objs))
                .then_with(|| a.name.cmp(&b.name))
        }),
        SortBy::Size => rows.sort_by(|a, b| {
            b.cache_bytes()
                .cmp(&a.cache_bytes())
                .then_with(|| a.name.cmp(&b.name))
        }),
        SortBy::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
}

/// The whole view: summary, blank line, table header, one line per cache in `by` order.
pub fn render(rows: &[SlabRow], by: SortBy) -> String {
    let s = summarize(rows);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        " Active / Total Objects (% used)    : {} / {} ({:.1}%)",
        s.active_objs,
        s.num_objs,
        pct(s.active_objs, s.num_objs)
    );
    let _ = writeln!(
        out,
        " Active / Total Slabs (% used)      : {} / {} ({:.1}%)",
        s.active_slabs,
        s.num_slabs,
        pct(s.active_slabs, s.num_slabs)
    );
    let _ = writeln!(
        out,
        " Active / Total Caches (% used)     : {} / {} ({:.1}%)",
        s.active_caches,
        s.caches,
        pct(s.active_caches, s.caches)
    );
    let _ = writeln!(
        out,
        " Active / Total Size (% used)       : {:.2}K / {:.2}K ({:.1}%)",
        kib(s.active_bytes as f64),
        kib(s.total_bytes as f64),
        pct(s.active_bytes, s.total_bytes)
    );
    let _ = writeln!(
        out,
        " Minimum / Average / Maximum Object : {:.2}K / {:.2}K / {:.2}K",
        kib(f64::from(s.min_objsize)),
        kib(s.avg_objsize),
        kib(f64::from(s.max_objsize))
    );
    out.push('\n');
    out.push_str(TABLE_HEADER);
    out.push('\n');
    let mut sorted = rows.to_vec();
    sort(&mut sorted, by);
    for r in &sorted {
        // procps: "%6u %6u %3.0f%% %7.2fK %6u %8u %9luK %-23s".
        let _ = writeln!(
            out,
            "{:6} {:6} {:3.0}% {:7.2}K {:6} {:8} {:9}K {}",
            r.num_objs,
            r.active_objs,
            pct(r.active_objs, r.num_objs),
            kib(f64::from(r.objsize)),
            r.num_slabs,
            r.objperslab,
            r.cache_bytes() / 1024,
            r.name
        );
    }
    out
}

/// `rkmemctl slabtop`: one view (`once`), or a view every `interval` until interrupted.
pub fn run(once: bool, interval: f64, by: SortBy) -> Result<(), String> {
    let interval_ok = interval > 0.0 && interval <= 86_400.0;
    if !once && !interval_ok {
        return Err(format!("--interval {interval}: want 0 < seconds <= 86400"));
    }
    loop {
        let rows = procfs::slabinfo()?;
        let view = render(&rows, by);
        if once {
            print!("{view}");
            return Ok(());
        }
        // Cursor home, clear the screen, then the view in one write.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(format!("\x1b[H\x1b[2J{view}").as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        drop(stdout);
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, active: u64, slabs: u64, objsize: u32, per: u32, pages: u32) -> SlabRow {
        SlabRow {
            name: name.into(),
            active_objs: active,
            num_objs: slabs * u64::from(per),
            objsize,
            objperslab: per,
            pagesperslab: pages,
            limit: 32,
            batchcount: 16,
            active_slabs: slabs.min(active),
            num_slabs: slabs,
            ..Default::default()
        }
    }

    fn rows() -> Vec<SlabRow> {
        vec![
            row("demo-117", 50, 2, 117, 34, 1),
            row("rkmalloc-4k", 3, 1, 4096, 7, 8),
            row("rkmalloc-8", 0, 0, 8, 507, 1),
        ]
    }

    #[test]
    fn summary_totals() {
        let s = summarize(&rows());
        assert_eq!((s.active_objs, s.num_objs), (53, 75));
        assert_eq!((s.active_slabs, s.num_slabs), (3, 3));
        assert_eq!((s.active_caches, s.caches), (2, 3));
        assert_eq!(s.active_bytes, 50 * 117 + 3 * 4096);
        assert_eq!(s.total_bytes, 68 * 117 + 7 * 4096);
        assert_eq!((s.min_objsize, s.max_objsize), (8, 4096));
    }

    #[test]
    fn view_has_procps_columns() {
        let v = render(&rows(), SortBy::Active);
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(
            lines[0],
            " Active / Total Objects (% used)    : 53 / 75 (70.7%)"
        );
        assert_eq!(
            lines[2],
            " Active / Total Caches (% used)     : 2 / 3 (66.7%)"
        );
        assert_eq!(
            lines[4],
            " Minimum / Average / Maximum Object : 0.01K / 0.48K / 4.00K"
        );
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], TABLE_HEADER);
        assert_eq!(
            lines[7],
            "    68     50  74%    0.11K      2       34         8K demo-117"
        );
        assert_eq!(
            lines[8],
            "     7      3  43%    4.00K      1        7        32K rkmalloc-4k"
        );
        assert_eq!(
            lines[9],
            "     0      0   0%    0.01K      0      507         0K rkmalloc-8"
        );
        assert_eq!(lines.len(), 10);
    }

    #[test]
    fn sort_orders() {
        let names = |by| {
            let mut r = rows();
            sort(&mut r, by);
            r.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(SortBy::Size),
            ["rkmalloc-4k", "demo-117", "rkmalloc-8"]
        );
        assert_eq!(
            names(SortBy::Name),
            ["demo-117", "rkmalloc-4k", "rkmalloc-8"]
        );
    }

    #[test]
    fn no_caches_is_not_a_division_by_zero() {
        let v = render(&[], SortBy::Name);
        assert!(v.contains(": 0 / 0 (0.0%)"));
        assert!(v.ends_with(&format!("{TABLE_HEADER}\n")));
    }
}
