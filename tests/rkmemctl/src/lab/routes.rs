// SPDX-License-Identifier: GPL-2.0

//! Chapter 5: kmalloc, vmalloc, kvmalloc. The same sizes through each route (and rkmalloc's):
//! where each came from (a size class, whole pages, vmalloc) and the bytes it used, against the
//! textbook's rules computed here; then `alloc_pages_exact`'s saving over a power-of-two block.

use super::Figures;
use crate::dev::{Device, PAGE_SIZE};
use crate::uapi::{self, RkmemRoute, RkmemRoutes};
use rkmem_host_tests::rkcore::routes::{self as core_routes, Kind};

/// The sizes of the first table, in bytes.
pub const SIZES: [u64; 11] = [
    8,
    100,
    200,
    1000,
    3000,
    4096,
    5000,
    20000,
    100_000,
    1 << 20,
    8 << 20,
];

/// The page counts of the second table (`alloc_pages_exact` against a block of `2^order`).
pub const EXACT_PAGES: [u64; 5] = [3, 5, 9, 17, 100];

/// The textbook's kmalloc caches (SLUB on x86-64: `KMALLOC_MIN_SIZE` 8, powers of two with 96
/// and 192, up to `KMALLOC_MAX_CACHE_SIZE`, two pages).
pub const KMALLOC_CACHES: [u64; 13] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];
/// The textbook's `KMALLOC_MAX_CACHE_SIZE`: two pages (`KMALLOC_SHIFT_HIGH` = PAGE_SHIFT + 1).
pub const KMALLOC_MAX_CACHE_SIZE: u64 = 2 * PAGE_SIZE;
/// The textbook's `KMALLOC_MAX_SIZE`: a block of `MAX_PAGE_ORDER` (10) pages, 4 MiB.
pub const KMALLOC_MAX_SIZE: u64 = PAGE_SIZE << 10;

/// The routes of the first table, in its order.
pub const ROUTES: [&str; 4] = ["kmalloc", "vmalloc", "kvmalloc", "rkmalloc"];

/// What one route makes of a size: where from, exact pages or not, bytes held, guard bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Got {
    /// `RKMEM_ROUTE_*`.
    pub kind: u32,
    /// Whole pages, exactly as many as needed.
    pub exact: bool,
    /// Bytes held.
    pub bytes: u64,
    /// Unmapped guard bytes after it.
    pub guard: u64,
}

impl Got {
    const NONE: Got = Got {
        kind: uapi::RKMEM_ROUTE_NONE,
        exact: false,
        bytes: 0,
        guard: 0,
    };

    fn of(r: &RkmemRoute) -> Got {
        Got {
            kind: r.kind,
            exact: r.flags & uapi::RKMEM_ROUTE_EXACT != 0,
            bytes: r.bytes,
            guard: u64::from(r.guard),
        }
    }

    fn slab(bytes: u64) -> Got {
        Got {
            kind: uapi::RKMEM_ROUTE_SLAB,
            bytes,
            ..Got::NONE
        }
    }

    fn pages(bytes: u64, exact: bool) -> Got {
        Got {
            kind: uapi::RKMEM_ROUTE_PAGES,
            exact,
            bytes,
            ..Got::NONE
        }
    }

    fn vmalloc(bytes: u64) -> Got {
        Got {
            kind: uapi::RKMEM_ROUTE_VMALLOC,
            bytes,
            guard: PAGE_SIZE,
            ..Got::NONE
        }
    }

    /// `slab`, `pages`, `vmalloc`, `none`: the colour of the figure.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            uapi::RKMEM_ROUTE_SLAB => "slab",
            uapi::RKMEM_ROUTE_PAGES => "pages",
            uapi::RKMEM_ROUTE_VMALLOC => "vmalloc",
            _ => "none",
        }
    }

    /// Bytes held beyond `size`.
    pub fn wasted(&self, size: u64) -> u64 {
        self.bytes.saturating_sub(size)
    }

    /// Where it came from, as the table says it: `kmalloc-128`, `pages order 3`, `vmalloc 5
    /// pages + guard`, `arena 25 exact pages`.
    pub fn from(&self, route: &str) -> String {
        let pages = self.bytes / PAGE_SIZE;
        match self.kind {
            uapi::RKMEM_ROUTE_SLAB => {
                let prefix = if route == "rkmalloc" {
                    "rkmalloc"
                } else {
                    "kmalloc"
                };
                format!("{prefix}-{}", kname(self.bytes))
            }
            uapi::RKMEM_ROUTE_PAGES => {
                let owner = if route == "rkmalloc" {
                    "arena"
                } else {
                    "pages"
                };
                if self.exact {
                    format!("{owner} {pages} exact pages")
                } else if pages.is_power_of_two() {
                    let n = plural(pages, "page");
                    format!("{owner} order {} ({n})", pages.trailing_zeros())
                } else {
                    format!("{owner} {} B", self.bytes)
                }
            }
            uapi::RKMEM_ROUTE_VMALLOC => {
                let guard = if self.guard == PAGE_SIZE {
                    " + guard".to_string()
                } else if self.guard == 0 {
                    String::new()
                } else {
                    format!(" + {} B guard", self.guard)
                };
                format!("vmalloc {}{guard}", plural(pages, "page"))
            }
            uapi::RKMEM_ROUTE_NONE => "- (beyond its largest)".into(),
            k => format!("kind {k}?"),
        }
    }
}

