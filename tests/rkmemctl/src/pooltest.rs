// SPDX-License-Identifier: GPL-2.0

//! In-guest tests of mempools (`RKMEM_IOC_POOL_*`, `/proc/rkmem/mempools`), run by
//! `rkmemctl test` after the slab caches' tests, and the guarantee test that `rkmemctl pool
//! stress` also runs.
//!
//! Each test opens its own files; closing them destroys the pools and caches they created, so a
//! failed test leaves nothing behind for the next one. Cache names start with `t_p`.

use crate::dev::{Alloc, CacheSpec, Device, PoolSource, PAGE_SIZE};
use crate::pattern;
use crate::pool::{self, FailingSource, PoolRow};
use crate::procfs;
use crate::selftest::{self, expect_errno, open, trim_all, TestFn};
use crate::uapi::{self, RkmemPoolAlloc, RkmemPoolCreate, RkmemPoolId};
use nix::errno::Errno;
use nix::libc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) const TESTS: &[(&str, TestFn)] = &[
    ("features_include_mempool", features_include_mempool),
    (
        "pool_ioctls_wrong_size_are_enotty",
        pool_ioctls_wrong_size_are_enotty,
    ),
    (
        "pool_ioctls_bad_pointers_are_efault",
        pool_ioctls_bad_pointers_are_efault,
    ),
    ("pool_create_bad_args", pool_create_bad_args),
    ("pool_create_cache_enoent", pool_create_cache_enoent),
    ("pool_alloc_bad_args", pool_alloc_bad_args),
    ("pool_resize_bad_args", pool_resize_bad_args),
    ("pool_destroy_bad_args", pool_destroy_bad_args),
    ("pool_sources_rows_and_bytes", pool_sources_rows_and_bytes),
    ("pool_elements_are_handles", pool_elements_are_handles),
    ("pool_source_serves_first", pool_source_serves_first),
    (
        "pool_reserve_with_failing_source",
        pool_reserve_with_failing_source,
    ),
    ("pool_resize_down_and_up", pool_resize_down_and_up),
    (
        "pool_destroy_with_element_out_is_ebusy",
        pool_destroy_with_element_out_is_ebusy,
    ),
    ("pool_sleeper_woken_by_free", pool_sleeper_woken_by_free),
    ("pool_sleeper_signal_is_eintr", pool_sleeper_signal_is_eintr),
    ("pool_close_removes_rows", pool_close_removes_rows),
    (
        "pool_guarantee_failing_source",
        pool_guarantee_failing_source,
    ),
    (
        "pool_guarantee_exhausted_arena",
        pool_guarantee_exhausted_arena,
    ),
    (
        "pool_free_all_and_trim_restores_buddyinfo",
        pool_free_all_and_trim_restores_buddyinfo,
    ),
];

/// A cache name unique to this process and test.
fn cache_name(tag: &str) -> String {
    format!("t_p{tag}_{}", std::process::id())
}

