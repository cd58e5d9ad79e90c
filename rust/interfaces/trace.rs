// SPDX-License-Identifier: GPL-2.0

//! rkmem's tracepoints (`rust/glue/rkmem_trace.h`, in the manner of
//! `include/trace/events/kmem.h`), fired from Rust.
//!
//! The 7.3 kernel crate's `declare_trace!` names the kernel's own tracepoints
//! (`kernel::bindings::__tracepoint_*`); a module's tracepoints are its own symbols, so this file
//! declares them (`__tracepoint_rkmem_*`, `rust_do_trace_rkmem_*`, made by `glue/trace.c` with
//! `CREATE_TRACE_POINTS` and `CREATE_RUST_TRACE_POINTS`) and tests each static key the way
//! `declare_trace!` does: a patched branch with JUMP_LABEL, one load of the key without. The
//! arguments are computed only once the event is on. Kernels without CONFIG_TRACEPOINTS (the
//! fast and um ones) compile every call to nothing.

#[cfg(CONFIG_TRACEPOINTS)]
mod c {
    use kernel::ffi::{c_char, c_int, c_long, c_ulong, c_void};

    // `struct tracepoint` holds a zero-sized `struct its_array` (bindgen: no fields): the
    // statics are only ever addressed, for their static keys, never read or passed by value.
    #[allow(improper_ctypes)]
    extern "C" {
        pub(super) static __tracepoint_rkmem_cache_alloc: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_cache_free: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_kmalloc: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_kfree: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_page_alloc: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_page_free: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_slab_grow: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_slab_release: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_arena_grow: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_arena_release: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_shrink_count: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_shrink_scan: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_reclaim: kernel::bindings::tracepoint;
        pub(super) static __tracepoint_rkmem_compact_move: kernel::bindings::tracepoint;

        pub(super) fn rust_do_trace_rkmem_cache_alloc(
            site: *const c_char,
            site_len: u32,
            line: u32,
            ptr: *const c_void,
            bytes_req: usize,
            bytes_alloc: usize,
            cache: *const c_char,
            cache_len: u32,
        );
        pub(super) fn rust_do_trace_rkmem_cache_free(
            site: *const c_char,
            site_len: u32,
            line: u32,
            ptr: *const c_void,
            cache: *const c_char,
            cache_len: u32,
        );
        pub(super) fn rust_do_trace_rkmem_kmalloc(
            site: *const c_char,
            site_len: u32,
            line: u32,
            ptr: *const c_void,
            bytes_req: usize,
            bytes_alloc: usize,
            route: u32,
        );
        pub(super) fn rust_do_trace_rkmem_kfree(
            site: *const c_char,
            site_len: u32,
            line: u32,
            ptr: *const c_void,
            route: u32,
        );
        pub(super) fn rust_do_trace_rkmem_page_alloc(addr: *const c_void, order: c_int, pages: u32);
        pub(super) fn rust_do_trace_rkmem_page_free(addr: *const c_void, order: c_int, pages: u32);
        pub(super) fn rust_do_trace_rkmem_slab_grow(
            cache: *const c_char,
            cache_len: u32,
            addr: *const c_void,
            pages: u32,
        );
        pub(super) fn rust_do_trace_rkmem_slab_release(
            cache: *const c_char,
            cache_len: u32,
            addr: *const c_void,
            pages: u32,
        );
        pub(super) fn rust_do_trace_rkmem_arena_grow(slot: u32, addr: *const c_void);
        pub(super) fn rust_do_trace_rkmem_arena_release(slot: u32, addr: *const c_void);
        pub(super) fn rust_do_trace_rkmem_shrink_count(count: c_ulong);
        pub(super) fn rust_do_trace_rkmem_shrink_scan(nr_to_scan: c_ulong, freed: c_long);
        pub(super) fn rust_do_trace_rkmem_reclaim(sync: bool, pages: u64);
        pub(super) fn rust_do_trace_rkmem_compact_move(
            from: *const c_void,
            to: *const c_void,
            bytes: u32,
            pages: u32,
        );
    }
}

