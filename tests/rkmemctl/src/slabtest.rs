// SPDX-License-Identifier: GPL-2.0

//! In-guest tests of the slab caches and rkmalloc (`RKMEM_IOC_CACHE_CREATE`,
//! `RKMEM_IOC_CACHE_DESTROY`, `RKMEM_IOC_OBJ_ALLOC`, `RKMEM_TRIM_SLABS`,
//! `/proc/rkmem/slabinfo`), run by `rkmemctl test` after the buddy allocator's tests.
//!
//! Each test opens its own files; closing them destroys the caches they created, so a failed
//! test leaves nothing behind for the next one. The names of the caches start with `t_`.
//!
//! A note on `active_objs`: as with SLUB, objects held in the per-CPU object caches count as in
//! use (they are allocated in their slabs' bitmaps), so while a cache is in use `active_objs` is
//! at least what its users hold and at most that plus the per-CPU caches' contents. After
//! `RKMEM_TRIM_SLABS` the per-CPU objects are back in their slabs and `active_objs` is exact.

use crate::dev::{self, Alloc, CacheInfo, CacheSpec, Device, PoolSource, PAGE_SIZE};
use crate::pattern;
use crate::procfs::{self, SlabRow};
use crate::selftest::{self, expect_errno, io_errno, open, trim_all, TestFn};
use crate::uapi::{self, RkmemCacheCreate, RkmemCacheId, RkmemIo, RkmemObjAlloc};
use nix::errno::Errno;

pub(crate) const TESTS: &[(&str, TestFn)] = &[
    ("features_include_slab", features_include_slab),
    (
        "cache_ioctls_wrong_size_are_enotty",
        cache_ioctls_wrong_size_are_enotty,
    ),
    (
        "cache_ioctls_bad_pointers_are_efault",
        cache_ioctls_bad_pointers_are_efault,
    ),
    (
        "cache_ioctls_unwritable_answer_is_efault",
        cache_ioctls_unwritable_answer_is_efault,
    ),
    ("cache_create_and_destroy", cache_create_and_destroy),
    (
        "cache_117_byte_aligned_layout",
        cache_117_byte_aligned_layout,
    ),
    (
        "cache_layouts_fit_their_slabs",
        cache_layouts_fit_their_slabs,
    ),
    ("cache_name_rules", cache_name_rules),
    ("cache_bad_names_are_einval", cache_bad_names_are_einval),
    ("cache_bad_sizes_are_einval", cache_bad_sizes_are_einval),
    ("cache_bad_aligns_are_einval", cache_bad_aligns_are_einval),
    (
        "cache_unknown_flags_are_einval",
        cache_unknown_flags_are_einval,
    ),
    (
        "cache_bad_ctor_bytes_are_einval",
        cache_bad_ctor_bytes_are_einval,
    ),
    ("cache_taken_names_are_eexist", cache_taken_names_are_eexist),
    ("cache_count_limit_is_enospc", cache_count_limit_is_enospc),
    ("cache_destroy_bad_args", cache_destroy_bad_args),
    ("obj_alloc_bad_args", obj_alloc_bad_args),
    ("cache_objects_117", cache_objects_117),
    ("handle_info_positions", handle_info_positions),
    ("cache_slabs_lists_and_errors", cache_slabs_lists_and_errors),
    ("cache_object_io_bounds", cache_object_io_bounds),
    (
        "cache_of_another_file_is_enoent",
        cache_of_another_file_is_enoent,
    ),
    (
        "cache_destroy_with_objects_is_ebusy",
        cache_destroy_with_objects_is_ebusy,
    ),
    ("cache_ctor_fills_new_objects", cache_ctor_fills_new_objects),
    ("rkmalloc_usable_sizes", rkmalloc_usable_sizes),
    ("routes_bad_input_is_einval", routes_bad_input_is_einval),
    ("routes_answers_every_route", routes_answers_every_route),
    (
        "compact_moves_objects_keeps_bytes_frees_slabs",
        compact_moves_objects_keeps_bytes_frees_slabs,
    ),
    (
        "compact_leaves_pool_elements_pinned",
        compact_leaves_pool_elements_pinned,
    ),
    ("compact_bad_args", compact_bad_args),
    (
        "compact_while_the_file_is_in_use",
        compact_while_the_file_is_in_use,
    ),
    (
        "rkmalloc_bad_sizes_are_einval",
        rkmalloc_bad_sizes_are_einval,
    ),
    ("rkmalloc_objects_round_trip", rkmalloc_objects_round_trip),
    ("rkmalloc_class_rows_count", rkmalloc_class_rows_count),
    ("slabinfo_format_and_classes", slabinfo_format_and_classes),
    ("slabinfo_user_caches_first", slabinfo_user_caches_first),
    ("slabinfo_counts_held_objects", slabinfo_counts_held_objects),
    ("slab_close_destroys_caches", slab_close_destroys_caches),
    (
        "slab_free_all_and_trim_restores_buddyinfo",
        slab_free_all_and_trim_restores_buddyinfo,
    ),
];

/// The size classes of rkmalloc and their slabinfo names.
const CLASSES: [(u64, &str); 12] = [
    (8, "rkmalloc-8"),
    (16, "rkmalloc-16"),
    (32, "rkmalloc-32"),
    (64, "rkmalloc-64"),
    (96, "rkmalloc-96"),
    (128, "rkmalloc-128"),
    (192, "rkmalloc-192"),
    (256, "rkmalloc-256"),
    (512, "rkmalloc-512"),
    (1024, "rkmalloc-1k"),
    (2048, "rkmalloc-2k"),
    (4096, "rkmalloc-4k"),
];

/// Most user caches alive at once (`ENOSPC` beyond).
const MAX_USER_CACHES: usize = 256;
/// Per-CPU object cache of a cache outside debug mode: limit and batch (slabinfo tunables) for
/// objects of `stride` bytes, as the module documents them (`rkcore::depot::cpu_tunables`,
/// scaled down with the size like SLUB's sheaves).
fn cpu_tunables(stride: u64) -> (u32, u32) {
    match stride {
        0..=255 => (64, 32),
        256..=1023 => (32, 16),
        1024..=4095 => (16, 8),
        _ => (8, 4),
    }
}
/// Batches a cache's depot holds at most (slabinfo's `<sharedfactor>`).
const DEPOT_FACTOR: u32 = 16;
/// Capacity of one per-CPU object cache: the most objects it may hold between operations.
const CPU_CAP: u64 = 64;
/// The most objects a cache's depot holds (16 batches of at most 32).
const DEPOT_CAP: u64 = 512;
/// 1 MiB.
const MIB: u64 = 1 << 20;

fn spec(name: &str, size: u32, align: u32) -> Result<CacheSpec, String> {
    CacheSpec::new(name, size, align)
}

fn create(d: &Device, s: &CacheSpec) -> Result<CacheInfo, String> {
    d.cache_create(s).map_err(|e| {
        format!(
            "create {} (size {}, align {}): {e}",
            dev::cache_name_str(&s.name),
            s.size,
            s.align
        )
    })
}

fn destroy(d: &Device, id: u32) -> Result<(), String> {
    d.cache_destroy(id)
        .map_err(|e| format!("destroy cache {id}: {e}"))
}

fn obj(d: &Device, c: &CacheInfo, size: u32) -> Result<Alloc, String> {
    let a = d
        .obj_alloc(c.id)
        .map_err(|e| format!("alloc from cache {}: {e}", c.id))?;
    if a.bytes != u64::from(size) {
        return Err(format!(
            "object of cache {}: {} usable bytes, want the object size {size}",
            c.id, a.bytes
        ));
    }
    if a.handle == 0 {
        return Err(format!("object of cache {}: handle 0", c.id));
    }
    Ok(a)
}

fn free(d: &Device, a: &Alloc) -> Result<(), String> {
    d.free(a.handle)
        .map_err(|e| format!("free {:#x} ({} bytes): {e}", a.handle, a.bytes))
}

/// A valid create request for `name`: 117-byte objects, byte aligned.
fn good_arg(name: &str) -> Result<RkmemCacheCreate, String> {
    Ok(spec(name, 117, 1)?.to_arg())
}

/// `RKMEM_IOC_CACHE_CREATE` with `arg` must fail with `want`; a cache created by mistake is
/// destroyed again.
fn create_errno(
    d: &Device,
    what: &str,
    mut arg: RkmemCacheCreate,
    want: Errno,
) -> Result<(), String> {
    let got = d.cache_create_raw(&mut arg).map(|()| 0);
    if got.is_ok() {
        let _ = d.cache_destroy(arg.id);
    }
    expect_errno(&format!("create {what}"), got, want)
}

fn alloc_errno(d: &Device, what: &str, mut arg: RkmemObjAlloc, want: Errno) -> Result<(), String> {
    let got = d.obj_alloc_raw(&mut arg).map(|()| 0);
    if got.is_ok() {
        let _ = d.free(arg.handle);
    }
    expect_errno(&format!("alloc {what}"), got, want)
}

fn slabinfo() -> Result<Vec<SlabRow>, String> {
    let rows = procfs::slabinfo()?;
    for r in &rows {
        r.check()?;
    }
    Ok(rows)
}

fn row_of(name: &str) -> Result<Option<SlabRow>, String> {
    Ok(slabinfo()?.into_iter().find(|r| r.name == name))
}

fn row(name: &str) -> Result<SlabRow, String> {
    row_of(name)?.ok_or_else(|| format!("no row for cache {name} in {}", procfs::SLABINFO))
}

fn trim_slabs(d: &Device) -> Result<(), String> {
    d.trim(uapi::RKMEM_TRIM_SLABS)
        .map(|_| ())
        .map_err(|e| format!("RKMEM_IOC_TRIM(SLABS): {e}"))
}

/// Whether the module runs in a KASAN kernel (`kasan_redzones 1` in /proc/rkmem/stats): then
/// slots start on an 8-byte granule and a red zone of at least one granule follows each object.
pub(crate) fn kasan_mode() -> Result<bool, String> {
    Ok(procfs::stat("kasan_redzones")? == 1)
}