fn cache(d: &Device, tag: &str, size: u32) -> Result<u32, String> {
    let name = cache_name(tag);
    d.cache_create(&CacheSpec::new(&name, size, 1)?)
        .map(|c| c.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE {name} (size {size}): {e}"))
}

fn create(d: &Device, source: PoolSource, min: u32, flags: u32) -> Result<u32, String> {
    d.pool_create(source, min, flags)
        .map_err(|e| format!("RKMEM_IOC_POOL_CREATE {source:?} min {min} flags {flags:#x}: {e}"))
}

fn alloc(d: &Device, id: u32, may_sleep: bool) -> Result<Alloc, String> {
    d.pool_alloc(id, may_sleep)
        .map_err(|e| format!("RKMEM_IOC_POOL_ALLOC pool {id} (may_sleep {may_sleep}): {e}"))
}

fn free(d: &Device, a: &Alloc) -> Result<(), String> {
    d.free(a.handle)
        .map_err(|e| format!("RKMEM_IOC_FREE {:#x}: {e}", a.handle))
}

fn destroy(d: &Device, id: u32) -> Result<(), String> {
    d.pool_destroy(id)
        .map_err(|e| format!("RKMEM_IOC_POOL_DESTROY {id}: {e}"))
}

fn errno_of<T>(r: Result<T, Errno>) -> Result<i32, Errno> {
    r.map(|_| 0)
}

/// Checks min, reserve, out, waits, saves, failures of pool `id` (`None`: not checked).
fn expect_row(id: u32, what: &str, want: [Option<u64>; 6]) -> Result<PoolRow, String> {
    let r = pool::row(id)?;
    let got = [r.min, r.reserve, r.out, r.waits, r.saves, r.failures];
    let names = ["min", "reserve", "out", "waits", "saves", "failures"];
    for i in 0..6 {
        if let Some(w) = want[i] {
            if got[i] != w {
                return Err(format!(
                    "{what}: {} is {}, want {w}: {}",
                    names[i],
                    got[i],
                    pool::format_row(&r).trim_end()
                ));
            }
        }
    }
    Ok(r)
}

/// Writes the pattern of `a` (keyed by `seed`) over the whole element and reads it back.
fn write_verify(d: &Device, a: &Alloc, seed: u64, buf: &mut [u8]) -> Result<(), String> {
    let buf = &mut buf[..a.bytes as usize];
    let key = pattern::key(a.handle, seed);
    pattern::fill(key, 0, buf);
    d.write(a.handle, 0, buf)
        .map_err(|e| format!("write {} bytes to {:#x}: {e}", a.bytes, a.handle))?;
    buf.fill(0);
    d.read(a.handle, 0, buf)
        .map_err(|e| format!("read {} bytes of {:#x}: {e}", a.bytes, a.handle))?;
    match pattern::first_mismatch(key, 0, buf) {
        None => Ok(()),
        Some((at, want, got)) => Err(format!(
            "element {:#x} ({} bytes) differs at byte {at}: {want:#04x} written, {got:#04x} read",
            a.handle, a.bytes
        )),
    }
}

fn features_include_mempool() -> Result<(), String> {
    selftest::expect_feature(uapi::RKMEM_FEAT_MEMPOOL, "RKMEM_FEAT_MEMPOOL")
}

const POOL_IOCTLS: [(&str, u32, u32, usize); 4] = [
    (
        "POOL_CREATE",
        uapi::RKMEM_IOC_POOL_CREATE,
        uapi::IOC_READ | uapi::IOC_WRITE,
        0x40,
    ),
    (
        "POOL_ALLOC",
        uapi::RKMEM_IOC_POOL_ALLOC,
        uapi::IOC_READ | uapi::IOC_WRITE,
        0x41,
    ),
    (
        "POOL_RESIZE",
        uapi::RKMEM_IOC_POOL_RESIZE,
        uapi::IOC_WRITE,
        0x42,
    ),
    (
        "POOL_DESTROY",
        uapi::RKMEM_IOC_POOL_DESTROY,
        uapi::IOC_WRITE,
        0x43,
    ),
];

fn pool_ioctls_wrong_size_are_enotty() -> Result<(), String> {
    let d = open()?;
    let mut buf = [0u8; 64];
    let p = buf.as_mut_ptr() as usize;
    for (name, _, dir, nr) in POOL_IOCTLS {
        for size in [0, 4, 16, 40] {
            let cmd = uapi::ioc(dir, uapi::RKMEM_IOC_MAGIC, nr as u32, size);
            expect_errno(
                &format!("{name} with size {size}"),
                d.raw_ioctl(cmd, p),
                Errno::ENOTTY,
            )?;
        }
    }
    Ok(())
}

fn pool_ioctls_bad_pointers_are_efault() -> Result<(), String> {
    let d = open()?;
    for (name, cmd, _, _) in POOL_IOCTLS {
        for ptr in [0usize, 0xffff_8880_0000_0000] {
            expect_errno(
                &format!("{name} at {ptr:#x}"),
                d.raw_ioctl(cmd, ptr),
                Errno::EFAULT,
            )?;
        }
    }
    Ok(())
}

fn pool_create_bad_args() -> Result<(), String> {
    let d = open()?;
    let c = cache(&d, "bad", 117)?;
    let ok = |s| PoolSource::to_arg(s, 2, 0);
    let cases: Vec<(&str, RkmemPoolCreate)> = vec![
        (
            "source 0",
            RkmemPoolCreate {
                source: 0,
                ..ok(PoolSource::Pages(0))
            },
        ),
        (
            "source 4",
            RkmemPoolCreate {
                source: 4,
                ..ok(PoolSource::Pages(0))
            },
        ),
        (
            "cache with size",
            RkmemPoolCreate {
                size: 117,
                ..ok(PoolSource::Cache(c))
            },
        ),
        (
            "cache with order",
            RkmemPoolCreate {
                order: 1,
                ..ok(PoolSource::Cache(c))
            },
        ),
        ("rkmalloc size 0", ok(PoolSource::Rkmalloc(0))),
        (
            "rkmalloc 4 MiB + 1",
            ok(PoolSource::Rkmalloc((4 << 20) + 1)),
        ),
        ("rkmalloc 64 MiB", ok(PoolSource::Rkmalloc(64 << 20))),
        ("rkmalloc u64::MAX", ok(PoolSource::Rkmalloc(u64::MAX))),
        (
            "rkmalloc with cache_id",
            RkmemPoolCreate {
                cache_id: c,
                ..ok(PoolSource::Rkmalloc(64))
            },
        ),
        (
            "rkmalloc with order",
            RkmemPoolCreate {
                order: 1,
                ..ok(PoolSource::Rkmalloc(64))
            },
        ),
        ("pages order 11", ok(PoolSource::Pages(11))),
        ("pages order u32::MAX", ok(PoolSource::Pages(u32::MAX))),
        (
            "pages with cache_id",
            RkmemPoolCreate {
                cache_id: c,
                ..ok(PoolSource::Pages(0))
            },
        ),
        (
            "pages with size",
            RkmemPoolCreate {
                size: 4096,
                ..ok(PoolSource::Pages(0))
            },
        ),
        ("min 0", PoolSource::to_arg(PoolSource::Pages(0), 0, 0)),
        (
            "min 4097",
            PoolSource::to_arg(PoolSource::Pages(0), 4097, 0),
        ),
        (
            "min u32::MAX",
            PoolSource::to_arg(PoolSource::Pages(0), u32::MAX, 0),
        ),
        (
            "flag 1<<1",
            PoolSource::to_arg(PoolSource::Pages(0), 2, 1 << 1),
        ),
        (
            "flag 1<<31",
            PoolSource::to_arg(PoolSource::Pages(0), 2, 1 << 31),
        ),
        (
            "id set on input",
            RkmemPoolCreate {
                id: 1,
                ..ok(PoolSource::Pages(0))
            },
        ),
    ];
    let before = pool::mempools()?.len();
    for (what, mut arg) in cases {
        expect_errno(what, errno_of(d.pool_create_raw(&mut arg)), Errno::EINVAL)?;
    }
    let after = pool::mempools()?.len();
    if after != before {
        return Err(format!(
            "refused creates left rows: {before} rows before, {after} after"
        ));
    }
    // The limits themselves are accepted.
    for (what, s, min) in [
        ("rkmalloc 1 byte", PoolSource::Rkmalloc(1), 1),
        ("rkmalloc 4 MiB", PoolSource::Rkmalloc(4 << 20), 1),
        ("pages order 10", PoolSource::Pages(10), 1),
        ("min 4096", PoolSource::Rkmalloc(8), 4096),
    ] {
        let id = d
            .pool_create(s, min, 0)
            .map_err(|e| format!("{what}: {e}, want success"))?;
        destroy(&d, id)?;
    }
    Ok(())
}

fn pool_create_cache_enoent() -> Result<(), String> {
    let d = open()?;
    let other = open()?;
    let c = cache(&other, "foreign", 64)?;
    expect_errno(
        "cache id 0xdead",
        errno_of(d.pool_create(PoolSource::Cache(0xdead), 2, 0)),
        Errno::ENOENT,
    )?;
    expect_errno(
        "cache of another file",
        errno_of(d.pool_create(PoolSource::Cache(c), 2, 0)),
        Errno::ENOENT,
    )?;
    // The same id on its own file works.
    let id = create(&other, PoolSource::Cache(c), 2, 0)?;
    destroy(&other, id)
}

fn pool_alloc_bad_args() -> Result<(), String> {
    let d = open()?;
    let other = open()?;
    let id = create(&d, PoolSource::Rkmalloc(64), 2, 0)?;
    let ok = RkmemPoolAlloc {
        pool_id: id,
        ..Default::default()
    };
    for (what, mut arg) in [
        (
            "flag 1<<1",
            RkmemPoolAlloc {
                flags: 1 << 1,
                ..ok
            },
        ),
        (
            "flag 1<<31",
            RkmemPoolAlloc {
                flags: 1 << 31,
                ..ok
            },
        ),
        ("handle set on input", RkmemPoolAlloc { handle: 1, ..ok }),
        ("bytes set on input", RkmemPoolAlloc { bytes: 1, ..ok }),
    ] {
        expect_errno(what, errno_of(d.pool_alloc_raw(&mut arg)), Errno::EINVAL)?;
    }
    for (what, dev, pid) in [
        ("pool 0", &d, 0),
        ("pool 0xdead", &d, 0xdead),
        ("pool of another file", &other, id),
    ] {
        for sleep in [false, true] {
            expect_errno(
                &format!("{what} (may_sleep {sleep})"),
                errno_of(dev.pool_alloc(pid, sleep)),
                Errno::ENOENT,
            )?;
        }
    }
    expect_row(
        id,
        "after refused allocations",
        [Some(2), Some(2), Some(0), Some(0), Some(0), Some(0)],
    )?;
    destroy(&d, id)
}

fn pool_resize_bad_args() -> Result<(), String> {
    let d = open()?;
    let other = open()?;
    let id = create(&d, PoolSource::Rkmalloc(64), 3, 0)?;
    for (what, min) in [("min 0", 0), ("min 4097", 4097), ("min u32::MAX", u32::MAX)] {
        expect_errno(what, errno_of(d.pool_resize(id, min)), Errno::EINVAL)?;
    }
    expect_errno(
        "pool 0xdead",
        errno_of(d.pool_resize(0xdead, 2)),
        Errno::ENOENT,
    )?;
    expect_errno(
        "pool of another file",
        errno_of(other.pool_resize(id, 2)),
        Errno::ENOENT,
    )?;
    expect_row(
        id,
        "after refused resizes",
        [Some(3), Some(3), Some(0), None, None, None],
    )?;
    destroy(&d, id)
}

fn pool_destroy_bad_args() -> Result<(), String> {
    let d = open()?;
    let other = open()?;
    let id = create(&d, PoolSource::Pages(0), 1, 0)?;
    expect_errno(
        "min_nr 1 on destroy",
        errno_of(d.pool_destroy_raw(&RkmemPoolId {
            pool_id: id,
            min_nr: 1,
        })),
        Errno::EINVAL,
    )?;
    expect_errno(
        "pool 0xdead",
        errno_of(d.pool_destroy(0xdead)),
        Errno::ENOENT,
    )?;
    expect_errno(
        "pool of another file",
        errno_of(other.pool_destroy(id)),
        Errno::ENOENT,
    )?;
    pool::row(id)?;
    destroy(&d, id)?;
    if pool::row_of(id)?.is_some() {
        return Err(format!("pool {id} still has a row after destroy"));
    }
    expect_errno("destroy twice", errno_of(d.pool_destroy(id)), Errno::ENOENT)?;
    expect_errno(
        "alloc after destroy",
        errno_of(d.pool_alloc(id, false)),
        Errno::ENOENT,
    )
}

fn pool_sources_rows_and_bytes() -> Result<(), String> {
    let d = open()?;
    let c = cache(&d, "src", 117)?;
    let name = cache_name("src");
    let mut buf = vec![0u8; 8 << 12];
    for (source, bytes, min) in [
        (PoolSource::Cache(c), 117u64, 5u32),
        (PoolSource::Rkmalloc(64), 64, 3),
        (PoolSource::Rkmalloc(100), 128, 2),
        (PoolSource::Rkmalloc(4096), 4096, 2),
        (PoolSource::Rkmalloc(8192), 8192, 2),
        (PoolSource::Rkmalloc(5000), 8192, 1),
        (PoolSource::Pages(0), PAGE_SIZE, 4),
        (PoolSource::Pages(3), 8 * PAGE_SIZE, 2),
    ] {
        let id = create(&d, source, min, 0)?;
        let r = expect_row(
            id,
            &format!("{source:?}"),
            [
                Some(min.into()),
                Some(min.into()),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
            ],
        )?;
        let label = pool::source_label(source, &name);
        if r.source != label {
            return Err(format!(
                "{source:?}: source column {:?}, want {label:?}",
                r.source
            ));
        }
        let a = alloc(&d, id, false)?;
        if a.bytes != bytes || a.handle == 0 {
            return Err(format!(
                "{source:?}: element {:#x} of {} bytes, want a non-zero handle and {bytes} bytes",
                a.handle, a.bytes
            ));
        }
        write_verify(&d, &a, 1, &mut buf)?;
        expect_errno(
            "write past the element",
            errno_of(d.write(a.handle, bytes, &[1])),
            Errno::EINVAL,
        )?;
        expect_row(
            id,
            &format!("{source:?} with one out"),
            [None, Some(min.into()), Some(1), Some(0), Some(0), Some(0)],
        )?;
        free(&d, &a)?;
        expect_row(
            id,
            &format!("{source:?} after the free"),
            [None, Some(min.into()), Some(0), None, None, None],
        )?;
        destroy(&d, id)?;
    }
    Ok(())
}

fn pool_elements_are_handles() -> Result<(), String> {
    let d = open()?;
    let other = open()?;
    let id = create(&d, PoolSource::Pages(1), 2, 0)?;
    let a = alloc(&d, id, false)?;
    let b = alloc(&d, id, true)?;
    if a.handle == b.handle {
        return Err(format!("two elements share handle {:#x}", a.handle));
    }
    let mut buf = vec![0u8; 8192];
    write_verify(&d, &a, 2, &mut buf)?;
    write_verify(&d, &b, 3, &mut buf)?;
    expect_errno(
        "free on another file",
        errno_of(other.free(a.handle)),
        Errno::ENOENT,
    )?;
    expect_errno(
        "read on another file",
        errno_of(other.read(a.handle, 0, &mut buf[..8])),
        Errno::ENOENT,
    )?;
    free(&d, &a)?;
    expect_errno("free twice", errno_of(d.free(a.handle)), Errno::ENOENT)?;
    // `b` is untouched by what happened to `a`.
    let mut got = vec![0u8; 8192];
    d.read(b.handle, 0, &mut got)
        .map_err(|e| format!("read {:#x}: {e}", b.handle))?;
    if let Some((at, w, g)) = pattern::first_mismatch(pattern::key(b.handle, 3), 0, &got) {
        return Err(format!(
            "element b changed at byte {at}: {w:#04x} written, {g:#04x} read"
        ));
    }
    free(&d, &b)?;
    expect_row(
        id,
        "after freeing both",
        [Some(2), Some(2), Some(0), None, None, None],
    )?;
    destroy(&d, id)
}

/// Without a failing source every allocation comes from the source: the reserve is untouched,
/// and frees beyond a full reserve go back to the source.
fn pool_source_serves_first() -> Result<(), String> {
    let d = open()?;
    let c = cache(&d, "first", 117)?;
    let id = create(&d, PoolSource::Cache(c), 2, 0)?;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(alloc(&d, id, false)?);
    }
    expect_row(
        id,
        "20 allocations from a working source",
        [Some(2), Some(2), Some(20), Some(0), Some(0), Some(0)],
    )?;
    for a in &held {
        free(&d, a)?;
    }
    expect_row(
        id,
        "after 20 frees",
        [Some(2), Some(2), Some(0), Some(0), Some(0), Some(0)],
    )?;
    destroy(&d, id)?;
    d.cache_destroy(c).map_err(|e| {
        format!(
            "RKMEM_IOC_CACHE_DESTROY after the pool: {e} (elements went back to the wrong place?)"
        )
    })
}

