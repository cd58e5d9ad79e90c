// SPDX-License-Identifier: GPL-2.0

//! In-guest tests of the `/dev/rkmem` interface, run by `rkmemctl test` with the module loaded.
//! Each test prints `ok - name` or `not ok - name: why`; the last line is `N passed, N failed`.

use crate::dev::{self, Device, PagesReq, PAGE_SIZE};
use crate::map;
use crate::pattern;
use crate::procfs;
use crate::uapi::{
    self, RkmemArenaMap, RkmemBlock, RkmemIo, RkmemPagesAlloc, RkmemSelftest, RkmemTrim,
};
use nix::errno::Errno;
use std::process::ExitCode;

/// One test: `Err` says why it failed.
pub(crate) type TestFn = fn() -> Result<(), String>;

const TESTS: &[(&str, TestFn)] = &[
    ("version_ioctl_answers", version_ioctl_answers),
    ("unknown_ioctl_is_enotty", unknown_ioctl_is_enotty),
    (
        "version_ioctl_bad_pointer_is_efault",
        version_ioctl_bad_pointer_is_efault,
    ),
    ("stats_counts_ioctls", stats_counts_ioctls),
    ("features_include_pages", features_include_pages),
    ("pages_alloc_every_order", pages_alloc_every_order),
    ("pages_exact_counts", pages_exact_counts),
    (
        "pages_exact_with_order_is_einval",
        pages_exact_with_order_is_einval,
    ),
    ("pages_order_11_is_einval", pages_order_11_is_einval),
    (
        "pages_exact_bad_counts_are_einval",
        pages_exact_bad_counts_are_einval,
    ),
    (
        "pages_npages_without_exact_is_einval",
        pages_npages_without_exact_is_einval,
    ),
    ("pages_unknown_flag_is_einval", pages_unknown_flag_is_einval),
    ("pages_reserved_is_einval", pages_reserved_is_einval),
    (
        "free_unknown_handle_is_enoent",
        free_unknown_handle_is_enoent,
    ),
    ("free_twice_is_enoent", free_twice_is_enoent),
    ("handles_are_per_file", handles_are_per_file),
    ("io_round_trip", io_round_trip),
    ("io_past_end_is_einval", io_past_end_is_einval),
    ("io_len_overflow_is_einval", io_len_overflow_is_einval),
    ("io_bad_buffer_is_efault", io_bad_buffer_is_efault),
    (
        "bad_argument_pointers_are_efault",
        bad_argument_pointers_are_efault,
    ),
    (
        "new_ioctls_wrong_size_are_enotty",
        new_ioctls_wrong_size_are_enotty,
    ),
    ("trim_bad_args_are_einval", trim_bad_args_are_einval),
    ("arena_map_is_consistent", arena_map_is_consistent),
    ("arena_map_shows_allocations", arena_map_shows_allocations),
    (
        "arena_map_bad_args_are_einval",
        arena_map_bad_args_are_einval,
    ),
    ("buddyinfo_format", buddyinfo_format),
    ("extfrag_format", extfrag_format),
    (
        "buddyinfo_at_rest_is_initial_arena",
        buddyinfo_at_rest_is_initial_arena,
    ),
    ("arena_exhaustion_is_enomem", arena_exhaustion_is_enomem),
    (
        "free_all_and_trim_restores_buddyinfo",
        free_all_and_trim_restores_buddyinfo,
    ),
    ("close_frees_everything", close_frees_everything),
    ("kernel_selftest_passes", kernel_selftest_passes),
    ("kernel_selftest_concurrent", kernel_selftest_concurrent),
];

/// Runs the tests whose name contains `filter` (all when `None`).
pub fn run(filter: Option<&str>) -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    // The buddy allocator's tests first, then the slab caches' (which end with a check that
    // everything both left behind is given back).
    for (name, test) in TESTS
        .iter()
        .chain(crate::slabtest::TESTS)
        .chain(crate::pooltest::TESTS)
        .chain(crate::compacttest::TESTS)
    {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match test() {
            Ok(()) => {
                println!("ok - {name}");
                passed += 1;
            }
            Err(why) => {
                println!("not ok - {name}: {why}");
                failed += 1;
            }
        }
    }
    println!("rkmemctl: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn open() -> Result<Device, String> {
    Device::open().map_err(|e| format!("open {}: {e}", dev::DEV_PATH))
}

pub(crate) fn expect_errno(what: &str, got: Result<i32, Errno>, want: Errno) -> Result<(), String> {
    match got {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("{what}: got {e}, want {want}")),
        Ok(v) => Err(format!("{what}: succeeded ({v}), want {want}")),
    }
}

fn version_ioctl_answers() -> Result<(), String> {
    let v = open()?
        .version()
        .map_err(|e| format!("RKMEM_IOC_VERSION: {e}"))?;
    dev::check_abi(&v)?;
    if v.features & uapi::RKMEM_FEAT_VERSION == 0 {
        return Err(format!(
            "features {:#x} lack RKMEM_FEAT_VERSION",
            v.features
        ));
    }
    if v.pad != 0 {
        return Err(format!("padding is {:#x}, not zero", v.pad));
    }
    Ok(())
}

