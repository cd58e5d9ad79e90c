// SPDX-License-Identifier: GPL-2.0

//! The ioctl numbers computed by `rust/uapi.rs` against the values the kernel's `_IOR` macro
//! gives for the same type, size and number (x86_64 encoding).

use crate::uapi::*;

#[test]
fn version_ioctl_number_matches_ior() {
    // _IOR(0xB9, 0x00, struct rkmem_version) = dir 2 << 30 | size 16 << 16 | 0xB9 << 8 | 0
    assert_eq!(RKMEM_IOC_VERSION, (2 << 30) | (16 << 16) | (0xB9 << 8));
    assert_eq!(RKMEM_IOC_VERSION, 0x8010_b900);
}

#[test]
fn iowr_sets_both_directions() {
    assert_eq!(iowr::<u64>(5) >> 30, 3);
    assert_eq!(iow::<u64>(5) >> 30, 1);
    assert_eq!((iowr::<u64>(5) >> 16) & 0x3fff, 8);
    assert_eq!(iowr::<u64>(5) & 0xff, 5);
}

#[test]
fn version_struct_has_no_holes() {
    use core::mem::{offset_of, size_of};
    assert_eq!(offset_of!(RkmemVersion, abi_version), 0);
    assert_eq!(offset_of!(RkmemVersion, major), 4);
    assert_eq!(offset_of!(RkmemVersion, minor), 6);
    assert_eq!(offset_of!(RkmemVersion, patch), 8);
    assert_eq!(offset_of!(RkmemVersion, pad), 10);
    assert_eq!(offset_of!(RkmemVersion, features), 12);
    assert_eq!(size_of::<RkmemVersion>(), 16);
}
