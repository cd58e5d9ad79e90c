// SPDX-License-Identifier: GPL-2.0

//! Chapter 6: fragmentation and defragmentation.
//!
//! The textbook's external fragmentation: after many allocations and frees most memory is free,
//! yet in blocks too small for a larger request, which then fails (or, for rkmem, needs a new
//! 4 MiB block from the host). The two indices of mm/vmstat.c measure it from the free blocks
//! per order: the *unusable free space index* of order j is the share of the free pages in
//! blocks smaller than 2^j pages; the *fragmentation index* of a request that would fail tends
//! to 1 when it fails for fragmentation and to 0 when for lack of memory. Compaction moves
//! allocations so that free pages gather into large blocks; rkmem does it behind its handles
//! (an allocation's owner keeps its handle while its pages move), which C allocators handing
//! out raw pointers cannot do. The chapter computes both indices from `/proc/rkmem/buddyinfo`
//! with the textbook's formulas and compares them with the kernel's `/proc/rkmem/extfrag`,
//! before and after `RKMEM_IOC_COMPACT`, and checks the bytes of every allocation it moved.

use super::Figures;
use crate::dev::{Alloc, Device, PagesReq};
use crate::procfs::{self, Extfrag, NR_ORDERS};
use crate::{map, pattern, uapi};

/// Order of the workload's blocks: 16 KiB.
const ORDER: u32 = 2;
/// One block in this many is kept, the rest freed: with 4, between two kept 16K blocks three
/// free ones merge into at most a 32K block (no aligned 64K run is ever wholly free).
const KEEP_ONE_IN: usize = 4;
/// Free blocks of this order and above left by the workload (the last slot's free tail) are
/// held too, so that the fragmented arena has no free block this large.
const PLUG_ORDER: i64 = 4;
/// Slots the chapter wants at load (`arena_initial_mb=16`): emptied slots stay in the arena
/// (the minimum is never given back), so the free pages gather there as whole blocks.
const SLOTS: usize = 4;

/// The textbook's unusable free space index of `order` from the free blocks per order: the
/// share of the free pages in blocks smaller than the request (1 when nothing is free).
pub fn unusable(nr_free: &[u64], order: usize) -> f64 {
    let free: u64 = nr_free.iter().enumerate().map(|(k, n)| n << k).sum();
    if free == 0 {
        return 1.0;
    }
    let usable: u64 = nr_free
        .iter()
        .enumerate()
        .skip(order)
        .map(|(k, n)| n << k)
        .sum();
    (free - usable) as f64 / free as f64
}

/// The textbook's fragmentation index of `order` (Mel Gorman's): -1 if a request of that order
/// would succeed, 0 if nothing is free, else `1 - (1 + free / 2^order) / free_blocks`.
pub fn fragindex(nr_free: &[u64], order: usize) -> f64 {
    let blocks: u64 = nr_free.iter().sum();
    if blocks == 0 {
        return 0.0;
    }
    if nr_free.iter().skip(order).any(|n| *n > 0) {
        return -1.0;
    }
    let free: u64 = nr_free.iter().enumerate().map(|(k, n)| n << k).sum();
    1.0 - (1.0 + free as f64 / (1u64 << order) as f64) / blocks as f64
}

/// The orders at which the kernel's thousandths differ from the textbook's value by more than
/// the kernel's integer rounding (one thousandth, two where it rounds twice).
pub fn index_mismatches(nr_free: &[u64], kernel: &Extfrag) -> Vec<String> {
    let mut bad = Vec::new();
    for o in 0..NR_ORDERS {
        let u = unusable(nr_free, o) * 1000.0;
        let f = fragindex(nr_free, o) * 1000.0;
        let (ku, kf) = (f64::from(kernel.unusable[o]), f64::from(kernel.extfrag[o]));
        if (u - ku).abs() > 1.0 {
            bad.push(format!("unusable[{o}]: textbook {u:.1}, kernel {ku}"));
        }
        if (f - kf).abs() > 2.0 {
            bad.push(format!("extfrag[{o}]: textbook {f:.1}, kernel {kf}"));
        }
    }
    bad
}

/// One state of the arena: its map, the free blocks per order and both indices.
struct State {
    maps: Vec<crate::dev::SlotMap>,
    nr_free: Vec<u64>,
    ext: Extfrag,
}

