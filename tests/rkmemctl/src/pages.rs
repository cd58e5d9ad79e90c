// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl pages`: allocations from the buddy allocator by hand (`alloc`, `hold`) and a
//! scripted tour of splitting and coalescing (`demo`).
//!
//! Handles belong to the open file: everything a `rkmemctl` process allocates is freed when it
//! exits, which is why `hold` sleeps and `demo` runs its whole script on one file.

use crate::dev::{Alloc, Device, PagesReq, SlotMap, PAGE_SIZE};
use crate::map;
use crate::pattern;
use crate::procfs;
use crate::uapi::{RKMEM_BLOCK_FREE, RKMEM_TRIM_PCP};
use std::io::Write;
use std::time::Duration;

fn alloc_n(d: &Device, req: PagesReq, count: u32) -> Result<Vec<Alloc>, String> {
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let a = d
            .pages_alloc(req)
            .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC {req} (#{}): {e}", i + 1))?;
        out.push(a);
    }
    Ok(out)
}

/// `rkmemctl pages alloc`: allocates, prints the handles (and the map), and exits, which frees
/// them.
pub fn alloc(req: PagesReq, count: u32, show_map: bool) -> Result<(), String> {
    let d = Device::open_cmd()?;
    for a in alloc_n(&d, req, count)? {
        println!(
            "handle {:#018x}: {req}, {} bytes ({})",
            a.handle,
            a.bytes,
            map::size(a.bytes / PAGE_SIZE)
        );
    }
    if show_map {
        let maps = d
            .arena_maps()
            .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
        print!("{}", map::render(&maps, true));
    }
    println!("(handles belong to this open file: they are freed when rkmemctl exits)");
    Ok(())
}

/// `rkmemctl pages hold`: allocates `count` blocks, fills them with a pattern, prints
/// `holding ...` and sleeps; after `seconds` (if given) it checks the pattern and frees them.
/// Killing it frees everything through the release of its file.
pub fn hold(req: PagesReq, count: u32, seconds: Option<u64>) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let allocs = alloc_n(&d, req, count)?;
    let seed = u64::from(std::process::id());
    let mut buf = Vec::new();
    for a in &allocs {
        buf.resize(a.bytes as usize, 0);
        pattern::fill(pattern::key(a.handle, seed), 0, &mut buf);
        d.write(a.handle, 0, &buf)
            .map_err(|e| format!("RKMEM_IOC_WRITE {:#x}: {e}", a.handle))?;
    }
    let pages: u64 = allocs.iter().map(|a| a.bytes / PAGE_SIZE).sum();
    println!(
        "holding {count} allocations ({req}), {pages} pages, pid {}",
        std::process::id()
    );
    let _ = std::io::stdout().flush();
    let Some(secs) = seconds else {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    };
    std::thread::sleep(Duration::from_secs(secs));
    for a in &allocs {
        buf.resize(a.bytes as usize, 0);
        d.read(a.handle, 0, &mut buf)
            .map_err(|e| format!("RKMEM_IOC_READ {:#x}: {e}", a.handle))?;
        if let Some((at, want, got)) =
            pattern::first_mismatch(pattern::key(a.handle, seed), 0, &buf)
        {
            return Err(format!(
                "{:#x}: byte {at} is {got:#04x}, {want:#04x} was written",
                a.handle
            ));
        }
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
    }
    println!("released {count} allocations, contents intact");
    Ok(())
}

/// One step of the demo.
enum Step {
    Alloc(&'static str, PagesReq),
    Free(&'static str),
}

const DEMO: &[Step] = &[
    Step::Alloc("A", PagesReq::Order(0)),
    Step::Alloc("B", PagesReq::Order(2)),
    Step::Alloc("C", PagesReq::Order(1)),
    Step::Alloc("D", PagesReq::Exact(3)),
    Step::Alloc("E", PagesReq::Order(6)),
    Step::Free("A"),
    Step::Free("C"),
    Step::Free("B"),
    Step::Free("D"),
    Step::Free("E"),
];

/// Prints the slots that hold allocations (or the first slot if none do), the buddyinfo line.
fn show(d: &Device) -> Result<(), String> {
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    let busy = |m: &SlotMap| m.present && m.blocks.iter().any(|b| b.kind != RKMEM_BLOCK_FREE);
    let mut shown = 0;
    for m in maps.iter().filter(|m| busy(m)) {
        print!("{}", map::render_slot(m));
        shown += 1;
    }
    if shown == 0 {
        if let Some(m) = maps.iter().find(|m| m.present) {
            print!("{}", map::render_slot(m));
            shown = 1;
        }
    }
    let present = maps.iter().filter(|m| m.present).count();
    if present > shown {
        println!("        (+{} wholly free slots)", present - shown);
    }
    println!(
        "        {}",
        map::pcp_note(maps.first().map_or(0, |m| m.pcp_pages))
    );
    let buddy = procfs::read(procfs::BUDDYINFO)?;
    print!("buddyinfo: {buddy}");
    Ok(())
}

fn drain(d: &Device) -> Result<u64, String> {
    let t = d
        .trim(RKMEM_TRIM_PCP)
        .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
    Ok(t.pcp_pages)
}

/// `rkmemctl pages demo`: a scripted run on one file that shows blocks being split on the way
/// down and coalesced with their buddies on the way back.
pub fn demo() -> Result<(), String> {
    let d = Device::open_cmd()?;
    println!("{}", map::legend(1024));
    println!("\n-- the arena at rest: every 4 MiB slot is one free order-10 block");
    show(&d)?;
    let mut held: Vec<(&str, Alloc)> = Vec::new();
    for (i, step) in DEMO.iter().enumerate() {
        match *step {
            Step::Alloc(name, req) => {
                let a = d
                    .pages_alloc(req)
                    .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC {req}: {e}"))?;
                println!(
                    "\n-- step {}: allocate {name} = {req} ({}): handle {:#x}",
                    i + 1,
                    map::size(a.bytes / PAGE_SIZE),
                    a.handle
                );
                held.push((name, a));
            }
            Step::Free(name) => {
                let pos = held
                    .iter()
                    .position(|(n, _)| *n == name)
                    .ok_or_else(|| format!("demo script frees {name}, which it does not hold"))?;
                let (_, a) = held.remove(pos);
                d.free(a.handle)
                    .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
                println!(
                    "\n-- step {}: free {name} ({}): it merges with its buddy while the buddy is free",
                    i + 1,
                    map::size(a.bytes / PAGE_SIZE)
                );
            }
        }
        if i == 0 {
            println!("   before draining the per-CPU caches (orders 0-3 refill in batches):");
            show(&d)?;
            let n = drain(&d)?;
            println!("   after RKMEM_IOC_TRIM(PCP) gave {n} cached pages back to the buddy lists:");
        } else {
            // Small blocks pass through the per-CPU caches; drain them so that the map shows
            // the buddy allocator alone.
            drain(&d)?;
        }
        show(&d)?;
    }
    println!("\n-- all freed: the slot coalesced back into one order-10 block");
    Ok(())
}