fn unknown_ioctl_is_enotty() -> Result<(), String> {
    let d = open()?;
    let mut buf = [0u8; 64];
    let p = buf.as_mut_ptr() as usize;
    // An unused number of rkmem's type, another type's command, and a known number with the
    // wrong size (so a different command word).
    expect_errno(
        "rkmem nr 0xff",
        d.raw_ioctl(uapi::ior::<[u8; 16]>(0xff), p),
        Errno::ENOTTY,
    )?;
    expect_errno(
        "type 'x' nr 1",
        d.raw_ioctl(uapi::ioc(0, b'x' as u32, 1, 0), 0),
        Errno::ENOTTY,
    )?;
    expect_errno(
        "version nr with size 8",
        d.raw_ioctl(uapi::ioc(uapi::IOC_READ, uapi::RKMEM_IOC_MAGIC, 0, 8), p),
        Errno::ENOTTY,
    )
}

fn version_ioctl_bad_pointer_is_efault() -> Result<(), String> {
    let d = open()?;
    expect_errno(
        "NULL",
        d.raw_ioctl(uapi::RKMEM_IOC_VERSION, 0),
        Errno::EFAULT,
    )?;
    // A kernel address: never writable from user space.
    expect_errno(
        "kernel address",
        d.raw_ioctl(uapi::RKMEM_IOC_VERSION, 0xffff_8880_0000_0000),
        Errno::EFAULT,
    )
}

fn read_counter(name: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/rkmem/stats")
        .map_err(|e| format!("/proc/rkmem/stats: {e}"))?;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
        .ok_or_else(|| format!("no counter '{name}' in /proc/rkmem/stats"))
}

fn stats_counts_ioctls() -> Result<(), String> {
    let before = read_counter("ioctls")?;
    let errors_before = read_counter("ioctl_errors")?;
    let d = open()?;
    for _ in 0..5 {
        d.version().map_err(|e| format!("RKMEM_IOC_VERSION: {e}"))?;
    }
    let _ = d.raw_ioctl(uapi::ior::<[u8; 16]>(0xfe), 0);
    let after = read_counter("ioctls")?;
    let errors_after = read_counter("ioctl_errors")?;
    if after < before + 6 {
        return Err(format!("ioctls went {before} -> {after} after 6 calls"));
    }
    if errors_after < errors_before + 1 {
        return Err(format!(
            "ioctl_errors went {errors_before} -> {errors_after} after a failed call"
        ));
    }
    Ok(())
}

// ---- the buddy allocator's ioctls ----

fn alloc(d: &Device, req: PagesReq) -> Result<dev::Alloc, String> {
    let a = d
        .pages_alloc(req)
        .map_err(|e| format!("alloc {req}: {e}"))?;
    let want = req.pages() * PAGE_SIZE;
    if a.bytes != want {
        return Err(format!("alloc {req}: {} bytes, want {want}", a.bytes));
    }
    if a.handle == 0 {
        return Err(format!("alloc {req}: handle 0"));
    }
    Ok(a)
}

fn free(d: &Device, a: &dev::Alloc) -> Result<(), String> {
    d.free(a.handle)
        .map_err(|e| format!("free {:#x} ({} bytes): {e}", a.handle, a.bytes))
}

fn alloc_errno(
    d: &Device,
    what: &str,
    mut arg: RkmemPagesAlloc,
    want: Errno,
) -> Result<(), String> {
    let got = d.pages_alloc_raw(&mut arg).map(|()| 0);
    if got.is_ok() {
        // Do not leak it into later tests (closing the file would free it anyway).
        let _ = d.free(arg.handle);
    }
    expect_errno(what, got, want)
}

pub(crate) fn trim_all(d: &Device) -> Result<RkmemTrim, String> {
    d.trim(TRIM_ALL)
        .map_err(|e| format!("RKMEM_IOC_TRIM(SLABS|PCP|ARENA): {e}"))
}

/// `Ok` if `RKMEM_IOC_VERSION` reports feature bit `bit` (called `name` in the message).
pub(crate) fn expect_feature(bit: u32, name: &str) -> Result<(), String> {
    let v = open()?
        .version()
        .map_err(|e| format!("RKMEM_IOC_VERSION: {e}"))?;
    if v.features & bit == 0 {
        return Err(format!("features {:#x} lack {name}", v.features));
    }
    Ok(())
}

fn features_include_pages() -> Result<(), String> {
    expect_feature(uapi::RKMEM_FEAT_PAGES, "RKMEM_FEAT_PAGES")
}

fn pages_alloc_every_order() -> Result<(), String> {
    let d = open()?;
    let mut held: Vec<dev::Alloc> = Vec::new();
    for order in 0..=uapi::RKMEM_MAX_ORDER {
        let a = alloc(&d, PagesReq::Order(order))?;
        if held.iter().any(|h| h.handle == a.handle) {
            return Err(format!("order {order}: handle {:#x} given twice", a.handle));
        }
        held.push(a);
    }
    for a in &held {
        free(&d, a)?;
    }
    Ok(())
}

