// SPDX-License-Identifier: GPL-2.0

//! Chapter 1: the buddy system.

use super::{info, Figures};
use crate::dev::{Alloc, Device, PagesReq, SlotMap, PAGE_SIZE};
use crate::procfs;
use crate::uapi::{RkmemBlock, RKMEM_BLOCK_FREE, RKMEM_BLOCK_USED, RKMEM_INFO_PAGES};
use std::collections::BTreeSet;

/// Pages of the textbook's region: 1024 KiB.
const REGION_PAGES: u32 = 256;
/// Pages of the textbook's unit: 64 KiB.
const UNIT_PAGES: u64 = 16;

/// One step of the textbook's example.
#[derive(Clone, Copy, Debug)]
pub enum BuddyStep {
    /// `name` requests this many KiB.
    Request(&'static str, u64),
    /// `name` releases its block.
    Release(&'static str),
}

/// The textbook's example, step by step, with the row it draws after each (t=0 first).
pub const TEXTBOOK_BUDDY: &[(Option<BuddyStep>, &str)] = &[
    (None, "1024K"),
    (
        Some(BuddyStep::Request("A", 34)),
        "A-64K | 64K | 128K | 256K | 512K",
    ),
    (
        Some(BuddyStep::Request("B", 66)),
        "A-64K | 64K | B-128K | 256K | 512K",
    ),
    (
        Some(BuddyStep::Request("C", 35)),
        "A-64K | C-64K | B-128K | 256K | 512K",
    ),
    (
        Some(BuddyStep::Request("D", 67)),
        "A-64K | C-64K | B-128K | D-128K | 128K | 512K",
    ),
    (
        Some(BuddyStep::Release("C")),
        "A-64K | 64K | B-128K | D-128K | 128K | 512K",
    ),
    (
        Some(BuddyStep::Release("A")),
        "128K | B-128K | D-128K | 128K | 512K",
    ),
    (Some(BuddyStep::Release("B")), "256K | D-128K | 128K | 512K"),
    (Some(BuddyStep::Release("D")), "1024K"),
];

/// The buddy order that serves a request of `kib` KiB in the textbook's region: whole 64 KiB
/// units, rounded up to a power of two.
pub fn request_order(kib: u64) -> u32 {
    let units = kib.div_ceil(UNIT_PAGES * PAGE_SIZE / 1024).max(1);
    let pages = units.next_power_of_two() * UNIT_PAGES;
    pages.trailing_zeros()
}

/// A size in KiB as the textbook writes it: `64K`, `1024K`.
fn kib(pages: u64) -> String {
    format!("{}K", pages * PAGE_SIZE / 1024)
}

/// The blocks of the first [`REGION_PAGES`] pages of a slot in address order: (first page,
/// pages, owner), used ones named by `owner` (by first page, `?` if it has none), a free block
/// reaching past the region cut at it (owner `None`).
pub fn region_blocks(
    blocks: &[RkmemBlock],
    owner: &dyn Fn(u32) -> Option<String>,
) -> Vec<(u32, u32, Option<String>)> {
    blocks
        .iter()
        .filter(|b| b.start < REGION_PAGES)
        .map(|b| {
            let pages = b.pages.min(REGION_PAGES - b.start);
            let name =
                (b.kind != RKMEM_BLOCK_FREE).then(|| owner(b.start).unwrap_or_else(|| "?".into()));
            (b.start, pages, name)
        })
        .collect()
}

/// The textbook row of the first [`REGION_PAGES`] pages of a slot ([`region_blocks`]):
/// `A-64K | 64K | 128K`.
pub fn region_row(blocks: &[RkmemBlock], owner: &dyn Fn(u32) -> Option<String>) -> String {
    region_blocks(blocks, owner)
        .into_iter()
        .map(|(_, pages, name)| {
            let size = kib(u64::from(pages));
            match name {
                Some(n) => format!("{n}-{size}"),
                None => size,
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// What lies beyond the region in the slot, as rkmem's blocks: `free 1024K, 2048K` or, when one
/// free block covers the region and more, what it is.
pub fn beyond_region(blocks: &[RkmemBlock], slot_pages: u32) -> String {
    if let Some(b) = blocks
        .iter()
        .find(|b| b.start < REGION_PAGES && b.start + b.pages > REGION_PAGES)
    {
        return format!(
            "the region is the start of one free {} block (the whole {} slot, order {})",
            kib(u64::from(b.pages)),
            kib(u64::from(slot_pages)),
            b.pages.trailing_zeros()
        );
    }
    let rest: Vec<String> = blocks
        .iter()
        .filter(|b| b.start >= REGION_PAGES)
        .map(|b| {
            let k = if b.kind == RKMEM_BLOCK_FREE {
                ""
            } else {
                "used "
            };
            format!("{k}{}", kib(u64::from(b.pages)))
        })
        .collect();
    format!("+ {} beyond the region", rest.join(" | "))
}

fn block_name(b: &RkmemBlock) -> String {
    let k = match b.kind {
        RKMEM_BLOCK_FREE => "free",
        RKMEM_BLOCK_USED => "used",
        _ => "exact",
    };
    format!(
        "{k} {}@{}",
        kib(u64::from(b.pages)),
        kib(u64::from(b.start))
    )
}

/// The splits or merges between two maps of a slot, in words.
pub fn explain(before: &[RkmemBlock], after: &[RkmemBlock]) -> Vec<String> {
    let b: BTreeSet<(u32, u32, u32)> = before.iter().map(|x| (x.start, x.pages, x.kind)).collect();
    let a: BTreeSet<(u32, u32, u32)> = after.iter().map(|x| (x.start, x.pages, x.kind)).collect();
    let blk = |&(start, pages, kind): &(u32, u32, u32)| RkmemBlock {
        start,
        pages,
        kind,
        reserved: 0,
    };
    let gone: Vec<RkmemBlock> = b.difference(&a).map(blk).collect();
    let new: Vec<RkmemBlock> = a.difference(&b).map(blk).collect();
    let mut out = Vec::new();
    let free_gone: Vec<&RkmemBlock> = gone.iter().filter(|x| x.kind == RKMEM_BLOCK_FREE).collect();
    let used_new: Vec<&RkmemBlock> = new.iter().filter(|x| x.kind != RKMEM_BLOCK_FREE).collect();
    let used_gone: Vec<&RkmemBlock> = gone.iter().filter(|x| x.kind != RKMEM_BLOCK_FREE).collect();
    let free_new: Vec<&RkmemBlock> = new.iter().filter(|x| x.kind == RKMEM_BLOCK_FREE).collect();
    if let ([src], [got]) = (free_gone.as_slice(), used_new.as_slice()) {
        let splits = (src.pages / got.pages).trailing_zeros();
        let halves: Vec<String> = free_new.iter().map(|x| block_name(x)).collect();
        if splits == 0 {
            out.push(format!("no split: {} fits, taken", block_name(src)));
        } else {
            out.push(format!(
                "split {} {splits} time{}: {} taken; free halves {}",
                block_name(src),
                if splits == 1 { "" } else { "s" },
                block_name(got),
                if halves.is_empty() {
                    "none".into()
                } else {
                    halves.join(", ")
                }
            ));
        }
    } else if let ([freed], [merged]) = (used_gone.as_slice(), free_new.as_slice()) {
        let merges = (merged.pages / freed.pages).trailing_zeros();
        let buddies: Vec<String> = free_gone.iter().map(|x| block_name(x)).collect();
        if merges == 0 {
            out.push(format!(
                "{} freed: its buddy is in use, no merge",
                block_name(freed)
            ));
        } else {
            out.push(format!(
                "{} freed, merged {merges} time{} with free buddies {} into {}",
                block_name(freed),
                if merges == 1 { "" } else { "s" },
                buddies.join(", "),
                block_name(merged)
            ));
        }
    } else {
        let g: Vec<String> = gone.iter().map(block_name).collect();
        let n: Vec<String> = new.iter().map(block_name).collect();
        out.push(format!(
            "blocks gone: {}; new: {}",
            g.join(", "),
            n.join(", ")
        ));
    }
    out
}

/// Why the arena is not as `insmod rkmem.ko arena_initial_mb=4` leaves it, if it is not.
pub fn not_pristine(maps: &[SlotMap]) -> Option<String> {
    let present: Vec<&SlotMap> = maps.iter().filter(|m| m.present).collect();
    let Some(first) = maps.first() else {
        return Some("the module reported no slot".into());
    };
    if !first.present {
        return Some("slot 0 is absent".into());
    }
    if present.len() != 1 {
        return Some(format!("{} slots are present, not 1", present.len()));
    }
    let whole = [RkmemBlock {
        start: 0,
        pages: first.slot_pages,
        kind: RKMEM_BLOCK_FREE,
        reserved: 0,
    }];
    if first.blocks != whole {
        return Some(format!(
            "slot 0 is not one free block but {} blocks",
            first.blocks.len()
        ));
    }
    None
}

fn slot0(d: &Device) -> Result<SlotMap, String> {
    d.arena_map(0)
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))
}

/// `rkmemctl lab buddy`.
pub fn buddy(fig: &mut Figures) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    if let Some(why) = not_pristine(&maps) {
        return Err(format!(
            "lab buddy needs the arena as the module leaves it at load (one wholly free 4 MiB \
             slot), but {why}: reload the module (rmmod rkmem; insmod rkmem.ko \
             arena_initial_mb=4) and run it again"
        ));
    }
    println!("== lab buddy: the buddy system, on rkmem's real arena");
    println!(
        "textbook: a 1024K region in 64K units; A requests 34K, B 66K, C 35K, D 67K; then C, A, B, D release.\n\
         rkmem: a request rounds up to whole 64K units and a power of two (34K -> 64K = order 4,\n\
         66K -> 128K = order 5), allocated with RKMEM_IOC_PAGES_ALLOC (orders >= 4 bypass the\n\
         per-CPU page caches). rkmem's region is a 4096K slot: the rows show its first 1024K,\n\
         the rest is listed beyond it. Owners come from RKMEM_IOC_HANDLE_INFO (page of each handle)."
    );
    let mut held: Vec<(&str, Alloc, u32)> = Vec::new();
    let mut before = maps[0].blocks.clone();
    let mut mismatches = 0;
    for (t, (step, want)) in TEXTBOOK_BUDDY.iter().enumerate() {
        let what = match *step {
            None => "start".to_string(),
            Some(BuddyStep::Request(name, k)) => {
                let order = request_order(k);
                let a = d
                    .pages_alloc(PagesReq::Order(order))
                    .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC order {order}: {e}"))?;
                let i = info(&d, &a, RKMEM_INFO_PAGES)?;
                if i.slot != 0 {
                    return Err(format!("{name} landed in slot {}, not slot 0", i.slot));
                }
                held.push((name, a, i.page));
                format!(
                    "{name} requests {k}K -> {} (order {order}), at {}",
                    kib(1 << order),
                    kib(u64::from(i.page))
                )
            }
            Some(BuddyStep::Release(name)) => {
                let pos = held
                    .iter()
                    .position(|(n, _, _)| *n == name)
                    .ok_or_else(|| format!("the script releases {name}, which it does not hold"))?;
                let (_, a, _) = held.remove(pos);
                d.free(a.handle)
                    .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
                format!("{name} releases")
            }
        };
        let m = slot0(&d)?;
        let owner = |page: u32| {
            held.iter()
                .find(|(_, _, p)| *p == page)
                .map(|(n, _, _)| (*n).to_string())
        };
        let got = region_row(&m.blocks, &owner);
        let ok = got == *want;
        let kib_of = |pages: u32| u64::from(pages) * PAGE_SIZE / 1024;
        let segs: Vec<_> = region_blocks(&m.blocks, &owner)
            .into_iter()
            .map(|(start, pages, name)| {
                serde_json::json!({"start_kib": kib_of(start), "kib": kib_of(pages), "owner": name})
            })
            .collect();
        fig.emit(
            "row",
            serde_json::json!({"t": t, "step": what, "textbook": want, "rkmem": got,
                "same": ok, "blocks": segs, "region_kib": kib_of(REGION_PAGES)}),
        )?;
        if !ok {
            mismatches += 1;
        }
        println!("\nt={t}  {what}");
        println!("  textbook: {want}");
        println!(
            "  rkmem:    {got}   {}",
            if ok { "(same)" } else { "DIFFERS" }
        );
        println!("            ({})", beyond_region(&m.blocks, m.slot_pages));
        if step.is_some() {
            for line in explain(&before, &m.blocks) {
                println!("  {line}");
            }
        }
        let bi = procfs::read(procfs::BUDDYINFO)?;
        for line in bi.lines() {
            println!("  buddyinfo: {line}");
        }
        before = m.blocks;
    }
    let rows = TEXTBOOK_BUDDY.len();
    if mismatches == 0 {
        println!("\nlab buddy: {rows} of {rows} rows match the textbook");
        Ok(())
    } else {
        Err(format!(
            "{mismatches} of {rows} rows differ from the textbook"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::blk;

    #[test]
    fn requests_round_to_units_and_powers_of_two() {
        assert_eq!(request_order(34), 4);
        assert_eq!(request_order(35), 4);
        assert_eq!(request_order(64), 4);
        assert_eq!(request_order(66), 5);
        assert_eq!(request_order(67), 5);
        assert_eq!(request_order(129), 6);
    }

    /// The textbook rows follow from the buddy rules: a model of the 1024K region in 64K units.
    #[test]
    fn textbook_rows_follow_the_buddy_rules() {
        // Blocks (start unit, units, owner) of the region.
        let mut blocks: Vec<(u32, u32, Option<&str>)> = vec![(0, 16, None)];
        let row = |b: &Vec<(u32, u32, Option<&str>)>| {
            b.iter()
                .map(|(_, u, o)| match o {
                    Some(n) => format!("{n}-{}K", u * 64),
                    None => format!("{}K", u * 64),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        };
        assert_eq!(row(&blocks), TEXTBOOK_BUDDY[0].1);
        for (step, want) in &TEXTBOOK_BUDDY[1..] {
            match step.unwrap() {
                BuddyStep::Request(name, k) => {
                    let units = 1u32 << (request_order(k) - 4);
                    // The smallest free block that fits, lowest address first; split it.
                    let i = (0..blocks.len())
                        .filter(|&i| blocks[i].2.is_none() && blocks[i].1 >= units)
                        .min_by_key(|&i| (blocks[i].1, blocks[i].0))
                        .unwrap();
                    while blocks[i].1 > units {
                        let (s, u, _) = blocks[i];
                        blocks[i] = (s, u / 2, None);
                        blocks.insert(i + 1, (s + u / 2, u / 2, None));
                    }
                    blocks[i].2 = Some(name);
                }
                BuddyStep::Release(name) => {
                    let mut i = blocks.iter().position(|b| b.2 == Some(name)).unwrap();
                    blocks[i].2 = None;
                    loop {
                        let (s, u, _) = blocks[i];
                        let buddy = s ^ u;
                        let Some(j) = blocks
                            .iter()
                            .position(|b| b.0 == buddy && b.1 == u && b.2.is_none())
                        else {
                            break;
                        };
                        let lo = i.min(j);
                        blocks[lo] = (s.min(buddy), 2 * u, None);
                        blocks.remove(lo + 1);
                        i = lo;
                    }
                }
            }
            assert_eq!(row(&blocks), *want);
        }
    }

    #[test]
    fn rows_are_drawn_from_the_first_megabyte() {
        let t1 = [
            blk(0, 16, RKMEM_BLOCK_USED),
            blk(16, 16, RKMEM_BLOCK_FREE),
            blk(32, 32, RKMEM_BLOCK_FREE),
            blk(64, 64, RKMEM_BLOCK_FREE),
            blk(128, 128, RKMEM_BLOCK_FREE),
            blk(256, 256, RKMEM_BLOCK_FREE),
            blk(512, 512, RKMEM_BLOCK_FREE),
        ];
        let owner = |p: u32| (p == 0).then(|| "A".to_string());
        assert_eq!(region_row(&t1, &owner), TEXTBOOK_BUDDY[1].1);
        assert_eq!(
            beyond_region(&t1, 1024),
            "+ 1024K | 2048K beyond the region"
        );
        let t0 = [blk(0, 1024, RKMEM_BLOCK_FREE)];
        assert_eq!(region_row(&t0, &owner), "1024K");
        assert!(beyond_region(&t0, 1024).contains("one free 4096K block"));
        let e = explain(&t0, &t1);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("split free 4096K@0K 6 times"), "{e:?}");
        let back = explain(&t1, &t0);
        assert!(back[0].contains("merged 6 times"), "{back:?}");
    }

    #[test]
    fn pristine_means_one_free_slot() {
        let m = SlotMap {
            slot: 0,
            slots: 4,
            present: true,
            slot_pages: 1024,
            pcp_pages: 0,
            blocks: vec![blk(0, 1024, RKMEM_BLOCK_FREE)],
        };
        assert_eq!(not_pristine(std::slice::from_ref(&m)), None);
        let mut two = m.clone();
        two.slot = 1;
        assert!(not_pristine(&[m.clone(), two]).is_some());
        let mut split = m;
        split.blocks = vec![
            blk(0, 512, RKMEM_BLOCK_USED),
            blk(512, 512, RKMEM_BLOCK_FREE),
        ];
        assert!(not_pristine(&[split]).is_some());
    }
}