/// The slot of a `size`-byte object aligned to `align` in a KASAN kernel
/// (`SlabLayout::for_cpus_redzoned` with granule 8): the object to its granule, a red-zone
/// granule, rounded up to the alignment (at least 8).
pub(crate) fn kasan_stride(size: u32, align: u32) -> u32 {
    (size.next_multiple_of(8) + 8).next_multiple_of(align.max(8))
}

/// Whether the module runs with `slab_debug=1`: then caches have no per-CPU object cache,
/// which slabinfo shows as tunables 0 (and objects carry red zones: a larger objsize).
fn debug_mode() -> Result<bool, String> {
    Ok(row("rkmalloc-8")?.limit == 0)
}

/// The CPUs this process may run on: each may hold a per-CPU object cache.
fn ncpus() -> u64 {
    crate::workers::allowed_cpus().len() as u64
}

/// Writes the pattern `key` over all of `a`.
pub(crate) fn fill(d: &Device, a: &Alloc, key: u64) -> Result<(), String> {
    let mut buf = vec![0u8; a.bytes as usize];
    pattern::fill(key, 0, &mut buf);
    d.write(a.handle, 0, &buf)
        .map_err(|e| format!("write {} bytes to {:#x}: {e}", a.bytes, a.handle))
}

/// Reads all of `a` and compares it with the pattern `key`.
pub(crate) fn verify(d: &Device, a: &Alloc, key: u64) -> Result<(), String> {
    let mut buf = vec![0u8; a.bytes as usize];
    d.read(a.handle, 0, &mut buf)
        .map_err(|e| format!("read {} bytes of {:#x}: {e}", a.bytes, a.handle))?;
    match pattern::first_mismatch(key, 0, &buf) {
        None => Ok(()),
        Some((at, want, got)) => Err(format!(
            "{:#x} ({} bytes): byte {at} reads {got:#04x}, {want:#04x} was written",
            a.handle, a.bytes
        )),
    }
}

// ---- the ioctls themselves ----

fn features_include_slab() -> Result<(), String> {
    selftest::expect_feature(uapi::RKMEM_FEAT_SLAB, "RKMEM_FEAT_SLAB")
}

fn cache_ioctls_wrong_size_are_enotty() -> Result<(), String> {
    let d = open()?;
    let mut buf = [0u8; 128];
    let p = buf.as_mut_ptr() as usize;
    let rw = uapi::IOC_READ | uapi::IOC_WRITE;
    for (nr, dir, size) in [
        // CACHE_CREATE: 64 bytes, read-write.
        (0x30, rw, 32),
        (0x30, rw, 65),
        (0x30, uapi::IOC_WRITE, 64),
        // CACHE_DESTROY: 8 bytes, write-only.
        (0x31, uapi::IOC_WRITE, 4),
        (0x31, rw, 8),
        (0x31, uapi::IOC_WRITE, 16),
        // OBJ_ALLOC: 32 bytes, read-write.
        (0x32, rw, 24),
        (0x32, uapi::IOC_READ, 32),
        (0x32, rw, 40),
        // CACHE_SLABS: 56 bytes, read-write.
        (0x33, rw, 32),
        (0x33, rw, 64),
        (0x33, uapi::IOC_WRITE, 56),
        // Unused numbers next to them.
        (0x34, rw, 56),
        (0x2f, rw, 64),
    ] {
        expect_errno(
            &format!("nr {nr:#x} dir {dir} size {size}"),
            d.raw_ioctl(uapi::ioc(dir, uapi::RKMEM_IOC_MAGIC, nr, size), p),
            Errno::ENOTTY,
        )?;
    }
    Ok(())
}

fn cache_ioctls_bad_pointers_are_efault() -> Result<(), String> {
    let d = open()?;
    for (cmd, name) in [
        (uapi::RKMEM_IOC_CACHE_CREATE, "CACHE_CREATE"),
        (uapi::RKMEM_IOC_CACHE_DESTROY, "CACHE_DESTROY"),
        (uapi::RKMEM_IOC_OBJ_ALLOC, "OBJ_ALLOC"),
        (uapi::RKMEM_IOC_CACHE_SLABS, "CACHE_SLABS"),
    ] {
        for (what, p) in [
            ("NULL", 0usize),
            ("a kernel address", 0xffff_8880_0000_0000),
        ] {
            expect_errno(
                &format!("{name} with {what}"),
                d.raw_ioctl(cmd, p),
                Errno::EFAULT,
            )?;
        }
    }
    // Nothing was created or allocated: the file can still make a cache of any name.
    let c = create(&d, &spec("t_after_efault", 8, 8)?)?;
    destroy(&d, c.id)
}

/// A page holding one ioctl argument, made read-only: the module can read the request but not
/// write its answer back. Unmapped on drop.
struct ReadOnlyArg {
    addr: *mut nix::libc::c_void,
}