fn pool_reserve_with_failing_source() -> Result<(), String> {
    let d = open()?;
    let c = cache(&d, "res", 117)?;
    let id = create(&d, PoolSource::Cache(c), 8, uapi::RKMEM_POOL_FAIL_SOURCE)?;
    expect_row(
        id,
        "new pool",
        [Some(8), Some(8), Some(0), Some(0), Some(0), Some(0)],
    )?;
    let mut buf = vec![0u8; 4096];
    let mut held = Vec::new();
    for i in 0..8 {
        let a = alloc(&d, id, false).map_err(|e| format!("reserve element {i}: {e}"))?;
        write_verify(&d, &a, 4, &mut buf)?;
        held.push(a);
    }
    expect_row(
        id,
        "8 taken",
        [Some(8), Some(0), Some(8), Some(0), Some(8), Some(0)],
    )?;
    // The reserve is empty: ENOMEM at once for callers that may not sleep.
    for i in 0..3 {
        let t = Instant::now();
        expect_errno(
            &format!("non-sleeping allocation {} with the reserve empty", i + 9),
            errno_of(d.pool_alloc(id, false)),
            Errno::ENOMEM,
        )?;
        if t.elapsed() > Duration::from_secs(1) {
            return Err(format!(
                "ENOMEM took {:.2} s: a non-sleeping allocation must fail at once",
                t.elapsed().as_secs_f64()
            ));
        }
    }
    expect_row(
        id,
        "3 ENOMEM",
        [Some(8), Some(0), Some(8), Some(0), Some(8), Some(3)],
    )?;
    // Frees refill the reserve; the contents of the others are intact.
    for a in held.drain(..3) {
        free(&d, &a)?;
    }
    expect_row(
        id,
        "3 freed",
        [Some(8), Some(3), Some(5), Some(0), Some(8), Some(3)],
    )?;
    for a in &held {
        let mut got = vec![0u8; a.bytes as usize];
        d.read(a.handle, 0, &mut got)
            .map_err(|e| format!("read {:#x}: {e}", a.handle))?;
        if pattern::first_mismatch(pattern::key(a.handle, 4), 0, &got).is_some() {
            return Err(format!("held element {:#x} changed", a.handle));
        }
    }
    // A sleeping allocation with elements in the reserve takes one without waiting.
    let s = alloc(&d, id, true)?;
    held.push(s);
    for _ in 0..2 {
        held.push(alloc(&d, id, false)?);
    }
    expect_row(
        id,
        "3 taken again",
        [Some(8), Some(0), Some(8), Some(0), Some(11), Some(3)],
    )?;
    for a in held.drain(..) {
        free(&d, &a)?;
    }
    expect_row(
        id,
        "all freed",
        [Some(8), Some(8), Some(0), Some(0), Some(11), Some(3)],
    )?;
    destroy(&d, id)?;
    d.cache_destroy(c)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY after the pool: {e}"))
}

