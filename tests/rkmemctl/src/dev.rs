// SPDX-License-Identifier: GPL-2.0

//! `/dev/rkmem` from user space: open it, and one typed wrapper per ioctl.

use crate::uapi::{
    self, RkmemArenaMap, RkmemBlock, RkmemCacheCreate, RkmemCacheId, RkmemHandle, RkmemIo,
    RkmemObjAlloc, RkmemPagesAlloc, RkmemSelftest, RkmemTrim, RkmemVersion,
};
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Path of the misc device.
pub const DEV_PATH: &str = "/dev/rkmem";

/// Bytes of one page of the arena.
pub const PAGE_SIZE: u64 = 4096;

nix::ioctl_read_bad!(ioc_version, uapi::RKMEM_IOC_VERSION, RkmemVersion);
nix::ioctl_readwrite_bad!(
    ioc_pages_alloc,
    uapi::RKMEM_IOC_PAGES_ALLOC,
    RkmemPagesAlloc
);
nix::ioctl_write_ptr_bad!(ioc_free, uapi::RKMEM_IOC_FREE, RkmemHandle);
nix::ioctl_write_ptr_bad!(ioc_write, uapi::RKMEM_IOC_WRITE, RkmemIo);
nix::ioctl_write_ptr_bad!(ioc_read, uapi::RKMEM_IOC_READ, RkmemIo);
nix::ioctl_readwrite_bad!(ioc_arena_map, uapi::RKMEM_IOC_ARENA_MAP, RkmemArenaMap);
nix::ioctl_readwrite_bad!(ioc_trim, uapi::RKMEM_IOC_TRIM, RkmemTrim);
nix::ioctl_readwrite_bad!(ioc_compact, uapi::RKMEM_IOC_COMPACT, uapi::RkmemCompact);
nix::ioctl_read_bad!(ioc_selftest, uapi::RKMEM_IOC_SELFTEST, RkmemSelftest);
nix::ioctl_readwrite_bad!(ioc_stress, uapi::RKMEM_IOC_STRESS, uapi::RkmemStress);
nix::ioctl_readwrite_bad!(
    ioc_cache_create,
    uapi::RKMEM_IOC_CACHE_CREATE,
    RkmemCacheCreate
);
nix::ioctl_write_ptr_bad!(
    ioc_cache_destroy,
    uapi::RKMEM_IOC_CACHE_DESTROY,
    RkmemCacheId
);
nix::ioctl_readwrite_bad!(ioc_obj_alloc, uapi::RKMEM_IOC_OBJ_ALLOC, RkmemObjAlloc);
nix::ioctl_readwrite_bad!(
    ioc_handle_info,
    uapi::RKMEM_IOC_HANDLE_INFO,
    uapi::RkmemHandleInfo
);
nix::ioctl_readwrite_bad!(ioc_routes, uapi::RKMEM_IOC_ROUTES, uapi::RkmemRoutes);
nix::ioctl_readwrite_bad!(
    ioc_cache_slabs,
    uapi::RKMEM_IOC_CACHE_SLABS,
    uapi::RkmemCacheSlabs
);

