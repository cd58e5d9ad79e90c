// SPDX-License-Identifier: GPL-2.0

//! `/dev/rkmem`: the misc device and its ioctls.
//!
//! Every command is checked before it acts: an unknown command word (which includes a known
//! number with the wrong size or direction) is `ENOTTY`, a bad argument `EINVAL`, a handle this
//! file does not hold `ENOENT`, a bad user pointer `EFAULT`.
//!
//! Allocations made through a file are kept in that file's handle table: user space only ever
//! sees opaque handles (a per-file counter, never reused, never an address). Closing the file,
//! also when the process is killed, frees everything it holds.

use crate::arena::{Pages, SLOT_PAGES};
use crate::rkcore::buddy::BlockKind;
use crate::stats::{inc, STATS};
use crate::uapi::{self, RkmemArenaMap, RkmemBlock, RkmemHandle, RkmemIo, RkmemPagesAlloc};
use crate::uapi::{RkmemSelftest, RkmemTrim, RkmemVersion};
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::Mutex,
    uaccess::{UserPtr, UserSlice},
};

/// Module version reported by `RKMEM_IOC_VERSION`.
const VERSION: (u16, u16, u16) = (0, 2, 0);

/// An allocation held by an open file. Dropping it gives the memory back.
struct Allocation {
    pages: Pages,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if let Some(shared) = crate::shared() {
            // A refused free is counted and reported by the arena; nothing else to do here.
            let _ = shared.arena.free(self.pages);
        }
    }
}

/// The handle table of one open file.
struct Handles {
    tree: RBTree<u64, Allocation>,
    next: u64,
}

/// State of one open file of `/dev/rkmem`.
#[pin_data]
pub(crate) struct RkmemFile {
    #[pin]
    handles: Mutex<Handles>,
}

#[vtable]
impl MiscDevice for RkmemFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let f = KBox::try_pin_init(
            try_pin_init!(RkmemFile {
                handles <- new_mutex!(Handles { tree: RBTree::new(), next: 1 }, "rkmem_file_handles"),
            }),
            GFP_KERNEL,
        )?;
        inc(&STATS.opens);
        Ok(f)
    }

    fn release(device: Pin<KBox<Self>>, _file: &File) {
        // Dropping the table frees every allocation the file still holds.
        drop(device);
        inc(&STATS.releases);
    }

    fn ioctl(me: Pin<&RkmemFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
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
            }
            uapi::RKMEM_IOC_PAGES_ALLOC => self.pages_alloc(user)?,
            uapi::RKMEM_IOC_FREE => {
                let h: RkmemHandle = user.reader().read()?;
                let a = self.handles.lock().tree.remove(&h.handle).ok_or(ENOENT)?;
                drop(a);
            }
            uapi::RKMEM_IOC_WRITE => self.io(user, true)?,
            uapi::RKMEM_IOC_READ => self.io(user, false)?,
            uapi::RKMEM_IOC_ARENA_MAP => arena_map(user)?,
            uapi::RKMEM_IOC_TRIM => {
                let (mut r, mut w) = user.reader_writer();
                let mut t: RkmemTrim = r.read()?;
                if t.reserved != 0
                    || t.flags & !(uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA) != 0
                {
                    return Err(EINVAL);
                }
                let done = crate::shared().ok_or(ENODEV)?.arena.trim(
                    t.flags & uapi::RKMEM_TRIM_PCP != 0,
                    t.flags & uapi::RKMEM_TRIM_ARENA != 0,
                );
                t.pcp_pages = done.pcp_pages as u64;
                t.released_pages = done.released_pages as u64;
                w.write(&t)?;
            }
            uapi::RKMEM_IOC_SELFTEST => {
                let o = crate::selftest::run(&crate::shared().ok_or(ENODEV)?.arena)?;
                user.writer().write(&RkmemSelftest {
                    passed: o.passed,
                    failed: o.failed,
                })?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    /// Stores `a` under a new handle.
    fn insert(&self, a: Allocation) -> Result<u64> {
        let mut h = self.handles.lock();
        let handle = h.next;
        h.next = h.next.checked_add(1).ok_or(ENOSPC)?;
        // On failure `a` is dropped, which frees the memory.
        h.tree.try_create_and_insert(handle, a, GFP_KERNEL)?;
        Ok(handle)
    }

    fn pages_alloc(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemPagesAlloc = r.read()?;
        if req.reserved != 0 || req.flags & !uapi::RKMEM_PAGES_EXACT != 0 {
            return Err(EINVAL);
        }
        let arena = &crate::shared().ok_or(ENODEV)?.arena;
        let pages = if req.flags & uapi::RKMEM_PAGES_EXACT != 0 {
            if req.order != 0 {
                return Err(EINVAL);
            }
            arena.alloc_exact(req.npages as usize, true)?
        } else {
            if req.npages != 0 {
                return Err(EINVAL);
            }
            arena.alloc(req.order, true)?
        };
        let handle = self.insert(Allocation { pages })?;
        req.handle = handle;
        req.bytes = pages.bytes() as u64;
        if let Err(e) = w.write(&req) {
            // User space will never learn the handle: free the allocation again.
            drop(self.handles.lock().tree.remove(&handle));
            return Err(e);
        }
        Ok(())
    }

    fn io(&self, user: UserSlice, write: bool) -> Result {
        let io: RkmemIo = user.reader().read()?;
        let arena = &crate::shared().ok_or(ENODEV)?.arena;
        let handles = self.handles.lock();
        let a = handles.tree.get(&io.handle).ok_or(ENOENT)?;
        let end = io.offset.checked_add(io.len).ok_or(EINVAL)?;
        if end > a.pages.bytes() as u64 {
            return Err(EINVAL);
        }
        if io.len == 0 {
            return Ok(());
        }
        let addr = arena.addr_of(a.pages.first()) + io.offset as usize;
        // SAFETY: `[addr, addr + len)` lies inside an allocation that this file holds (checked
        // above), in memory the arena took from the host kernel's direct map. The allocation
        // stays live and no other code touches its bytes while the file's handle mutex is held:
        // only this file can reach it, and every access of this file takes that mutex.
        let mem = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, io.len as usize) };
        let buf = UserSlice::new(UserPtr::from_addr(io.buf as usize), io.len as usize);
        if write {
            buf.reader().read_slice(mem)
        } else {
            buf.writer().write_slice(mem)
        }
    }
}