fn pool_resize_down_and_up() -> Result<(), String> {
    let d = open()?;
    let c = cache(&d, "rsz", 117)?;
    let id = create(&d, PoolSource::Cache(c), 8, uapi::RKMEM_POOL_FAIL_SOURCE)?;
    d.pool_resize(id, 3)
        .map_err(|e| format!("resize 8 -> 3: {e}"))?;
    expect_row(
        id,
        "resized to 3",
        [Some(3), Some(3), Some(0), None, None, None],
    )?;
    d.pool_resize(id, 10)
        .map_err(|e| format!("resize 3 -> 10: {e}"))?;
    expect_row(
        id,
        "resized to 10",
        [Some(10), Some(10), Some(0), None, None, None],
    )?;
    // The source still fails after the resize: exactly 10 elements, then ENOMEM.
    let mut held = Vec::new();
    for i in 0..10 {
        held.push(
            alloc(&d, id, false).map_err(|e| format!("element {i} after growing to 10: {e}"))?,
        );
    }
    expect_errno(
        "11th element of a failing source",
        errno_of(d.pool_alloc(id, false)),
        Errno::ENOMEM,
    )?;
    // Shrink while all are out: as mm/mempool.c's mempool_resize, the reserve stays as it is
    // (empty) until frees refill it.
    d.pool_resize(id, 4)
        .map_err(|e| format!("resize 10 -> 4 with 10 out: {e}"))?;
    expect_row(
        id,
        "resized to 4 with 10 out (reserve left empty, as mempool_resize)",
        [Some(4), Some(0), Some(10), None, None, None],
    )?;
    for a in held.drain(..) {
        free(&d, &a)?;
    }
    expect_row(
        id,
        "10 freed into a reserve of 4",
        [Some(4), Some(4), Some(0), None, None, None],
    )?;
    d.pool_resize(id, 4)
        .map_err(|e| format!("resize 4 -> 4: {e}"))?;
    d.pool_resize(id, 1)
        .map_err(|e| format!("resize 4 -> 1: {e}"))?;
    expect_row(
        id,
        "resized to 1",
        [Some(1), Some(1), Some(0), None, None, None],
    )?;
    destroy(&d, id)?;
    d.cache_destroy(c)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY after the pool: {e}"))
}