impl ReadOnlyArg {
    fn new<T: Copy>(arg: &T) -> Result<ReadOnlyArg, String> {
        let page = PAGE_SIZE as usize;
        if std::mem::size_of::<T>() > page {
            return Err("argument larger than a page".into());
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
        // existing memory of this process.
        let addr = unsafe {
            nix::libc::mmap(
                std::ptr::null_mut(),
                page,
                nix::libc::PROT_READ | nix::libc::PROT_WRITE,
                nix::libc::MAP_PRIVATE | nix::libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == nix::libc::MAP_FAILED {
            return Err(format!("mmap: {}", Errno::last()));
        }
        let ro = ReadOnlyArg { addr };
        // SAFETY: the mapping is a fresh, writable, page-aligned page of this process, large
        // enough for a `T` (checked above) and aligned for any uapi struct.
        unsafe { std::ptr::write(addr.cast::<T>(), *arg) };
        // SAFETY: the page belongs to `ro`'s mapping, which nothing else uses.
        if unsafe { nix::libc::mprotect(addr, page, nix::libc::PROT_READ) } != 0 {
            return Err(format!("mprotect: {}", Errno::last()));
        }
        Ok(ro)
    }
}

impl Drop for ReadOnlyArg {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `new` and is used by nobody else.
        unsafe { nix::libc::munmap(self.addr, PAGE_SIZE as usize) };
    }
}

/// When the answer cannot be copied back, the module undoes what it did: no cache is left
/// behind a failed create, no object behind a failed allocation.
fn cache_ioctls_unwritable_answer_is_efault() -> Result<(), String> {
    let d = open()?;
    let arg = ReadOnlyArg::new(&good_arg("t_ro")?)?;
    expect_errno(
        "CACHE_CREATE with a read-only argument",
        d.raw_ioctl(uapi::RKMEM_IOC_CACHE_CREATE, arg.addr as usize),
        Errno::EFAULT,
    )?;
    if row_of("t_ro")?.is_some() {
        return Err("t_ro is in slabinfo although its create failed with EFAULT".into());
    }
    let c = create(&d, &spec("t_ro", 117, 1)?)?;
    // An object of the cache: destroy would be EBUSY if the failed allocation kept it.
    let req = RkmemObjAlloc {
        cache_id: c.id,
        ..Default::default()
    };
    let arg = ReadOnlyArg::new(&req)?;
    expect_errno(
        "OBJ_ALLOC from a cache with a read-only argument",
        d.raw_ioctl(uapi::RKMEM_IOC_OBJ_ALLOC, arg.addr as usize),
        Errno::EFAULT,
    )?;
    destroy(&d, c.id).map_err(|e| format!("after a failed allocation: {e}"))?;
    // rkmalloc: the class's objects in use are back where they were.
    trim_slabs(&d)?;
    let before = row("rkmalloc-96")?.active_objs;
    let req = RkmemObjAlloc {
        size: 96,
        ..Default::default()
    };
    let arg = ReadOnlyArg::new(&req)?;
    expect_errno(
        "rkmalloc 96 with a read-only argument",
        d.raw_ioctl(uapi::RKMEM_IOC_OBJ_ALLOC, arg.addr as usize),
        Errno::EFAULT,
    )?;
    trim_slabs(&d)?;
    let after = row("rkmalloc-96")?.active_objs;
    if after != before {
        return Err(format!(
            "rkmalloc-96 active_objs {before} -> {after} after an allocation failed with EFAULT"
        ));
    }
    Ok(())
}

fn cache_create_and_destroy() -> Result<(), String> {
    let d = open()?;
    let s = spec("t_create", 117, 1)?;
    let c = create(&d, &s)?;
    if c.id == 0 {
        return Err("cache id 0 (reserved for rkmalloc)".into());
    }
    if row_of("t_create")?.is_none() {
        return Err("a new cache has no slabinfo row".into());
    }
    destroy(&d, c.id)?;
    if row_of("t_create")?.is_some() {
        return Err("a destroyed cache is still in slabinfo".into());
    }
    expect_errno(
        "destroy twice",
        d.cache_destroy(c.id).map(|()| 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "alloc from a destroyed cache",
        d.obj_alloc(c.id).map(|_| 0),
        Errno::ENOENT,
    )?;
    // The name is free again; the new cache gets a new id.
    let again = create(&d, &s)?;
    if again.id == c.id {
        return Err(format!("id {} given again after destroy", c.id));
    }
    let other = create(&d, &spec("t_create2", 117, 1)?)?;
    if other.id == again.id {
        return Err(format!("two live caches share id {}", other.id));
    }
    destroy(&d, again.id)?;
    destroy(&d, other.id)
}

fn cache_117_byte_aligned_layout() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_layout117", 117, 1)?)?;
    let r = row("t_layout117")?;
    if (r.objsize, r.objperslab, r.pagesperslab)
        != (c.objsize, c.objects_per_slab, c.pages_per_slab)
    {
        return Err(format!(
            "create answered objsize {} objperslab {} pagesperslab {}, slabinfo says {} {} {}",
            c.objsize,
            c.objects_per_slab,
            c.pages_per_slab,
            r.objsize,
            r.objperslab,
            r.pagesperslab
        ));
    }
    if (r.active_objs, r.num_objs, r.active_slabs, r.num_slabs) != (0, 0, 0, 0) {
        return Err(format!("a new cache's row is not empty: {r:?}"));
    }
    if debug_mode()? {
        // Red zones and metadata widen the slot; no per-CPU cache.
        if c.objsize <= 117 || (r.limit, r.batchcount) != (0, 0) {
            return Err(format!(
                "slab_debug: objsize {} (want more than 117), tunables {} {}",
                c.objsize, r.limit, r.batchcount
            ));
        }
        return Ok(());
    }
    // 4096 bytes - 32 header - 5 bitmap = 4059 = 34 * 117 + 81. In a KASAN kernel the slot is
    // 128 bytes (120 + a red-zone granule) and the header moves off the slab: 4096 / 128 = 32.
    let want = if kasan_mode()? {
        (128, 32, 1)
    } else {
        (117, 34, 1)
    };
    if (c.objsize, c.objects_per_slab, c.pages_per_slab) != want {
        return Err(format!(
            "a 117-byte byte-aligned cache: objsize {}, {} objects per slab of {} pages; want {want:?}",
            c.objsize, c.objects_per_slab, c.pages_per_slab
        ));
    }
    let (limit, batch) = cpu_tunables(u64::from(c.objsize));
    if (r.limit, r.batchcount, r.sharedfactor) != (limit, batch, DEPOT_FACTOR) {
        return Err(format!(
            "tunables {} {} {}, want {limit} {batch} {DEPOT_FACTOR}",
            r.limit, r.batchcount, r.sharedfactor
        ));
    }
    Ok(())
}

fn cache_layouts_fit_their_slabs() -> Result<(), String> {
    let d = open()?;
    let debug = debug_mode()?;
    let kasan = kasan_mode()?;
    for (i, (size, align)) in [
        (1u32, 1u32),
        (8, 8),
        (117, 8),
        (64, 64),
        (100, 64),
        (1, 4096),
        (2049, 1),
        (4095, 2),
        (4096, 1),
        (4096, 4096),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("t_fit{i}");
        let c = create(&d, &spec(&name, size, align)?)?;
        let what = format!(
            "size {size} align {align}: objsize {}, {} per slab of {} pages",
            c.objsize, c.objects_per_slab, c.pages_per_slab
        );
        let slab = u64::from(c.pages_per_slab) * PAGE_SIZE;
        let ok = c.objsize >= size
            && c.objsize % align == 0
            && (debug
                || c.objsize
                    == if kasan {
                        kasan_stride(size, align)
                    } else {
                        size.next_multiple_of(align)
                    })
            && c.objects_per_slab >= 1
            && c.pages_per_slab.is_power_of_two()
            && c.pages_per_slab <= 8
            && u64::from(c.objsize) * u64::from(c.objects_per_slab) <= slab;
        if !ok {
            return Err(what);
        }
        // An object is usable and aligned data round-trips at both ends.
        let a = obj(&d, &c, size)?;
        fill(&d, &a, 0x1a + i as u64)?;
        verify(&d, &a, 0x1a + i as u64)?;
        free(&d, &a)?;
        destroy(&d, c.id)?;
    }
    Ok(())
}

fn cache_name_rules() -> Result<(), String> {
    let d = open()?;
    // Every allowed character, and the longest name.
    for name in [
        "Az09_.-",
        "x",
        "a_name_of_exactly_31_characters",
        "0123456789.ABCDEFGHIJKLM-nopqrs",
    ] {
        if name.len() > uapi::RKMEM_CACHE_NAME_MAX {
            return Err(format!("test bug: {name} is too long"));
        }
        let c = create(&d, &spec(name, 32, 8)?)?;
        if row_of(name)?.is_none() {
            return Err(format!("cache {name:?} has no slabinfo row"));
        }
        destroy(&d, c.id)?;
    }
    Ok(())
}

fn cache_bad_names_are_einval() -> Result<(), String> {
    let d = open()?;
    let mut cases: Vec<(String, [u8; 32])> = Vec::new();
    // Empty, 32 bytes (no room for the NUL), a byte after the NUL.
    cases.push(("empty".into(), [0u8; 32]));
    cases.push(("32 bytes".into(), [b'a'; 32]));
    let mut after_nul = dev::cache_name("abc")?;
    after_nul[5] = b'x';
    cases.push(("a byte after the NUL".into(), after_nul));
    let mut last_byte = dev::cache_name("abc")?;
    last_byte[31] = b'z';
    cases.push(("a byte in the last position".into(), last_byte));
    // Characters outside [A-Za-z0-9_.-].
    for bad in [
        "a b",
        "a/b",
        "tab\tx",
        "new\nline",
        "a:b",
        "a*",
        "caf\u{e9}",
        "x+y",
        "(x)",
        " ",
    ] {
        cases.push((format!("{bad:?}"), dev::cache_name(bad)?));
    }
    let mut high = dev::cache_name("ab")?;
    high[1] = 0x80;
    cases.push(("byte 0x80".into(), high));
    for (what, name) in cases {
        let arg = RkmemCacheCreate {
            name,
            ..good_arg("x")?
        };
        create_errno(&d, &format!("name {what}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn cache_bad_sizes_are_einval() -> Result<(), String> {
    let d = open()?;
    for size in [0u32, 4097, 8192, 1 << 31, u32::MAX] {
        let arg = RkmemCacheCreate {
            size,
            ..good_arg("t_badsize")?
        };
        create_errno(&d, &format!("size {size}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn cache_bad_aligns_are_einval() -> Result<(), String> {
    let d = open()?;
    for align in [0u32, 3, 6, 12, 100, 4095, 8192, 1 << 31, u32::MAX] {
        let arg = RkmemCacheCreate {
            align,
            ..good_arg("t_badalign")?
        };
        create_errno(&d, &format!("align {align}"), arg, Errno::EINVAL)?;
    }
    // Every power of two up to a page is fine.
    for k in 0..=12 {
        let c = create(&d, &spec("t_goodalign", 117, 1 << k)?)?;
        if c.objsize % (1 << k) != 0 {
            return Err(format!("align {}: objsize {}", 1 << k, c.objsize));
        }
        destroy(&d, c.id)?;
    }
    Ok(())
}

/// `RKMEM_IOC_HANDLE_INFO`: a `RKMEM_CACHE_NOCPU` cache hands out the first free bit each time
/// and the bitmap shows it; a block of pages says where it is; other handles and bad fields are
/// refused.
fn handle_info_positions() -> Result<(), String> {
    let d = open()?;
    let mut arg = good_arg("t_info")?;
    arg.flags = uapi::RKMEM_CACHE_NOCPU;
    d.cache_create_raw(&mut arg)
        .map_err(|e| format!("create t_info with RKMEM_CACHE_NOCPU: {e}"))?;
    let info = |a: &Alloc| {
        d.handle_info(a.handle)
            .map_err(|e| format!("HANDLE_INFO {:#x}: {e}", a.handle))
    };
    let objs: Vec<Alloc> = (0..3)
        .map(|_| d.obj_alloc(arg.id).map_err(|e| format!("alloc: {e}")))
        .collect::<Result<_, _>>()?;
    let first = info(&objs[0])?;
    for (n, a) in objs.iter().enumerate() {
        let i = info(a)?;
        let want_off = first.offset + n as u32 * arg.objsize;
        if (i.kind, i.index, i.offset, i.in_use, i.bitmap[0])
            != (uapi::RKMEM_INFO_OBJECT, n as u32, want_off, 3, 0b111)
            || (i.objects, i.pages) != (arg.objects_per_slab, arg.pages_per_slab)
            || (i.slot, i.page) != (first.slot, first.page)
        {
            return Err(format!("object {n}: {i:?}"));
        }
    }
    free(&d, &objs[1])?;
    let i = info(&objs[0])?;
    if (i.in_use, i.bitmap[0]) != (2, 0b101) {
        return Err(format!("after freeing object 1: {i:?}"));
    }
    let again = d.obj_alloc(arg.id).map_err(|e| format!("alloc: {e}"))?;
    if info(&again)?.index != 1 {
        return Err(format!(
            "the free bit 1 was not reused: {:?}",
            info(&again)?
        ));
    }
    let pages = d
        .pages_alloc(dev::PagesReq::Order(4))
        .map_err(|e| format!("pages order 4: {e}"))?;
    let p = info(&pages)?;
    if p.kind != uapi::RKMEM_INFO_PAGES || p.pages != 16 || p.page % 16 != 0 || p.offset != 0 {
        return Err(format!("order-4 block: {p:?}"));
    }
    let km = d.rkmalloc(100).map_err(|e| format!("rkmalloc 100: {e}"))?;
    expect_errno(
        "HANDLE_INFO of rkmalloc memory",
        d.handle_info(km.handle).map(|_| 0),
        Errno::EINVAL,
    )?;
    expect_errno(
        "HANDLE_INFO of an unknown handle",
        d.handle_info(u64::MAX).map(|_| 0),
        Errno::ENOENT,
    )?;
    let mut bad = uapi::RkmemHandleInfo {
        handle: pages.handle,
        reserved: 1,
        ..Default::default()
    };
    expect_errno(
        "HANDLE_INFO with reserved 1",
        d.handle_info_raw(&mut bad).map(|()| 0),
        Errno::EINVAL,
    )?;
    for a in [&objs[0], &objs[2], &again, &pages, &km] {
        free(&d, a)?;
    }
    destroy(&d, arg.id)
}

/// `RKMEM_IOC_CACHE_SLABS`: the lists of a `RKMEM_CACHE_NOCPU` cache, full first, each front to
/// back, at the positions `RKMEM_IOC_HANDLE_INFO` gives; a short buffer cuts the entries but not
/// the counts; an unknown or foreign cache is `ENOENT`, a bound or reserved field `EINVAL`, a
/// bad entries pointer `EFAULT`.
fn cache_slabs_lists_and_errors() -> Result<(), String> {
    selftest::expect_feature(uapi::RKMEM_FEAT_SLABS, "RKMEM_FEAT_SLABS")?;
    let d = open()?;
    let mut arg = good_arg("t_slabs")?;
    arg.flags = uapi::RKMEM_CACHE_NOCPU;
    d.cache_create_raw(&mut arg)
        .map_err(|e| format!("create t_slabs with RKMEM_CACHE_NOCPU: {e}"))?;
    let slabs = |d: &Device| {
        d.cache_slabs(arg.id)
            .map_err(|e| format!("CACHE_SLABS of t_slabs: {e}"))
    };
    let (a, e) = slabs(&d)?;
    if !e.is_empty()
        || (a.full, a.partial, a.empty, a.in_use) != (0, 0, 0, 0)
        || (a.objects, a.pages) != (arg.objects_per_slab, arg.pages_per_slab)
        || !(5..=10).contains(&a.keep_empty)
    {
        return Err(format!("a new cache: {a:?} {e:?}"));
    }
    // One slab full, one with a single object.
    let n = arg.objects_per_slab as usize;
    let objs: Vec<Alloc> = (0..=n)
        .map(|_| d.obj_alloc(arg.id).map_err(|e| format!("alloc: {e}")))
        .collect::<Result<_, _>>()?;
    let at = |a: &Alloc| {
        d.handle_info(a.handle)
            .map(|i| (i.slot, i.page))
            .map_err(|e| format!("HANDLE_INFO: {e}"))
    };
    let (full, partial) = (at(&objs[0])?, at(&objs[n])?);
    let entry = |pos: (u32, u32), list, in_use| uapi::RkmemSlabEntry {
        slot: pos.0,
        page: pos.1,
        list,
        in_use,
    };
    let (a, e) = slabs(&d)?;
    let want = [
        entry(full, uapi::RKMEM_SLAB_FULL, n as u32),
        entry(partial, uapi::RKMEM_SLAB_PARTIAL, 1),
    ];
    if e != want || (a.full, a.partial, a.empty, a.in_use) != (1, 1, 0, n as u64 + 1) {
        return Err(format!(
            "a full and a partial slab: {a:?} {e:?}, want {want:?}"
        ));
    }
    // The single object freed: its slab is kept on the empty list.
    free(&d, &objs[n])?;
    let (a, e) = slabs(&d)?;
    let want = [
        entry(full, uapi::RKMEM_SLAB_FULL, n as u32),
        entry(partial, uapi::RKMEM_SLAB_EMPTY, 0),
    ];
    if e != want || (a.full, a.partial, a.empty, a.nr_entries) != (1, 0, 1, 2) {
        return Err(format!(
            "a full and an empty slab: {a:?} {e:?}, want {want:?}"
        ));
    }
    // Room for one entry: the full slab only, the counts whole.
    let mut one = [uapi::RkmemSlabEntry::default(); 2];
    let mut req = uapi::RkmemCacheSlabs {
        cache_id: arg.id,
        max_entries: 1,
        entries: one.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `entries` points to 2 >= `max_entries` writable entries owned by this function.
    unsafe { d.cache_slabs_raw(&mut req) }.map_err(|e| format!("CACHE_SLABS max 1: {e}"))?;
    if (req.nr_entries, req.full, req.empty) != (1, 1, 1)
        || one[0] != want[0]
        || one[1] != Default::default()
    {
        return Err(format!("max_entries 1: {req:?} {one:?}"));
    }
    // No room, no pointer: only the counts.
    let mut req = uapi::RkmemCacheSlabs {
        cache_id: arg.id,
        ..Default::default()
    };
    // SAFETY: `max_entries` is 0: nothing is written through `entries`.
    unsafe { d.cache_slabs_raw(&mut req) }.map_err(|e| format!("CACHE_SLABS max 0: {e}"))?;
    if (req.nr_entries, req.full, req.empty) != (0, 1, 1) {
        return Err(format!("max_entries 0: {req:?}"));
    }
    let bad = |what: &str, f: &dyn Fn(&mut uapi::RkmemCacheSlabs), want: Errno| {
        let mut buf = [uapi::RkmemSlabEntry::default(); 4];
        let mut req = uapi::RkmemCacheSlabs {
            cache_id: arg.id,
            max_entries: 4,
            entries: buf.as_mut_ptr() as u64,
            ..Default::default()
        };
        f(&mut req);
        // SAFETY: `entries` points to 4 writable entries owned by this closure, or (the EFAULT
        // cases) to memory this process cannot write, and `max_entries` is at most 4 where it
        // is accepted.
        let got = unsafe { d.cache_slabs_raw(&mut req) }.map(|()| 0);
        expect_errno(&format!("CACHE_SLABS {what}"), got, want)
    };
    bad(
        "of an unknown cache",
        &|r| r.cache_id = u32::MAX,
        Errno::ENOENT,
    )?;
    bad("of cache 0", &|r| r.cache_id = 0, Errno::ENOENT)?;
    bad(
        "max_entries above the bound",
        &|r| r.max_entries = uapi::RKMEM_SLABS_MAX_ENTRIES + 1,
        Errno::EINVAL,
    )?;
    bad("reserved 1", &|r| r.reserved = 1, Errno::EINVAL)?;
    bad("entries NULL", &|r| r.entries = 0, Errno::EFAULT)?;
    bad(
        "entries at a kernel address",
        &|r| r.entries = 0xffff_8880_0000_0000,
        Errno::EFAULT,
    )?;
    // Another file does not see this file's cache.
    let other = open()?;
    expect_errno(
        "CACHE_SLABS of another file's cache",
        other.cache_slabs(arg.id).map(|_| 0),
        Errno::ENOENT,
    )?;
    for a in &objs[..n] {
        free(&d, a)?;
    }
    destroy(&d, arg.id)?;
    expect_errno(
        "CACHE_SLABS of a destroyed cache",
        d.cache_slabs(arg.id).map(|_| 0),
        Errno::ENOENT,
    )
}

fn cache_unknown_flags_are_einval() -> Result<(), String> {
    let d = open()?;
    for flags in [
        1u32 << 2,
        1 << 7,
        1 << 31,
        uapi::RKMEM_CACHE_CTOR | 1 << 2,
        u32::MAX,
    ] {
        let arg = RkmemCacheCreate {
            flags,
            ..good_arg("t_badflags")?
        };
        create_errno(&d, &format!("flags {flags:#x}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn cache_bad_ctor_bytes_are_einval() -> Result<(), String> {
    let d = open()?;
    for byte in [256u32, 0x1ff, 1 << 31, u32::MAX] {
        let arg = RkmemCacheCreate {
            flags: uapi::RKMEM_CACHE_CTOR,
            ctor_byte: byte,
            ..good_arg("t_badctor")?
        };
        create_errno(&d, &format!("ctor byte {byte:#x}"), arg, Errno::EINVAL)?;
    }
    // A constructor byte without the flag.
    for byte in [1u32, 0x5a, 0xff, 256] {
        let arg = RkmemCacheCreate {
            ctor_byte: byte,
            ..good_arg("t_badctor")?
        };
        create_errno(
            &d,
            &format!("ctor byte {byte:#x} without RKMEM_CACHE_CTOR"),
            arg,
            Errno::EINVAL,
        )?;
    }
    // The limits themselves are fine.
    for byte in [0u8, 0xff] {
        let c = create(&d, &spec("t_goodctor", 117, 1)?.with_ctor(byte))?;
        destroy(&d, c.id)?;
    }
    Ok(())
}

fn cache_taken_names_are_eexist() -> Result<(), String> {
    let d1 = open()?;
    let d2 = open()?;
    let c = create(&d1, &spec("t_taken", 117, 1)?)?;
    // Same name, same or another file, other geometry: names are global, like kmem_cache's.
    create_errno(&d1, "t_taken again", good_arg("t_taken")?, Errno::EEXIST)?;
    let other = spec("t_taken", 64, 64)?.to_arg();
    create_errno(&d2, "t_taken from another file", other, Errno::EEXIST)?;
    for (_, name) in CLASSES {
        create_errno(&d2, name, good_arg(name)?, Errno::EEXIST)?;
    }
    // Names are case-sensitive and compared whole.
    for name in ["T_taken", "t_taken_", "t_take", "rkmalloc-8k", "rkmalloc-"] {
        let c2 = create(&d2, &spec(name, 117, 1)?)?;
        destroy(&d2, c2.id)?;
    }
    destroy(&d1, c.id)?;
    // Free again once destroyed.
    let c = create(&d2, &spec("t_taken", 117, 1)?)?;
    destroy(&d2, c.id)
}

fn cache_count_limit_is_enospc() -> Result<(), String> {
    let existing = slabinfo()?.len().saturating_sub(CLASSES.len());
    let want = MAX_USER_CACHES.saturating_sub(existing);
    {
        let d = open()?;
        let mut made = Vec::new();
        let full = loop {
            if made.len() > MAX_USER_CACHES {
                break Err(format!(
                    "{} caches created, the limit is {MAX_USER_CACHES}",
                    made.len()
                ));
            }
            let name = format!("t_lim{}", made.len());
            match d.cache_create(&spec(&name, 16, 8)?) {
                Ok(c) => made.push(c),
                Err(Errno::ENOSPC) => break Ok(()),
                Err(e) => break Err(format!("create {name}: {e}")),
            }
        };
        full?;
        if made.len() != want {
            return Err(format!(
                "ENOSPC after {} caches ({existing} others alive), want {want}",
                made.len()
            ));
        }
        // Still ENOSPC with another name and from another file.
        create_errno(
            &open()?,
            "one too many",
            good_arg("t_lim_more")?,
            Errno::ENOSPC,
        )?;
        // slabinfo lists them all.
        let rows = slabinfo()?;
        let listed = rows.iter().filter(|r| r.name.starts_with("t_lim")).count();
        if listed != made.len() {
            return Err(format!(
                "{listed} t_lim rows in slabinfo for {} caches",
                made.len()
            ));
        }
        // One destroyed: room for one more.
        let last = made.pop().ok_or("no cache made")?;
        destroy(&d, last.id)?;
        let again = create(&d, &spec("t_lim_again", 16, 8)?)?;
        made.push(again);
        // Closing the file destroys them all.
    }
    let left = slabinfo()?
        .into_iter()
        .filter(|r| r.name.starts_with("t_lim"))
        .count();
    if left != 0 {
        return Err(format!("{left} t_lim caches still in slabinfo after close"));
    }
    Ok(())
}

fn cache_destroy_bad_args() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_destroy_args", 117, 1)?)?;
    // Id 0 is rkmalloc, 1..=12 the size classes (not this file's), the rest unknown.
    for id in [0u32, 1, 5, 12, 13, 99, c.id + 1000, u32::MAX] {
        if id == c.id {
            continue;
        }
        expect_errno(
            &format!("destroy id {id}"),
            d.cache_destroy(id).map(|()| 0),
            Errno::ENOENT,
        )?;
    }
    for reserved in [1u32, 0x8000_0000] {
        expect_errno(
            &format!("destroy with reserved {reserved:#x}"),
            d.cache_destroy_raw(&RkmemCacheId { id: c.id, reserved })
                .map(|()| 0),
            Errno::EINVAL,
        )?;
    }
    // The refused calls left the cache alone.
    if row_of("t_destroy_args")?.is_none() {
        return Err("cache gone after refused destroys".into());
    }
    let a = obj(&d, &c, 117)?;
    free(&d, &a)?;
    destroy(&d, c.id)
}

fn obj_alloc_bad_args() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_alloc_args", 117, 1)?)?;
    let cases = [
        (
            "flags 1 from a cache",
            RkmemObjAlloc {
                cache_id: c.id,
                flags: 1,
                ..Default::default()
            },
            Errno::EINVAL,
        ),
        (
            "flags 1 << 31 from rkmalloc",
            RkmemObjAlloc {
                flags: 1 << 31,
                size: 64,
                ..Default::default()
            },
            Errno::EINVAL,
        ),
        (
            "size 117 with a cache id",
            RkmemObjAlloc {
                cache_id: c.id,
                size: 117,
                ..Default::default()
            },
            Errno::EINVAL,
        ),
        (
            "size 1 with a cache id",
            RkmemObjAlloc {
                cache_id: c.id,
                size: 1,
                ..Default::default()
            },
            Errno::EINVAL,
        ),
        (
            "unknown cache id",
            RkmemObjAlloc {
                cache_id: c.id + 1000,
                ..Default::default()
            },
            Errno::ENOENT,
        ),
        (
            "cache id u32::MAX",
            RkmemObjAlloc {
                cache_id: u32::MAX,
                ..Default::default()
            },
            Errno::ENOENT,
        ),
        (
            "a size class's id",
            RkmemObjAlloc {
                cache_id: 1,
                ..Default::default()
            },
            Errno::ENOENT,
        ),
    ];
    for (what, arg, want) in cases {
        alloc_errno(&d, what, arg, want)?;
    }
    // Nothing was allocated by the refused calls: destroy is not EBUSY.
    destroy(&d, c.id)
}

// ---- objects ----

fn cache_objects_117() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_obj117", 117, 1)?)?;
    let n = 3 * c.objects_per_slab as usize;
    let mut objs: Vec<Alloc> = Vec::with_capacity(n);
    for _ in 0..n {
        let a = obj(&d, &c, 117)?;
        if objs.iter().any(|o| o.handle == a.handle) {
            return Err(format!("handle {:#x} given twice", a.handle));
        }
        objs.push(a);
    }
    // A pattern per object: if two objects overlapped, one would not read back.
    for a in &objs {
        fill(&d, a, pattern::key(a.handle, 117))?;
    }
    for a in &objs {
        verify(&d, a, pattern::key(a.handle, 117))?;
    }
    // The last byte, on its own.
    for (i, a) in objs.iter().enumerate().step_by(7) {
        let b = [i as u8 ^ 0xa5];
        d.write(a.handle, 116, &b)
            .map_err(|e| format!("write the last byte of {:#x}: {e}", a.handle))?;
        let mut back = [0u8];
        d.read(a.handle, 116, &mut back)
            .map_err(|e| format!("read the last byte of {:#x}: {e}", a.handle))?;
        if back != b {
            return Err(format!(
                "last byte of {:#x}: wrote {b:?}, read {back:?}",
                a.handle
            ));
        }
        let mut first = [0u8; 116];
        d.read(a.handle, 0, &mut first)
            .map_err(|e| format!("read {:#x}: {e}", a.handle))?;
        if let Some((at, want, got)) =
            pattern::first_mismatch(pattern::key(a.handle, 117), 0, &first)
        {
            return Err(format!(
                "writing the last byte of {:#x} changed byte {at}: {want:#04x} -> {got:#04x}",
                a.handle
            ));
        }
        // Put the pattern's last byte back: the object is verified again below.
        fill(&d, a, pattern::key(a.handle, 117))?;
    }
    // Free every other object, allocate them again (from the same slabs), all still intact.
    let mut kept = Vec::new();
    for (i, a) in objs.into_iter().enumerate() {
        if i % 2 == 0 {
            free(&d, &a)?;
        } else {
            kept.push(a);
        }
    }
    let mut again = Vec::new();
    for _ in 0..n / 2 {
        let a = obj(&d, &c, 117)?;
        fill(&d, &a, pattern::key(a.handle, 0x7117))?;
        again.push(a);
    }
    for a in &kept {
        verify(&d, a, pattern::key(a.handle, 117))?;
    }
    for a in &again {
        verify(&d, a, pattern::key(a.handle, 0x7117))?;
    }
    for a in kept.iter().chain(&again) {
        free(&d, a)?;
    }
    expect_errno(
        "free an object twice",
        d.free(kept[0].handle).map(|()| 0),
        Errno::ENOENT,
    )?;
    destroy(&d, c.id)
}

fn cache_object_io_bounds() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_bounds", 117, 1)?)?;
    let a = obj(&d, &c, 117)?;
    let mut buf = vec![0u8; 4096];
    let p = buf.as_mut_ptr() as u64;
    for (off, len) in [
        (117u64, 1u64),
        (116, 2),
        (0, 118),
        (0, 4096),
        (200, 1),
        (u64::MAX, 1),
        (1, u64::MAX),
    ] {
        let arg = RkmemIo {
            handle: a.handle,
            offset: off,
            len,
            buf: p,
        };
        io_errno(
            &d,
            &format!("{len} bytes at {off} of 117"),
            arg,
            Errno::EINVAL,
        )?;
    }
    // The whole object and its last byte are in bounds.
    d.write(a.handle, 0, &buf[..117])
        .map_err(|e| format!("write 117 bytes: {e}"))?;
    d.read(a.handle, 116, &mut buf[..1])
        .map_err(|e| format!("read the last byte: {e}"))?;
    free(&d, &a)?;
    destroy(&d, c.id)
}

fn cache_of_another_file_is_enoent() -> Result<(), String> {
    let d1 = open()?;
    let d2 = open()?;
    let c = create(&d1, &spec("t_foreign", 117, 1)?)?;
    let a = obj(&d1, &c, 117)?;
    expect_errno(
        "alloc from another file's cache",
        d2.obj_alloc(c.id).map(|_| 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "destroy another file's cache",
        d2.cache_destroy(c.id).map(|()| 0),
        Errno::ENOENT,
    )?;
    let mut buf = [0u8; 8];
    expect_errno(
        "read another file's object",
        d2.read(a.handle, 0, &mut buf).map(|()| 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "free another file's object",
        d2.free(a.handle).map(|()| 0),
        Errno::ENOENT,
    )?;
    // The owner still has both.
    d1.write(a.handle, 0, b"still mine")
        .map_err(|e| format!("owner's write: {e}"))?;
    free(&d1, &a)?;
    destroy(&d1, c.id)
}

fn cache_destroy_with_objects_is_ebusy() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_busy", 117, 1)?)?;
    let held = (0..3)
        .map(|_| obj(&d, &c, 117))
        .collect::<Result<Vec<_>, _>>()?;
    expect_errno(
        "destroy with 3 objects allocated",
        d.cache_destroy(c.id).map(|()| 0),
        Errno::EBUSY,
    )?;
    // The cache stays, usable, with its objects intact.
    if row_of("t_busy")?.is_none() {
        return Err("the cache left slabinfo after a refused destroy".into());
    }
    for a in &held {
        fill(&d, a, a.handle)?;
    }
    let extra = obj(&d, &c, 117)?;
    free(&d, &extra)?;
    for (i, a) in held.iter().enumerate() {
        expect_errno(
            &format!("destroy with {} object(s) allocated", held.len() - i),
            d.cache_destroy(c.id).map(|()| 0),
            Errno::EBUSY,
        )?;
        verify(&d, a, a.handle)?;
        free(&d, a)?;
    }
    // Freed objects wait in the per-CPU cache; destroy must not count them as allocated.
    destroy(&d, c.id)?;
    if row_of("t_busy")?.is_some() {
        return Err("t_busy still in slabinfo after destroy".into());
    }
    expect_errno(
        "alloc after destroy",
        d.obj_alloc(c.id).map(|_| 0),
        Errno::ENOENT,
    )
}

fn cache_ctor_fills_new_objects() -> Result<(), String> {
    let d = open()?;
    for (name, size, align, byte) in [
        ("t_ctor5a", 117u32, 1u32, 0x5au8),
        ("t_ctorff", 4096, 64, 0xff),
        ("t_ctor00", 33, 8, 0x00),
    ] {
        let c = create(&d, &spec(name, size, align)?.with_ctor(byte))?;
        let n = c.objects_per_slab as usize + 5;
        for round in 0..2 {
            let mut objs = Vec::with_capacity(n);
            for _ in 0..n {
                let a = obj(&d, &c, size)?;
                let mut buf = vec![0u8; size as usize];
                d.read(a.handle, 0, &mut buf)
                    .map_err(|e| format!("{name}: read a new object: {e}"))?;
                if let Some(at) = buf.iter().position(|&b| b != byte) {
                    return Err(format!(
                        "{name} (round {round}): byte {at} of a new object is {:#04x}, the constructor fills {byte:#04x}",
                        buf[at]
                    ));
                }
                // Scribble over it: the next owner must get a constructed object again.
                fill(&d, &a, a.handle ^ 0xc7)?;
                objs.push(a);
            }
            for a in &objs {
                free(&d, a)?;
            }
            if round == 0 {
                // Also through the slabs, not only the per-CPU cache.
                trim_slabs(&d)?;
            }
        }
        destroy(&d, c.id)?;
    }
    Ok(())
}

// ---- rkmalloc ----

/// The slabinfo row of cache `name`: (active objects, slabs).
fn slab_row(name: &str) -> Result<(u64, u64), String> {
    let rows = procfs::slabinfo()?;
    let r = rows
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("no slabinfo row {name}"))?;
    Ok((r.active_objs, r.num_slabs))
}

/// A counter of `/proc/rkmem/compaction`.
fn compaction_counter(name: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/rkmem/compaction")
        .map_err(|e| format!("/proc/rkmem/compaction: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .ok_or_else(|| format!("no {name} in /proc/rkmem/compaction: {text}"))
}

/// The `/proc/rkmem/occupancy` row of cache `name`: slabs per bucket.
fn occupancy_row(name: &str) -> Result<Vec<u64>, String> {
    let text = std::fs::read_to_string("/proc/rkmem/occupancy")
        .map_err(|e| format!("/proc/rkmem/occupancy: {e}"))?;
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .ok_or_else(|| format!("no row {name} in /proc/rkmem/occupancy: {text}"))?;
    let v: Vec<u64> = row
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().map_err(|_| format!("bad occupancy row: {row}")))
        .collect::<Result<_, _>>()?;
    if v.len() != 11 {
        return Err(format!("occupancy row of {} buckets: {row}", v.len()));
    }
    Ok(v)
}

/// Fill 12 slabs, free a random 90% of the objects (each keeps its pattern), compact: the
/// survivors fit in 2 slabs, so at least 9 slabs go back; every survivor reads back intact
/// through its unchanged handle; a second compaction finds nothing to do.
fn compact_moves_objects_keeps_bytes_frees_slabs() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_compact", 200, 8)?)?;
    let per = c.objects_per_slab as usize;
    let n = 12 * per;
    let mut objs = Vec::with_capacity(n);
    for _ in 0..n {
        let a = obj(&d, &c, 200)?;
        fill(&d, &a, pattern::key(a.handle, 0xc0))?;
        objs.push(a);
    }
    let mut rng = pattern::Rng::new(0x5eed);
    let mut kept = Vec::new();
    for a in objs {
        if rng.below(10) == 0 {
            kept.push(a);
        } else {
            free(&d, &a)?;
        }
    }
    let (_, slabs_before) = slab_row("t_compact")?;
    let moved_before = compaction_counter("compact_objects_moved")?;
    let r = d
        .compact(uapi::RKMEM_COMPACT_SLABS)
        .map_err(|e| format!("compact: {e}"))?;
    let (active, slabs_after) = slab_row("t_compact")?;
    let moved = compaction_counter("compact_objects_moved")? - moved_before;
    if moved != r.objects_moved {
        return Err(format!(
            "/proc/rkmem/compaction counted {moved} moves, answer {r:?}"
        ));
    }
    // After: every slab but at most one is full (the survivors packed).
    let occ = occupancy_row("t_compact")?;
    if occ.iter().sum::<u64>() != slabs_after || occ[10] + 1 < slabs_after {
        return Err(format!(
            "occupancy {occ:?} for {slabs_after} slabs after compacting"
        ));
    }
    let live = kept.len();
    let want = live.div_ceil(per) as u64;
    if slabs_after != want || active != kept.len() as u64 {
        return Err(format!(
            "after compacting {live} objects ({per} per slab): {slabs_after} slabs (want {want}), \
             {active} active; before {slabs_before} slabs; answer {r:?}"
        ));
    }
    if r.slabs_freed < slabs_before - want || r.objects_moved == 0 || r.caches == 0 {
        return Err(format!(
            "compact answered {r:?} for {slabs_before} -> {slabs_after} slabs"
        ));
    }
    for a in &kept {
        verify(&d, a, pattern::key(a.handle, 0xc0))?;
    }
    let again = d
        .compact(uapi::RKMEM_COMPACT_SLABS)
        .map_err(|e| format!("compact again: {e}"))?;
    if again.objects_moved != 0 || again.slabs_freed != 0 {
        return Err(format!("a second compaction did something: {again:?}"));
    }
    for a in &kept {
        free(&d, a)?;
    }
    Ok(())
}

/// Elements of a mempool over a cache are pinned: their slabs are left where they are (the
/// answer counts them), nothing moves, and every element keeps its bytes.
fn compact_leaves_pool_elements_pinned() -> Result<(), String> {
    let d = open()?;
    let c = create(&d, &spec("t_compact_pin", 200, 8)?)?;
    let per = c.objects_per_slab as usize;
    let pool = d
        .pool_create(PoolSource::Cache(c.id), 1, 0)
        .map_err(|e| format!("pool create: {e}"))?;
    let mut elems = Vec::new();
    for _ in 0..12 * per {
        let a = d
            .pool_alloc(pool, false)
            .map_err(|e| format!("pool alloc: {e}"))?;
        fill(&d, &a, pattern::key(a.handle, 0x9))?;
        elems.push(a);
    }
    let mut rng = pattern::Rng::new(0x9197);
    let mut kept = Vec::new();
    for a in elems {
        if rng.below(10) == 0 {
            kept.push(a);
        } else {
            free(&d, &a)?;
        }
    }
    let (_, slabs_before) = slab_row("t_compact_pin")?;
    let r = d
        .compact(uapi::RKMEM_COMPACT_SLABS)
        .map_err(|e| format!("compact: {e}"))?;
    let (_, slabs_after) = slab_row("t_compact_pin")?;
    if r.pinned_skips == 0 || r.objects_moved != 0 {
        return Err(format!("pool elements: {r:?}"));
    }
    // Empty slabs may go back; none that holds an element.
    let want = kept.len().div_ceil(per) as u64;
    if slabs_after < want || slabs_after > slabs_before {
        return Err(format!("{slabs_before} -> {slabs_after} slabs: {r:?}"));
    }
    for a in &kept {
        verify(&d, a, pattern::key(a.handle, 0x9))?;
        free(&d, a)?;
    }
    d.pool_destroy(pool)
        .map_err(|e| format!("pool destroy: {e}"))?;
    Ok(())
}

/// Compaction looping on one CPU while two threads of the same file allocate, write, verify
/// and free objects of its cache on the others: every object reads back what was written into
/// it, whichever copy the read saw; at the end nothing is lost.
fn compact_while_the_file_is_in_use() -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let d = open()?;
    let c = create(&d, &spec("t_compact_busy", 96, 8)?)?;
    let stop = AtomicBool::new(false);
    let (d, c, stop) = (&d, &c, &stop);
    let (moved, results) = std::thread::scope(|sc| {
        let compactor = sc.spawn(move || -> Result<u64, String> {
            let mut moved = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = d
                    .compact(uapi::RKMEM_COMPACT_SLABS)
                    .map_err(|e| format!("compact: {e}"))?;
                moved += r.objects_moved;
            }
            Ok(moved)
        });
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                sc.spawn(move || -> Result<(), String> {
                    let mut rng = pattern::Rng::new(0xc0 + t);
                    let mut live: Vec<(Alloc, u64)> = Vec::new();
                    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
                    let mut n = 0u64;
                    while std::time::Instant::now() < end {
                        n += 1;
                        if live.len() < 400 && rng.below(3) != 0 {
                            let a = obj(d, c, 96)?;
                            let key = pattern::key(a.handle, n);
                            fill(d, &a, key)?;
                            live.push((a, key));
                        } else if !live.is_empty() {
                            let i = rng.below(live.len() as u64) as usize;
                            let (a, key) = live.swap_remove(i);
                            verify(d, &a, key)?;
                            free(d, &a)?;
                        }
                        if !live.is_empty() && rng.below(4) == 0 {
                            let (a, key) = &live[rng.below(live.len() as u64) as usize];
                            verify(d, a, *key)?;
                        }
                    }
                    for (a, key) in &live {
                        verify(d, a, *key)?;
                        free(d, a)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let results: Vec<Result<(), String>> = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect();
        stop.store(true, Ordering::Relaxed);
        let moved = compactor
            .join()
            .unwrap_or_else(|_| Err("the compactor panicked".into()));
        (moved, results)
    });
    for r in results {
        r?;
    }
    let moved = moved?;
    println!("# compaction moved {moved} objects while two threads used the file");
    // Freed objects sit in the per-CPU arrays (counted active, as SLUB counts them): a last
    // compaction drains them.
    d.compact(uapi::RKMEM_COMPACT_SLABS)
        .map_err(|e| format!("compact: {e}"))?;
    let (active, _) = slab_row("t_compact_busy")?;
    if active != 0 {
        return Err(format!("{active} objects left after every one was freed"));
    }
    Ok(())
}

/// Unknown flags, no flag or a nonzero reserved or pad field are EINVAL.
fn compact_bad_args() -> Result<(), String> {
    let d = open()?;
    for (flags, reserved, want) in [
        (0, 0, Errno::EINVAL),
        (4, 0, Errno::EINVAL),
        (uapi::RKMEM_COMPACT_SLABS, 1, Errno::EINVAL),
        (uapi::RKMEM_COMPACT_ARENA | 8, 0, Errno::EINVAL),
    ] {
        let mut a = uapi::RkmemCompact {
            flags,
            reserved,
            ..Default::default()
        };
        match d.compact_raw(&mut a) {
            Err(e) if e == want => {}
            other => {
                return Err(format!(
                    "compact flags {flags} reserved {reserved}: {other:?}"
                ))
            }
        }
    }
    let mut a = uapi::RkmemCompact {
        flags: uapi::RKMEM_COMPACT_SLABS,
        pad: 1,
        ..Default::default()
    };
    if d.compact_raw(&mut a) != Err(Errno::EINVAL) {
        return Err("compact with a nonzero pad was not EINVAL".into());
    }
    // No caches and no allocations: nothing moves (the size classes are looked at), and that
    // is no error.
    let r = d
        .compact(uapi::RKMEM_COMPACT_SLABS)
        .map_err(|e| format!("compact: {e}"))?;
    let classes = CLASSES.len() as u32;
    if r.objects_moved != 0 || r.caches != classes {
        return Err(format!(
            "compact of a file without caches: {r:?} (want {classes} caches: the classes)"
        ));
    }
    Ok(())
}

/// `RKMEM_IOC_ROUTES`: a size of 0 or above `RKMEM_ROUTES_MAX` and a nonzero reserved field
/// are `EINVAL`, and the refused call writes nothing back.
fn routes_bad_input_is_einval() -> Result<(), String> {
    let d = open()?;
    let v = d.version().map_err(|e| format!("version: {e}"))?;
    if v.features & uapi::RKMEM_FEAT_ROUTES == 0 {
        return Err(format!("features {:#x} lack RKMEM_FEAT_ROUTES", v.features));
    }
    let max = uapi::RKMEM_ROUTES_MAX;
    let cases = [
        (0, 0),
        (max + 1, 0),
        (u64::MAX, 0),
        (1 << 63, 0),
        (100, 1),
        (100, 1 << 63),
        (0, 1),
    ];
    for (size, reserved) in cases {
        let mut arg = uapi::RkmemRoutes {
            size,
            reserved,
            page_size: 0xdead,
            ..Default::default()
        };
        arg.kmalloc.bytes = 7;
        let before = arg;
        expect_errno(
            &format!("ROUTES size {size} reserved {reserved:#x}"),
            d.routes_raw(&mut arg).map(|()| 0),
            Errno::EINVAL,
        )?;
        if arg != before {
            return Err(format!(
                "ROUTES size {size} reserved {reserved:#x}: refused, yet wrote {arg:?}"
            ));
        }
    }
    Ok(())
}

/// `RKMEM_IOC_ROUTES` of a slab size, a page size and the largest: every route answers with
/// its kind, bytes at least the size, reserved fields zero, the out fields given in ignored;
/// no page of rkmem's arena is held after the page sizes (rkmalloc's blocks and exact pages;
/// the slab size may leave its class a new, empty slab, as a kmalloc cache keeps one).
fn routes_answers_every_route() -> Result<(), String> {
    let d = open()?;
    let held = || -> Result<u64, String> {
        Ok(procfs::stat("page_allocs")?.saturating_sub(procfs::stat("page_frees")?))
    };
    let mut held_before = held()?;
    for size in [100, 5 * PAGE_SIZE, 100_000, uapi::RKMEM_ROUTES_MAX] {
        if size == 5 * PAGE_SIZE {
            held_before = held()?;
        }
        let mut arg = uapi::RkmemRoutes {
            size,
            kmalloc_max_size: 3,
            ..Default::default()
        };
        arg.vmalloc.kind = 99;
        arg.order.reserved = 5;
        d.routes_raw(&mut arg)
            .map_err(|e| format!("ROUTES {size}: {e}"))?;
        let what = format!("ROUTES {size}: {arg:?}");
        let routes = [
            ("kmalloc", arg.kmalloc),
            ("vmalloc", arg.vmalloc),
            ("kvmalloc", arg.kvmalloc),
            ("rkmalloc", arg.rkmalloc),
            ("exact", arg.exact),
            ("order", arg.order),
        ];
        let beyond = size > arg.kmalloc_max_size;
        for (name, r) in routes {
            let not_taken = beyond && matches!(name, "kmalloc" | "exact" | "order");
            let ok = r.reserved == 0
                && if not_taken {
                    r == uapi::RkmemRoute::default()
                } else {
                    r.kind != uapi::RKMEM_ROUTE_NONE
                        && r.bytes >= size
                        && r.bytes < 2 * size + PAGE_SIZE
                };
            if !ok {
                return Err(format!("{what}: route {name} is {r:?}"));
            }
        }
        let vm = arg.vmalloc;
        if (vm.kind, vm.bytes, vm.guard)
            != (
                uapi::RKMEM_ROUTE_VMALLOC,
                size.div_ceil(PAGE_SIZE) * PAGE_SIZE,
                PAGE_SIZE as u32,
            )
        {
            return Err(format!(
                "{what}: vmalloc is not the size in pages and a guard page"
            ));
        }
        if (arg.size, arg.reserved, arg.page_size) != (size, 0, PAGE_SIZE as u32)
            || arg.kmalloc_max_cache_size != 2 * PAGE_SIZE as u32
            || arg.kmalloc_max_size != 4 * MIB
        {
            return Err(format!("{what}: the echo or the host's limits"));
        }
        if !beyond
            && (arg.exact.flags, arg.order.flags, arg.exact.bytes)
                != (
                    uapi::RKMEM_ROUTE_EXACT,
                    0,
                    size.div_ceil(PAGE_SIZE) * PAGE_SIZE,
                )
        {
            return Err(format!("{what}: alloc_pages_exact or the block"));
        }
        if beyond
            && (arg.kvmalloc.kind, arg.rkmalloc.kind)
                != (uapi::RKMEM_ROUTE_VMALLOC, uapi::RKMEM_ROUTE_VMALLOC)
        {
            return Err(format!(
                "{what}: kvmalloc and rkmalloc beyond KMALLOC_MAX_SIZE are not vmalloc"
            ));
        }
    }
    let held_after = held()?;
    if held_after != held_before {
        return Err(format!(
            "rkmem's arena holds {held_before} pages before RKMEM_IOC_ROUTES and {held_after} after"
        ));
    }
    Ok(())
}

fn rkmalloc_usable_sizes() -> Result<(), String> {
    let d = open()?;
    let cases: [(u64, u64); 27] = [
        (1, 8),
        (8, 8),
        (9, 16),
        (17, 32),
        (33, 64),
        (64, 64),
        (65, 96),
        (96, 96),
        (97, 128),
        (129, 192),
        (192, 192),
        (193, 256),
        (257, 512),
        (1000, 1024),
        (1025, 2048),
        (2049, 4096),
        (4096, 4096),
        (4097, 8192),
        (8192, 8192),
        (8193, 16384),
        (100_000, 102_400),
        (4 * MIB - 1, 4 * MIB),
        (4 * MIB, 4 * MIB),
        (4 * MIB + 1, 4 * MIB + 1),
        (5 * MIB + 3, 5 * MIB + 3),
        (uapi::RKMEM_RKMALLOC_MAX - 1, uapi::RKMEM_RKMALLOC_MAX - 1),
        (uapi::RKMEM_RKMALLOC_MAX, uapi::RKMEM_RKMALLOC_MAX),
    ];
    for (size, want) in cases {
        if dev::rkmalloc_bytes(size) != Some(want) {
            return Err(format!("test bug: rkmalloc_bytes({size}) is not {want}"));
        }
        let a = d
            .rkmalloc(size)
            .map_err(|e| format!("rkmalloc {size}: {e}"))?;
        if a.bytes != want {
            let _ = d.free(a.handle);
            return Err(format!(
                "rkmalloc {size}: {} usable bytes, want {want}",
                a.bytes
            ));
        }
        // First and last usable byte; nothing beyond.
        for off in [0, want - 1] {
            let b = [(off as u8) ^ 0x3c];
            d.write(a.handle, off, &b)
                .map_err(|e| format!("rkmalloc {size}: write byte {off}: {e}"))?;
            let mut back = [0u8];
            d.read(a.handle, off, &mut back)
                .map_err(|e| format!("rkmalloc {size}: read byte {off}: {e}"))?;
            if back != b {
                return Err(format!(
                    "rkmalloc {size}: byte {off} wrote {b:?}, read {back:?}"
                ));
            }
        }
        let mut one = [0u8];
        let arg = RkmemIo {
            handle: a.handle,
            offset: want,
            len: 1,
            buf: one.as_mut_ptr() as u64,
        };
        io_errno(
            &d,
            &format!("byte {want} of rkmalloc {size}"),
            arg,
            Errno::EINVAL,
        )?;
        free(&d, &a)?;
    }
    Ok(())
}

fn rkmalloc_bad_sizes_are_einval() -> Result<(), String> {
    let d = open()?;
    for size in [
        0,
        uapi::RKMEM_RKMALLOC_MAX + 1,
        uapi::RKMEM_RKMALLOC_MAX * 2,
        1 << 40,
        1 << 63,
        u64::MAX,
    ] {
        let arg = RkmemObjAlloc {
            size,
            ..Default::default()
        };
        alloc_errno(&d, &format!("rkmalloc {size}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn rkmalloc_objects_round_trip() -> Result<(), String> {
    let d = open()?;
    // Several objects of every class and a few page and vmalloc allocations, all held at once.
    let mut held = Vec::new();
    for (class, _) in CLASSES {
        for size in [class, class - class / 4, 1 + class / 2] {
            for _ in 0..5 {
                let a = d
                    .rkmalloc(size)
                    .map_err(|e| format!("rkmalloc {size}: {e}"))?;
                held.push(a);
            }
        }
    }
    for size in [4097, 3 * PAGE_SIZE, 65 * PAGE_SIZE + 1, 4 * MIB + 4097] {
        held.push(
            d.rkmalloc(size)
                .map_err(|e| format!("rkmalloc {size}: {e}"))?,
        );
    }
    for a in &held {
        fill(&d, a, pattern::key(a.handle, 0x7a11))?;
    }
    for a in &held {
        verify(&d, a, pattern::key(a.handle, 0x7a11))?;
    }
    for a in &held {
        free(&d, a)?;
    }
    Ok(())
}

fn rkmalloc_class_rows_count() -> Result<(), String> {
    let d = open()?;
    trim_slabs(&d)?;
    for (class, name) in CLASSES {
        let before = row(name)?;
        let n = 2 * before.objperslab as u64 + 3;
        let held = (0..n)
            .map(|i| {
                d.rkmalloc(class - i % 3)
                    .map_err(|e| format!("rkmalloc {}: {e}", class - i % 3))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(a) = held.iter().find(|a| a.bytes != class) {
            return Err(format!(
                "{name}: an allocation has {} usable bytes",
                a.bytes
            ));
        }
        let during = row(name)?;
        let cached = CPU_CAP * ncpus() + DEPOT_CAP;
        if during.active_objs < before.active_objs + n
            || during.active_objs > before.active_objs + n + cached
        {
            return Err(format!(
                "{name}: active_objs {} -> {} while {n} more are held (per-CPU caches hold at most {cached})",
                before.active_objs, during.active_objs
            ));
        }
        trim_slabs(&d)?;
        let exact = row(name)?;
        if exact.active_objs != before.active_objs + n {
            return Err(format!(
                "{name}: active_objs {} after TRIM_SLABS with {n} held, {} before",
                exact.active_objs, before.active_objs
            ));
        }
        for a in &held {
            free(&d, a)?;
        }
        trim_slabs(&d)?;
        let after = row(name)?;
        if after.active_objs != before.active_objs || after.num_slabs > before.num_slabs {
            return Err(format!(
                "{name}: after freeing and trimming active_objs {} num_slabs {}, before {} {}",
                after.active_objs, after.num_slabs, before.active_objs, before.num_slabs
            ));
        }
    }
    Ok(())
}

// ---- /proc/rkmem/slabinfo ----

fn slabinfo_format_and_classes() -> Result<(), String> {
    let d = open()?;
    let debug = debug_mode()?;
    let kasan = kasan_mode()?;
    let rows = slabinfo()?;
    let classes: Vec<&SlabRow> = rows
        .iter()
        .filter(|r| r.name.starts_with("rkmalloc-"))
        .collect();
    if classes.len() != CLASSES.len() {
        return Err(format!(
            "{} rkmalloc-* rows, want {}",
            classes.len(),
            CLASSES.len()
        ));
    }
    for (size, name) in CLASSES {
        let r = classes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("no {name} row"))?;
        let objsize_ok = if debug {
            u64::from(r.objsize) > size
        } else if kasan {
            // A red-zone granule after the class size (and the class alignment).
            u64::from(r.objsize) >= size + 8 && r.objsize % 8 == 0
        } else {
            u64::from(r.objsize) == size
        };
        let tunables_ok = if debug {
            (r.limit, r.batchcount, r.sharedfactor, r.sharedavail) == (0, 0, 0, 0)
        } else {
            // Sized by the slot (the object's size, or with KASAN its red-zoned slot).
            let (limit, batch) = cpu_tunables(u64::from(r.objsize));
            (r.limit, r.batchcount, r.sharedfactor) == (limit, batch, DEPOT_FACTOR)
                && r.sharedavail <= u64::from(DEPOT_FACTOR * batch)
                && r.sharedavail % u64::from(batch) == 0
        };
        if !objsize_ok || !tunables_ok {
            return Err(format!("{name}: {}", procfs::format_slab_row(r).trim_end()));
        }
    }
    // With objects held in a user cache and in the classes, the text still parses.
    let c = create(&d, &spec("t_format", 117, 1)?)?;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(obj(&d, &c, 117)?);
        held.push(d.rkmalloc(100).map_err(|e| format!("rkmalloc 100: {e}"))?);
    }
    let rows = slabinfo()?;
    if rows.len() < CLASSES.len() + 1 {
        return Err(format!("{} rows with a user cache alive", rows.len()));
    }
    Ok(())
}

fn slabinfo_user_caches_first() -> Result<(), String> {
    let d = open()?;
    create(&d, &spec("t_first_a", 117, 1)?)?;
    create(&d, &spec("t_first_b", 64, 8)?)?;
    let rows = slabinfo()?;
    let pos = |name: &str| rows.iter().position(|r| r.name == name);
    let (a, b) = match (pos("t_first_a"), pos("t_first_b")) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err("a user cache has no row".into()),
    };
    let first_class = rows
        .iter()
        .position(|r| r.name.starts_with("rkmalloc-"))
        .ok_or("no rkmalloc rows")?;
    if a > first_class || b > first_class {
        return Err(format!(
            "user caches at rows {a} and {b}, the first size class at {first_class}"
        ));
    }
    if rows[first_class..]
        .iter()
        .any(|r| !r.name.starts_with("rkmalloc-"))
    {
        return Err("a user cache is listed among the size classes".into());
    }
    Ok(())
}

fn slabinfo_counts_held_objects() -> Result<(), String> {
    let d = open()?;
    let debug = debug_mode()?;
    let c = create(&d, &spec("t_count", 117, 1)?)?;
    let per = u64::from(c.objects_per_slab);
    let mut held = (0..50)
        .map(|_| obj(&d, &c, 117))
        .collect::<Result<Vec<_>, _>>()?;
    let check = |held: u64, trimmed: bool| -> Result<(), String> {
        let r = row("t_count")?;
        let what = format!(
            "{held} held{}: {}",
            if trimmed { ", after TRIM_SLABS" } else { "" },
            procfs::format_slab_row(&r).trim_end()
        );
        if (
            u64::from(r.objsize),
            u64::from(r.objperslab),
            r.pagesperslab,
        ) != (u64::from(c.objsize), per, c.pages_per_slab)
        {
            return Err(format!("geometry differs from the create answer: {what}"));
        }
        // Objects in the per-CPU caches count as active until a trim puts them back.
        let cached = if trimmed || debug {
            0
        } else {
            CPU_CAP * ncpus() + DEPOT_CAP
        };
        if r.active_objs < held || r.active_objs > held + cached {
            return Err(format!(
                "active_objs is not {held} (+ at most {cached} per-CPU): {what}"
            ));
        }
        if r.num_objs != r.num_slabs * per || r.active_slabs < held.div_ceil(per) {
            return Err(format!("slab counts do not fit: {what}"));
        }
        // A trim gives every empty slab back.
        if trimmed && r.num_slabs != r.active_slabs {
            return Err(format!("empty slabs left after TRIM_SLABS: {what}"));
        }
        Ok(())
    };
    check(50, false)?;
    trim_slabs(&d)?;
    check(50, true)?;
    for a in held.drain(..20) {
        free(&d, &a)?;
    }
    check(30, false)?;
    trim_slabs(&d)?;
    check(30, true)?;
    for a in held.drain(..) {
        free(&d, &a)?;
    }
    trim_slabs(&d)?;
    check(0, true)?;
    let r = row("t_count")?;
    if (r.num_objs, r.num_slabs) != (0, 0) {
        return Err(format!("an idle trimmed cache still has slabs: {r:?}"));
    }
    destroy(&d, c.id)
}

fn slab_close_destroys_caches() -> Result<(), String> {
    let open_files = procfs::stat("open_files")?;
    {
        let d = open()?;
        let c1 = create(&d, &spec("t_close_a", 117, 1)?)?;
        let c2 = create(&d, &spec("t_close_b", 4096, 64)?.with_ctor(0x11))?;
        for _ in 0..40 {
            let a = obj(&d, &c1, 117)?;
            fill(&d, &a, a.handle)?;
            obj(&d, &c2, 4096)?;
            d.rkmalloc(200).map_err(|e| format!("rkmalloc 200: {e}"))?;
        }
        d.rkmalloc(5 * PAGE_SIZE)
            .map_err(|e| format!("rkmalloc 5 pages: {e}"))?;
        d.rkmalloc(4 * MIB + 1)
            .map_err(|e| format!("rkmalloc 4 MiB + 1: {e}"))?;
        for name in ["t_close_a", "t_close_b"] {
            if row(name)?.active_objs < 40 {
                return Err(format!("{name}: fewer than 40 active objects while held"));
            }
        }
        // The file is closed here, holding everything.
    }
    for name in ["t_close_a", "t_close_b"] {
        if let Some(r) = row_of(name)? {
            return Err(format!(
                "{name} still in slabinfo after its file was closed: {}",
                procfs::format_slab_row(&r).trim_end()
            ));
        }
    }
    let now = procfs::stat("open_files")?;
    if now != open_files {
        return Err(format!("open_files {open_files} before, {now} after close"));
    }
    // The names are free for anyone.
    let d = open()?;
    let c = create(&d, &spec("t_close_a", 8, 8)?)?;
    destroy(&d, c.id)
}

/// Allocates a mix from three caches of `d` and from rkmalloc: objects of every class, whole
/// pages, vmalloc.
fn slab_mix(d: &Device, tag: &str) -> Result<(Vec<CacheInfo>, Vec<Alloc>), String> {
    let mut caches = Vec::new();
    let mut held = Vec::new();
    for (i, (size, align, ctor)) in [(117u32, 1u32, None), (4096, 64, Some(0x5a)), (8, 8, None)]
        .into_iter()
        .enumerate()
    {
        let mut s = spec(&format!("t_mix{tag}{i}"), size, align)?;
        if let Some(b) = ctor {
            s = s.with_ctor(b);
        }
        let c = create(d, &s)?;
        for _ in 0..150 {
            held.push(obj(d, &c, size)?);
        }
        caches.push(c);
    }
    for (class, _) in CLASSES {
        for _ in 0..20 {
            held.push(
                d.rkmalloc(class)
                    .map_err(|e| format!("rkmalloc {class}: {e}"))?,
            );
        }
    }
    for size in [4097, 7 * PAGE_SIZE, 300 * PAGE_SIZE, 4 * MIB, 6 * MIB] {
        held.push(
            d.rkmalloc(size)
                .map_err(|e| format!("rkmalloc {size}: {e}"))?,
        );
    }
    Ok((caches, held))
}

fn slab_free_all_and_trim_restores_buddyinfo() -> Result<(), String> {
    let initial = procfs::stat("arena_initial_mb")?;
    let want = procfs::load_time_buddyinfo(initial);
    let d = open()?;
    trim_all(&d)?;
    let start = procfs::buddyinfo()?;
    if start != want {
        return Err(format!(
            "before the test, with nothing held and everything trimmed, buddyinfo is {start:?}, want the load-time {want:?}"
        ));
    }
    // Freed one by one (in an order unlike the allocation order), caches destroyed.
    let (caches, held) = slab_mix(&d, "f")?;
    if procfs::buddyinfo()? == start {
        return Err("buddyinfo did not change while slabs were held".into());
    }
    for a in held.iter().step_by(2).chain(held.iter().skip(1).step_by(2)) {
        free(&d, a)?;
    }
    for c in &caches {
        destroy(&d, c.id)?;
    }
    trim_all(&d)?;
    let end = procfs::buddyinfo()?;
    if end != want {
        return Err(format!(
            "after freeing everything, destroying the caches and trimming (slabs, pcp, arena) buddyinfo is {end:?}, want the load-time {want:?}"
        ));
    }
    // Left to the release of the file.
    {
        let d2 = open()?;
        slab_mix(&d2, "c")?;
    }
    trim_all(&d)?;
    let end = procfs::buddyinfo()?;
    if end != want {
        return Err(format!(
            "after closing a file that held caches, objects and rkmalloc memory, and a trim, buddyinfo is {end:?}, want {want:?}"
        ));
    }
    let rows = slabinfo()?;
    if let Some(r) = rows.iter().find(|r| r.active_objs != 0 || r.num_slabs != 0) {
        return Err(format!(
            "with nothing held and everything trimmed: {}",
            procfs::format_slab_row(r).trim_end()
        ));
    }
    Ok(())
}