/// An allocation answered by `RKMEM_IOC_PAGES_ALLOC` or `RKMEM_IOC_OBJ_ALLOC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alloc {
    /// The opaque handle; valid only on the file that allocated it.
    pub handle: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What to allocate with `RKMEM_IOC_PAGES_ALLOC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagesReq {
    /// A buddy block of `2^order` pages.
    Order(u32),
    /// Exactly this many pages (`RKMEM_PAGES_EXACT`).
    Exact(u32),
}

impl PagesReq {
    /// The ioctl argument for this request.
    pub fn to_arg(self) -> RkmemPagesAlloc {
        match self {
            PagesReq::Order(order) => RkmemPagesAlloc {
                order,
                ..Default::default()
            },
            PagesReq::Exact(npages) => RkmemPagesAlloc {
                flags: uapi::RKMEM_PAGES_EXACT,
                npages,
                ..Default::default()
            },
        }
    }

    /// Pages this request asks for (the size of the answer).
    pub fn pages(self) -> u64 {
        match self {
            PagesReq::Order(order) => 1u64 << order.min(63),
            PagesReq::Exact(n) => u64::from(n),
        }
    }
}

impl std::fmt::Display for PagesReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PagesReq::Order(o) => write!(f, "order {o}"),
            PagesReq::Exact(n) => write!(f, "exact {n} pages"),
        }
    }
}

/// The answer of `RKMEM_IOC_ARENA_MAP` for one slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotMap {
    /// The slot.
    pub slot: u32,
    /// Slots the arena may have.
    pub slots: u32,
    /// Whether the slot holds memory.
    pub present: bool,
    /// Pages per slot.
    pub slot_pages: u32,
    /// Pages of this slot held in the per-CPU caches (listed as used blocks).
    pub pcp_pages: u32,
    /// The blocks, in the order the module wrote them (address order).
    pub blocks: Vec<RkmemBlock>,
}

/// The NUL-padded name field of `RkmemCacheCreate` for `name`. The module checks the
/// characters and the length (1 to `RKMEM_CACHE_NAME_MAX` bytes); here only a name that does
/// not fit the 32-byte field at all is refused.
pub fn cache_name(name: &str) -> Result<[u8; 32], String> {
    let mut field = [0u8; 32];
    if name.len() > field.len() {
        return Err(format!(
            "cache name {name:?} is {} bytes, at most {} fit",
            name.len(),
            uapi::RKMEM_CACHE_NAME_MAX
        ));
    }
    field[..name.len()].copy_from_slice(name.as_bytes());
    Ok(field)
}

/// The name in a NUL-padded name field (up to the first NUL).
pub fn cache_name_str(field: &[u8; 32]) -> String {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..len]).into_owned()
}

/// What a slab cache should look like: the input of `RKMEM_IOC_CACHE_CREATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSpec {
    /// The NUL-padded name (see [`cache_name`]).
    pub name: [u8; 32],
    /// Object size in bytes.
    pub size: u32,
    /// Object alignment (a power of two; 1 = byte aligned).
    pub align: u32,
    /// Constructor: the byte every new object is filled with.
    pub ctor: Option<u8>,
}

impl CacheSpec {
    /// A cache `name` of `size`-byte objects aligned to `align`, without a constructor.
    pub fn new(name: &str, size: u32, align: u32) -> Result<CacheSpec, String> {
        Ok(CacheSpec {
            name: cache_name(name)?,
            size,
            align,
            ctor: None,
        })
    }

    /// The same cache with a constructor filling new objects with `byte`.
    pub fn with_ctor(self, byte: u8) -> CacheSpec {
        CacheSpec {
            ctor: Some(byte),
            ..self
        }
    }

    /// The ioctl argument for this request.
    pub fn to_arg(self) -> RkmemCacheCreate {
        RkmemCacheCreate {
            name: self.name,
            size: self.size,
            align: self.align,
            flags: if self.ctor.is_some() {
                uapi::RKMEM_CACHE_CTOR
            } else {
                0
            },
            ctor_byte: self.ctor.map_or(0, u32::from),
            ..Default::default()
        }
    }
}

/// The answer of `RKMEM_IOC_CACHE_CREATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// The cache id (for object allocations and destroy); valid only on the creating file.
    pub id: u32,
    /// Objects per slab.
    pub objects_per_slab: u32,
    /// Pages per slab.
    pub pages_per_slab: u32,
    /// Bytes per object slot: `<objsize>` in slabinfo.
    pub objsize: u32,
}

/// The usable bytes rkmalloc documents for a request of `size` bytes (`1..=RKMEM_RKMALLOC_MAX`):
/// the size class up to 4096 bytes, whole pages up to 4 MiB, the exact size beyond (vmalloc).
/// `None` for sizes rkmalloc refuses.
pub fn rkmalloc_bytes(size: u64) -> Option<u64> {
    const CLASSES: [u64; 12] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096];
    const PAGES_MAX: u64 = 1024 * PAGE_SIZE;
    match size {
        0 => None,
        s if s <= 4096 => CLASSES.into_iter().find(|&c| c >= s),
        // Up to 8 pages: a power-of-two block (as kmalloc beyond its caches).
        s if s <= 8 * PAGE_SIZE => Some(s.div_ceil(PAGE_SIZE).next_power_of_two() * PAGE_SIZE),
        s if s <= PAGES_MAX => Some(s.div_ceil(PAGE_SIZE) * PAGE_SIZE),
        s if s <= uapi::RKMEM_RKMALLOC_MAX => Some(s),
        _ => None,
    }
}