fn pool_destroy_with_element_out_is_ebusy() -> Result<(), String> {
    let d = open()?;
    let id = create(&d, PoolSource::Rkmalloc(200), 2, 0)?;
    let a = alloc(&d, id, false)?;
    expect_errno(
        "destroy with an element out",
        errno_of(d.pool_destroy(id)),
        Errno::EBUSY,
    )?;
    expect_row(
        id,
        "after EBUSY",
        [Some(2), Some(2), Some(1), None, None, None],
    )?;
    // Still usable.
    let b = alloc(&d, id, false)?;
    free(&d, &b)?;
    free(&d, &a)?;
    destroy(&d, id)?;
    if pool::row_of(id)?.is_some() {
        return Err(format!("pool {id} still has a row after destroy"));
    }
    Ok(())
}

/// A pool with a failing source and a reserve of 1, with its only element taken.
fn empty_pool(d: &Device, tag: &str) -> Result<(u32, u32, Alloc), String> {
    let c = cache(d, tag, 117)?;
    let id = create(d, PoolSource::Cache(c), 1, uapi::RKMEM_POOL_FAIL_SOURCE)?;
    let a = alloc(d, id, false)?;
    expect_errno(
        "a second element of an empty pool",
        errno_of(d.pool_alloc(id, false)),
        Errno::ENOMEM,
    )?;
    Ok((c, id, a))
}

