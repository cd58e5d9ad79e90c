// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl map`: the arena's block map drawn like the allocation diagrams of
//! operating-systems textbooks.
//!
//! Each present slot (4 MiB) is one bar of fixed width, one character per cell of equal size,
//! then its blocks in address order as compact tokens, runs of equal blocks folded:
//!
//! ```text
//! slot 0  |##=:............................................................|
//!         U16K U4K*3 E12K F4K F32K F64K F128K F256K F512K F1M F2M
//!         used 28 pages (112K), exact 3 (12K), free 993 (3972K), 21 blocks
//! ```

use crate::dev::{SlotMap, PAGE_SIZE};
use crate::uapi::{RkmemBlock, RKMEM_BLOCK_EXACT, RKMEM_BLOCK_FREE, RKMEM_BLOCK_USED};
use std::fmt::Write;

/// Characters of the bar.
pub const BAR_WIDTH: usize = 64;
/// Width the token lines wrap at.
const LINE_WIDTH: usize = 78;
/// Indentation of the lines under a bar.
const INDENT: &str = "        ";

/// The legend of the bar and the tokens.
pub fn legend(slot_pages: u32) -> String {
    let cell = u64::from(slot_pages).div_ceil(BAR_WIDTH as u64).max(1);
    format!(
        "bar: one character per {} ('#' used, '=' exact, ':' part used, '.' free)\n\
         blocks: U used, E exact, F free, then the size; X*N is N such blocks in a row",
        size(cell)
    )
}

/// A size in pages as text: `4K`, `12K`, `2M`.
pub fn size(pages: u64) -> String {
    let kib = pages * (PAGE_SIZE / 1024);
    if kib >= 1024 && kib.is_multiple_of(1024) {
        format!("{}M", kib / 1024)
    } else {
        format!("{kib}K")
    }
}

fn kind_letter(kind: u32) -> char {
    match kind {
        RKMEM_BLOCK_FREE => 'F',
        RKMEM_BLOCK_USED => 'U',
        RKMEM_BLOCK_EXACT => 'E',
        _ => '?',
    }
}

/// The tokens of the blocks, runs of equal blocks folded into `X*N`.
pub fn tokens(blocks: &[RkmemBlock]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let b = blocks[i];
        let run = blocks[i..]
            .iter()
            .take_while(|o| o.kind == b.kind && o.pages == b.pages)
            .count();
        let mut t = format!("{}{}", kind_letter(b.kind), size(u64::from(b.pages)));
        if run > 1 {
            t.push_str(&format!("*{run}"));
        }
        out.push(t);
        i += run;
    }
    out
}

/// The bar of a slot: `width` cells, each summarising its share of the slot's pages.
pub fn bar(blocks: &[RkmemBlock], slot_pages: u32, width: usize) -> String {
    // Per cell: pages free, used, exact.
    let slot_pages = u64::from(slot_pages).max(1);
    let mut cells = vec![[0u64; 3]; width];
    for b in blocks {
        let idx = match b.kind {
            RKMEM_BLOCK_FREE => 0,
            RKMEM_BLOCK_USED => 1,
            _ => 2,
        };
        let start = u64::from(b.start);
        let end = (start + u64::from(b.pages)).min(slot_pages);
        let mut p = start;
        while p < end {
            // The cell of page p, and the first page of the next cell.
            let cell = (p * width as u64 / slot_pages) as usize;
            let next = ((cell as u64 + 1) * slot_pages).div_ceil(width as u64);
            let upto = next.min(end).max(p + 1);
            if let Some(c) = cells.get_mut(cell) {
                c[idx] += upto - p;
            }
            p = upto;
        }
    }
    cells
        .iter()
        .map(|&[free, used, exact]| match (free, used, exact) {
            (0, 0, 0) => ' ',
            (_, 0, 0) => '.',
            (0, _, 0) => '#',
            (0, 0, _) => '=',
            (0, u, e) => {
                if u >= e {
                    '#'
                } else {
                    '='
                }
            }
            _ => ':',
        })
        .collect()
}

/// Pages per kind: free, used, exact.
pub fn totals(blocks: &[RkmemBlock]) -> [u64; 3] {
    let mut t = [0u64; 3];
    for b in blocks {
        let i = match b.kind {
            RKMEM_BLOCK_FREE => 0,
            RKMEM_BLOCK_USED => 1,
            _ => 2,
        };
        t[i] += u64::from(b.pages);
    }
    t
}

