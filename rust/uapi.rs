// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/rkmem`: numbers and `#[repr(C)]` structs.
//!
//! This one file is the source of truth. The module compiles it as `crate::uapi`, the user-space
//! program `rkmemctl` and the host tests include it with `#[path]`. It uses only `core`.
//!
//! Rules every struct follows: fixed size, explicit padding (no implicit holes), `reserved`
//! fields that callers must zero (the module answers `EINVAL` otherwise), and the size is part of
//! the ioctl number through `_IOR`/`_IOW`/`_IOWR`, so a size change is a new number.

/// The ioctl "type" byte of rkmem (unused in `Documentation/userspace-api/ioctl/ioctl-number.rst`).
pub const RKMEM_IOC_MAGIC: u32 = 0xB9;

/// Version of this ABI. Bumped on every incompatible change; user space refuses a module whose
/// `abi_version` differs from the one it was built with.
pub const RKMEM_ABI_VERSION: u32 = 1;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// `_IOC_WRITE`: user space writes the argument (the kernel reads it).
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: user space reads the argument (the kernel writes it).
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` of `include/uapi/asm-generic/ioctl.h`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    // The size field is 14 bits wide; every rkmem struct is far below 16 KiB, and a size that
    // does not fit fails the build (`const` evaluation of the assertion below).
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IOR(RKMEM_IOC_MAGIC, nr, T)`.
pub const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, RKMEM_IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// `_IOW(RKMEM_IOC_MAGIC, nr, T)`.
pub const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, RKMEM_IOC_MAGIC, nr, core::mem::size_of::<T>())
}

/// `_IOWR(RKMEM_IOC_MAGIC, nr, T)`.
pub const fn iowr<T>(nr: u32) -> u32 {
    ioc(
        IOC_READ | IOC_WRITE,
        RKMEM_IOC_MAGIC,
        nr,
        core::mem::size_of::<T>(),
    )
}

/// Answer of [`RKMEM_IOC_VERSION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemVersion {
    /// [`RKMEM_ABI_VERSION`] of the running module.
    pub abi_version: u32,
    /// Module version: major.
    pub major: u16,
    /// Module version: minor.
    pub minor: u16,
    /// Module version: patch.
    pub patch: u16,
    /// Explicit padding; zero.
    pub pad: u16,
    /// `RKMEM_FEAT_*` bits: which parts of the interface this module offers.
    pub features: u32,
}

/// Feature bit: the version ioctl (always set).
pub const RKMEM_FEAT_VERSION: u32 = 1 << 0;

/// Features this build of the module offers.
pub const RKMEM_FEATURES: u32 = RKMEM_FEAT_VERSION;

/// Read the module's ABI version and feature bits.
pub const RKMEM_IOC_VERSION: u32 = ior::<RkmemVersion>(0x00);

// The layout is the ABI: a size change must be a new ioctl number and ABI version.
const _: () = assert!(core::mem::size_of::<RkmemVersion>() == 16);