/// Waits until pool `id` counts at least `n` waits (a sleeper is in the kernel).
fn wait_for_waits(id: u32, n: u64) -> Result<(), String> {
    let start = Instant::now();
    while pool::row(id)?.waits < n {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "no sleeper counted in waits after 10 s: {}",
                pool::format_row(&pool::row(id)?)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // It counts the wait just before it sleeps.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

fn pool_sleeper_woken_by_free() -> Result<(), String> {
    let d = open()?;
    let (c, id, a) = empty_pool(&d, "wake")?;
    let (tx, rx) = mpsc::channel();
    let res = std::thread::scope(|s| {
        let dr = &d;
        s.spawn(move || {
            let r = dr.pool_alloc(id, true);
            let _ = tx.send((Instant::now(), r));
        });
        let r = (|| {
            wait_for_waits(id, 1)?;
            if let Ok((_, r)) = rx.try_recv() {
                return Err(format!(
                    "the sleeping allocation returned {r:?} before any free"
                ));
            }
            let freed_at = Instant::now();
            free(&d, &a)?;
            let (done, got) = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the sleeper was not served within 30 s of a free".to_string())?;
            let got = got.map_err(|e| format!("the sleeping allocation failed: {e}"))?;
            let latency = done.saturating_duration_since(freed_at);
            // mempool_alloc retries every 5 s anyway: a wake-up after ~5 s means the free
            // did not wake the waiter.
            if latency > Duration::from_secs(4) {
                return Err(format!(
                    "the sleeper got its element {:.2} s after the free: the free did not wake it (lost wake-up)",
                    latency.as_secs_f64()
                ));
            }
            expect_row(
                id,
                "the sleeper served",
                [Some(1), Some(0), Some(1), None, Some(2), Some(1)],
            )?;
            free(&d, &got)
        })();
        if r.is_err() {
            // Make sure the sleeper can finish: give it an element.
            let _ = d.free(a.handle);
        }
        r
    });
    res?;
    expect_row(
        id,
        "all freed",
        [Some(1), Some(1), Some(0), None, None, None],
    )?;
    destroy(&d, id)?;
    d.cache_destroy(c)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))
}

extern "C" fn on_sigusr1(_sig: libc::c_int) {}

/// Installs an empty SIGUSR1 handler without `SA_RESTART`, so a signal makes an interrupted
/// system call return `EINTR`.
pub(crate) fn install_sigusr1() -> Result<(), String> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags); the handler is
    // an `extern "C" fn(c_int)` that does nothing, which is async-signal-safe.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
    };
    Errno::result(r)
        .map(drop)
        .map_err(|e| format!("sigaction(SIGUSR1): {e}"))
}

fn pool_sleeper_signal_is_eintr() -> Result<(), String> {
    install_sigusr1()?;
    let d = open()?;
    let (c, id, a) = empty_pool(&d, "intr")?;
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let res = std::thread::scope(|s| {
        let dr = &d;
        s.spawn(move || {
            // SAFETY: pthread_self has no precondition.
            let _ = tid_tx.send(unsafe { libc::pthread_self() });
            let r = dr.pool_alloc(id, true);
            let _ = tx.send(r);
        });
        let r = (|| {
            let tid = tid_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "the sleeper thread did not start".to_string())?;
            wait_for_waits(id, 1)?;
            let before = pool::row(id)?;
            // SAFETY: `tid` is a live thread of this process: it cannot exit before it sends
            // its result, which has not been received yet; SIGUSR1 has a handler.
            let rc = unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
            if rc != 0 {
                return Err(format!("pthread_kill: {}", Errno::from_raw(rc)));
            }
            let got = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
                "the sleeping allocation did not return within 10 s of SIGUSR1".to_string()
            })?;
            match got {
                Err(Errno::EINTR) => {}
                other => {
                    return Err(format!(
                        "the sleeping allocation returned {other:?} after SIGUSR1, want EINTR"
                    ))
                }
            }
            // Nothing leaked: out unchanged, one more failure, the reserve still empty.
            expect_row(
                id,
                "after EINTR",
                [
                    Some(1),
                    Some(0),
                    Some(before.out),
                    None,
                    Some(before.saves),
                    Some(before.failures + 1),
                ],
            )?;
            Ok(())
        })();
        if r.is_err() {
            let _ = d.free(a.handle);
        }
        r
    });
    res?;
    free(&d, &a)?;
    expect_row(
        id,
        "after the free",
        [Some(1), Some(1), Some(0), None, None, None],
    )?;
    // The pool works and can be destroyed: no element was left out.
    let b = alloc(&d, id, true)?;
    free(&d, &b)?;
    destroy(&d, id)?;
    d.cache_destroy(c)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))
}

fn pool_close_removes_rows() -> Result<(), String> {
    let open_files = procfs::stat("open_files")?;
    let keep = open()?;
    let kept = create(&keep, PoolSource::Pages(0), 1, 0)?;
    let mut ids = Vec::new();
    {
        let d = open()?;
        let c = cache(&d, "close", 117)?;
        ids.push(create(
            &d,
            PoolSource::Cache(c),
            4,
            uapi::RKMEM_POOL_FAIL_SOURCE,
        )?);
        ids.push(create(&d, PoolSource::Rkmalloc(8192), 2, 0)?);
        ids.push(create(&d, PoolSource::Pages(2), 3, 0)?);
        for &id in &ids {
            for _ in 0..2 {
                alloc(&d, id, false)?;
            }
        }
        let rows = pool::mempools()?;
        for &id in &ids {
            if !rows.iter().any(|r| r.id == id && r.out == 2) {
                return Err(format!("pool {id} has no row with 2 out while held"));
            }
        }
        // Closed here, with elements out.
    }
    let rows = pool::mempools()?;
    if let Some(r) = rows.iter().find(|r| ids.contains(&r.id)) {
        return Err(format!(
            "row still there after its file was closed: {}",
            pool::format_row(r)
        ));
    }
    if !rows.iter().any(|r| r.id == kept) {
        return Err(format!("closing one file removed pool {kept} of another"));
    }
    drop(keep);
    if pool::row_of(kept)?.is_some() {
        return Err(format!("pool {kept} still there after its file was closed"));
    }
    let now = procfs::stat("open_files")?;
    if now != open_files {
        return Err(format!("open_files {open_files} before, {now} after close"));
    }
    Ok(())
}