fn state(d: &Device) -> Result<State, String> {
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    let nr_free = procfs::buddyinfo()?.to_vec();
    let ext = procfs::extfrag()?;
    Ok(State { maps, nr_free, ext })
}

fn thousandths(v: &[i32]) -> String {
    v.iter()
        .map(|x| format!("{:7.3}", f64::from(*x) / 1000.0))
        .collect::<Vec<_>>()
        .join("")
}

fn textbook_row(nr_free: &[u64], f: fn(&[u64], usize) -> f64) -> String {
    (0..NR_ORDERS)
        .map(|o| format!("{:7.3}", f(nr_free, o)))
        .collect::<Vec<_>>()
        .join("")
}

/// Prints a state; returns whether the kernel's indices are the textbook's.
fn show(label: &str, s: &State, fig: &mut Figures) -> Result<bool, String> {
    println!("\n-- {label}");
    print!("{}", map::render(&s.maps, false));
    println!(
        "free pages {} of {} ({}%), largest free block order {}",
        s.ext.free_pages,
        s.ext.arena_pages,
        s.ext.free_pages * 100 / s.ext.arena_pages.max(1),
        s.ext.largest_free_order
    );
    println!(
        "order              {}",
        (0..NR_ORDERS)
            .map(|o| format!("{o:>7}"))
            .collect::<String>()
    );
    println!(
        "free blocks        {}",
        s.nr_free
            .iter()
            .map(|n| format!("{n:>7}"))
            .collect::<String>()
    );
    println!("unusable textbook  {}", textbook_row(&s.nr_free, unusable));
    println!("unusable kernel    {}", thousandths(&s.ext.unusable));
    println!("extfrag  textbook  {}", textbook_row(&s.nr_free, fragindex));
    println!("extfrag  kernel    {}", thousandths(&s.ext.extfrag));
    let bad = index_mismatches(&s.nr_free, &s.ext);
    if bad.is_empty() {
        println!(
            "(same: /proc/rkmem/extfrag is the textbook's formulas over /proc/rkmem/buddyinfo)"
        );
    } else {
        println!("DIFFERS: {}", bad.join("; "));
    }
    let slots: Vec<_> = s
        .maps
        .iter()
        .filter(|m| m.present)
        .map(|m| {
            let blocks: Vec<_> = m
                .blocks
                .iter()
                .map(|b| serde_json::json!([b.start, b.pages, b.kind]))
                .collect();
            serde_json::json!({"slot": m.slot, "pages": m.slot_pages, "blocks": blocks})
        })
        .collect();
    fig.emit(
        "state",
        serde_json::json!({"label": label, "slots": slots, "nr_free": s.nr_free,
            "unusable": s.ext.unusable, "extfrag": s.ext.extfrag,
            "free_pages": s.ext.free_pages, "arena_pages": s.ext.arena_pages,
            "largest_free_order": s.ext.largest_free_order, "same": bad.is_empty(),
            "block_kinds": {"free": uapi::RKMEM_BLOCK_FREE, "used": uapi::RKMEM_BLOCK_USED,
                "exact": uapi::RKMEM_BLOCK_EXACT}}),
    )?;
    Ok(bad.is_empty())
}

/// Allocates one block of `order` and says whether the arena had to grow for it (then frees it
/// and gives the new slot back).
fn probe(d: &Device, order: u32) -> Result<bool, String> {
    let g0 = procfs::stat("arena_grows")?;
    let a = d
        .pages_alloc(PagesReq::Order(order))
        .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC order {order}: {e}"))?;
    let grew = procfs::stat("arena_grows")? > g0;
    d.free(a.handle)
        .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
    d.trim(uapi::RKMEM_TRIM_ARENA)
        .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
    Ok(grew)
}

