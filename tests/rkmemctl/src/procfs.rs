// SPDX-License-Identifier: GPL-2.0

//! Readers of `/proc/rkmem`: strict parsers of the kernel formats the module promises.

use crate::uapi::RKMEM_MAX_ORDER;

/// Orders of the buddy allocator: `0..=RKMEM_MAX_ORDER`.
pub const NR_ORDERS: usize = RKMEM_MAX_ORDER as usize + 1;

/// `/proc/rkmem/buddyinfo`.
pub const BUDDYINFO: &str = "/proc/rkmem/buddyinfo";
/// `/proc/rkmem/extfrag`.
pub const EXTFRAG: &str = "/proc/rkmem/extfrag";
/// `/proc/rkmem/stats`.
pub const STATS: &str = "/proc/rkmem/stats";

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
}