fn arena_map(user: UserSlice) -> Result {
    let (mut r, mut w) = user.reader_writer();
    let mut m: RkmemArenaMap = r.read()?;
    if m.reserved != 0 || m.max_entries > uapi::RKMEM_MAP_MAX_ENTRIES {
        return Err(EINVAL);
    }
    let arena = &crate::shared().ok_or(ENODEV)?.arena;
    if m.slot as usize >= arena.nr_slots() {
        return Err(EINVAL);
    }
    let mut blocks = KVec::with_capacity(m.max_entries as usize, GFP_KERNEL)?;
    let present = arena.with_buddy(|b| match b.blocks(m.slot as usize) {
        Ok(it) => {
            let base = m.slot as usize * SLOT_PAGES;
            for blk in it.take(m.max_entries as usize) {
                let kind = match blk.kind {
                    BlockKind::Free => uapi::RKMEM_BLOCK_FREE,
                    BlockKind::Used => uapi::RKMEM_BLOCK_USED,
                    BlockKind::Exact => uapi::RKMEM_BLOCK_EXACT,
                };
                let e = RkmemBlock {
                    start: (blk.start - base) as u32,
                    pages: blk.pages as u32,
                    kind,
                    reserved: 0,
                };
                // Cannot fail: the capacity is `max_entries` and `take` stops there.
                let _ = blocks.push_within_capacity(e);
            }
            true
        }
        Err(_) => false,
    });
    let mut out = UserSlice::new(
        UserPtr::from_addr(m.entries as usize),
        blocks.len() * core::mem::size_of::<RkmemBlock>(),
    )
    .writer();
    for e in blocks.iter() {
        out.write(e)?;
    }
    m.nr_entries = blocks.len() as u32;
    m.slots = arena.nr_slots() as u32;
    m.present = u32::from(present);
    m.slot_pages = SLOT_PAGES as u32;
    m.pcp_pages = arena.pcp_pages() as u32;
    w.write(&m)?;
    Ok(())
}

/// Marks the uapi structs as plain old data for `UserSliceReader::read`/`UserSliceWriter::write`.
macro_rules! uapi_pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: every uapi struct is `#[repr(C)]` with only integer fields and explicit
            // padding (`uapi.rs` asserts each size equals the sum of its fields), so all bytes
            // are initialised and any bit pattern is a valid value.
            unsafe impl kernel::transmute::AsBytes for $t {}
            // SAFETY: as above: any bytes of the right length are a valid value.
            unsafe impl kernel::transmute::FromBytes for $t {}
        )*
    };
}

uapi_pod!(
    RkmemVersion,
    RkmemPagesAlloc,
    RkmemHandle,
    RkmemIo,
    RkmemBlock,
    RkmemArenaMap,
    RkmemTrim,
    RkmemSelftest,
);