/// `rkmemctl lab fragmentation`.
pub fn fragmentation(fig: &mut Figures) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let _quiet = crate::compact::NoProactive::new();
    d.trim(uapi::RKMEM_TRIM_SLABS | uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA)
        .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    let present: Vec<_> = maps.iter().filter(|m| m.present).collect();
    let wholly_free = present.iter().all(|m| {
        m.blocks.len() == 1
            && m.blocks[0].kind == uapi::RKMEM_BLOCK_FREE
            && m.blocks[0].pages == m.slot_pages
    });
    if present.len() != SLOTS || !wholly_free {
        return Err(format!(
            "lab fragmentation needs {SLOTS} wholly free slots as insmod leaves them with \
             arena_initial_mb={}, but the arena has {} present slot(s){}: reload the module \
             (rmmod rkmem; insmod rkmem.ko arena_initial_mb={}) and run it again",
            SLOTS * 4,
            present.len(),
            if wholly_free { "" } else { " in use" },
            SLOTS * 4
        ));
    }
    // One CPU: one per-CPU page cache, so the blocks come from the buddy lists in order.
    let _ = crate::workers::pin(crate::workers::allowed_cpus()[0]);
    println!("== lab fragmentation: external fragmentation, then compaction behind handles");
    let count = ((SLOTS * 1024) >> ORDER) - 64;
    println!(
        "workload: {count} blocks of {}K (order {ORDER}) in the {SLOTS} slots of 4 MiB that \
         insmod arena_initial_mb={} gave rkmem; one in {KEEP_ONE_IN} is kept (its bytes \
         written), the rest freed; the per-CPU page caches are emptied (every free page in the \
         buddy lists), and the free tail of the last slot is held too (blocks of order {PLUG_ORDER} \
         and up).",
        4 << ORDER,
        SLOTS * 4
    );
    let mut all: Vec<(Alloc, u64)> = Vec::with_capacity(count);
    for i in 0..count {
        let a = d
            .pages_alloc(PagesReq::Order(ORDER))
            .map_err(|e| format!("allocation {i}: {e}"))?;
        all.push((a, pattern::key(a.handle, 0x1ab)));
    }
    let mut kept = Vec::new();
    for (i, (a, key)) in all.into_iter().enumerate() {
        if i % KEEP_ONE_IN == 0 {
            kept.push((a, key));
        } else {
            d.free(a.handle)
                .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
        }
    }
    d.trim(uapi::RKMEM_TRIM_PCP)
        .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
    let mut plugs = 0;
    loop {
        let largest = procfs::extfrag()?.largest_free_order;
        if largest < PLUG_ORDER {
            break;
        }
        let order = largest as u32;
        let a = d
            .pages_alloc(PagesReq::Order(order))
            .map_err(|e| format!("holding a free order-{order} block: {e}"))?;
        kept.push((a, pattern::key(a.handle, 0x1ab)));
        plugs += 1;
        if plugs > 64 {
            return Err("more than 64 large free blocks left by the workload".into());
        }
    }
    for (a, key) in &kept {
        let mut buf = vec![0u8; a.bytes as usize];
        pattern::fill(*key, 0, &mut buf);
        d.write(a.handle, 0, &buf)
            .map_err(|e| format!("RKMEM_IOC_WRITE: {e}"))?;
    }
    println!(
        "{} blocks kept ({plugs} of them holding the free tail)",
        kept.len()
    );
    let mut checks = 0;
    let mut same = 0;

    let before = state(&d)?;
    checks += 1;
    same += u32::from(show("fragmented", &before, fig)?);
    let largest = before.ext.largest_free_order;
    let share = before.ext.free_pages * 100 / before.ext.arena_pages.max(1);
    let ask = u32::try_from(largest + 1).unwrap_or(0);
    // The textbook's picture: most memory free, no block for a modest request.
    let fragmented = share >= 60 && (0..PLUG_ORDER).contains(&largest);
    checks += 1;
    println!(
        "textbook: most memory free, no large block   rkmem: {share}% free, largest free order \
         {largest}   {}",
        if fragmented { "(same)" } else { "DIFFERS" }
    );
    same += u32::from(fragmented);
    let grew_before = probe(&d, ask)?;
    checks += 1;
    println!(
        "an order-{ask} request ({}K): {}   {}",
        4u64 << ask,
        if grew_before {
            "no free block is large enough: the arena took a new 4 MiB block from the host"
        } else {
            "served from the free blocks"
        },
        if grew_before {
            "(as the textbook says)"
        } else {
            "DIFFERS"
        }
    );
    same += u32::from(grew_before);

    let mem0 = crate::compacttest::mem_free_kib().unwrap_or(0);
    let (g0, r0) = (
        procfs::stat("arena_grows")?,
        procfs::stat("arena_blocks_released")?,
    );
    let r = d
        .compact(uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA)
        .map_err(|e| format!("RKMEM_IOC_COMPACT: {e}"))?;
    let mem1 = crate::compacttest::mem_free_kib().unwrap_or(0);
    let (g1, r1) = (
        procfs::stat("arena_grows")?,
        procfs::stat("arena_blocks_released")?,
    );
    println!(
        "\ncompaction (RKMEM_IOC_COMPACT): {} pages moved behind their handles, {} slots \
         emptied, {} pages given back to the host (the arena took {} new 4 MiB blocks and \
         gave back {}; it keeps its {SLOTS}-slot minimum; MemFree {:+} KiB)",
        r.pages_moved,
        r.blocks_freed,
        r.host_pages,
        g1 - g0,
        r1 - r0,
        mem1 as i64 - mem0 as i64
    );
    fig.emit(
        "compaction",
        serde_json::json!({"pages_moved": r.pages_moved, "slots_emptied": r.blocks_freed,
            "host_pages": r.host_pages, "memfree_delta_kib": mem1 as i64 - mem0 as i64,
            "request_order": ask, "grew_before": grew_before}),
    )?;

    let after = state(&d)?;
    checks += 1;
    same += u32::from(show("compacted", &after, fig)?);
    let grew_after = probe(&d, ask)?;
    let better = !grew_after
        && after.ext.largest_free_order > largest
        && after.ext.unusable[ask as usize] < before.ext.unusable[ask as usize]
        && r.pages_moved > 0;
    checks += 1;
    println!(
        "textbook: free pages gathered into large blocks   rkmem: largest free order {largest} \
         -> {}, unusable index at order {ask} {:.3} -> {:.3}, the order-{ask} request {}   {}",
        after.ext.largest_free_order,
        f64::from(before.ext.unusable[ask as usize]) / 1000.0,
        f64::from(after.ext.unusable[ask as usize]) / 1000.0,
        if grew_after {
            "still needed a new block"
        } else {
            "served from the arena"
        },
        if better { "(same)" } else { "DIFFERS" }
    );
    same += u32::from(better);

    let mut bad = 0;
    for (a, key) in &kept {
        let mut buf = vec![0u8; a.bytes as usize];
        d.read(a.handle, 0, &mut buf)
            .map_err(|e| format!("RKMEM_IOC_READ: {e}"))?;
        if pattern::first_mismatch(*key, 0, &buf).is_some() {
            bad += 1;
        }
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
    }
    checks += 1;
    println!(
        "every one of the {} kept blocks read back as written after moving: {}",
        kept.len(),
        if bad == 0 { "yes" } else { "NO" }
    );
    same += u32::from(bad == 0);
    if same == checks {
        println!("\nlab fragmentation: {checks} of {checks} checks match the textbook");
        Ok(())
    } else {
        Err(format!(
            "{} of {checks} checks differ from the textbook",
            checks - same
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_of_the_textbook() {
        // 12 free pages: 2 order-0, 1 order-1, 2 order-2 blocks.
        let nr = [2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(unusable(&nr, 0), 0.0);
        assert!((unusable(&nr, 1) - 2.0 / 12.0).abs() < 1e-9);
        assert!((unusable(&nr, 3) - 1.0).abs() < 1e-9);
        assert_eq!(fragindex(&nr, 2), -1.0);
        // Order 3 fails: 1 - (1 + 12/8) / 5 = 0.5.
        assert!((fragindex(&nr, 3) - 0.5).abs() < 1e-9);
        assert_eq!(unusable(&[0; 11], 4), 1.0);
        assert_eq!(fragindex(&[0; 11], 4), 0.0);
    }

    #[test]
    fn the_kernel_values_match_within_rounding() {
        let nr = [2u64, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        let ext = Extfrag {
            arena_pages: 16,
            arena_mib: 0,
            free_pages: 12,
            largest_free_order: 2,
            unusable: vec![0, 166, 333, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
            extfrag: vec![-1000, -1000, -1000, 500, 650, 725, 763, 782, 791, 796, 798],
        };
        assert_eq!(index_mismatches(&nr, &ext), Vec::<String>::new());
        let mut wrong = ext.clone();
        wrong.unusable[1] = 200;
        assert_eq!(index_mismatches(&nr, &wrong).len(), 1);
    }
}
