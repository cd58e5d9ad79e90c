// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl compact`: compaction through handles, on request or as a demonstration.

use crate::dev::{CacheSpec, Device, PagesReq};
use crate::{map, pattern, uapi};

/// `RKMEM_IOC_COMPACT` with `flags`, its answer printed.
pub fn run(slabs: bool, arena: bool) -> Result<(), String> {
    let mut flags = 0;
    if slabs || !arena {
        flags |= uapi::RKMEM_COMPACT_SLABS;
    }
    if arena || !slabs {
        flags |= uapi::RKMEM_COMPACT_ARENA;
    }
    let d = Device::open_cmd()?;
    let r = d
        .compact(flags)
        .map_err(|e| format!("RKMEM_IOC_COMPACT: {e}"))?;
    print!("{}", answer(&r));
    Ok(())
}

/// The answer of one compaction, one line per part.
fn answer(r: &uapi::RkmemCompact) -> String {
    let mut s = String::new();
    if r.flags & uapi::RKMEM_COMPACT_SLABS != 0 {
        s += &format!(
            "slabs: {} caches, {} objects moved, {} slabs ({} pages) freed, {} slabs pinned\n",
            r.caches, r.objects_moved, r.slabs_freed, r.pages_freed, r.pinned_skips
        );
    }
    if r.flags & uapi::RKMEM_COMPACT_ARENA != 0 {
        s += &format!(
            "arena: {} pages moved, {} slots emptied ({} pages to the kernel), {} slots pinned, {} given up\n",
            r.pages_moved, r.blocks_freed, r.host_pages, r.pinned_slots, r.blocks_failed
        );
    }
    s
}

fn show(d: &Device, cache: &str) -> Result<(), String> {
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    print!("{}", map::render(&maps, false));
    let occ = std::fs::read_to_string("/proc/rkmem/occupancy")
        .map_err(|e| format!("/proc/rkmem/occupancy: {e}"))?;
    let mut lines = occ.lines();
    if let Some(h) = lines.next() {
        println!("{h}");
    }
    for l in lines.filter(|l| l.split_whitespace().next() == Some(cache)) {
        println!("{l}");
    }
    let ext = crate::procfs::extfrag()?;
    println!(
        "MemFree {} KiB; unusable free space index at order 10: {}",
        crate::compacttest::mem_free_kib().unwrap_or(0),
        ext.unusable
            .last()
            .map_or("?".into(), |u| format!("{:.3}", f64::from(*u) / 1000.0))
    );
    Ok(())
}

/// Fragments the arena (pages of every kind and objects of a cache, then a random 90% freed),
/// shows the map, the cache's occupancy and MemFree, compacts slabs and arena, shows them
/// again, and checks that every surviving allocation kept its bytes.
/// Proactive compaction held off while it lives (`/proc/rkmem/compaction_proactiveness` 0, the
/// value before restored on drop): the demo shows what its own request does, and on a slow
/// kernel the background compaction would otherwise empty the slots during the frees.
pub(crate) struct NoProactive(Option<String>);

const PROACTIVENESS: &str = "/proc/rkmem/compaction_proactiveness";

impl NoProactive {
    pub(crate) fn new() -> Self {
        let old = std::fs::read_to_string(PROACTIVENESS).ok();
        match std::fs::write(PROACTIVENESS, "0") {
            Ok(()) => NoProactive(old),
            Err(e) => {
                println!("(proactive compaction stays on: {PROACTIVENESS}: {e})");
                NoProactive(None)
            }
        }
    }
}

impl Drop for NoProactive {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write(PROACTIVENESS, old.trim());
        }
    }
}

pub fn demo() -> Result<(), String> {
    let d = Device::open_cmd()?;
    let _quiet = NoProactive::new();
    let _ = d.trim(uapi::RKMEM_TRIM_SLABS | uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA);
    let name = "demo_compact";
    let c = d
        .cache_create(&CacheSpec::new(name, 256, 8)?)
        .map_err(|e| format!("cache create: {e}"))?;
    let mut all = Vec::new();
    for i in 0..1800u32 {
        let a = match i % 3 {
            0 => d.pages_alloc(PagesReq::Order(i % 4)),
            1 => d.pages_alloc(PagesReq::Exact(3)),
            _ => d.obj_alloc(c.id),
        }
        .map_err(|e| format!("allocation {i}: {e}"))?;
        let key = pattern::key(a.handle, 0xde);
        let mut buf = vec![0u8; a.bytes as usize];
        pattern::fill(key, 0, &mut buf);
        d.write(a.handle, 0, &buf)
            .map_err(|e| format!("write: {e}"))?;
        all.push((a, key));
    }
    let mut rng = pattern::Rng::new(0xde);
    let mut kept = Vec::new();
    for (a, key) in all {
        if rng.below(10) == 0 {
            kept.push((a, key));
        } else {
            d.free(a.handle).map_err(|e| format!("free: {e}"))?;
        }
    }
    println!(
        "{} allocations (pages, exact pages, {name} objects) made, a random 90% freed: {} kept",
        1800,
        kept.len()
    );
    println!("\nbefore compaction:");
    show(&d, name)?;
    let r = d
        .compact(uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA)
        .map_err(|e| format!("RKMEM_IOC_COMPACT: {e}"))?;
    println!("\ncompaction (RKMEM_IOC_COMPACT, slabs and arena):");
    print!("{}", answer(&r));
    println!("\nafter compaction:");
    show(&d, name)?;
    let mut bad = 0;
    for (a, key) in &kept {
        let mut buf = vec![0u8; a.bytes as usize];
        d.read(a.handle, 0, &mut buf)
            .map_err(|e| format!("read: {e}"))?;
        if pattern::first_mismatch(*key, 0, &buf).is_some() {
            bad += 1;
        }
        d.free(a.handle).map_err(|e| format!("free: {e}"))?;
    }
    d.cache_destroy(c.id)
        .map_err(|e| format!("cache destroy: {e}"))?;
    println!(
        "\nevery one of the {} allocations read back as written: {}",
        kept.len(),
        if bad == 0 { "yes" } else { "NO" }
    );
    if bad != 0 {
        return Err(format!("{bad} allocations changed under compaction"));
    }
    Ok(())
}