/// `1 page`, `5 pages`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A cache size as kmalloc names it: `96`, `1k`, `8k`.
fn kname(bytes: u64) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}k", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

/// The textbook's `get_order(size)`.
fn get_order(size: u64) -> u32 {
    core_routes::get_order(size as usize)
}

/// The textbook's kmalloc: the smallest kmalloc-N cache up to `KMALLOC_MAX_CACHE_SIZE`, then a
/// block of `2^get_order(size)` pages from the page allocator up to `KMALLOC_MAX_SIZE`, then
/// nothing.
pub fn textbook_kmalloc(size: u64) -> Got {
    if size <= KMALLOC_MAX_CACHE_SIZE {
        match KMALLOC_CACHES.iter().find(|&&c| c >= size) {
            Some(&c) => Got::slab(c),
            None => Got::NONE,
        }
    } else if size <= KMALLOC_MAX_SIZE {
        Got::pages(PAGE_SIZE << get_order(size), false)
    } else {
        Got::NONE
    }
}

/// The textbook's vmalloc: the size in whole pages, one guard page after them.
pub fn textbook_vmalloc(size: u64) -> Got {
    Got::vmalloc(size.div_ceil(PAGE_SIZE) * PAGE_SIZE)
}

/// The textbook's kvmalloc: kmalloc if it can (physically contiguous memory is free in a
/// freshly booted guest), vmalloc otherwise.
pub fn textbook_kvmalloc(size: u64) -> Got {
    match textbook_kmalloc(size) {
        g if g.kind == uapi::RKMEM_ROUTE_NONE => textbook_vmalloc(size),
        g => g,
    }
}

/// rkmalloc by its own design: rkmem's size classes, blocks, exact pages, vmalloc
/// (`rkcore::routes::rkmalloc_used`, from rkmem's size-class table).
pub fn textbook_rkmalloc(size: u64) -> Got {
    match core_routes::rkmalloc_used(size as usize) {
        Ok(u) => match u.kind {
            Kind::Slab => Got::slab(u.bytes as u64),
            Kind::Pages => Got::pages(u.bytes as u64, u.exact),
            Kind::Vmalloc => Got::vmalloc(u.bytes as u64),
        },
        Err(_) => Got::NONE,
    }
}

/// The textbook's answer for `route`.
pub fn textbook(route: &str, size: u64) -> Got {
    match route {
        "kmalloc" => textbook_kmalloc(size),
        "vmalloc" => textbook_vmalloc(size),
        "kvmalloc" => textbook_kvmalloc(size),
        _ => textbook_rkmalloc(size),
    }
}

/// The kernel's answer for `route`.
fn kernel(route: &str, r: &RkmemRoutes) -> Got {
    Got::of(match route {
        "kmalloc" => &r.kmalloc,
        "vmalloc" => &r.vmalloc,
        "kvmalloc" => &r.kvmalloc,
        _ => &r.rkmalloc,
    })
}

/// `28 (21.9%)`: bytes wasted and their share of the bytes used.
fn waste(g: &Got, size: u64) -> String {
    if g.kind == uapi::RKMEM_ROUTE_NONE {
        return "-".into();
    }
    let w = g.wasted(size);
    format!("{w} ({:.1}%)", crate::slabtop::pct(w, g.bytes))
}

/// A size as people say it: `100000`, `1 MiB`, `8 MiB`.
fn size_label(size: u64) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else {
        size.to_string()
    }
}

/// `RKMEM_IOC_ROUTES` of `size`.
fn probe(d: &Device, size: u64) -> Result<RkmemRoutes, String> {
    d.routes(size)
        .map_err(|e| format!("RKMEM_IOC_ROUTES {size}: {e}"))
}