fn wrap(out: &mut String, words: &[String]) {
    let mut line = String::from(INDENT);
    for w in words {
        if line.len() > INDENT.len() && line.len() + 1 + w.len() > LINE_WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(INDENT);
        }
        line.push_str(w);
        line.push(' ');
    }
    if line.len() > INDENT.len() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Renders one present slot: the bar, the block tokens and the totals.
pub fn render_slot(m: &SlotMap) -> String {
    let mut out = String::new();
    let label = format!("slot {}", m.slot);
    let _ = writeln!(
        out,
        "{label:<width$}|{}|",
        bar(&m.blocks, m.slot_pages, BAR_WIDTH),
        width = INDENT.len()
    );
    wrap(&mut out, &tokens(&m.blocks));
    let [free, used, exact] = totals(&m.blocks);
    let _ = writeln!(
        out,
        "{INDENT}used {used} pages ({}), exact {exact} ({}), free {free} ({}), {} blocks",
        size(used),
        size(exact),
        size(free),
        m.blocks.len()
    );
    out
}

/// The note on the per-CPU caches: their pages are drawn as used blocks.
pub fn pcp_note(pcp_pages: u32) -> String {
    if pcp_pages == 0 {
        "per-CPU caches: empty".into()
    } else {
        format!(
            "per-CPU caches: {pcp_pages} pages ({}) cached for reuse, drawn as used (rkmemctl trim --pcp gives them back)",
            size(u64::from(pcp_pages))
        )
    }
}

/// Renders the maps of all slots: a header, each present slot, the absent ones in one line.
pub fn render(maps: &[SlotMap], with_legend: bool) -> String {
    let mut out = String::new();
    let Some(first) = maps.first() else {
        return out;
    };
    let slots = first.slots;
    let present: Vec<&SlotMap> = maps.iter().filter(|m| m.present).collect();
    // The module reports the pages of all per-CPU caches with every slot.
    let pcp = maps.iter().map(|m| m.pcp_pages).max().unwrap_or(0);
    let slot_mib = (u64::from(first.slot_pages) * PAGE_SIZE) >> 20;
    let _ = writeln!(
        out,
        "arena: {} of {slots} slots present ({} of {} MiB)",
        present.len(),
        present.len() as u64 * slot_mib,
        u64::from(slots) * slot_mib,
    );
    out.push_str(&pcp_note(pcp));
    out.push('\n');
    if with_legend {
        out.push_str(&legend(first.slot_pages));
        out.push('\n');
    }
    for m in &present {
        out.push_str(&render_slot(m));
    }
    let absent: Vec<u32> = maps.iter().filter(|m| !m.present).map(|m| m.slot).collect();
    if !absent.is_empty() {
        let _ = writeln!(out, "absent: {}", ranges(&absent));
    }
    out
}

/// `[1, 2, 3, 5]` as `slots 1-3, 5`.
pub(crate) fn ranges(slots: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[j] + 1 {
            j += 1;
        }
        if j == i {
            parts.push(format!("{}", slots[i]));
        } else {
            parts.push(format!("{}-{}", slots[i], slots[j]));
        }
        i = j + 1;
    }
    let noun = if slots.len() == 1 { "slot" } else { "slots" };
    format!("{noun} {}", parts.join(", "))
}

/// Checks a present slot's map: blocks in address order from page 0, no gap, no overlap,
/// page counts summing to `slot_pages`, known kinds, zero reserved fields, free and used blocks
/// power-of-two sized and aligned.
pub fn check_slot(m: &SlotMap) -> Result<(), String> {
    if !m.present {
        if !m.blocks.is_empty() {
            return Err(format!(
                "slot {} is absent but has {} blocks",
                m.slot,
                m.blocks.len()
            ));
        }
        return Ok(());
    }
    let mut next = 0u64;
    for (i, b) in m.blocks.iter().enumerate() {
        let what = format!("slot {} block {i} {:?}", m.slot, b);
        if u64::from(b.start) != next {
            return Err(format!("{what}: starts at {}, want {next}", b.start));
        }
        if b.pages == 0 {
            return Err(format!("{what}: zero pages"));
        }
        if b.reserved != 0 {
            return Err(format!("{what}: reserved field is {}", b.reserved));
        }
        match b.kind {
            RKMEM_BLOCK_FREE | RKMEM_BLOCK_USED => {
                if !b.pages.is_power_of_two() || b.start % b.pages != 0 {
                    return Err(format!("{what}: not a naturally aligned power of two"));
                }
            }
            RKMEM_BLOCK_EXACT => {}
            k => return Err(format!("{what}: unknown kind {k}")),
        }
        next += u64::from(b.pages);
    }
    if next != u64::from(m.slot_pages) {
        return Err(format!(
            "slot {}: blocks cover {next} pages, slot_pages is {}",
            m.slot, m.slot_pages
        ));
    }
    Ok(())
}

