// SPDX-License-Identifier: GPL-2.0

//! `RKMEM_IOC_ROUTES`: one size through the host kernel's kmalloc, vmalloc, kvmalloc,
//! `alloc_pages(get_order(size))` and `alloc_pages_exact`, and through rkmalloc; for each,
//! where the memory came from (a slab cache, whole pages, vmalloc) and how many bytes it held,
//! as the kernel records them. Read only: every allocation is measured and freed before the
//! next is made, so the call holds at most one at a time and nothing when it returns, also
//! when one fails (`ENOMEM`). The decisions are `rkcore::routes`'s, the host's allocations the
//! glue's (`glue/routes.c`). Not counted against the file's `file_max_mb`: nothing is kept.

use crate::classes::{self, RkAlloc};
use crate::rkcore::routes;
use crate::uapi::{self, RkmemRoute, RkmemRoutes};
use kernel::{error::to_result, prelude::*, uaccess::UserSlice};

/// A route's answer of `kind` holding `bytes` (with `guard` bytes of guard after it).
fn route(kind: u32, exact: bool, bytes: u64, guard: u32) -> RkmemRoute {
    RkmemRoute {
        kind,
        flags: if exact { uapi::RKMEM_ROUTE_EXACT } else { 0 },
        bytes,
        guard,
        reserved: 0,
    }
}

/// The host's kmalloc.
fn kmalloc(size: usize) -> Result<RkmemRoute> {
    let (mut slab, mut bytes) = (false, 0u64);
    // SAFETY: both pointers are to locals that live across the call; the glue allocates,
    // measures and frees, and keeps no pointer.
    to_result(unsafe { crate::ffi::rkmem_route_kmalloc(size, &mut slab, &mut bytes) })?;
    let kind = if slab {
        uapi::RKMEM_ROUTE_SLAB
    } else {
        uapi::RKMEM_ROUTE_PAGES
    };
    Ok(route(kind, false, bytes, 0))
}

/// The host's vmalloc.
fn vmalloc(size: usize) -> Result<RkmemRoute> {
    let (mut bytes, mut guard) = (0u64, 0u32);
    // SAFETY: as in `kmalloc`.
    to_result(unsafe { crate::ffi::rkmem_route_vmalloc(size, &mut bytes, &mut guard) })?;
    Ok(route(uapi::RKMEM_ROUTE_VMALLOC, false, bytes, guard))
}

/// The host's kvmalloc.
fn kvmalloc(size: usize) -> Result<RkmemRoute> {
    let (mut vm, mut slab, mut bytes, mut guard) = (false, false, 0u64, 0u32);
    // SAFETY: as in `kmalloc`.
    to_result(unsafe {
        crate::ffi::rkmem_route_kvmalloc(size, &mut vm, &mut slab, &mut bytes, &mut guard)
    })?;
    let kind = match (vm, slab) {
        (true, _) => uapi::RKMEM_ROUTE_VMALLOC,
        (false, true) => uapi::RKMEM_ROUTE_SLAB,
        (false, false) => uapi::RKMEM_ROUTE_PAGES,
    };
    Ok(route(kind, false, bytes, guard))
}

/// The host's `alloc_pages_exact(size)` (`exact`) or `alloc_pages(get_order(size))`.
fn pages(size: usize, exact: bool) -> Result<RkmemRoute> {
    let mut n = 0u64;
    // SAFETY: as in `kmalloc`; `size` is at most `KMALLOC_MAX_SIZE` (the plan's bound).
    to_result(unsafe { crate::ffi::rkmem_route_pages(size, exact, &mut n) })?;
    Ok(route(
        uapi::RKMEM_ROUTE_PAGES,
        exact,
        n * crate::arena::PAGE_SIZE as u64,
        0,
    ))
}

/// rkmalloc, as `RKMEM_IOC_OBJ_ALLOC` makes it: the route it took and the bytes it held.
fn rkmalloc(shared: &crate::Shared, size: usize) -> Result<RkmemRoute> {
    let mut a = classes::rkmalloc(&shared.classes, &shared.arena, size as u64, true)?;
    let r = match &a {
        RkAlloc::Class { bytes, .. } => route(uapi::RKMEM_ROUTE_SLAB, false, u64::from(*bytes), 0),
        RkAlloc::Pages(p) => route(
            uapi::RKMEM_ROUTE_PAGES,
            routes::rkmalloc_exact(size),
            p.bytes() as u64,
            0,
        ),
        RkAlloc::Vmalloc(_) => {
            let addr = a.addr(&shared.arena);
            let mut guard = 0u32;
            // SAFETY: `addr` is the start of the vmalloc area `a` holds, of `size` bytes, live
            // until `a` is freed below; the glue only reads its page tables.
            let bytes = unsafe {
                crate::ffi::rkmem_vmalloc_mapped(addr as *const c_void, size, &mut guard)
            };
            route(uapi::RKMEM_ROUTE_VMALLOC, false, bytes, guard)
        }
        // rkmalloc makes no object of a user cache.
        RkAlloc::Object(..) => route(uapi::RKMEM_ROUTE_NONE, false, 0, 0),
    };
    let _ = a.free(&shared.classes, &shared.arena);
    Ok(r)
}

/// `RKMEM_IOC_ROUTES`.
pub(crate) fn run(user: UserSlice) -> Result {
    let (mut r, mut w) = user.reader_writer();
    let req: RkmemRoutes = r.read()?;
    // Size 0, above the maximum, a reserved field set: all EINVAL.
    let size = routes::check(req.size, req.reserved, uapi::RKMEM_ROUTES_MAX).map_err(|_| EINVAL)?;
    let shared = crate::shared().ok_or(ENODEV)?;
    // SAFETY: the glue returns two constants of the host kernel.
    let (max_cache, max_size) = unsafe {
        (
            crate::ffi::rkmem_kmalloc_max_cache_size(),
            crate::ffi::rkmem_kmalloc_max_size(),
        )
    };
    let plan = routes::plan(size, max_size);
    let mut out = RkmemRoutes {
        size: req.size,
        kmalloc_max_cache_size: max_cache as u32,
        page_size: crate::arena::PAGE_SIZE as u32,
        kmalloc_max_size: max_size as u64,
        ..Default::default()
    };
    if plan.kmalloc {
        out.kmalloc = kmalloc(size)?;
    }
    out.vmalloc = vmalloc(size)?;
    out.kvmalloc = kvmalloc(size)?;
    out.rkmalloc = rkmalloc(shared, size)?;
    if plan.pages {
        out.exact = pages(size, true)?;
        out.order = pages(size, false)?;
    }
    w.write(&out)
}
