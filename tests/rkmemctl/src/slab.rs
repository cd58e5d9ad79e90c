// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl cache` and `rkmemctl slab`: slab caches by hand (`cache create`, `cache hold`) and
//! the classic example of a cache for a 117-byte structure (`slab demo`).
//!
//! A cache belongs to the open file that created it: closing the file (also when the process
//! exits or is killed) frees its objects and destroys it, so `create` shows the cache and exits,
//! `hold` sleeps, and `demo` runs its whole script on one file.

use crate::dev::{self, Alloc, CacheInfo, CacheSpec, Device};
use crate::pattern;
use crate::procfs::{self, SlabRow};
use crate::uapi::RKMEM_TRIM_SLABS;
use std::io::Write;
use std::time::Duration;

/// Parses a number in decimal or, with `0x`, hexadecimal.
pub fn parse_number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

/// A `u32` argument (decimal or `0x` hexadecimal).
pub fn parse_u32(s: &str) -> Result<u32, String> {
    u32::try_from(parse_number(s)?).map_err(|_| format!("{s}: more than 32 bits"))
}

/// A byte argument (decimal or `0x` hexadecimal).
pub fn parse_u8(s: &str) -> Result<u8, String> {
    u8::try_from(parse_number(s)?).map_err(|_| format!("{s}: not a byte (0..=255)"))
}

fn create(d: &Device, spec: &CacheSpec) -> Result<CacheInfo, String> {
    d.cache_create(spec).map_err(|e| {
        format!(
            "RKMEM_IOC_CACHE_CREATE {} (size {}, align {}): {e}",
            dev::cache_name_str(&spec.name),
            spec.size,
            spec.align
        )
    })
}

/// The slabinfo row of cache `name`, if it has one.
fn slab_row(name: &str) -> Result<Option<SlabRow>, String> {
    Ok(procfs::slabinfo()?.into_iter().find(|r| r.name == name))
}

/// Prints the two slabinfo header lines and the rows of `names`.
fn print_rows(names: &[&str]) -> Result<(), String> {
    let rows = procfs::slabinfo()?;
    println!("{}", procfs::SLABINFO_VERSION_LINE);
    println!("{}", procfs::SLABINFO_COLUMNS_LINE);
    for r in rows.iter().filter(|r| names.contains(&r.name.as_str())) {
        print!("{}", procfs::format_slab_row(r));
    }
    Ok(())
}

fn describe(name: &str, spec: &CacheSpec, info: &CacheInfo) -> String {
    format!(
        "cache {name}: id {}, object size {}, align {}, stride (objsize) {}, {} objects per slab of {} page(s){}",
        info.id,
        spec.size,
        spec.align,
        info.objsize,
        info.objects_per_slab,
        info.pages_per_slab,
        spec.ctor
            .map_or(String::new(), |b| format!(", constructor fills {b:#04x}"))
    )
}

/// `rkmemctl cache create`: creates a cache, prints the module's answer and its slabinfo row,
/// and exits, which destroys it.
pub fn create_cmd(name: &str, size: u32, align: u32, ctor: Option<u8>) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let mut spec = CacheSpec::new(name, size, align)?;
    if let Some(b) = ctor {
        spec = spec.with_ctor(b);
    }
    let info = create(&d, &spec)?;
    println!("{}", describe(name, &spec, &info));
    print_rows(&[name])?;
    println!("(the cache belongs to this open file: it is destroyed when rkmemctl exits)");
    Ok(())
}

/// What `cache hold` allocates.
#[derive(Clone, Copy, Debug)]
pub struct HoldSpec {
    /// Objects from the cache.
    pub count: u32,
    /// Also this many rkmalloc allocations of `rkmalloc_size` bytes.
    pub rkmalloc_count: u32,
    /// Size of each rkmalloc allocation.
    pub rkmalloc_size: u64,
}

fn fill_all(d: &Device, allocs: &[Alloc], seed: u64) -> Result<(), String> {
    let mut buf = Vec::new();
    for a in allocs {
        buf.resize(a.bytes as usize, 0);
        pattern::fill(pattern::key(a.handle, seed), 0, &mut buf);
        d.write(a.handle, 0, &buf)
            .map_err(|e| format!("RKMEM_IOC_WRITE {:#x}: {e}", a.handle))?;
    }
    Ok(())
}

fn verify_all(d: &Device, allocs: &[Alloc], seed: u64) -> Result<(), String> {
    let mut buf = Vec::new();
    for a in allocs {
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
    }
    Ok(())
}

/// `rkmemctl cache hold`: creates a cache, allocates objects from it (and optionally with
/// rkmalloc), fills them with a pattern, prints `holding ...` and sleeps; after `seconds` (if
/// given) it checks the pattern, frees everything and destroys the cache. Killing it frees
/// everything through the release of its file.
pub fn hold(
    name: &str,
    size: u32,
    align: u32,
    ctor: Option<u8>,
    what: HoldSpec,
    seconds: Option<u64>,
) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let mut spec = CacheSpec::new(name, size, align)?;
    if let Some(b) = ctor {
        spec = spec.with_ctor(b);
    }
    let info = create(&d, &spec)?;
    let mut allocs = Vec::new();
    for i in 0..what.count {
        let a = d
            .obj_alloc(info.id)
            .map_err(|e| format!("RKMEM_IOC_OBJ_ALLOC {name} (#{}): {e}", i + 1))?;
        allocs.push(a);
    }
    for i in 0..what.rkmalloc_count {
        let a = d.rkmalloc(what.rkmalloc_size).map_err(|e| {
            format!(
                "RKMEM_IOC_OBJ_ALLOC rkmalloc {} bytes (#{}): {e}",
                what.rkmalloc_size,
                i + 1
            )
        })?;
        allocs.push(a);
    }
    let seed = u64::from(std::process::id());
    fill_all(&d, &allocs, seed)?;
    println!(
        "holding {} objects of cache {name} (id {}) and {} rkmalloc allocations of {} bytes, pid {}",
        what.count,
        info.id,
        what.rkmalloc_count,
        what.rkmalloc_size,
        std::process::id()
    );
    let _ = std::io::stdout().flush();
    let Some(secs) = seconds else {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    };
    std::thread::sleep(Duration::from_secs(secs));
    verify_all(&d, &allocs, seed)?;
    for a in &allocs {
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
    }
    d.cache_destroy(info.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY {name}: {e}"))?;
    println!(
        "released {} allocations, contents intact; cache {name} destroyed",
        allocs.len()
    );
    Ok(())
}