/// Options of the guarantee test.
#[derive(Clone, Debug)]
pub(crate) struct GuaranteeOpts {
    /// Sleeping allocator threads per CPU.
    pub threads_per_cpu: usize,
    /// The pool's reserve.
    pub reserve: u32,
    /// How long the threads run.
    pub duration: Duration,
    /// Elements each sleeping thread must get.
    pub min_per_thread: u64,
    /// How the source fails.
    pub source: FailingSource,
    /// Print one line per thread.
    pub verbose: bool,
}

/// Holds the whole arena on `files` (order 10 down to 0, each until ENOMEM; a new file on
/// EDQUOT); returns the pages held.
fn exhaust_arena(files: &mut Vec<Device>) -> Result<u64, String> {
    let mut pages = 0u64;
    files.push(open()?);
    for order in (0..=uapi::RKMEM_MAX_ORDER).rev() {
        loop {
            let d = files.last().ok_or("no file")?;
            match d.pages_alloc(crate::dev::PagesReq::Order(order)) {
                Ok(_) => pages += 1 << order,
                Err(Errno::ENOMEM) => break,
                Err(Errno::EDQUOT) => files.push(open()?),
                Err(e) => return Err(format!("exhausting the arena: order {order}: {e}")),
            }
        }
    }
    Ok(pages)
}

