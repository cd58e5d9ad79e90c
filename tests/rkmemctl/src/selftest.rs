// SPDX-License-Identifier: GPL-2.0

//! In-guest tests of the `/dev/rkmem` interface, run by `rkmemctl test` with the module loaded.
//! Each test prints `ok - name` or `not ok - name: why`; the last line is `N passed, N failed`.

use crate::dev::{self, Device};
use crate::uapi;
use nix::errno::Errno;
use std::process::ExitCode;

type TestFn = fn() -> Result<(), String>;

const TESTS: &[(&str, TestFn)] = &[
    ("version_ioctl_answers", version_ioctl_answers),
    ("unknown_ioctl_is_enotty", unknown_ioctl_is_enotty),
    (
        "version_ioctl_bad_pointer_is_efault",
        version_ioctl_bad_pointer_is_efault,
    ),
    ("stats_counts_ioctls", stats_counts_ioctls),
];

/// Runs the tests whose name contains `filter` (all when `None`).
pub fn run(filter: Option<&str>) -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in TESTS {
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

fn open() -> Result<Device, String> {
    Device::open().map_err(|e| format!("open {}: {e}", dev::DEV_PATH))
}

fn expect_errno(what: &str, got: Result<i32, Errno>, want: Errno) -> Result<(), String> {
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
