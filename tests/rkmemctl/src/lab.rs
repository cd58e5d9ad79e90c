// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl lab`: textbook examples replayed on the real module, one chapter each, printing
//! the textbook's picture next to what the kernel did and failing if they differ.
//!
//! - `buddy`: the classic buddy-system table (a 1024 KiB region of 64 KiB units; A 34K, B 66K,
//!   C 35K, D 67K requested, then C, A, B, D released), drawn from the arena map.
//! - `bitmap`: the bitmap allocator of a 117-byte struct: one page, the header bitmap, 34
//!   objects, first-zero-bit allocation, frees, the page full, a second page.

use crate::dev::{Alloc, CacheSpec, Device, PagesReq, SlotMap, PAGE_SIZE};
use crate::procfs;
use crate::uapi::{
    RkmemBlock, RkmemHandleInfo, RKMEM_BLOCK_FREE, RKMEM_BLOCK_USED, RKMEM_CACHE_NOCPU,
    RKMEM_INFO_OBJECT, RKMEM_INFO_PAGES,
};
use std::collections::BTreeSet;

/// The chapters, in the order `rkmemctl lab` runs them.
pub const CHAPTERS: &[&str] = &["buddy", "bitmap"];

/// Runs one chapter, or all of them.
pub fn run(chapter: Option<&str>) -> Result<(), String> {
    let dev =
        crate::dev::Device::open().map_err(|e| format!("open {}: {e}", crate::dev::DEV_PATH))?;
    let v = dev.version().map_err(|e| format!("version: {e}"))?;
    drop(dev);
    if v.features & crate::uapi::RKMEM_FEAT_INSPECT == 0 {
        return Err("the module has no RKMEM_IOC_HANDLE_INFO (feature bit RKMEM_FEAT_INSPECT missing): load a newer rkmem.ko".into());
    }
    match chapter {
        Some("buddy") => buddy(),
        Some("bitmap") => bitmap(),
        Some(other) => Err(format!(
            "no chapter {other:?}; chapters: {}",
            CHAPTERS.join(", ")
        )),
        None => {
            let mut failed = Vec::new();
            for (i, c) in CHAPTERS.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if let Err(e) = run(Some(c)) {
                    eprintln!("rkmemctl lab {c}: {e}");
                    failed.push(*c);
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("chapters that failed: {}", failed.join(", ")))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chapter 1: the buddy system.

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

/// The textbook row of the first [`REGION_PAGES`] pages of a slot: its blocks in address order,
/// used ones named by `owner` (by first page), a free block reaching past the region cut at it.
pub fn region_row(blocks: &[RkmemBlock], owner: &dyn Fn(u32) -> Option<String>) -> String {
    let mut parts = Vec::new();
    for b in blocks.iter().filter(|b| b.start < REGION_PAGES) {
        let pages = u64::from(b.pages.min(REGION_PAGES - b.start));
        let size = kib(pages);
        if b.kind == RKMEM_BLOCK_FREE {
            parts.push(size);
        } else {
            let name = owner(b.start).unwrap_or_else(|| "?".into());
            parts.push(format!("{name}-{size}"));
        }
    }
    parts.join(" | ")
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

/// `RKMEM_IOC_HANDLE_INFO` of `a`, as the kind expected.
fn info(d: &Device, a: &Alloc, kind: u32) -> Result<RkmemHandleInfo, String> {
    let i = d
        .handle_info(a.handle)
        .map_err(|e| format!("RKMEM_IOC_HANDLE_INFO {:#x}: {e}", a.handle))?;
    if i.kind != kind {
        return Err(format!(
            "RKMEM_IOC_HANDLE_INFO {:#x}: kind {}, want {kind}",
            a.handle, i.kind
        ));
    }
    Ok(i)
}

/// `rkmemctl lab buddy`.
pub fn buddy() -> Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// Chapter 2: the bitmap allocator.

/// The textbook's struct.
pub const FOO_SIZE: u32 = 117;
/// rkmem's slab header in front of the bitmap (magic, in use, free hint, color, list links).
pub const RKMEM_HEADER: u32 = 32;
/// The cache line: the color step of a byte-aligned cache.
const COLOR_STEP: u32 = 64;

/// Objects per page by the textbook formula: `4096*8 / (size*8 + 1)`.
pub const fn textbook_objects(size: u32) -> u32 {
    (PAGE_SIZE as u32 * 8) / (size * 8 + 1)
}

/// The layout the textbook's formula gives in rkmem's slab: objects, bitmap bytes, the offset
/// of object 0 (header and bitmap), and the colors of successive slabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FooLayout {
    /// Objects per page.
    pub objects: u32,
    /// Bytes of the bitmap, `ceil(objects / 8)`.
    pub bitmap_bytes: u32,
    /// Bytes before object 0: rkmem's 32-byte header and the bitmap.
    pub data_offset: u32,
    /// Bytes left at the end of the page.
    pub leftover: u32,
    /// Colors the leftover allows (first object shifted by 0, 64, ...).
    pub colors: u32,
}

impl FooLayout {
    /// For objects of `size` bytes at alignment 1 in one page.
    pub fn new(size: u32) -> FooLayout {
        let objects = textbook_objects(size);
        let bitmap_bytes = objects.div_ceil(8);
        let data_offset = RKMEM_HEADER + bitmap_bytes;
        let leftover = PAGE_SIZE as u32 - data_offset - objects * size;
        FooLayout {
            objects,
            bitmap_bytes,
            data_offset,
            leftover,
            colors: leftover / COLOR_STEP + 1,
        }
    }

    /// The color of the cache's `seq`-th slab (1 for the first, as rkmem counts).
    pub fn color(&self, seq: u32) -> u32 {
        (seq % self.colors) * COLOR_STEP
    }

    /// The textbook's `start + header + N*size`, with rkmem's header and the slab's color.
    pub fn offset(&self, color: u32, n: u32) -> u32 {
        self.data_offset + color + n * FOO_SIZE
    }
}

/// A bitmap as `0`/`1` characters, object 0 first, a space every 8.
pub fn bits(bitmap: &[bool]) -> String {
    let mut s = String::new();
    for (i, b) in bitmap.iter().enumerate() {
        if i > 0 && i % 8 == 0 {
            s.push(' ');
        }
        s.push(if *b { '1' } else { '0' });
    }
    s
}

/// The first `n` bits of the kernel's bitmap words.
fn kernel_bits(words: &[u64], n: u32) -> Vec<bool> {
    (0..n as usize)
        .map(|i| words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1))
        .collect()
}

/// The textbook's pool: pages of bitmaps.
struct Model {
    layout: FooLayout,
    pages: Vec<Vec<bool>>,
}

impl Model {
    /// `alloc_foo()`: the first 0 bit of the first page with one, else a new page.
    fn alloc(&mut self) -> (usize, u32) {
        for (p, bm) in self.pages.iter_mut().enumerate() {
            if let Some(n) = bm.iter().position(|b| !b) {
                bm[n] = true;
                return (p, n as u32);
            }
        }
        let mut bm = vec![false; self.layout.objects as usize];
        bm[0] = true;
        self.pages.push(bm);
        (self.pages.len() - 1, 0)
    }
}

/// One object the chapter holds.
struct Foo {
    number: u32,
    alloc: Alloc,
    page: usize,
    n: u32,
}

/// `rkmemctl lab bitmap`.
pub fn bitmap() -> Result<(), String> {
    let d = Device::open_cmd()?;
    let layout = FooLayout::new(FOO_SIZE);
    println!("== lab bitmap: a bitmap allocator for a {FOO_SIZE}-byte struct foo");
    println!(
        "textbook: one page holds a header bitmap (1 bit per object) and the objects:\n\
         4096*8/({FOO_SIZE}*8+1) = {} objects, a bitmap of ceil({}/8) = {} bytes;\n\
         alloc_foo() finds the first 0 bit N and returns start + header + N*{FOO_SIZE}; free_foo() clears it.\n\
         rkmem: a cache of {FOO_SIZE}-byte objects, align 1, created with RKMEM_CACHE_NOCPU (no per-CPU\n\
         object arrays: every alloc and free goes to the bitmap). Its header is {RKMEM_HEADER} bytes of\n\
         bookkeeping + the {}-byte bitmap = {} bytes; the {} bytes left at the end of the page\n\
         give {} colors: each new slab shifts its objects by 0 or {COLOR_STEP} bytes in turn.\n\
         Offsets are inside the page (not kernel addresses), from RKMEM_IOC_HANDLE_INFO.",
        layout.objects,
        layout.objects,
        layout.bitmap_bytes,
        layout.bitmap_bytes,
        layout.data_offset,
        layout.leftover,
        layout.colors
    );
    let mut spec = CacheSpec::new("lab_foo", FOO_SIZE, 1)?.to_arg();
    spec.flags |= RKMEM_CACHE_NOCPU;
    d.cache_create_raw(&mut spec)
        .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE lab_foo: {e}"))?;
    if (spec.objects_per_slab, spec.pages_per_slab, spec.objsize) != (layout.objects, 1, FOO_SIZE) {
        return Err(format!(
            "this module's layout for a {FOO_SIZE}-byte struct differs from the textbook's: \
             {} objects in {} page(s) at a stride of {} bytes, not {} in one page at {FOO_SIZE} \
             (red zones: slab_debug=1 or a KASAN kernel); load the module without slab_debug on \
             the fast kernel",
            spec.objects_per_slab, spec.pages_per_slab, spec.objsize, layout.objects
        ));
    }
    println!(
        "cache: {} objects per slab, {} page(s), stride {}",
        spec.objects_per_slab, spec.pages_per_slab, spec.objsize
    );
    let mut mismatches = 0u32;
    let mut model = Model {
        layout,
        pages: Vec::new(),
    };
    let mut held: Vec<Foo> = Vec::new();
    // Kernel pages (slot, page) of the model's pages, in order.
    let mut kpages: Vec<(u32, u32)> = Vec::new();
    let mut number = 0u32;
    let mut steps = 0u32;

    // The script: 34 allocations (the page full), free #3 and #10, two allocations (the first
    // 0 bits again, the page full again), then one more: a second page.
    enum Op {
        Alloc,
        Free(u32),
    }
    let mut script: Vec<Op> = (0..layout.objects).map(|_| Op::Alloc).collect();
    script.extend([Op::Free(3), Op::Free(10), Op::Alloc, Op::Alloc, Op::Alloc]);
    println!(
        "\n{:<24} {:>8} {:>6} {:>8} {:>6} {:>4}  bitmap of the page (object 0 first)",
        "", "textbook", "", "rkmem", "", ""
    );
    println!(
        "{:<24} {:>8} {:>6} {:>8} {:>6} {:>4}",
        "step", "N", "offset", "N", "offset", "page"
    );
    for op in script {
        steps += 1;
        // The step, the model's page, N and offset, and the kernel's view of the object.
        let (label, page, n, i) = match op {
            Op::Alloc => {
                number += 1;
                let (page, n) = model.alloc();
                let a = d
                    .obj_alloc(spec.id)
                    .map_err(|e| format!("RKMEM_IOC_OBJ_ALLOC: {e}"))?;
                let i = info(&d, &a, RKMEM_INFO_OBJECT)?;
                if page == kpages.len() {
                    kpages.push((i.slot, i.page));
                }
                held.push(Foo {
                    number,
                    alloc: a,
                    page,
                    n,
                });
                if page > 0 && n == 0 {
                    println!(
                        "{:<24} {} live objects: page {page} is full, the pool grows by page {}",
                        "",
                        held.len(),
                        page + 1
                    );
                }
                (format!("alloc_foo() -> foo #{number}"), page, n, i)
            }
            Op::Free(num) => {
                let pos = held.iter().position(|f| f.number == num).ok_or_else(|| {
                    format!("the script frees foo #{num}, which it does not hold")
                })?;
                let f = held.remove(pos);
                let i = info(&d, &f.alloc, RKMEM_INFO_OBJECT)?;
                model.pages[f.page][f.n as usize] = false;
                d.free(f.alloc.handle)
                    .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", f.alloc.handle))?;
                (format!("free_foo(foo #{num})"), f.page, f.n, i)
            }
        };
        let color = layout.color(page as u32 + 1);
        let want = (n, layout.offset(color, n), page + 1);
        let kpage = kpages
            .iter()
            .position(|p| *p == (i.slot, i.page))
            .map_or(0, |p| p + 1);
        let got = (i.index, i.offset, kpage);
        let kp = if kpage == 0 {
            "?".to_string()
        } else {
            kpage.to_string()
        };
        println!(
            "{label:<24} {:>8} {:>6} {:>8} {:>6} {kp:>4}  {}",
            want.0,
            want.1,
            got.0,
            got.1,
            bits(&model.pages[page])
        );
        if got != want {
            mismatches += 1;
            println!("  DIFFERS: rkmem's N, offset and page are not the textbook's");
        }
        // The kernel's bitmap of that page, through any object held in it.
        if let Some(f) = held.iter().find(|f| f.page == page) {
            let i = info(&d, &f.alloc, RKMEM_INFO_OBJECT)?;
            let got = bits(&kernel_bits(&i.bitmap, i.objects));
            let want = bits(&model.pages[page]);
            let verdict = if got == want {
                "(same)"
            } else {
                mismatches += 1;
                "DIFFERS"
            };
            println!("{:<24} {:>36}  {got} {verdict}", "", "rkmem's bitmap:");
        }
    }
    println!("\npages at the end:");
    for (p, bm) in model.pages.iter().enumerate() {
        let used = bm.iter().filter(|b| **b).count();
        let (slot, page) = kpages.get(p).copied().unwrap_or_default();
        println!(
            "  page {}: {used} of {} objects used, color {}, rkmem slot {slot} page {page}",
            p + 1,
            layout.objects,
            layout.color(p as u32 + 1)
        );
    }
    for f in held.drain(..) {
        d.free(f.alloc.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", f.alloc.handle))?;
    }
    d.cache_destroy(spec.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))?;
    if mismatches == 0 {
        println!("lab bitmap: {steps} of {steps} steps match the textbook");
        Ok(())
    } else {
        Err(format!("{mismatches} checks differ from the textbook"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(start: u32, pages: u32, kind: u32) -> RkmemBlock {
        RkmemBlock {
            start,
            pages,
            kind,
            reserved: 0,
        }
    }

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

    #[test]
    fn the_117_byte_struct() {
        let l = FooLayout::new(117);
        assert_eq!(textbook_objects(117), 34);
        assert_eq!(l.bitmap_bytes, 5);
        assert_eq!(l.data_offset, 37);
        assert_eq!(l.leftover, 4096 - 37 - 34 * 117);
        assert_eq!(l.colors, 2);
        assert_eq!(l.offset(0, 33), 37 + 33 * 117);
        assert_eq!(l.color(1), 64);
        assert_eq!(l.color(2), 0);
        let mut m = Model {
            layout: l,
            pages: Vec::new(),
        };
        for n in 0..34 {
            assert_eq!(m.alloc(), (0, n));
        }
        m.pages[0][2] = false;
        assert_eq!(m.alloc(), (0, 2));
        assert_eq!(m.alloc(), (1, 0));
        assert_eq!(bits(&m.pages[1][..10]), "10000000 00");
    }
}
