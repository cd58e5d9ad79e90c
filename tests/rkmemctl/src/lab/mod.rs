// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl lab`: textbook examples replayed on the real module, one chapter each, printing
//! the textbook's picture next to what the kernel did and failing if they differ.
//!
//! - `buddy`: the classic buddy-system table (a 1024 KiB region of 64 KiB units; A 34K, B 66K,
//!   C 35K, D 67K requested, then C, A, B, D released), drawn from the arena map.
//! - `bitmap`: the bitmap allocator of a 117-byte struct: one page, the header bitmap, 34
//!   objects, first-zero-bit allocation, frees, the page full, a second page.
//! - `slab`: slab cache states: slabs moving between the full, partial and empty lists as
//!   objects are allocated and freed, slabinfo after each step, what the shrinker takes back.
//! - `watermarks`: cleaning with two thresholds: nothing above low, the background worker
//!   between low and high, the allocating task below high, ENOMEM past the last resort and the
//!   host's OOM killer described.
//! - `routes`: kmalloc, vmalloc, kvmalloc (and rkmalloc): the same sizes through each, where
//!   each came from and the bytes it used; `alloc_pages_exact`'s saving over a power-of-two block.
//! - `fragmentation`: a workload that fragments the arena, the map and both fragmentation
//!   indices (textbook formulas vs the kernel's), compaction behind handles, the same again.
//!
//! With `--data FILE` each chapter also appends its pictures' data to FILE as JSON lines
//! (`{"chapter": .., "figure": .., "data": ..}`, see [`Figures`]), which
//! `scripts/lab_figures.py` draws as PNG on the host (the guest has no plotting library).

mod bitmap;
mod buddy;
mod fragmentation;
mod routes;
mod slab;
mod watermarks;

use crate::dev::{Alloc, Device};
use crate::uapi::RkmemHandleInfo;
use std::io::Write;
use std::path::Path;

/// The chapters, in the order `rkmemctl lab` runs them.
pub const CHAPTERS: &[&str] = &[
    "buddy",
    "bitmap",
    "slab",
    "watermarks",
    "routes",
    "fragmentation",
];

/// Where a chapter's figure data goes: JSON lines appended to a file, or nowhere.
pub struct Figures {
    chapter: &'static str,
    out: Option<std::fs::File>,
}

impl Figures {
    /// Figures of `chapter`, appended to `path` if given.
    pub fn new(chapter: &'static str, path: Option<&Path>) -> Result<Figures, String> {
        let out = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("--data {}: {e}", p.display()))?,
            ),
            None => None,
        };
        Ok(Figures { chapter, out })
    }

    /// One line: `{"chapter": .., "figure": figure, "data": data}`.
    pub fn emit(&mut self, figure: &str, data: serde_json::Value) -> Result<(), String> {
        let Some(f) = self.out.as_mut() else {
            return Ok(());
        };
        let line = serde_json::json!({"chapter": self.chapter, "figure": figure, "data": data});
        writeln!(f, "{line}").map_err(|e| format!("writing the figure data: {e}"))
    }
}

/// Runs one chapter, or all of them; `data`: the file of figure data (see [`Figures`]).
pub fn run(chapter: Option<&str>, data: Option<&Path>) -> Result<(), String> {
    let dev =
        crate::dev::Device::open().map_err(|e| format!("open {}: {e}", crate::dev::DEV_PATH))?;
    let v = dev.version().map_err(|e| format!("version: {e}"))?;
    drop(dev);
    if v.features & crate::uapi::RKMEM_FEAT_INSPECT == 0 {
        return Err("the module has no RKMEM_IOC_HANDLE_INFO (feature bit RKMEM_FEAT_INSPECT missing): load a newer rkmem.ko".into());
    }
    match chapter {
        Some("buddy") => buddy::buddy(&mut Figures::new("buddy", data)?),
        Some("bitmap") => bitmap::bitmap(&mut Figures::new("bitmap", data)?),
        Some("slab") => slab::slab(&mut Figures::new("slab", data)?),
        Some("watermarks") => watermarks::watermarks(&mut Figures::new("watermarks", data)?),
        Some("routes") => routes::routes(&mut Figures::new("routes", data)?),
        Some("fragmentation") => {
            fragmentation::fragmentation(&mut Figures::new("fragmentation", data)?)
        }
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
                if let Err(e) = run(Some(c), data) {
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

/// `RKMEM_IOC_HANDLE_INFO` of `a`, as the kind expected.
pub(crate) fn info(d: &Device, a: &Alloc, kind: u32) -> Result<RkmemHandleInfo, String> {
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