fn pages_exact_counts() -> Result<(), String> {
    let d = open()?;
    for n in [1, 3, 1023, 1024] {
        let a = alloc(&d, PagesReq::Exact(n))?;
        free(&d, &a)?;
    }
    // All at once, too.
    let held = [1, 3, 1023, 1024]
        .into_iter()
        .map(|n| alloc(&d, PagesReq::Exact(n)))
        .collect::<Result<Vec<_>, _>>()?;
    held.iter().try_for_each(|a| free(&d, a))
}

fn pages_exact_with_order_is_einval() -> Result<(), String> {
    // The order field must be zero with RKMEM_PAGES_EXACT (unused fields are reserved).
    let arg = RkmemPagesAlloc {
        order: 5,
        flags: uapi::RKMEM_PAGES_EXACT,
        npages: 3,
        ..Default::default()
    };
    alloc_errno(&open()?, "exact 3 pages with order 5", arg, Errno::EINVAL)
}

fn pages_order_11_is_einval() -> Result<(), String> {
    let d = open()?;
    for order in [uapi::RKMEM_MAX_ORDER + 1, 31, 63, u32::MAX] {
        alloc_errno(
            &d,
            &format!("order {order}"),
            PagesReq::Order(order).to_arg(),
            Errno::EINVAL,
        )?;
    }
    Ok(())
}

fn pages_exact_bad_counts_are_einval() -> Result<(), String> {
    let d = open()?;
    for n in [0, 1025, 4096, u32::MAX] {
        alloc_errno(
            &d,
            &format!("exact {n} pages"),
            PagesReq::Exact(n).to_arg(),
            Errno::EINVAL,
        )?;
    }
    Ok(())
}

fn pages_npages_without_exact_is_einval() -> Result<(), String> {
    // npages is documented as zero unless RKMEM_PAGES_EXACT is set.
    let arg = RkmemPagesAlloc {
        order: 0,
        npages: 1,
        ..Default::default()
    };
    alloc_errno(&open()?, "order 0 with npages 1", arg, Errno::EINVAL)
}