/// Whether the event `$name` is on: its static key, a patched branch with JUMP_LABEL.
#[cfg(CONFIG_TRACEPOINTS)]
macro_rules! on {
    ($name:ident) => {
        kernel::macros::paste! {
            // SAFETY: `__tracepoint_<name>` is the tracepoint `glue/trace.c` defines
            // (CREATE_TRACE_POINTS), a static that lives as long as the module; its static key
            // may always be read.
            unsafe {
                kernel::jump_label::static_branch_unlikely!(
                    c::[<__tracepoint_ $name>],
                    kernel::bindings::tracepoint,
                    key
                )
            }
        }
    };
}

/// Fires the event `$name` with the arguments (evaluated only if the event is on).
macro_rules! fire {
    ($name:ident($($arg:expr),* $(,)?)) => {
        #[cfg(CONFIG_TRACEPOINTS)]
        if on!($name) {
            kernel::macros::paste! {
                // SAFETY: the function records the event in the trace buffers: its arguments
                // are plain values, addresses it only prints or turns into pfns, and (pointer,
                // length) pairs of live Rust strings that it copies.
                unsafe { c::[<rust_do_trace_ $name>]($($arg),*) }
            }
        }
    };
}

/// A source location as the events show it: the file from `rust/` on, and its length.
#[cfg(CONFIG_TRACEPOINTS)]
fn site(l: &core::panic::Location<'_>) -> (*const kernel::ffi::c_char, u32) {
    let f = l.file();
    let f = f.rfind("/rust/").map_or(f, |i| &f[i + 1..]);
    (f.as_ptr().cast(), f.len() as u32)
}

/// A string as the events take it: pointer and length.
#[cfg(CONFIG_TRACEPOINTS)]
fn text(s: &str) -> (*const kernel::ffi::c_char, u32) {
    (s.as_ptr().cast(), s.len() as u32)
}

#[cfg(CONFIG_TRACEPOINTS)]
fn ptr(addr: usize) -> *const kernel::ffi::c_void {
    addr as *const kernel::ffi::c_void
}

/// rkmalloc's routes, as `rkmem_trace_routes` names them.
pub(crate) const ROUTE_CLASS: u32 = 0;
pub(crate) const ROUTE_ORDER: u32 = 1;
pub(crate) const ROUTE_EXACT: u32 = 2;
pub(crate) const ROUTE_VMALLOC: u32 = 3;

/// An object of the cache named `cache()` handed out at `addr`, for the caller at `at`. (The
/// name is a closure: these two events are on the objects' fast paths, and making the name, a
/// UTF-8 check, costs more than the rest of the path; it runs only if the event is on.)
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn cache_alloc<'a>(
    at: &core::panic::Location<'_>,
    addr: usize,
    req: usize,
    alloc: usize,
    cache: impl FnOnce() -> &'a str,
) {
    #[cfg(CONFIG_TRACEPOINTS)]
    if on!(rkmem_cache_alloc) {
        let (file, len) = site(at);
        let (name, name_len) = text(cache());
        // SAFETY: as in `fire!`.
        unsafe {
            c::rust_do_trace_rkmem_cache_alloc(
                file,
                len,
                at.line(),
                ptr(addr),
                req,
                alloc,
                name,
                name_len,
            )
        };
    }
}

/// The object at `addr` given back to the cache named `cache()` by the caller at `at`.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn cache_free<'a>(
    at: &core::panic::Location<'_>,
    addr: usize,
    cache: impl FnOnce() -> &'a str,
) {
    #[cfg(CONFIG_TRACEPOINTS)]
    if on!(rkmem_cache_free) {
        let (file, len) = site(at);
        let (name, name_len) = text(cache());
        // SAFETY: as in `fire!`.
        unsafe {
            c::rust_do_trace_rkmem_cache_free(file, len, at.line(), ptr(addr), name, name_len)
        };
    }
}

