// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl stats`: /proc/rkmem in readable tables: the counters of `stats` grouped, buddyinfo
//! and the fragmentation indices per order with block sizes, mempools, the shrinker and the
//! watermarks. `rkmemctl stats --raw` prints `/proc/rkmem/stats` as it is.

use crate::procfs;
use std::fmt::Write as _;

/// Groups of `/proc/rkmem/stats`: a title and the prefixes or names of its counters.
const GROUPS: [(&str, &[&str]); 7] = [
    (
        "module",
        &[
            "abi_version",
            "arena_initial_mb",
            "arena_max_mb",
            "kasan_redzones",
        ],
    ),
    (
        "files and ioctls",
        &["opens", "releases", "open_files", "ioctls", "ioctl_errors"],
    ),
    ("arena", &["arena_"]),
    ("page allocator", &["page_"]),
    ("bad frees (refused)", &["bad_free_"]),
    ("reclaim", &["reclaim_"]),
    ("other", &[""]),
];

/// Counters whose value is a number of pages: shown with their size too.
fn is_pages(name: &str) -> bool {
    name.ends_with("_pages") || name == "low" || name == "high" || name == "free"
}

/// `bytes` as a short size: 4K, 1.5M, 64M.
pub fn size(bytes: u64) -> String {
    const K: u64 = 1024;
    match bytes {
        b if b >= K * K * K => format!("{:.1}G", b as f64 / (K * K * K) as f64),
        b if b >= K * K && b % (K * K) == 0 => format!("{}M", b / (K * K)),
        b if b >= K * K => format!("{:.1}M", b as f64 / (K * K) as f64),
        b if b >= K && b % K == 0 => format!("{}K", b / K),
        b => format!("{b}B"),
    }
}

/// `name value` lines.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn kv_table(out: &mut String, rows: &[(String, String)]) {
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let extra = match v.parse::<u64>() {
            Ok(n) if is_pages(k) => format!("  ({})", size(n * 4096)),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {k:<w$}  {v:>12}{extra}");
    }
}

/// Renders `/proc/rkmem/stats` grouped.
pub fn render_stats(text: &str) -> String {
    let all = pairs(text);
    let mut used = vec![false; all.len()];
    let mut out = String::new();
    for (title, keys) in GROUPS {
        let mut rows = Vec::new();
        for (i, (k, v)) in all.iter().enumerate() {
            let hit = keys
                .iter()
                .any(|p| k == p || (p.ends_with('_') || p.is_empty()) && k.starts_with(p));
            if !used[i] && hit {
                used[i] = true;
                rows.push((k.clone(), v.clone()));
            }
        }
        if !rows.is_empty() {
            let _ = writeln!(out, "{title}:");
            kv_table(&mut out, &rows);
        }
    }
    out
}

/// Renders buddyinfo (and, if given, extfrag's two index lines) as a table per order.
pub fn render_buddy(buddy: &procfs::FreeCounts, extfrag: Option<&procfs::Extfrag>) -> String {
    let mut out = format!(
        "{:>5} {:>6} {:>8} {:>8} {:>8}",
        "order", "block", "free", "pages", "bytes"
    );
    if extfrag.is_some() {
        out += &format!(" {:>9} {:>9}", "unusable", "extfrag");
    }
    out.push('\n');
    let mut total = 0u64;
    for (o, &n) in buddy.iter().enumerate() {
        let pages = n << o;
        total += pages;
        let _ = write!(
            out,
            "{o:>5} {:>6} {n:>8} {pages:>8} {:>8}",
            size(4096 << o),
            size(pages * 4096)
        );
        if let Some(e) = extfrag {
            let idx = |v: i32| format!("{:.3}", f64::from(v) / 1000.0);
            let _ = write!(out, " {:>9} {:>9}", idx(e.unusable[o]), idx(e.extfrag[o]));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{:>5} {:>6} {:>8} {total:>8} {:>8}",
        "all",
        "",
        buddy.iter().sum::<u64>(),
        size(total * 4096)
    );
    out
}

fn section(out: &mut String, title: &str, body: Result<String, String>) {
    let _ = writeln!(out, "== {title}");
    match body {
        Ok(b) => out.push_str(&b),
        Err(e) => {
            let _ = writeln!(out, "  ({e})");
        }
    }
    out.push('\n');
}

/// The whole view.
pub fn render_all() -> String {
    let mut out = String::new();
    section(
        &mut out,
        "/proc/rkmem/stats",
        procfs::read(procfs::STATS).map(|t| render_stats(&t)),
    );
    let buddy = procfs::buddyinfo().map(|b| {
        let e = procfs::extfrag().ok();
        let mut s = String::new();
        if let Some(e) = &e {
            let _ = writeln!(
                s,
                "arena {} MiB ({} pages), {} pages free, largest free order {}",
                e.arena_mib, e.arena_pages, e.free_pages, e.largest_free_order
            );
        }
        s + &render_buddy(&b, e.as_ref())
    });
    section(&mut out, "/proc/rkmem/buddyinfo + extfrag", buddy);
    let pools = procfs::read("/proc/rkmem/mempools").map(|t| {
        let rows = t
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        if rows == 0 {
            "  (no mempools)\n".to_string()
        } else {
            t.lines().map(|l| format!("  {l}\n")).collect()
        }
    });
    section(&mut out, "/proc/rkmem/mempools", pools);
    for f in ["shrinker", "watermarks"] {
        let path = format!("/proc/rkmem/{f}");
        let body = procfs::read(&path).map(|t| {
            let mut s = String::new();
            kv_table(&mut s, &pairs(&t));
            s
        });
        section(&mut out, &path, body);
    }
    out
}

/// `rkmemctl stats`.
pub fn run() -> Result<(), String> {
    print!("{}", render_all());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::NR_ORDERS;

    #[test]
    fn stats_are_grouped_and_nothing_is_lost() {
        let text = "abi_version 1\nopens 3\narena_pages 1024\npage_allocs 5\nbad_free_double 0\nreclaim_sync_runs 2\nnew_counter 9\n";
        let out = render_stats(text);
        for k in [
            "abi_version",
            "opens",
            "arena_pages",
            "page_allocs",
            "bad_free_double",
            "reclaim_sync_runs",
            "new_counter",
        ] {
            assert_eq!(out.matches(k).count(), 1, "{k} in {out}");
        }
        assert!(out.contains("(4M)"), "{out}");
        assert!(out.find("module:").unwrap() < out.find("arena:").unwrap());
        assert!(out.contains("other:"));
    }

    #[test]
    fn buddy_table_has_a_row_per_order() {
        let mut b = [0u64; NR_ORDERS];
        b[10] = 1;
        b[0] = 3;
        let out = render_buddy(&b, None);
        assert_eq!(out.lines().count(), NR_ORDERS + 2);
        assert!(out.lines().nth(11).unwrap().contains("4M"));
        assert!(out.lines().last().unwrap().contains("1027"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size(4096), "4K");
        assert_eq!(size(4 << 20), "4M");
        assert_eq!(size(1536 << 10), "1.5M");
        assert_eq!(size(100), "100B");
    }
}