/// More sleeping allocators than reserve elements, on all CPUs, on one file, with the source
/// failing: no sleeping allocation fails, every thread gets at least `min_per_thread` elements,
/// someone waited, and a non-sleeping caller gets an element or ENOMEM, never anything else.
/// Returns a summary line.
pub(crate) fn guarantee(o: &GuaranteeOpts) -> Result<String, String> {
    if o.threads_per_cpu == 0 || o.reserve == 0 {
        return Err("threads per CPU and reserve must be at least 1".into());
    }
    let d = open()?;
    let mut holders = Vec::new();
    let (id, label, bytes) = match o.source {
        FailingSource::Inject => {
            let c = cache(&d, "guar", 117)?;
            let id = create(
                &d,
                PoolSource::Cache(c),
                o.reserve,
                uapi::RKMEM_POOL_FAIL_SOURCE,
            )?;
            (id, "a 117-byte cache with RKMEM_POOL_FAIL_SOURCE", 117)
        }
        FailingSource::Arena => {
            let id = create(&d, PoolSource::Rkmalloc(8192), o.reserve, 0)?;
            (id, "rkmalloc(8192) with the whole arena held", 8192)
        }
    };
    let held_pages = match o.source {
        FailingSource::Arena => {
            let p = exhaust_arena(&mut holders)?;
            // The source really fails now: a non-sleeping allocation beyond the reserve is ENOMEM.
            Some(p)
        }
        FailingSource::Inject => None,
    };
    let cpus = crate::workers::allowed_cpus();
    let n = o.threads_per_cpu * cpus.len();
    let seed = 0x900d_5eed_u64;
    let stop = AtomicBool::new(false);
    let nonsleep_ok = AtomicU64::new(0);
    let nonsleep_enomem = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + o.duration;
    let (counts, errors): (Vec<u64>, Vec<String>) = std::thread::scope(|s| {
        let sleepers: Vec<_> = (0..n)
            .map(|i| {
                let (d, stop, cpu) = (&d, &stop, cpus[i % cpus.len()]);
                s.spawn(move || -> (u64, Vec<String>) {
                    let _ = crate::workers::pin(cpu);
                    let mut buf = vec![0u8; 8192];
                    let (mut got, mut errs) = (0u64, Vec::new());
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match d.pool_alloc(id, true) {
                            Ok(a) => {
                                got += 1;
                                if a.bytes != bytes {
                                    errs.push(format!(
                                        "element of {} bytes, want {bytes}",
                                        a.bytes
                                    ));
                                }
                                if let Err(e) = write_verify(d, &a, seed, &mut buf) {
                                    errs.push(e);
                                }
                                if let Err(e) = d.free(a.handle) {
                                    errs.push(format!("free {:#x}: {e}", a.handle));
                                }
                            }
                            Err(e) => errs.push(format!("a sleeping allocation failed: {e}")),
                        }
                        if errs.len() > 3 {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    (got, errs)
                })
            })
            .collect();
        let nonsleeper = {
            let (d, stop, ok, enomem) = (&d, &stop, &nonsleep_ok, &nonsleep_enomem);
            s.spawn(move || -> Vec<String> {
                let mut buf = vec![0u8; 8192];
                let mut errs = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && errs.len() <= 3
                {
                    match d.pool_alloc(id, false) {
                        Ok(a) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = write_verify(d, &a, seed, &mut buf) {
                                errs.push(e);
                            }
                            if let Err(e) = d.free(a.handle) {
                                errs.push(format!("free {:#x}: {e}", a.handle));
                            }
                        }
                        Err(Errno::ENOMEM) => {
                            enomem.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errs.push(format!(
                            "a non-sleeping allocation failed with {e}, want ENOMEM"
                        )),
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                errs
            })
        };
        let mut all = sleepers;
        while !all.iter().all(|h| h.is_finished()) || !nonsleeper.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() > deadline + Duration::from_secs(60) {
                // A thread is stuck in the kernel: a lost wake-up without the 5 s retry.
                println!(
                    "not ok - pool guarantee: threads still inside RKMEM_IOC_POOL_ALLOC 60 s after the deadline: {}",
                    pool::row(id).map(|r| pool::format_row(&r)).unwrap_or_default()
                );
                std::process::exit(2);
            }
        }
        let mut counts = Vec::new();
        let mut errors = Vec::new();
        for (i, h) in all.drain(..).enumerate() {
            match h.join() {
                Ok((c, e)) => {
                    counts.push(c);
                    errors.extend(e.into_iter().map(|m| format!("thread {i}: {m}")));
                }
                Err(_) => errors.push(format!("thread {i} panicked")),
            }
        }
        match nonsleeper.join() {
            Ok(e) => errors.extend(e.into_iter().map(|m| format!("non-sleeping thread: {m}"))),
            Err(_) => errors.push("the non-sleeping thread panicked".into()),
        }
        (counts, errors)
    });
    let secs = start.elapsed().as_secs_f64();
    let r = pool::row(id)?;
    let ok = nonsleep_ok.load(Ordering::Relaxed);
    let enomem = nonsleep_enomem.load(Ordering::Relaxed);
    let total: u64 = counts.iter().sum();
    if o.verbose {
        println!(
            "pool stress: pool {id} over {label}, reserve {}, {n} sleeping threads on {} CPUs + 1 non-sleeping, {secs:.1} s{}",
            o.reserve,
            cpus.len(),
            held_pages.map_or(String::new(), |p| format!(", {p} arena pages held by another file"))
        );
        for (i, c) in counts.iter().enumerate() {
            println!("thread {i} (CPU {}): {c} elements", cpus[i % cpus.len()]);
        }
        println!("{}", pool::MEMPOOLS_HEADER);
        println!("{}", pool::format_row(&r));
    }
    let summary = format!(
        "{total} sleeping allocations in {secs:.1} s by {n} threads (least {}, most {}), non-sleeping: {ok} elements, {enomem} ENOMEM; waits {}, saves {}, failures {}",
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
        r.waits,
        r.saves,
        r.failures
    );
    if let Some(e) = errors.first() {
        return Err(format!("{} errors, first: {e}; {summary}", errors.len()));
    }
    if let Some((i, c)) = counts
        .iter()
        .enumerate()
        .find(|(_, &c)| c < o.min_per_thread)
    {
        return Err(format!(
            "thread {i} got only {c} elements, want at least {}: {summary}",
            o.min_per_thread
        ));
    }
    if r.waits == 0 {
        return Err(format!("no allocation ever waited: {summary}"));
    }
    if r.out != 0 || r.reserve != u64::from(o.reserve) {
        return Err(format!(
            "after the run: out {} reserve {}, want 0 and {}: {summary}",
            r.out, r.reserve, o.reserve
        ));
    }
    // Only non-sleeping callers fail (nobody was interrupted).
    if r.failures != enomem {
        return Err(format!(
            "failures column {} but the non-sleeping thread saw {enomem} ENOMEM: {summary}",
            r.failures
        ));
    }
    if o.source == FailingSource::Inject && r.saves != total + ok {
        return Err(format!(
            "with the source failing every element comes from the reserve: saves {}, want {}: {summary}",
            r.saves,
            total + ok
        ));
    }
    if enomem == 0 {
        return Err(format!(
            "the non-sleeping thread never met an empty reserve: {summary}"
        ));
    }
    destroy(&d, id)?;
    drop(holders);
    Ok(summary)
}

fn pool_guarantee_failing_source() -> Result<(), String> {
    let s = guarantee(&GuaranteeOpts {
        threads_per_cpu: 4,
        reserve: 2,
        duration: Duration::from_secs(3),
        min_per_thread: 3,
        source: FailingSource::Inject,
        verbose: false,
    })?;
    println!("# {s}");
    Ok(())
}

fn pool_guarantee_exhausted_arena() -> Result<(), String> {
    let s = guarantee(&GuaranteeOpts {
        threads_per_cpu: 4,
        reserve: 2,
        duration: Duration::from_secs(3),
        min_per_thread: 3,
        source: FailingSource::Arena,
        verbose: false,
    })?;
    println!("# {s}");
    trim_all(&open()?)?;
    Ok(())
}

fn pool_free_all_and_trim_restores_buddyinfo() -> Result<(), String> {
    let initial = procfs::stat("arena_initial_mb")?;
    let want = procfs::load_time_buddyinfo(initial);
    {
        let d = open()?;
        let c = cache(&d, "trim", 117)?;
        create(&d, PoolSource::Cache(c), 40, 0)?;
        create(&d, PoolSource::Rkmalloc(3 * PAGE_SIZE), 5, 0)?;
        let p = create(&d, PoolSource::Pages(4), 3, uapi::RKMEM_POOL_FAIL_SOURCE)?;
        alloc(&d, p, false)?;
    }
    let d = open()?;
    trim_all(&d)?;
    let now = procfs::buddyinfo()?;
    if now != want {
        return Err(format!(
            "after closing a file with pools and a trim, buddyinfo is {now:?}, want the load-time {want:?}"
        ));
    }
    let rows = pool::mempools()?;
    if let Some(r) = rows.first() {
        return Err(format!("a pool is left: {}", pool::format_row(r)));
    }
    Ok(())
}