/// The demo's cache: a 117-byte structure, byte aligned.
const DEMO_CACHE: &str = "demo_struct_117";
/// Objects the demo allocates: more than one slab holds, and not a multiple of the per-CPU
/// cache's batch, so that slabinfo shows the objects the per-CPU cache keeps.
const DEMO_OBJECTS: usize = 40;

fn trim_slabs(d: &Device) -> Result<(), String> {
    d.trim(RKMEM_TRIM_SLABS)
        .map(|_| ())
        .map_err(|e| format!("RKMEM_IOC_TRIM(SLABS): {e}"))
}

/// `rkmemctl slab demo`: the classic slab example on one file. A cache for a 117-byte struct
/// with byte alignment, 40 objects written and verified, the cache's slabinfo row before and
/// after the per-CPU caches are drained, everything freed, the cache destroyed; then where
/// rkmalloc serves a few sizes.
pub fn demo() -> Result<(), String> {
    let d = Device::open_cmd()?;
    let spec = CacheSpec::new(DEMO_CACHE, 117, 1)?;
    println!("-- create a cache for a 117-byte struct, byte aligned (RKMEM_IOC_CACHE_CREATE)");
    let info = create(&d, &spec)?;
    println!("{}", describe(DEMO_CACHE, &spec, &info));
    println!(
        "   a slab is {} page(s): a header with the free bitmap, then {} objects of {} bytes",
        info.pages_per_slab, info.objects_per_slab, info.objsize
    );

    println!("\n-- allocate {DEMO_OBJECTS} objects (RKMEM_IOC_OBJ_ALLOC), write a pattern into each, read it back");
    let mut objs = Vec::with_capacity(DEMO_OBJECTS);
    for i in 0..DEMO_OBJECTS {
        let a = d
            .obj_alloc(info.id)
            .map_err(|e| format!("RKMEM_IOC_OBJ_ALLOC #{}: {e}", i + 1))?;
        if a.bytes != u64::from(spec.size) {
            return Err(format!(
                "object #{}: {} usable bytes, want {}",
                i + 1,
                a.bytes,
                spec.size
            ));
        }
        objs.push(a);
    }
    let seed = 0x117;
    fill_all(&d, &objs, seed)?;
    verify_all(&d, &objs, seed)?;
    println!(
        "   {DEMO_OBJECTS} objects of {} bytes: every pattern read back intact (no two objects overlap)",
        spec.size
    );
    println!("\n-- /proc/rkmem/slabinfo while they are held:");
    print_rows(&[DEMO_CACHE])?;
    if let Some(r) = slab_row(DEMO_CACHE)?.filter(|r| r.active_objs > DEMO_OBJECTS as u64) {
        println!(
            "   (active_objs is {} for {DEMO_OBJECTS} objects held: the {} objects the per-CPU cache keeps for the next",
            r.active_objs,
            r.active_objs - DEMO_OBJECTS as u64
        );
        println!("    allocations are taken from their slabs and count as in use, as in SLUB's slabinfo)");
    }
    trim_slabs(&d)?;
    println!("\n-- after RKMEM_IOC_TRIM(SLABS) put the per-CPU objects back into their slabs:");
    print_rows(&[DEMO_CACHE])?;

    println!("\n-- free them all (RKMEM_IOC_FREE) and trim: the empty slabs go back to the buddy allocator");
    for a in &objs {
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
    }
    trim_slabs(&d)?;
    print_rows(&[DEMO_CACHE])?;

    println!("\n-- destroy the cache (RKMEM_IOC_CACHE_DESTROY): its row leaves slabinfo");
    d.cache_destroy(info.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))?;
    if slab_row(DEMO_CACHE)?.is_some() {
        return Err(format!("{DEMO_CACHE} is still in slabinfo after destroy"));
    }
    println!("   {DEMO_CACHE}: gone");

    println!("\n-- rkmalloc (cache id 0): size classes up to 4 KiB, whole pages up to 4 MiB, vmalloc beyond");
    for size in [1u64, 100, 117, 3000, 5000, 5 << 20] {
        let a = d
            .rkmalloc(size)
            .map_err(|e| format!("rkmalloc {size}: {e}"))?;
        let from = match dev::rkmalloc_class_name(size) {
            Some(class) => class,
            None if size <= 4 << 20 => format!("{} page(s) of the buddy allocator", a.bytes / 4096),
            None => "vmalloc".to_string(),
        };
        println!(
            "   rkmalloc({size:>7}) -> {:>7} usable bytes from {from}",
            a.bytes
        );
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))?;
    }
    trim_slabs(&d)
}