/// An rkmalloc of `req` bytes for the caller at `at`; `what()` says where it went: (address,
/// usable bytes, route), computed only if the event is on.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn kmalloc(
    at: &core::panic::Location<'_>,
    req: usize,
    what: impl FnOnce() -> (usize, usize, u32),
) {
    #[cfg(CONFIG_TRACEPOINTS)]
    if on!(rkmem_kmalloc) {
        let (addr, alloc, route) = what();
        let (file, len) = site(at);
        // SAFETY: as in `fire!`.
        unsafe {
            c::rust_do_trace_rkmem_kmalloc(file, len, at.line(), ptr(addr), req, alloc, route)
        };
    }
}

/// The rkmalloc allocation at `addr` (of `route`) freed.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn kfree(at: &core::panic::Location<'_>, addr: usize, route: u32) {
    fire!(rkmem_kfree(
        site(at).0,
        site(at).1,
        at.line(),
        ptr(addr),
        route
    ));
}

/// `pages` pages of the arena at `addr()` handed out: a block of `order`, or (`order` `None`)
/// an exact run. (The address is computed only if the event is on.)
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn page_alloc(addr: impl FnOnce() -> usize, order: Option<u32>, pages: usize) {
    fire!(rkmem_page_alloc(
        ptr(addr()),
        order.map_or(-1, |o| o as i32),
        pages as u32
    ));
}

/// The block of [`page_alloc`] freed.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn page_free(addr: impl FnOnce() -> usize, order: Option<u32>, pages: usize) {
    fire!(rkmem_page_free(
        ptr(addr()),
        order.map_or(-1, |o| o as i32),
        pages as u32
    ));
}

/// A new slab of `cache`: `pages` pages at `addr`.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn slab_grow(cache: &str, addr: usize, pages: usize) {
    fire!(rkmem_slab_grow(
        text(cache).0,
        text(cache).1,
        ptr(addr),
        pages as u32
    ));
}

/// An empty slab of `cache` given back to the arena.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn slab_release(cache: &str, addr: usize, pages: usize) {
    fire!(rkmem_slab_release(
        text(cache).0,
        text(cache).1,
        ptr(addr),
        pages as u32
    ));
}

/// A 4 MiB host block at `addr` became the arena's slot `slot`.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn arena_grow(slot: usize, addr: usize) {
    fire!(rkmem_arena_grow(slot as u32, ptr(addr)));
}

/// The arena's slot `slot` (the host block at `addr`) given back to the host.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn arena_release(slot: usize, addr: usize) {
    fire!(rkmem_arena_release(slot as u32, ptr(addr)));
}

/// The shrinker's `count_objects` answered `count`.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn shrink_count(count: u64) {
    fire!(rkmem_shrink_count(count as kernel::ffi::c_ulong));
}

/// The shrinker's `scan_objects` was asked for `nr` and gave `freed` pages (`None`: SHRINK_STOP).
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn shrink_scan(nr: u64, freed: Option<u64>) {
    fire!(rkmem_shrink_scan(
        nr as kernel::ffi::c_ulong,
        freed.map_or(-1, |f| f as kernel::ffi::c_long)
    ));
}

/// A watermark reclaim run (`sync`: by the allocating task) freed `pages`.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn reclaim(sync: bool, pages: u64) {
    fire!(rkmem_reclaim(sync, pages));
}

/// Compaction moved `bytes` from `from` to `to`: an object (`pages` 0) or a page allocation.
#[inline(always)]
#[cfg_attr(not(CONFIG_TRACEPOINTS), allow(unused_variables))]
pub(crate) fn compact_move(from: usize, to: usize, bytes: usize, pages: usize) {
    fire!(rkmem_compact_move(
        ptr(from),
        ptr(to),
        bytes as u32,
        pages as u32
    ));
}
