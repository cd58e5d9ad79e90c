// SPDX-License-Identifier: GPL-2.0

//! Chapter 2: a bitmap allocator for a 117-byte struct.

use super::{info, Figures};
use crate::dev::{Alloc, CacheSpec, Device, PAGE_SIZE};
use crate::uapi::{RKMEM_CACHE_NOCPU, RKMEM_INFO_OBJECT};

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
pub fn bitmap(fig: &mut Figures) -> Result<(), String> {
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
    fig.emit(
        "layout",
        serde_json::json!({"size": FOO_SIZE, "objects": layout.objects, "page_bytes": PAGE_SIZE,
            "header_bytes": RKMEM_HEADER, "bitmap_bytes": layout.bitmap_bytes,
            "data_offset": layout.data_offset, "color_step": COLOR_STEP}),
    )?;
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
        let mut kernel_page_bits = None;
        if let Some(f) = held.iter().find(|f| f.page == page) {
            let i = info(&d, &f.alloc, RKMEM_INFO_OBJECT)?;
            let kb = kernel_bits(&i.bitmap, i.objects);
            kernel_page_bits = Some(kb.iter().map(|b| u8::from(*b)).collect::<Vec<_>>());
            let got = bits(&kb);
            let want = bits(&model.pages[page]);
            let verdict = if got == want {
                "(same)"
            } else {
                mismatches += 1;
                "DIFFERS"
            };
            println!("{:<24} {:>36}  {got} {verdict}", "", "rkmem's bitmap:");
        }
        let pages: Vec<_> = model
            .pages
            .iter()
            .enumerate()
            .map(|(p, bm)| {
                serde_json::json!({"bits": bm.iter().map(|b| u8::from(*b)).collect::<Vec<_>>(),
                    "color": layout.color(p as u32 + 1)})
            })
            .collect();
        fig.emit(
            "step",
            serde_json::json!({"step": steps, "label": label, "page": page + 1, "n": n,
                "offset": want.1, "rkmem_n": got.0, "rkmem_offset": got.1, "rkmem_page": kpage,
                "rkmem_bits": kernel_page_bits, "pages": pages}),
        )?;
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
