// SPDX-License-Identifier: GPL-2.0

//! `/dev/rkmem` from user space: open it, and one typed wrapper per ioctl.

use crate::uapi::{self, RkmemVersion};
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Path of the misc device.
pub const DEV_PATH: &str = "/dev/rkmem";

nix::ioctl_read_bad!(ioc_version, uapi::RKMEM_IOC_VERSION, RkmemVersion);

/// An open `/dev/rkmem`.
pub struct Device {
    file: File,
}

impl Device {
    /// Opens the device read-write.
    pub fn open() -> std::io::Result<Device> {
        Self::open_path(Path::new(DEV_PATH))
    }

    /// Opens the device at `path`.
    pub fn open_path(path: &Path) -> std::io::Result<Device> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Device { file })
    }

    /// `RKMEM_IOC_VERSION`.
    pub fn version(&self) -> Result<RkmemVersion, Errno> {
        let mut v = RkmemVersion::default();
        // SAFETY: the fd is open, and `v` is a valid, writable `RkmemVersion`, which is what
        // the kernel writes for this command.
        unsafe { ioc_version(self.file.as_raw_fd(), &mut v) }?;
        Ok(v)
    }

    /// Sends an arbitrary command with an arbitrary argument word: for tests of the
    /// module's input checks (unknown commands, bad pointers).
    pub fn raw_ioctl(&self, cmd: u32, arg: usize) -> Result<i32, Errno> {
        // SAFETY: the kernel validates `cmd` and `arg`; a bad pointer gives EFAULT, not a
        // write to memory of this process that it does not expect, because the tests only pass
        // pointers that are either unmapped or point to buffers large enough for `cmd`'s size.
        let r = unsafe { nix::libc::ioctl(self.file.as_raw_fd(), cmd as _, arg) };
        Errno::result(r)
    }
}

/// Checks that the running module speaks this program's ABI.
pub fn check_abi(v: &RkmemVersion) -> Result<(), String> {
    if v.abi_version != uapi::RKMEM_ABI_VERSION {
        return Err(format!(
            "module ABI version {} but rkmemctl was built for {}: rebuild one of them",
            v.abi_version,
            uapi::RKMEM_ABI_VERSION
        ));
    }
    Ok(())
}
