// SPDX-License-Identifier: GPL-2.0

//! `/dev/rkmem`: the misc device and its ioctls.
//!
//! Every command is checked before it acts: an unknown command word (which includes a known
//! number with the wrong size or direction) is `ENOTTY`, a bad user pointer `EFAULT`.

use crate::stats::{inc, STATS};
use crate::uapi::{self, RkmemVersion};
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// Module version reported by `RKMEM_IOC_VERSION`.
const VERSION: (u16, u16, u16) = (0, 1, 0);

/// State of one open file of `/dev/rkmem`.
pub(crate) struct RkmemFile {
    _private: (),
}

#[vtable]
impl MiscDevice for RkmemFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        let f = KBox::new(RkmemFile { _private: () }, GFP_KERNEL)?;
        inc(&STATS.opens);
        Ok(f)
    }

    fn release(device: KBox<Self>, _file: &File) {
        drop(device);
        inc(&STATS.releases);
    }

    fn ioctl(me: &RkmemFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        inc(&STATS.ioctls);
        let r = me.dispatch(cmd, arg);
        if r.is_err() {
            inc(&STATS.ioctl_errors);
        }
        r
    }
}

impl RkmemFile {
    fn dispatch(&self, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
        match cmd {
            uapi::RKMEM_IOC_VERSION => {
                let (major, minor, patch) = VERSION;
                let v = RkmemVersion {
                    abi_version: uapi::RKMEM_ABI_VERSION,
                    major,
                    minor,
                    patch,
                    pad: 0,
                    features: uapi::RKMEM_FEATURES,
                };
                user.writer().write(&v)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

// SAFETY: `RkmemVersion` is `#[repr(C)]` with only integer fields and explicit padding (its size,
// 16, is the sum of its fields, asserted in `uapi.rs`), so every byte is initialised and no
// bit pattern is invalid: it may be copied to user space as bytes and read back from them.
unsafe impl kernel::transmute::AsBytes for RkmemVersion {}
// SAFETY: as above: any 16 bytes are a valid `RkmemVersion`.
unsafe impl kernel::transmute::FromBytes for RkmemVersion {}