/// A block of a slot map (tests of the map's users).
#[cfg(test)]
pub(crate) fn blk(start: u32, pages: u32, kind: u32) -> RkmemBlock {
    RkmemBlock {
        start,
        pages,
        kind,
        reserved: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_slot() -> SlotMap {
        // U4K F4K U8K E12K F4K F32K ... F2M over 1024 pages.
        let mut blocks = vec![
            blk(0, 1, RKMEM_BLOCK_USED),
            blk(1, 1, RKMEM_BLOCK_FREE),
            blk(2, 2, RKMEM_BLOCK_USED),
            blk(4, 3, RKMEM_BLOCK_EXACT),
            blk(7, 1, RKMEM_BLOCK_FREE),
        ];
        let mut start = 8;
        while start < 1024 {
            blocks.push(blk(start, start, RKMEM_BLOCK_FREE));
            start *= 2;
        }
        SlotMap {
            slot: 0,
            slots: 16,
            present: true,
            slot_pages: 1024,
            pcp_pages: 1,
            blocks,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(1), "4K");
        assert_eq!(size(3), "12K");
        assert_eq!(size(256), "1M");
        assert_eq!(size(1023), "4092K");
        assert_eq!(size(1024), "4M");
    }

    #[test]
    fn tokens_fold_runs() {
        let b = [
            blk(0, 1, RKMEM_BLOCK_USED),
            blk(1, 1, RKMEM_BLOCK_USED),
            blk(2, 2, RKMEM_BLOCK_FREE),
            blk(4, 4, RKMEM_BLOCK_EXACT),
        ];
        assert_eq!(tokens(&b), ["U4K*2", "F8K", "E16K"]);
    }

    #[test]
    fn a_split_slot_renders() {
        let m = split_slot();
        check_slot(&m).unwrap();
        let text = render_slot(&m);
        let mut lines = text.lines();
        let bar_line = lines.next().unwrap();
        assert_eq!(bar_line.len(), INDENT.len() + BAR_WIDTH + 2);
        assert!(bar_line.starts_with("slot 0  |:..."), "{bar_line}");
        assert_eq!(
            lines.next().unwrap(),
            "        U4K F4K U8K E12K F4K F32K F64K F128K F256K F512K F1M F2M"
        );
        assert!(lines
            .next()
            .unwrap()
            .contains("used 3 pages (12K), exact 3 (12K)"));
    }

    #[test]
    fn whole_blocks_fill_the_bar() {
        let used = [blk(0, 1024, RKMEM_BLOCK_USED)];
        assert_eq!(bar(&used, 1024, 64), "#".repeat(64));
        let halves = [
            blk(0, 512, RKMEM_BLOCK_EXACT),
            blk(512, 512, RKMEM_BLOCK_FREE),
        ];
        assert_eq!(bar(&halves, 1024, 64), "=".repeat(32) + &".".repeat(32));
        // A slot smaller than the bar: its pages spread out, cells without pages stay blank.
        let small = [blk(0, 4, RKMEM_BLOCK_FREE)];
        assert_eq!(bar(&small, 4, 8), ". . . . ");
    }

    #[test]
    fn render_lists_absent_slots() {
        let mut maps = vec![split_slot()];
        for slot in 1..16 {
            maps.push(SlotMap {
                slot,
                slots: 16,
                slot_pages: 1024,
                ..Default::default()
            });
        }
        let text = render(&maps, true);
        assert!(text.starts_with(
            "arena: 1 of 16 slots present (4 of 64 MiB)\nper-CPU caches: 1 pages (4K) cached"
        ));
        assert!(text.contains("one character per 64K"));
        assert!(text.ends_with("absent: slots 1-15\n"), "{text}");
    }

    #[test]
    fn bad_maps_are_caught() {
        let mut gap = split_slot();
        gap.blocks.remove(1);
        assert!(check_slot(&gap).is_err());
        let mut misaligned = split_slot();
        misaligned.blocks[2] = blk(2, 2, RKMEM_BLOCK_USED);
        misaligned.blocks[1] = blk(1, 1, RKMEM_BLOCK_FREE);
        check_slot(&misaligned).unwrap();
        misaligned.blocks[0] = blk(0, 2, RKMEM_BLOCK_USED);
        assert!(check_slot(&misaligned).is_err());
        let mut short = split_slot();
        short.blocks.pop();
        assert!(check_slot(&short).is_err());
    }
}