/// `rkmemctl lab routes`.
pub fn routes(fig: &mut Figures) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let v = d.version().map_err(|e| format!("version: {e}"))?;
    if v.features & uapi::RKMEM_FEAT_ROUTES == 0 {
        return Err("the module has no RKMEM_IOC_ROUTES (feature bit RKMEM_FEAT_ROUTES missing): load a newer rkmem.ko".into());
    }
    println!(
        "== lab routes: kmalloc, vmalloc, kvmalloc (and rkmalloc), the same sizes through each"
    );
    println!(
        "textbook:\n\
         \x20 kmalloc   a slab cache: the smallest of kmalloc-8, -16, -32, -64, -96, -128, -192, -256, ... -8k\n\
         \x20           (powers of two, and 96 and 192) up to KMALLOC_MAX_CACHE_SIZE = 2 pages; above, whole\n\
         \x20           pages: a block of 2^get_order(size), up to KMALLOC_MAX_SIZE = 2^MAX_PAGE_ORDER pages = 4 MiB\n\
         \x20 vmalloc   the size in whole pages, each found anywhere, mapped at contiguous virtual addresses,\n\
         \x20           and one guard page after them: address space never mapped, no memory\n\
         \x20 kvmalloc  kmalloc first (above a page without direct reclaim), vmalloc if kmalloc fails\n\
         \x20 rkmalloc  rkmem's classes (8 .. 4096, with 96 and 192), a block of 2^order pages up to 8 pages,\n\
         \x20           exact pages up to 4 MiB (alloc_pages_exact's way), vmalloc beyond\n\
         used: the bytes the allocation holds (ksize(), the block's pages, the pages vmalloc mapped);\n\
         wasted: used - asked, the internal fragmentation, as a share of used."
    );
    let first = probe(&d, 8)?;
    println!(
        "the kernel (RKMEM_IOC_ROUTES: each allocation made, measured from the kernel's records, freed):\n\
         \x20 KMALLOC_MAX_CACHE_SIZE {}, KMALLOC_MAX_SIZE {}, PAGE_SIZE {}",
        first.kmalloc_max_cache_size, first.kmalloc_max_size, first.page_size
    );
    fig.emit(
        "limits",
        serde_json::json!({"kmalloc_max_cache_size": first.kmalloc_max_cache_size,
            "kmalloc_max_size": first.kmalloc_max_size, "page_size": first.page_size}),
    )?;
    let mut rows = 0u32;
    let mut same_rows = 0u32;
    println!(
        "\n{:>7} {:<8}  {:<26} {:>7} {:>13}  | {:<26} {:>7} {:>13}",
        "size", "route", "textbook: from", "used", "wasted", "kernel: from", "used", "wasted"
    );
    for &size in &SIZES {
        let r = probe(&d, size)?;
        let mut recs = Vec::new();
        for (i, route) in ROUTES.iter().enumerate() {
            let want = textbook(route, size);
            let got = kernel(route, &r);
            let same = want == got;
            rows += 1;
            same_rows += u32::from(same);
            let label = if i == 0 {
                size_label(size)
            } else {
                String::new()
            };
            println!(
                "{label:>7} {route:<8}  {:<26} {:>7} {:>13}  | {:<26} {:>7} {:>13}  {}",
                want.from(route),
                want.bytes,
                waste(&want, size),
                got.from(route),
                got.bytes,
                waste(&got, size),
                if same { "(same)" } else { "DIFFERS" }
            );
            recs.push(serde_json::json!({"route": route, "kind": got.kind_name(),
                "exact": got.exact, "bytes": got.bytes, "guard": got.guard,
                "from": got.from(route), "textbook_kind": want.kind_name(),
                "textbook_bytes": want.bytes, "same": same}));
        }
        fig.emit(
            "size",
            serde_json::json!({"size": size, "label": size_label(size), "routes": recs}),
        )?;
    }

    println!(
        "\nalloc_pages_exact(size) against alloc_pages(get_order(size)): a block of 2^order pages holds\n\
         up to twice the pages asked; alloc_pages_exact takes the same block, splits it into single\n\
         pages and frees those past the size at once (free_pages_exact gives the kept ones back).\n\
         kernel: the pages of the compound block (compound_nr) and those alloc_pages_exact kept\n\
         (still referenced after the call)."
    );
    println!(
        "\n{:>6} {:>8} {:>6}  {:>14} {:>12} {:>14}   {:>14} {:>12}",
        "pages",
        "bytes",
        "order",
        "textbook block",
        "exact keeps",
        "saved",
        "kernel block",
        "exact keeps"
    );
    for &n in &EXACT_PAGES {
        let size = n * PAGE_SIZE;
        let order = get_order(size);
        let block = 1u64 << order;
        let r = probe(&d, size)?;
        let (kblock, kexact) = (r.order.bytes / PAGE_SIZE, r.exact.bytes / PAGE_SIZE);
        let kinds_ok = r.order.kind == uapi::RKMEM_ROUTE_PAGES
            && r.order.flags == 0
            && r.exact.kind == uapi::RKMEM_ROUTE_PAGES
            && r.exact.flags == uapi::RKMEM_ROUTE_EXACT;
        let same = kinds_ok && (kblock, kexact) == (block, n);
        rows += 1;
        same_rows += u32::from(same);
        println!(
            "{n:>6} {size:>8} {order:>6}  {block:>14} {n:>12} {:>14}   {kblock:>14} {kexact:>12}  {}",
            format!("{} ({:.1}%)", block - n, crate::slabtop::pct(block - n, block)),
            if same { "(same)" } else { "DIFFERS" }
        );
        fig.emit(
            "exact",
            serde_json::json!({"pages": n, "order": order, "block_pages": block,
                "exact_pages": n, "kernel_block_pages": kblock, "kernel_exact_pages": kexact,
                "same": same}),
        )?;
    }
    if same_rows == rows {
        println!("\nlab routes: {rows} of {rows} rows match the textbook");
        Ok(())
    } else {
        Err(format!(
            "{} of {rows} rows differ from the textbook",
            rows - same_rows
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textbook_routes() {
        let s = |b| Got::slab(b);
        assert_eq!(textbook_kmalloc(8), s(8));
        assert_eq!(textbook_kmalloc(100), s(128));
        assert_eq!(textbook_kmalloc(200), s(256));
        assert_eq!(textbook_kmalloc(65), s(96));
        assert_eq!(textbook_kmalloc(150), s(192));
        assert_eq!(textbook_kmalloc(1000), s(1024));
        assert_eq!(textbook_kmalloc(3000), s(4096));
        assert_eq!(textbook_kmalloc(5000), s(8192));
        assert_eq!(textbook_kmalloc(20000), Got::pages(32768, false));
        assert_eq!(textbook_kmalloc(100_000), Got::pages(131_072, false));
        assert_eq!(textbook_kmalloc(1 << 20), Got::pages(1 << 20, false));
        assert_eq!(textbook_kmalloc(4 << 20), Got::pages(4 << 20, false));
        assert_eq!(textbook_kmalloc(8 << 20), Got::NONE);
        assert_eq!(textbook_vmalloc(8), Got::vmalloc(4096));
        assert_eq!(textbook_vmalloc(5000), Got::vmalloc(8192));
        assert_eq!(textbook_vmalloc(5000).guard, 4096);
        assert_eq!(textbook_kvmalloc(100), s(128));
        assert_eq!(textbook_kvmalloc(8 << 20), Got::vmalloc(8 << 20));
        assert_eq!(textbook_rkmalloc(100), s(128));
        assert_eq!(textbook_rkmalloc(5000), Got::pages(8192, false));
        assert_eq!(textbook_rkmalloc(100_000), Got::pages(25 * 4096, true));
        assert_eq!(textbook_rkmalloc(8 << 20), Got::vmalloc(8 << 20));
    }

    #[test]
    fn labels() {
        assert_eq!(Got::slab(96).from("kmalloc"), "kmalloc-96");
        assert_eq!(Got::slab(8192).from("kmalloc"), "kmalloc-8k");
        assert_eq!(Got::slab(1024).from("rkmalloc"), "rkmalloc-1k");
        assert_eq!(
            Got::pages(32768, false).from("kmalloc"),
            "pages order 3 (8 pages)"
        );
        assert_eq!(
            Got::pages(25 * 4096, true).from("rkmalloc"),
            "arena 25 exact pages"
        );
        assert_eq!(
            Got::vmalloc(8192).from("vmalloc"),
            "vmalloc 2 pages + guard"
        );
        assert_eq!(Got::NONE.from("kmalloc"), "- (beyond its largest)");
        assert_eq!(waste(&Got::slab(128), 100), "28 (21.9%)");
        assert_eq!(waste(&Got::NONE, 100), "-");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(100_000), "100000");
    }

    #[test]
    fn exact_saves_the_block_tail() {
        for (n, block) in [(3, 4), (5, 8), (9, 16), (17, 32), (100, 128)] {
            assert_eq!(1u64 << get_order(n * PAGE_SIZE), block);
        }
    }
}