/// The slabinfo name of the rkmalloc size class that serves `size` bytes, if a slab serves it.
pub fn rkmalloc_class_name(size: u64) -> Option<String> {
    let bytes = rkmalloc_bytes(size).filter(|_| size <= 4096)?;
    Some(match bytes {
        b if b >= 1024 => format!("rkmalloc-{}k", b / 1024),
        b => format!("rkmalloc-{b}"),
    })
}

/// An open `/dev/rkmem`.
pub struct Device {
    file: File,
}

impl Device {
    /// Opens the device read-write.
    pub fn open() -> std::io::Result<Device> {
        Self::open_path(Path::new(DEV_PATH))
    }

    /// [`Device::open`] for commands: the error says which file.
    pub fn open_cmd() -> Result<Device, String> {
        Self::open().map_err(|e| format!("{DEV_PATH}: {e}"))
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

    /// `RKMEM_IOC_PAGES_ALLOC` with an argument built by the caller (tests of bad fields);
    /// the module fills in `handle` and `bytes`.
    pub fn pages_alloc_raw(&self, arg: &mut RkmemPagesAlloc) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` is a valid, writable `RkmemPagesAlloc`, the type
        // the kernel reads and writes for this command.
        unsafe { ioc_pages_alloc(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_PAGES_ALLOC`: allocates a block of `2^order` pages or exactly `npages`.
    pub fn pages_alloc(&self, req: PagesReq) -> Result<Alloc, Errno> {
        let mut arg = req.to_arg();
        self.pages_alloc_raw(&mut arg)?;
        Ok(Alloc {
            handle: arg.handle,
            bytes: arg.bytes,
        })
    }

    /// `RKMEM_IOC_FREE`.
    pub fn free(&self, handle: u64) -> Result<(), Errno> {
        let arg = RkmemHandle { handle };
        // SAFETY: the fd is open and `arg` is a valid `RkmemHandle`, which the kernel only
        // reads for this command.
        unsafe { ioc_free(self.file.as_raw_fd(), &arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_WRITE`: copies `data` into the allocation at `offset`.
    pub fn write(&self, handle: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let arg = RkmemIo {
            handle,
            offset,
            len: data.len() as u64,
            buf: data.as_ptr() as u64,
        };
        // SAFETY: `arg.buf` points to `arg.len` readable bytes (`data`), which the kernel only
        // reads; `arg` itself is a valid `RkmemIo`.
        unsafe { self.io_raw(uapi::RKMEM_IOC_WRITE, &arg) }
    }

    /// `RKMEM_IOC_READ`: fills `buf` from the allocation at `offset`.
    pub fn read(&self, handle: u64, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let arg = RkmemIo {
            handle,
            offset,
            len: buf.len() as u64,
            buf: buf.as_mut_ptr() as u64,
        };
        // SAFETY: `arg.buf` points to `arg.len` writable bytes (`buf`, borrowed mutably for
        // the call), which is what the kernel may write; `arg` itself is a valid `RkmemIo`.
        unsafe { self.io_raw(uapi::RKMEM_IOC_READ, &arg) }
    }

    /// `RKMEM_IOC_WRITE` or `RKMEM_IOC_READ` (`cmd`) with an argument built by the caller.
    ///
    /// # Safety
    ///
    /// For `RKMEM_IOC_READ`, the kernel writes up to `arg.len` bytes at `arg.buf`: that range
    /// must be memory this process does not use for anything else, or not mapped (EFAULT).
    pub unsafe fn io_raw(&self, cmd: u32, arg: &RkmemIo) -> Result<(), Errno> {
        let fd = self.file.as_raw_fd();
        match cmd {
            // SAFETY: the fd is open and `arg` a valid `RkmemIo`; the kernel reads from
            // `arg.buf`, which cannot harm this process.
            uapi::RKMEM_IOC_WRITE => unsafe { ioc_write(fd, arg) }?,
            // SAFETY: as above; the caller guarantees that the kernel may write `arg.buf`.
            uapi::RKMEM_IOC_READ => unsafe { ioc_read(fd, arg) }?,
            _ => return Err(Errno::EINVAL),
        };
        Ok(())
    }

    /// `RKMEM_IOC_ARENA_MAP` with an argument built by the caller (tests of bad fields).
    ///
    /// # Safety
    ///
    /// `arg.entries` must point to `arg.max_entries` writable `RkmemBlock`s this process does
    /// not use for anything else, or be unmapped (EFAULT).
    pub unsafe fn arena_map_raw(&self, arg: &mut RkmemArenaMap) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemArenaMap`; the caller
        // guarantees that the kernel may write the entries.
        unsafe { ioc_arena_map(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_ARENA_MAP`: the block map of `slot`.
    pub fn arena_map(&self, slot: u32) -> Result<SlotMap, Errno> {
        let mut blocks = vec![RkmemBlock::default(); uapi::RKMEM_MAP_MAX_ENTRIES as usize];
        let mut arg = RkmemArenaMap {
            slot,
            max_entries: uapi::RKMEM_MAP_MAX_ENTRIES,
            entries: blocks.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: `entries` points to `max_entries` writable blocks owned by this function.
        unsafe { self.arena_map_raw(&mut arg) }?;
        blocks.truncate((arg.nr_entries as usize).min(blocks.len()));
        Ok(SlotMap {
            slot,
            slots: arg.slots,
            present: arg.present != 0,
            slot_pages: arg.slot_pages,
            pcp_pages: arg.pcp_pages,
            blocks,
        })
    }

    /// The maps of every slot of the arena (present or not).
    pub fn arena_maps(&self) -> Result<Vec<SlotMap>, Errno> {
        let first = self.arena_map(0)?;
        let mut maps = Vec::with_capacity(first.slots as usize);
        let slots = first.slots;
        maps.push(first);
        for slot in 1..slots {
            maps.push(self.arena_map(slot)?);
        }
        Ok(maps)
    }

    /// `RKMEM_IOC_HANDLE_INFO`: where the allocation `handle` of this file sits in the arena
    /// (slot, page, an object's offset and index in its slab, the slab's bitmap).
    pub fn handle_info(&self, handle: u64) -> Result<uapi::RkmemHandleInfo, Errno> {
        let mut arg = uapi::RkmemHandleInfo {
            handle,
            ..Default::default()
        };
        self.handle_info_raw(&mut arg)?;
        Ok(arg)
    }

    /// `RKMEM_IOC_HANDLE_INFO` with an argument built by the caller (tests of bad fields).
    pub fn handle_info_raw(&self, arg: &mut uapi::RkmemHandleInfo) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemHandleInfo`, the type the
        // kernel reads and writes for this command.
        unsafe { ioc_handle_info(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_ROUTES`: `size` bytes through the host's kmalloc, vmalloc, kvmalloc,
    /// alloc_pages and alloc_pages_exact and through rkmalloc (each freed before the answer).
    pub fn routes(&self, size: u64) -> Result<uapi::RkmemRoutes, Errno> {
        let mut arg = uapi::RkmemRoutes {
            size,
            ..Default::default()
        };
        self.routes_raw(&mut arg)?;
        Ok(arg)
    }

    /// `RKMEM_IOC_ROUTES` with an argument built by the caller (tests of bad fields).
    pub fn routes_raw(&self, arg: &mut uapi::RkmemRoutes) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemRoutes`, the type the kernel
        // reads and writes for this command.
        unsafe { ioc_routes(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_CACHE_SLABS` with an argument built by the caller (tests of bad fields).
    ///
    /// # Safety
    ///
    /// `arg.entries` must point to `arg.max_entries` writable `RkmemSlabEntry`s this process
    /// does not use for anything else, or be unmapped (EFAULT).
    pub unsafe fn cache_slabs_raw(&self, arg: &mut uapi::RkmemCacheSlabs) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemCacheSlabs`; the caller
        // guarantees that the kernel may write the entries.
        unsafe { ioc_cache_slabs(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_CACHE_SLABS`: the full, partial and empty lists of cache `cache_id` of this
    /// file (the answer's counts and every slab, full first, each list front to back).
    pub fn cache_slabs(
        &self,
        cache_id: u32,
    ) -> Result<(uapi::RkmemCacheSlabs, Vec<uapi::RkmemSlabEntry>), Errno> {
        let max = uapi::RKMEM_SLABS_MAX_ENTRIES;
        let mut entries = vec![uapi::RkmemSlabEntry::default(); max as usize];
        let mut arg = uapi::RkmemCacheSlabs {
            cache_id,
            max_entries: max,
            entries: entries.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: `entries` points to `max_entries` writable entries owned by this function.
        unsafe { self.cache_slabs_raw(&mut arg) }?;
        entries.truncate((arg.nr_entries as usize).min(entries.len()));
        Ok((arg, entries))
    }

    /// `RKMEM_IOC_TRIM` with an argument built by the caller.
    pub fn trim_raw(&self, arg: &mut RkmemTrim) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemTrim`.
        unsafe { ioc_trim(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_TRIM` with `RKMEM_TRIM_*` `flags`: returns the pages moved out of the
    /// per-CPU caches and the pages given back to the host kernel.
    pub fn trim(&self, flags: u32) -> Result<RkmemTrim, Errno> {
        let mut arg = RkmemTrim {
            flags,
            ..Default::default()
        };
        self.trim_raw(&mut arg)?;
        Ok(arg)
    }

    /// `RKMEM_IOC_COMPACT` with an argument built by the caller (tests of bad fields).
    pub fn compact_raw(&self, arg: &mut uapi::RkmemCompact) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemCompact`.
        unsafe { ioc_compact(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_COMPACT` with `RKMEM_COMPACT_*` `flags`: what moved and what was freed.
    pub fn compact(&self, flags: u32) -> Result<uapi::RkmemCompact, Errno> {
        let mut arg = uapi::RkmemCompact {
            flags,
            ..Default::default()
        };
        self.compact_raw(&mut arg)?;
        Ok(arg)
    }

    /// `RKMEM_IOC_STRESS` with the caller's argument; the module fills in the answer fields.
    pub fn stress(&self, arg: &mut uapi::RkmemStress) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemStress`.
        unsafe { ioc_stress(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_SELFTEST`: runs the module's in-kernel checks of bad frees.
    pub fn selftest(&self) -> Result<RkmemSelftest, Errno> {
        let mut s = RkmemSelftest::default();
        // SAFETY: the fd is open and `s` a valid, writable `RkmemSelftest`.
        unsafe { ioc_selftest(self.file.as_raw_fd(), &mut s) }?;
        Ok(s)
    }

    /// `RKMEM_IOC_CACHE_CREATE` with an argument built by the caller (tests of bad fields);
    /// the module fills in the answer fields.
    pub fn cache_create_raw(&self, arg: &mut RkmemCacheCreate) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemCacheCreate`, the type the
        // kernel reads and writes for this command.
        unsafe { ioc_cache_create(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_CACHE_CREATE`: creates a slab cache owned by this open file.
    pub fn cache_create(&self, spec: &CacheSpec) -> Result<CacheInfo, Errno> {
        let mut arg = spec.to_arg();
        self.cache_create_raw(&mut arg)?;
        Ok(CacheInfo {
            id: arg.id,
            objects_per_slab: arg.objects_per_slab,
            pages_per_slab: arg.pages_per_slab,
            objsize: arg.objsize,
        })
    }

    /// `RKMEM_IOC_CACHE_DESTROY` with an argument built by the caller.
    pub fn cache_destroy_raw(&self, arg: &RkmemCacheId) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid `RkmemCacheId`, which the kernel only reads.
        unsafe { ioc_cache_destroy(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_CACHE_DESTROY`: destroys cache `id` of this file (`EBUSY` while objects of it
    /// are allocated).
    pub fn cache_destroy(&self, id: u32) -> Result<(), Errno> {
        self.cache_destroy_raw(&RkmemCacheId { id, reserved: 0 })
    }

    /// `RKMEM_IOC_OBJ_ALLOC` with an argument built by the caller (tests of bad fields); the
    /// module fills in `handle` and `bytes`.
    pub fn obj_alloc_raw(&self, arg: &mut RkmemObjAlloc) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemObjAlloc`, the type the
        // kernel reads and writes for this command.
        unsafe { ioc_obj_alloc(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_OBJ_ALLOC` from cache `cache_id` of this file. Free the object with
    /// [`Device::free`].
    pub fn obj_alloc(&self, cache_id: u32) -> Result<Alloc, Errno> {
        let mut arg = RkmemObjAlloc {
            cache_id,
            ..Default::default()
        };
        self.obj_alloc_raw(&mut arg)?;
        Ok(Alloc {
            handle: arg.handle,
            bytes: arg.bytes,
        })
    }

    /// `RKMEM_IOC_OBJ_ALLOC` with cache id 0: rkmalloc of `size` bytes.
    pub fn rkmalloc(&self, size: u64) -> Result<Alloc, Errno> {
        let mut arg = RkmemObjAlloc {
            size,
            ..Default::default()
        };
        self.obj_alloc_raw(&mut arg)?;
        Ok(Alloc {
            handle: arg.handle,
            bytes: arg.bytes,
        })
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

/// A mempool's element source: the input of `RKMEM_IOC_POOL_CREATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolSource {
    /// Objects of a cache of the same file (`RKMEM_POOL_SRC_CACHE`).
    Cache(u32),
    /// rkmalloc of this many bytes, 1 byte .. 4 MiB (`RKMEM_POOL_SRC_RKMALLOC`).
    Rkmalloc(u64),
    /// Buddy blocks of this order (`RKMEM_POOL_SRC_PAGES`).
    Pages(u32),
}

impl PoolSource {
    /// The ioctl argument for a pool of `min_nr` reserved elements with `RKMEM_POOL_*` flags.
    pub fn to_arg(self, min_nr: u32, flags: u32) -> uapi::RkmemPoolCreate {
        let mut arg = uapi::RkmemPoolCreate {
            min_nr,
            flags,
            ..Default::default()
        };
        match self {
            PoolSource::Cache(id) => {
                arg.source = uapi::RKMEM_POOL_SRC_CACHE;
                arg.cache_id = id;
            }
            PoolSource::Rkmalloc(size) => {
                arg.source = uapi::RKMEM_POOL_SRC_RKMALLOC;
                arg.size = size;
            }
            PoolSource::Pages(order) => {
                arg.source = uapi::RKMEM_POOL_SRC_PAGES;
                arg.order = order;
            }
        }
        arg
    }
}

nix::ioctl_readwrite_bad!(
    ioc_pool_create,
    uapi::RKMEM_IOC_POOL_CREATE,
    uapi::RkmemPoolCreate
);
nix::ioctl_readwrite_bad!(
    ioc_pool_alloc,
    uapi::RKMEM_IOC_POOL_ALLOC,
    uapi::RkmemPoolAlloc
);
nix::ioctl_write_ptr_bad!(
    ioc_pool_resize,
    uapi::RKMEM_IOC_POOL_RESIZE,
    uapi::RkmemPoolId
);
nix::ioctl_write_ptr_bad!(
    ioc_pool_destroy,
    uapi::RKMEM_IOC_POOL_DESTROY,
    uapi::RkmemPoolId
);

impl Device {
    /// `RKMEM_IOC_POOL_CREATE` with an argument built by the caller (tests of bad fields); the
    /// module fills in `id`.
    pub fn pool_create_raw(&self, arg: &mut uapi::RkmemPoolCreate) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemPoolCreate`, the type the
        // kernel reads and writes for this command.
        unsafe { ioc_pool_create(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_POOL_CREATE`: a mempool of this file with `min_nr` preallocated elements of
    /// `source`; returns its id.
    pub fn pool_create(&self, source: PoolSource, min_nr: u32, flags: u32) -> Result<u32, Errno> {
        let mut arg = source.to_arg(min_nr, flags);
        self.pool_create_raw(&mut arg)?;
        Ok(arg.id)
    }

    /// `RKMEM_IOC_POOL_ALLOC` with an argument built by the caller; the module fills in
    /// `handle` and `bytes`.
    pub fn pool_alloc_raw(&self, arg: &mut uapi::RkmemPoolAlloc) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid, writable `RkmemPoolAlloc`, the type the
        // kernel reads and writes for this command.
        unsafe { ioc_pool_alloc(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_POOL_ALLOC`: an element of pool `pool_id`; with `may_sleep` it waits for a
    /// free element instead of failing (`EINTR` on a signal). Free it with [`Device::free`].
    pub fn pool_alloc(&self, pool_id: u32, may_sleep: bool) -> Result<Alloc, Errno> {
        let mut arg = uapi::RkmemPoolAlloc {
            pool_id,
            flags: if may_sleep {
                uapi::RKMEM_POOL_MAY_SLEEP
            } else {
                0
            },
            ..Default::default()
        };
        self.pool_alloc_raw(&mut arg)?;
        Ok(Alloc {
            handle: arg.handle,
            bytes: arg.bytes,
        })
    }

    /// `RKMEM_IOC_POOL_RESIZE` with an argument built by the caller.
    pub fn pool_resize_raw(&self, arg: &uapi::RkmemPoolId) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid `RkmemPoolId`, which the kernel only reads.
        unsafe { ioc_pool_resize(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_POOL_RESIZE`: a new reserve size for pool `pool_id`.
    pub fn pool_resize(&self, pool_id: u32, min_nr: u32) -> Result<(), Errno> {
        self.pool_resize_raw(&uapi::RkmemPoolId { pool_id, min_nr })
    }

    /// `RKMEM_IOC_POOL_DESTROY` with an argument built by the caller.
    pub fn pool_destroy_raw(&self, arg: &uapi::RkmemPoolId) -> Result<(), Errno> {
        // SAFETY: the fd is open and `arg` a valid `RkmemPoolId`, which the kernel only reads.
        unsafe { ioc_pool_destroy(self.file.as_raw_fd(), arg) }?;
        Ok(())
    }

    /// `RKMEM_IOC_POOL_DESTROY`: destroys pool `pool_id` (`EBUSY` while elements are out).
    pub fn pool_destroy(&self, pool_id: u32) -> Result<(), Errno> {
        self.pool_destroy_raw(&uapi::RkmemPoolId { pool_id, min_nr: 0 })
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl From<Device> for std::os::fd::OwnedFd {
    /// The open file as a plain descriptor (closing it may release the file).
    fn from(d: Device) -> std::os::fd::OwnedFd {
        d.file.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rkmalloc_usable_bytes() {
        for (size, want) in [
            (0, None),
            (1, Some(8)),
            (9, Some(16)),
            (65, Some(96)),
            (97, Some(128)),
            (129, Some(192)),
            (4096, Some(4096)),
            (4097, Some(8192)),
            (4 << 20, Some(4 << 20)),
            ((4 << 20) + 1, Some((4 << 20) + 1)),
            (64 << 20, Some(64 << 20)),
            ((64 << 20) + 1, None),
        ] {
            assert_eq!(rkmalloc_bytes(size), want, "{size}");
        }
        assert_eq!(rkmalloc_class_name(100).as_deref(), Some("rkmalloc-128"));
        assert_eq!(rkmalloc_class_name(2000).as_deref(), Some("rkmalloc-2k"));
        assert_eq!(rkmalloc_class_name(4097), None);
    }

    #[test]
    fn cache_name_fields() {
        let f = cache_name("demo-117").unwrap();
        assert_eq!(&f[..9], b"demo-117\0");
        assert!(f[8..].iter().all(|&b| b == 0));
        assert_eq!(cache_name_str(&f), "demo-117");
        assert!(cache_name(&"x".repeat(32)).is_ok());
        assert!(cache_name(&"x".repeat(33)).is_err());
        let arg = CacheSpec::new("a", 117, 1)
            .unwrap()
            .with_ctor(0x5a)
            .to_arg();
        assert_eq!((arg.flags, arg.ctor_byte), (uapi::RKMEM_CACHE_CTOR, 0x5a));
        let arg = CacheSpec::new("a", 117, 1).unwrap().to_arg();
        assert_eq!(
            (arg.flags, arg.ctor_byte, arg.size, arg.align),
            (0, 0, 117, 1)
        );
    }
}