fn pages_unknown_flag_is_einval() -> Result<(), String> {
    let d = open()?;
    for bit in [1u32 << 1, 1 << 7, 1 << 31] {
        let mut arg = PagesReq::Order(0).to_arg();
        arg.flags |= bit;
        alloc_errno(&d, &format!("flag {bit:#x}"), arg, Errno::EINVAL)?;
        let mut arg = PagesReq::Exact(1).to_arg();
        arg.flags |= bit;
        alloc_errno(&d, &format!("EXACT | {bit:#x}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn pages_reserved_is_einval() -> Result<(), String> {
    let d = open()?;
    for reserved in [1, 0x8000_0000] {
        let mut arg = PagesReq::Order(0).to_arg();
        arg.reserved = reserved;
        alloc_errno(&d, &format!("reserved {reserved:#x}"), arg, Errno::EINVAL)?;
    }
    Ok(())
}

fn free_unknown_handle_is_enoent() -> Result<(), String> {
    let d = open()?;
    // A file that never allocated, then one that holds something else.
    for h in [0, 1, 2, 0xdead_beef, u64::MAX] {
        expect_errno(
            &format!("free {h:#x}"),
            d.free(h).map(|()| 0),
            Errno::ENOENT,
        )?;
    }
    let a = alloc(&d, PagesReq::Order(0))?;
    for h in [0, a.handle ^ 1, a.handle.wrapping_add(1), !a.handle] {
        if h != a.handle {
            expect_errno(
                &format!("free {h:#x}"),
                d.free(h).map(|()| 0),
                Errno::ENOENT,
            )?;
        }
    }
    free(&d, &a)
}

fn free_twice_is_enoent() -> Result<(), String> {
    let d = open()?;
    for req in [PagesReq::Order(0), PagesReq::Order(4), PagesReq::Exact(3)] {
        let a = alloc(&d, req)?;
        free(&d, &a)?;
        expect_errno(
            &format!("second free of {req}"),
            d.free(a.handle).map(|()| 0),
            Errno::ENOENT,
        )?;
    }
    Ok(())
}

fn handles_are_per_file() -> Result<(), String> {
    let d1 = open()?;
    let d2 = open()?;
    let a = alloc(&d1, PagesReq::Order(1))?;
    let mut buf = [0u8; 16];
    expect_errno(
        "write through another file",
        d2.write(a.handle, 0, &buf).map(|()| 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "read through another file",
        d2.read(a.handle, 0, &mut buf).map(|()| 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "free through another file",
        d2.free(a.handle).map(|()| 0),
        Errno::ENOENT,
    )?;
    // The owner still has it, intact.
    d1.write(a.handle, 0, b"still mine")
        .map_err(|e| format!("owner's write: {e}"))?;
    free(&d1, &a)
}

fn io_round_trip() -> Result<(), String> {
    let d = open()?;
    for req in [PagesReq::Order(0), PagesReq::Order(2), PagesReq::Exact(3)] {
        let a = alloc(&d, req)?;
        let size = a.bytes;
        let key = pattern::key(a.handle, 0x5eed);
        // The whole allocation, then pieces at awkward offsets including the last byte.
        let mut whole = vec![0u8; size as usize];
        pattern::fill(key, 0, &mut whole);
        d.write(a.handle, 0, &whole)
            .map_err(|e| format!("{req}: write {size} bytes: {e}"))?;
        let pieces = [
            (0, 1),
            (1, 7),
            (4095, 2),
            (4096, 4096),
            (size / 2 + 3, 100),
            (size - 8, 8),
            (size - 1, 1),
        ];
        for (off, len) in pieces {
            if off + len > size {
                continue;
            }
            let mut data = vec![0u8; len as usize];
            pattern::fill(key ^ off, off, &mut data);
            d.write(a.handle, off, &data)
                .map_err(|e| format!("{req}: write {len} at {off}: {e}"))?;
            let mut back = vec![0u8; len as usize];
            d.read(a.handle, off, &mut back)
                .map_err(|e| format!("{req}: read {len} at {off}: {e}"))?;
            if back != data {
                return Err(format!("{req}: {len} bytes at {off} read back differently"));
            }
            // Put the whole-pattern back there.
            pattern::fill(key, off, &mut data);
            d.write(a.handle, off, &data)
                .map_err(|e| format!("{req}: rewrite {len} at {off}: {e}"))?;
        }
        let mut back = vec![0u8; size as usize];
        d.read(a.handle, 0, &mut back)
            .map_err(|e| format!("{req}: read {size} bytes: {e}"))?;
        if let Some((at, want, got)) = pattern::first_mismatch(key, 0, &back) {
            return Err(format!(
                "{req}: byte {at} reads {got:#04x}, {want:#04x} was written"
            ));
        }
        free(&d, &a)?;
    }
    Ok(())
}

/// Sends `arg` with both RKMEM_IOC_WRITE and RKMEM_IOC_READ; each must fail with `want`.
pub(crate) fn io_errno(d: &Device, what: &str, arg: RkmemIo, want: Errno) -> Result<(), String> {
    for (cmd, name) in [
        (uapi::RKMEM_IOC_WRITE, "write"),
        (uapi::RKMEM_IOC_READ, "read"),
    ] {
        // SAFETY: the tests only pass buffers the kernel may write (owned by the caller and
        // large enough for the range the module accepts) or unmapped addresses.
        let got = unsafe { d.io_raw(cmd, &arg) }.map(|()| 0);
        expect_errno(&format!("{name} {what}"), got, want)?;
    }
    Ok(())
}

fn io_past_end_is_einval() -> Result<(), String> {
    let d = open()?;
    let a = alloc(&d, PagesReq::Exact(3))?;
    let size = a.bytes;
    let mut buf = vec![0u8; size as usize + 2];
    let p = buf.as_mut_ptr() as u64;
    for (off, len) in [(size, 1), (size - 1, 2), (0, size + 1), (size + 4096, 1)] {
        let arg = RkmemIo {
            handle: a.handle,
            offset: off,
            len,
            buf: p,
        };
        io_errno(
            &d,
            &format!("{len} bytes at {off} of {size}"),
            arg,
            Errno::EINVAL,
        )?;
    }
    free(&d, &a)
}

fn io_len_overflow_is_einval() -> Result<(), String> {
    let d = open()?;
    let a = alloc(&d, PagesReq::Order(0))?;
    let mut buf = [0u8; 64];
    let p = buf.as_mut_ptr() as u64;
    for (off, len) in [
        (u64::MAX - 10, 20),
        (u64::MAX, 1),
        (8, u64::MAX - 4),
        (1, u64::MAX),
        (u64::MAX, u64::MAX),
    ] {
        let arg = RkmemIo {
            handle: a.handle,
            offset: off,
            len,
            buf: p,
        };
        io_errno(&d, &format!("len {len:#x} at {off:#x}"), arg, Errno::EINVAL)?;
    }
    free(&d, &a)
}

/// An anonymous mapping of two pages whose second page is unmapped again: a buffer that
/// starts valid and faults half way. Unmapped on drop.
struct HalfMapped {
    addr: *mut nix::libc::c_void,
}

impl HalfMapped {
    fn new() -> Result<HalfMapped, String> {
        let page = PAGE_SIZE as usize;
        // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
        // existing memory of this process.
        let addr = unsafe {
            nix::libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                nix::libc::PROT_READ | nix::libc::PROT_WRITE,
                nix::libc::MAP_PRIVATE | nix::libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == nix::libc::MAP_FAILED {
            return Err(format!("mmap: {}", Errno::last()));
        }
        // SAFETY: the second page is part of the mapping made above, which nothing else uses.
        let r = unsafe { nix::libc::munmap(addr.cast::<u8>().add(page).cast(), page) };
        if r != 0 {
            return Err(format!("munmap: {}", Errno::last()));
        }
        Ok(HalfMapped { addr })
    }
}

impl Drop for HalfMapped {
    fn drop(&mut self) {
        // SAFETY: the first page is still mapped by `new` and is used by nobody else.
        unsafe { nix::libc::munmap(self.addr, PAGE_SIZE as usize) };
    }
}

fn io_bad_buffer_is_efault() -> Result<(), String> {
    let d = open()?;
    let a = alloc(&d, PagesReq::Order(1))?;
    let half = HalfMapped::new()?;
    for (what, buf, len) in [
        ("NULL buffer", 0u64, 16u64),
        ("kernel address", 0xffff_8880_0000_0000, 16),
        (
            "buffer with an unmapped second page",
            half.addr as u64,
            2 * PAGE_SIZE,
        ),
        (
            "buffer in the unmapped page",
            half.addr as u64 + PAGE_SIZE,
            8,
        ),
    ] {
        let arg = RkmemIo {
            handle: a.handle,
            offset: 0,
            len,
            buf,
        };
        io_errno(&d, what, arg, Errno::EFAULT)?;
    }
    // The allocation is still usable and the file still works.
    d.write(a.handle, 0, b"after EFAULT")
        .map_err(|e| format!("write after EFAULT: {e}"))?;
    free(&d, &a)
}

fn bad_argument_pointers_are_efault() -> Result<(), String> {
    let d = open()?;
    for (cmd, name) in [
        (uapi::RKMEM_IOC_PAGES_ALLOC, "PAGES_ALLOC"),
        (uapi::RKMEM_IOC_FREE, "FREE"),
        (uapi::RKMEM_IOC_WRITE, "WRITE"),
        (uapi::RKMEM_IOC_READ, "READ"),
        (uapi::RKMEM_IOC_ARENA_MAP, "ARENA_MAP"),
        (uapi::RKMEM_IOC_TRIM, "TRIM"),
    ] {
        expect_errno(
            &format!("{name} with NULL"),
            d.raw_ioctl(cmd, 0),
            Errno::EFAULT,
        )?;
        expect_errno(
            &format!("{name} with a kernel address"),
            d.raw_ioctl(cmd, 0xffff_8880_0000_0000),
            Errno::EFAULT,
        )?;
    }
    // The map's entries pointer.
    for entries in [0u64, 0xffff_8880_0000_0000] {
        let mut arg = RkmemArenaMap {
            slot: 0,
            max_entries: uapi::RKMEM_MAP_MAX_ENTRIES,
            entries,
            ..Default::default()
        };
        // SAFETY: `entries` is NULL or a kernel address: never memory of this process.
        let got = unsafe { d.arena_map_raw(&mut arg) }.map(|()| 0);
        expect_errno(
            &format!("ARENA_MAP entries {entries:#x}"),
            got,
            Errno::EFAULT,
        )?;
    }
    Ok(())
}

fn new_ioctls_wrong_size_are_enotty() -> Result<(), String> {
    let d = open()?;
    let mut buf = [0u8; 64];
    let p = buf.as_mut_ptr() as usize;
    for nr in 0x10..=0x15 {
        // Size 8 fits none of them except FREE, whose direction is write-only.
        let cmd = uapi::ioc(
            uapi::IOC_READ | uapi::IOC_WRITE,
            uapi::RKMEM_IOC_MAGIC,
            nr,
            if nr == 0x11 { 8 } else { 4 },
        );
        expect_errno(
            &format!("nr {nr:#x} with another size"),
            d.raw_ioctl(cmd, p),
            Errno::ENOTTY,
        )?;
    }
    Ok(())
}

/// Every `RKMEM_TRIM_*` flag this ABI defines.
const TRIM_ALL: u32 = uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA | uapi::RKMEM_TRIM_SLABS;

fn trim_bad_args_are_einval() -> Result<(), String> {
    let d = open()?;
    let unknown = !TRIM_ALL;
    for flags in [1u32 << unknown.trailing_zeros(), 1 << 31, unknown] {
        let mut arg = RkmemTrim {
            flags: uapi::RKMEM_TRIM_PCP | flags,
            ..Default::default()
        };
        expect_errno(
            &format!("trim flags {flags:#x}"),
            d.trim_raw(&mut arg).map(|()| 0),
            Errno::EINVAL,
        )?;
    }
    let mut arg = RkmemTrim {
        flags: uapi::RKMEM_TRIM_PCP,
        reserved: 1,
        ..Default::default()
    };
    expect_errno(
        "trim reserved 1",
        d.trim_raw(&mut arg).map(|()| 0),
        Errno::EINVAL,
    )?;
    trim_all(&d).map(|_| ())
}

fn all_maps(d: &Device) -> Result<Vec<dev::SlotMap>, String> {
    let maps = d
        .arena_maps()
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
    for m in &maps {
        map::check_slot(m)?;
        if m.slot_pages != 1024 {
            return Err(format!(
                "slot {}: slot_pages {}, want 1024",
                m.slot, m.slot_pages
            ));
        }
        if m.slots != maps[0].slots {
            return Err(format!(
                "slot {}: slots {}, slot 0 said {}",
                m.slot, m.slots, maps[0].slots
            ));
        }
    }
    // The per-CPU caches' pages (over all slots) are drawn as used blocks.
    let used: u64 = maps
        .iter()
        .flat_map(|m| m.blocks.iter())
        .filter(|b| b.kind == uapi::RKMEM_BLOCK_USED)
        .map(|b| u64::from(b.pages))
        .sum();
    if let Some(m) = maps.iter().find(|m| u64::from(m.pcp_pages) > used) {
        return Err(format!(
            "slot {}: pcp_pages {} exceeds the {used} pages of used blocks in all slots",
            m.slot, m.pcp_pages
        ));
    }
    Ok(maps)
}

fn arena_map_is_consistent() -> Result<(), String> {
    let max_mb = procfs::stat("arena_max_mb")?;
    let d = open()?;
    let maps = all_maps(&d)?;
    if u64::from(maps[0].slots) != max_mb / 4 {
        return Err(format!(
            "slots {}, want arena_max_mb/4 = {}",
            maps[0].slots,
            max_mb / 4
        ));
    }
    // Which slots are present is the arena's choice; how many is not: at least the initial
    // size (the arena only trims down to it).
    let initial_mb = procfs::stat("arena_initial_mb")?;
    let present = maps.iter().filter(|m| m.present).count() as u64;
    if present < initial_mb / 4 {
        return Err(format!(
            "{present} slots present, arena_initial_mb {initial_mb} needs {}",
            initial_mb / 4
        ));
    }
    // With a mix of allocations held.
    let mut held = Vec::new();
    for req in [
        PagesReq::Order(0),
        PagesReq::Order(3),
        PagesReq::Exact(5),
        PagesReq::Order(7),
        PagesReq::Exact(700),
        PagesReq::Order(0),
        PagesReq::Order(9),
    ] {
        held.push(alloc(&d, req)?);
    }
    let maps = all_maps(&d)?;
    let used: u64 = maps
        .iter()
        .flat_map(|m| m.blocks.iter())
        .filter(|b| b.kind != uapi::RKMEM_BLOCK_FREE)
        .map(|b| u64::from(b.pages))
        .sum();
    let held_pages: u64 = held.iter().map(|a| a.bytes / PAGE_SIZE).sum();
    if used < held_pages {
        return Err(format!(
            "the map shows {used} used pages, this file holds {held_pages}"
        ));
    }
    held.iter().try_for_each(|a| free(&d, a))
}

fn arena_map_shows_allocations() -> Result<(), String> {
    let d = open()?;
    trim_all(&d)?;
    let order10 = alloc(&d, PagesReq::Order(10))?;
    let exact = alloc(&d, PagesReq::Exact(3))?;
    let maps = all_maps(&d)?;
    let blocks: Vec<&RkmemBlock> = maps.iter().flat_map(|m| m.blocks.iter()).collect();
    let has = |pages, kind| blocks.iter().any(|b| b.pages == pages && b.kind == kind);
    if !has(1024, uapi::RKMEM_BLOCK_USED) {
        return Err("no used block of 1024 pages while an order-10 block is held".into());
    }
    if !has(3, uapi::RKMEM_BLOCK_EXACT) {
        return Err("no exact block of 3 pages while one is held".into());
    }
    free(&d, &order10)?;
    free(&d, &exact)?;
    let maps = all_maps(&d)?;
    if maps
        .iter()
        .flat_map(|m| m.blocks.iter())
        .any(|b| b.kind == uapi::RKMEM_BLOCK_EXACT)
    {
        return Err("an exact block is still listed after it was freed".into());
    }
    Ok(())
}

fn arena_map_bad_args_are_einval() -> Result<(), String> {
    let d = open()?;
    let slots = d
        .arena_map(0)
        .map_err(|e| format!("RKMEM_IOC_ARENA_MAP slot 0: {e}"))?
        .slots;
    let mut entries = vec![RkmemBlock::default(); uapi::RKMEM_MAP_MAX_ENTRIES as usize + 1];
    let base = RkmemArenaMap {
        slot: 0,
        max_entries: uapi::RKMEM_MAP_MAX_ENTRIES,
        entries: entries.as_mut_ptr() as u64,
        ..Default::default()
    };
    let cases = [
        (
            "slot == slots",
            RkmemArenaMap {
                slot: slots,
                ..base
            },
        ),
        (
            "slot u32::MAX",
            RkmemArenaMap {
                slot: u32::MAX,
                ..base
            },
        ),
        (
            "max_entries 1025",
            RkmemArenaMap {
                max_entries: uapi::RKMEM_MAP_MAX_ENTRIES + 1,
                ..base
            },
        ),
        (
            "reserved 1",
            RkmemArenaMap {
                reserved: 1,
                ..base
            },
        ),
    ];
    for (what, mut arg) in cases {
        // SAFETY: `entries` has room for 1025 blocks, more than any case lets the module write.
        let got = unsafe { d.arena_map_raw(&mut arg) }.map(|()| 0);
        expect_errno(what, got, Errno::EINVAL)?;
    }
    Ok(())
}

fn buddyinfo_format() -> Result<(), String> {
    let d = open()?;
    procfs::buddyinfo()?;
    // Also while blocks of several orders are held and the free lists are split up.
    let held = (0..=uapi::RKMEM_MAX_ORDER)
        .map(|o| alloc(&d, PagesReq::Order(o)))
        .collect::<Result<Vec<_>, _>>()?;
    let counts = procfs::buddyinfo()?;
    held.iter().try_for_each(|a| free(&d, a))?;
    if procfs::free_pages(&counts) == 0 && counts.iter().all(|&n| n == 0) {
        // Possible (an exactly full arena) but not with these allocations in a fresh arena.
        return Err("buddyinfo shows no free block at all".into());
    }
    Ok(())
}

fn extfrag_format() -> Result<(), String> {
    let d = open()?;
    trim_all(&d)?;
    let e = procfs::extfrag()?;
    let counts = procfs::buddyinfo()?;
    if e.arena_mib != e.arena_pages * PAGE_SIZE / (1 << 20) {
        return Err(format!(
            "arena_mib {} for {} pages",
            e.arena_mib, e.arena_pages
        ));
    }
    if e.arena_pages % 1024 != 0 || e.arena_pages == 0 {
        return Err(format!(
            "arena_pages {} is not a positive multiple of 1024",
            e.arena_pages
        ));
    }
    if e.free_pages != procfs::free_pages(&counts) {
        return Err(format!(
            "free_pages {} but buddyinfo sums to {} (nothing allocated)",
            e.free_pages,
            procfs::free_pages(&counts)
        ));
    }
    let largest = counts
        .iter()
        .rposition(|&n| n != 0)
        .map_or(-1, |o| o as i64);
    if e.largest_free_order != largest {
        return Err(format!(
            "largest_free_order {} but buddyinfo says {largest}",
            e.largest_free_order
        ));
    }
    // A wholly free arena: nothing unusable for any order, every allocation would succeed.
    if e.unusable.iter().any(|&u| u != 0) || e.extfrag.iter().any(|&x| x != -1000) {
        return Err(format!(
            "idle arena: unusable {:?}, extfrag {:?}",
            e.unusable, e.extfrag
        ));
    }
    Ok(())
}

fn buddyinfo_at_rest_is_initial_arena() -> Result<(), String> {
    let initial = procfs::stat("arena_initial_mb")?;
    trim_all(&open()?)?;
    let counts = procfs::buddyinfo()?;
    let want = procfs::load_time_buddyinfo(initial);
    if counts != want {
        return Err(format!(
            "with nothing held and the caches trimmed buddyinfo is {:?}, want {:?} (arena_initial_mb {initial})",
            counts, want
        ));
    }
    Ok(())
}

fn arena_exhaustion_is_enomem() -> Result<(), String> {
    let max_mb = procfs::stat("arena_max_mb")?;
    let initial_mb = procfs::stat("arena_initial_mb")?;
    let d = open()?;
    trim_all(&d)?;
    let want = max_mb / 4;
    let mut held = Vec::new();
    let outcome = loop {
        if held.len() as u64 > want {
            break Err(format!(
                "{} order-10 blocks allocated, arena_max_mb {max_mb} allows {want}",
                held.len()
            ));
        }
        match d.pages_alloc(PagesReq::Order(10)) {
            Ok(a) => held.push(a),
            Err(Errno::ENOMEM) => break Ok(()),
            Err(e) => break Err(format!("order-10 allocation #{}: {e}", held.len() + 1)),
        }
    };
    let count = held.len() as u64;
    // Smaller requests fail too while the arena is full.
    let small = if outcome.is_ok() && count == want {
        expect_errno(
            "order 0 with a full arena",
            d.pages_alloc(PagesReq::Order(0)).map(|_| 0),
            Errno::ENOMEM,
        )
    } else {
        Ok(())
    };
    for a in &held {
        free(&d, a)?;
    }
    outcome?;
    if count != want {
        return Err(format!(
            "ENOMEM after {count} order-10 blocks, want arena_max_mb/4 = {want}"
        ));
    }
    small?;
    // The background trimmer (woken when the arena passed its watermarks) may give some blocks
    // back before this trim does: what counts is that the arena is back to its initial size
    // and that the trim gave back no more than what was above it.
    let t = trim_all(&d)?;
    let arena = procfs::stat("arena_pages")?;
    if arena != initial_mb * 256 {
        return Err(format!(
            "after the arena was full and emptied and a trim, arena_pages is {arena}, want {}",
            initial_mb * 256
        ));
    }
    let released_want = (max_mb - initial_mb) * 256;
    if t.released_pages > released_want {
        return Err(format!(
            "trim released {} pages, more than the {released_want} above arena_initial_mb",
            t.released_pages
        ));
    }
    Ok(())
}

/// Allocates a mix that splits blocks of every order and grows the arena past its initial
/// size (two order-10 blocks more than it has), on `d`.
fn allocate_mix(d: &Device, initial_mb: u64) -> Result<Vec<dev::Alloc>, String> {
    let mut held = Vec::new();
    for i in 0..200u32 {
        let req = match i % 5 {
            0 => PagesReq::Order(i % 4),
            1 => PagesReq::Exact(1 + i % 37),
            2 => PagesReq::Order(i % 11),
            _ => PagesReq::Order(0),
        };
        match d.pages_alloc(req) {
            Ok(a) => held.push(a),
            Err(Errno::ENOMEM) => break,
            Err(e) => return Err(format!("alloc {req}: {e}")),
        }
    }
    for _ in 0..initial_mb / 4 + 2 {
        match d.pages_alloc(PagesReq::Order(10)) {
            Ok(a) => held.push(a),
            Err(Errno::ENOMEM) => break,
            Err(e) => return Err(format!("alloc order 10: {e}")),
        }
    }
    Ok(held)
}

fn free_all_and_trim_restores_buddyinfo() -> Result<(), String> {
    let initial = procfs::stat("arena_initial_mb")?;
    let d = open()?;
    trim_all(&d)?;
    let start = procfs::buddyinfo()?;
    let held = allocate_mix(&d, initial)?;
    let during = procfs::buddyinfo()?;
    if during == start {
        return Err("buddyinfo did not change while allocations were held".into());
    }
    // Free in an order unlike the allocation order.
    for a in held.iter().step_by(2).chain(held.iter().skip(1).step_by(2)) {
        free(&d, a)?;
    }
    trim_all(&d)?;
    let end = procfs::buddyinfo()?;
    if end != start {
        return Err(format!(
            "after free + trim buddyinfo is {end:?}, at the start it was {start:?}"
        ));
    }
    Ok(())
}

fn close_frees_everything() -> Result<(), String> {
    let initial = procfs::stat("arena_initial_mb")?;
    trim_all(&open()?)?;
    let start = procfs::buddyinfo()?;
    let open_files = procfs::stat("open_files")?;
    {
        let d1 = open()?;
        let d2 = open()?;
        let h1 = allocate_mix(&d1, initial)?;
        let h2 = allocate_mix(&d2, 0)?;
        if h1.is_empty() || h2.is_empty() {
            return Err("nothing allocated".into());
        }
        // Both files are closed here, holding everything.
    }
    let now_open = procfs::stat("open_files")?;
    if now_open != open_files {
        return Err(format!(
            "open_files {open_files} before, {now_open} after closing"
        ));
    }
    trim_all(&open()?)?;
    let end = procfs::buddyinfo()?;
    if end != start {
        return Err(format!(
            "after close + trim buddyinfo is {end:?}, before it was {start:?}"
        ));
    }
    Ok(())
}

/// The deliberate bad frees of pages one SELFTEST makes (and must see refused).
const SELFTEST_BAD_FREES: u64 = 8;

/// SELFTEST calls running at the same time, from several threads and files: each passes (its
/// checks judge its own results, not module-wide counters), each reports its eight refused bad
/// frees, and the module's `bad_free_*` counters do not move (the page checks run on a private
/// arena).
fn kernel_selftest_concurrent() -> Result<(), String> {
    let before = procfs::bad_frees()?;
    let (threads, calls) = (4, 6);
    let answers = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| -> Result<Vec<RkmemSelftest>, String> {
                    let d = open()?;
                    (0..calls)
                        .map(|_| d.selftest().map_err(|e| format!("RKMEM_IOC_SELFTEST: {e}")))
                        .collect()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect::<Result<Vec<_>, String>>()
    })?;
    let answers: Vec<RkmemSelftest> = answers.into_iter().flatten().collect();
    if let Some(a) = answers.iter().find(|a| a.failed != 0 || a.passed == 0) {
        return Err(format!(
            "a concurrent call: {} passed, {} failed (see dmesg)",
            a.passed, a.failed
        ));
    }
    if let Some(a) = answers
        .iter()
        .find(|a| a.arena_bad_frees != SELFTEST_BAD_FREES)
    {
        return Err(format!(
            "a concurrent call reports {} refused bad frees, the checks make {SELFTEST_BAD_FREES}",
            a.arena_bad_frees
        ));
    }
    let after = procfs::bad_frees()?;
    if after != before {
        return Err(format!(
            "bad_free_* moved from {before} to {after} during {} concurrent calls",
            answers.len()
        ));
    }
    Ok(())
}

fn kernel_selftest_passes() -> Result<(), String> {
    let before = procfs::bad_frees()?;
    let d = open()?;
    let s = d
        .selftest()
        .map_err(|e| format!("RKMEM_IOC_SELFTEST: {e}"))?;
    if s.failed != 0 || s.passed == 0 {
        return Err(format!(
            "in-kernel checks: {} passed, {} failed (see dmesg)",
            s.passed, s.failed
        ));
    }
    if s.arena_bad_frees != SELFTEST_BAD_FREES {
        return Err(format!(
            "the answer reports {} refused bad frees, the checks make {SELFTEST_BAD_FREES}",
            s.arena_bad_frees
        ));
    }
    let after = procfs::bad_frees()?;
    if after != before {
        return Err(format!(
            "bad_free_* moved from {before} to {after}: the checks' frees belong to their private arena"
        ));
    }
    // The allocator is intact: everything the checks allocated was given back.
    trim_all(&d)?;
    let initial = procfs::stat("arena_initial_mb")?;
    let counts = procfs::buddyinfo()?;
    if counts != procfs::load_time_buddyinfo(initial) {
        return Err(format!(
            "after the in-kernel checks and a trim buddyinfo is {counts:?}"
        ));
    }
    Ok(())
}
