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
pub const RKMEM_ABI_VERSION: u32 = 5;

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
/// Feature bit: the buddy allocator ioctls (pages, free, read/write, arena map, trim).
pub const RKMEM_FEAT_PAGES: u32 = 1 << 1;
/// Feature bit: slab caches and rkmalloc (cache create/destroy, object alloc).
pub const RKMEM_FEAT_SLAB: u32 = 1 << 2;
/// Feature bit: mempools (create, alloc, resize, destroy).
pub const RKMEM_FEAT_MEMPOOL: u32 = 1 << 3;

/// Feature bit: the in-kernel benchmarks against the host kernel's allocators.
pub const RKMEM_FEAT_BENCH: u32 = 1 << 4;

/// Feature bit: compaction of the file's caches through its handles ([`RKMEM_IOC_COMPACT`]).
/// (ABI 3.)
pub const RKMEM_FEAT_COMPACT: u32 = 1 << 5;

/// Feature bit: the in-kernel stress engine ([`RKMEM_IOC_STRESS`]). (ABI 5.)
pub const RKMEM_FEAT_STRESS: u32 = 1 << 6;

/// Feature bit: [`RKMEM_IOC_HANDLE_INFO`] (where an allocation sits: slot, page, offset, its
/// slab's bitmap) and [`RKMEM_CACHE_NOCPU`] caches, for `rkmemctl lab`. (ABI 5.)
pub const RKMEM_FEAT_INSPECT: u32 = 1 << 7;

/// Feature bit: [`RKMEM_IOC_CACHE_SLABS`] (a cache's full, partial and empty lists as the
/// kernel holds them), for `rkmemctl lab slab`. (ABI 5.)
pub const RKMEM_FEAT_SLABS: u32 = 1 << 8;
/// Feature bit: [`RKMEM_IOC_ROUTES`] (one size through the host's kmalloc, vmalloc, kvmalloc,
/// alloc_pages and alloc_pages_exact and through rkmalloc: where each came from and the bytes
/// it used), for `rkmemctl lab routes`. (ABI 5.)
pub const RKMEM_FEAT_ROUTES: u32 = 1 << 9;

/// Features this build of the module offers.
pub const RKMEM_FEATURES: u32 = RKMEM_FEAT_VERSION
    | RKMEM_FEAT_PAGES
    | RKMEM_FEAT_SLAB
    | RKMEM_FEAT_MEMPOOL
    | RKMEM_FEAT_BENCH
    | RKMEM_FEAT_COMPACT
    | RKMEM_FEAT_STRESS
    | RKMEM_FEAT_INSPECT
    | RKMEM_FEAT_SLABS
    | RKMEM_FEAT_ROUTES;

/// Read the module's ABI version and feature bits.
pub const RKMEM_IOC_VERSION: u32 = ior::<RkmemVersion>(0x00);

/// Largest buddy order: blocks of 2^0 .. 2^10 pages of 4 KiB.
pub const RKMEM_MAX_ORDER: u32 = 10;

/// [`RkmemPagesAlloc::flags`]: allocate exactly `npages` pages (like `alloc_pages_exact`)
/// instead of a block of `order`.
pub const RKMEM_PAGES_EXACT: u32 = 1 << 0;

/// Argument of [`RKMEM_IOC_PAGES_ALLOC`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemPagesAlloc {
    /// In: order of the block, `0..=RKMEM_MAX_ORDER`; zero with [`RKMEM_PAGES_EXACT`].
    pub order: u32,
    /// In: `RKMEM_PAGES_*` flags; unknown bits are `EINVAL`.
    pub flags: u32,
    /// In: page count with [`RKMEM_PAGES_EXACT`], `1..=2^RKMEM_MAX_ORDER`; otherwise zero.
    pub npages: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: the handle of the allocation (never zero, never an address).
    pub handle: u64,
    /// Out: the size of the allocation in bytes.
    pub bytes: u64,
}

/// Allocate pages from rkmem's buddy allocator. `EINVAL` for a bad order, count, flag or
/// reserved field; `ENOMEM` when the arena is at its maximum and has no block that fits.
pub const RKMEM_IOC_PAGES_ALLOC: u32 = iowr::<RkmemPagesAlloc>(0x10);

/// Argument of [`RKMEM_IOC_FREE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemHandle {
    /// The handle to free.
    pub handle: u64,
}

/// Free an allocation of this open file. `ENOENT` for a handle this file does not hold.
pub const RKMEM_IOC_FREE: u32 = iow::<RkmemHandle>(0x11);

/// Argument of [`RKMEM_IOC_WRITE`] and [`RKMEM_IOC_READ`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemIo {
    /// The allocation.
    pub handle: u64,
    /// Byte offset inside the allocation.
    pub offset: u64,
    /// Bytes to copy; `offset + len` must not pass the end of the allocation (`EINVAL`).
    pub len: u64,
    /// User-space buffer of `len` bytes (`EFAULT` if it is not accessible).
    pub buf: u64,
}

/// Copy `len` bytes from the user buffer into the allocation.
pub const RKMEM_IOC_WRITE: u32 = iow::<RkmemIo>(0x12);
/// Copy `len` bytes from the allocation into the user buffer.
pub const RKMEM_IOC_READ: u32 = iow::<RkmemIo>(0x13);

/// [`RkmemBlock::kind`]: a free block.
pub const RKMEM_BLOCK_FREE: u32 = 0;
/// [`RkmemBlock::kind`]: an allocated block of a power-of-two order.
pub const RKMEM_BLOCK_USED: u32 = 1;
/// [`RkmemBlock::kind`]: an exact-size allocation (any page count).
pub const RKMEM_BLOCK_EXACT: u32 = 2;

/// One block of the arena map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemBlock {
    /// First page, counted from the start of the slot.
    pub start: u32,
    /// Length in pages.
    pub pages: u32,
    /// `RKMEM_BLOCK_*`.
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
}

/// Argument of [`RKMEM_IOC_ARENA_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemArenaMap {
    /// In: the slot (4 MiB block of the arena) to map, `0..slots`.
    pub slot: u32,
    /// In: room in `entries`, at most [`RKMEM_MAP_MAX_ENTRIES`].
    pub max_entries: u32,
    /// In: user pointer to `max_entries` [`RkmemBlock`]s.
    pub entries: u64,
    /// Out: blocks written (the whole slot fits when `max_entries` is 1024).
    pub nr_entries: u32,
    /// Out: number of slots the arena may have (`arena_max_mb / 4`).
    pub slots: u32,
    /// Out: 1 if the slot holds memory, 0 if it is absent (then `nr_entries` is 0).
    pub present: u32,
    /// Out: pages per slot (1024).
    pub slot_pages: u32,
    /// Out: pages held in the per-CPU caches, over all slots (the map shows them as used).
    pub pcp_pages: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Most entries one [`RKMEM_IOC_ARENA_MAP`] call writes: a slot has at most 1024 blocks.
pub const RKMEM_MAP_MAX_ENTRIES: u32 = 1024;

/// Read the block map of one slot of the arena, in address order.
pub const RKMEM_IOC_ARENA_MAP: u32 = iowr::<RkmemArenaMap>(0x14);

/// [`RkmemTrim::flags`]: give the per-CPU caches' pages back to the buddy allocator.
pub const RKMEM_TRIM_PCP: u32 = 1 << 0;
/// [`RkmemTrim::flags`]: give wholly free 4 MiB blocks above `arena_initial_mb` back to the
/// host kernel.
pub const RKMEM_TRIM_ARENA: u32 = 1 << 1;

/// Argument of [`RKMEM_IOC_TRIM`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemTrim {
    /// In: `RKMEM_TRIM_*`; unknown bits are `EINVAL`.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: pages moved from the per-CPU caches to the buddy allocator.
    pub pcp_pages: u64,
    /// Out: pages given back to the host kernel.
    pub released_pages: u64,
}

/// [`RkmemTrim::flags`]: empty the slab caches' per-CPU object caches and give every empty slab
/// back to the buddy allocator (done before the other two).
pub const RKMEM_TRIM_SLABS: u32 = 1 << 2;

/// Trim rkmem's caches now (what the shrinker does under memory pressure). Waits
/// (interruptibly) for a compaction run in flight, whose moving pages it would otherwise leave
/// behind.
pub const RKMEM_IOC_TRIM: u32 = iowr::<RkmemTrim>(0x15);

/// Longest cache name, without the NUL: names are `[A-Za-z0-9_.-]`, 1 to 31 bytes.
pub const RKMEM_CACHE_NAME_MAX: usize = 31;
/// Largest object size of a cache (one page).
pub const RKMEM_CACHE_SIZE_MAX: u32 = 4096;
/// [`RkmemCacheCreate::flags`]: fill every new object with `ctor_byte` (a constructor).
pub const RKMEM_CACHE_CTOR: u32 = 1 << 0;

/// [`RkmemCacheCreate::flags`]: no per-CPU object arrays in front of the slabs: every
/// allocation takes the first free bit of the first partial slab and every free clears its bit at
/// once, as the textbook's bitmap allocator does (`rkmemctl lab bitmap`). Slower; for teaching.
pub const RKMEM_CACHE_NOCPU: u32 = 1 << 1;

/// Argument of [`RKMEM_IOC_CACHE_CREATE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemCacheCreate {
    /// In: NUL-padded name, 1 to [`RKMEM_CACHE_NAME_MAX`] bytes of `[A-Za-z0-9_.-]`, unique.
    pub name: [u8; 32],
    /// In: object size, `1..=RKMEM_CACHE_SIZE_MAX`.
    pub size: u32,
    /// In: alignment, a power of two up to 4096 (1 = byte aligned).
    pub align: u32,
    /// In: `RKMEM_CACHE_*` flags.
    pub flags: u32,
    /// In: the constructor's fill byte (with [`RKMEM_CACHE_CTOR`]), `0..=255`.
    pub ctor_byte: u32,
    /// Out: the cache id (for [`RKMEM_IOC_OBJ_ALLOC`] and [`RKMEM_IOC_CACHE_DESTROY`]).
    pub id: u32,
    /// Out: objects per slab.
    pub objects_per_slab: u32,
    /// Out: pages per slab.
    pub pages_per_slab: u32,
    /// Out: bytes per object slot (the stride; red zones included in debug mode).
    pub objsize: u32,
}

/// Create a slab cache owned by this open file (destroyed when the file is closed). `EINVAL`:
/// bad name, size 0 or over the limit, alignment not a power of two; `EEXIST`: the name is
/// taken; `ENOSPC`: too many caches.
pub const RKMEM_IOC_CACHE_CREATE: u32 = iowr::<RkmemCacheCreate>(0x30);

/// Argument of [`RKMEM_IOC_CACHE_DESTROY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemCacheId {
    /// The cache.
    pub id: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Destroy a cache this file created. `ENOENT`: no such cache of this file; `EBUSY`: objects of
/// it are still allocated (the leak is reported in dmesg; the cache stays); `EINTR`: a signal
/// came while it waited for a running compaction.
pub const RKMEM_IOC_CACHE_DESTROY: u32 = iow::<RkmemCacheId>(0x31);

/// Argument of [`RKMEM_IOC_OBJ_ALLOC`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemObjAlloc {
    /// In: a cache id from [`RKMEM_IOC_CACHE_CREATE`], or 0 for rkmalloc by `size`.
    pub cache_id: u32,
    /// Must be zero.
    pub flags: u32,
    /// In: with `cache_id` 0, bytes to allocate, `1..=RKMEM_RKMALLOC_MAX` (size classes up to
    /// 4096, whole pages up to 4 MiB, vmalloc beyond); otherwise zero.
    pub size: u64,
    /// Out: the handle (free it with [`RKMEM_IOC_FREE`], access it with read/write).
    pub handle: u64,
    /// Out: usable bytes of the allocation.
    pub bytes: u64,
}

/// Largest rkmalloc request: 64 MiB.
pub const RKMEM_RKMALLOC_MAX: u64 = 64 << 20;

/// Allocate an object from a cache of this file, or with rkmalloc. `ENOENT`: unknown cache id.
pub const RKMEM_IOC_OBJ_ALLOC: u32 = iowr::<RkmemObjAlloc>(0x32);

/// [`RkmemSlabEntry::list`]: every object of the slab is in use.
pub const RKMEM_SLAB_FULL: u32 = 1;
/// [`RkmemSlabEntry::list`]: some objects in use, some free (allocations come from here
/// first).
pub const RKMEM_SLAB_PARTIAL: u32 = 2;
/// [`RkmemSlabEntry::list`]: no object in use (kept for the next allocations, or for the
/// shrinker).
pub const RKMEM_SLAB_EMPTY: u32 = 3;
/// Most entries one [`RKMEM_IOC_CACHE_SLABS`] call writes.
pub const RKMEM_SLABS_MAX_ENTRIES: u32 = 1024;

/// One slab in the answer of [`RKMEM_IOC_CACHE_SLABS`]: where it sits in the arena (never a
/// kernel address) and the list it is on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemSlabEntry {
    /// The slot (4 MiB block of the arena) of the slab.
    pub slot: u32,
    /// The slab's first page, counted from the start of the slot.
    pub page: u32,
    /// `RKMEM_SLAB_FULL`, `_PARTIAL` or `_EMPTY`.
    pub list: u32,
    /// Objects in use in the slab, from its header.
    pub in_use: u32,
}

/// Argument of [`RKMEM_IOC_CACHE_SLABS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemCacheSlabs {
    /// In: a cache of this file.
    pub cache_id: u32,
    /// In: room in `entries`, at most [`RKMEM_SLABS_MAX_ENTRIES`] (0: only the counts).
    pub max_entries: u32,
    /// In: user pointer to `max_entries` [`RkmemSlabEntry`]s.
    pub entries: u64,
    /// Out: entries written: the full list, then the partial list, then the empty list, each
    /// front (where allocations look first) to back, cut at `max_entries`.
    pub nr_entries: u32,
    /// Out: slabs on the full list.
    pub full: u32,
    /// Out: slabs on the partial list.
    pub partial: u32,
    /// Out: slabs on the empty list.
    pub empty: u32,
    /// Out: objects per slab.
    pub objects: u32,
    /// Out: pages per slab.
    pub pages: u32,
    /// Out: empty slabs the cache keeps; a slab that empties beyond them goes straight back
    /// to the buddy allocator.
    pub keep_empty: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: objects in use over all the cache's slabs.
    pub in_use: u64,
}

/// A cache's three lists as the kernel holds them, read under the cache's lock in one pass
/// (read only). `ENOENT`: no such cache of this file; `EINVAL`: a nonzero reserved field or
/// `max_entries` above [`RKMEM_SLABS_MAX_ENTRIES`]; `EFAULT`: `entries` cannot be written.
pub const RKMEM_IOC_CACHE_SLABS: u32 = iowr::<RkmemCacheSlabs>(0x33);

/// [`RkmemHandleInfo::kind`]: a block of pages ([`RKMEM_IOC_PAGES_ALLOC`]).
pub const RKMEM_INFO_PAGES: u32 = 1;
/// [`RkmemHandleInfo::kind`]: an object of a cache of this file ([`RKMEM_IOC_OBJ_ALLOC`]).
pub const RKMEM_INFO_OBJECT: u32 = 2;
/// Bits of [`RkmemHandleInfo::bitmap`]: the first 512 objects of a slab.
pub const RKMEM_INFO_BITMAP_BITS: u32 = 512;

/// Argument of [`RKMEM_IOC_HANDLE_INFO`]. Positions are inside the arena (slot, page in the
/// slot, byte offset in the slab), never kernel addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemHandleInfo {
    /// In: a handle of this file.
    pub handle: u64,
    /// Out: `RKMEM_INFO_*`.
    pub kind: u32,
    /// Out: the slot of the block, or of the object's slab.
    pub slot: u32,
    /// Out: the first page of the block or slab, counted from the start of the slot.
    pub page: u32,
    /// Out: pages of the block or slab.
    pub pages: u32,
    /// Out: an object's byte offset from the start of its slab (0 for pages).
    pub offset: u32,
    /// Out: an object's index in its slab, its bit in the bitmap (0 for pages).
    pub index: u32,
    /// Out: objects per slab (0 for pages).
    pub objects: u32,
    /// Out: objects in use in the slab (0 for pages).
    pub in_use: u32,
    /// Out: the slab's color: bytes its first object is shifted by (0 for pages).
    pub color: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: the slab's bitmap, bit `i % 64` of word `i / 64` set if object `i` is allocated,
    /// for the first [`RKMEM_INFO_BITMAP_BITS`] objects (zero for pages).
    pub bitmap: [u64; 8],
}

/// Where an allocation of this file sits (read only). `ENOENT`: no such handle; `EINVAL`: a
/// nonzero reserved field, or an allocation that is neither pages nor an object of a cache of
/// this file (rkmalloc, mempool elements).
pub const RKMEM_IOC_HANDLE_INFO: u32 = iowr::<RkmemHandleInfo>(0x16);

/// [`RkmemRoute::kind`]: the route was not taken (the size is beyond what it serves:
/// kmalloc and the page allocator above `KMALLOC_MAX_SIZE`, a block above `MAX_PAGE_ORDER`).
pub const RKMEM_ROUTE_NONE: u32 = 0;
/// [`RkmemRoute::kind`]: an object of a slab cache (a kmalloc-N cache, an rkmalloc size class).
pub const RKMEM_ROUTE_SLAB: u32 = 1;
/// [`RkmemRoute::kind`]: whole, physically contiguous pages from a page allocator (the host's
/// buddy allocator, or rkmem's arena for rkmalloc).
pub const RKMEM_ROUTE_PAGES: u32 = 2;
/// [`RkmemRoute::kind`]: vmalloc: pages mapped at contiguous virtual addresses.
pub const RKMEM_ROUTE_VMALLOC: u32 = 3;
/// [`RkmemRoute::flags`]: whole pages, exactly as many as the size needs (`alloc_pages_exact`,
/// rkmalloc's exact pages), not a block of `2^order`.
pub const RKMEM_ROUTE_EXACT: u32 = 1 << 0;
/// Largest size [`RKMEM_IOC_ROUTES`] probes: 8 MiB (twice kmalloc's largest, so that kvmalloc
/// and rkmalloc are seen taking vmalloc).
pub const RKMEM_ROUTES_MAX: u64 = 8 << 20;

/// Where one route of [`RKMEM_IOC_ROUTES`] took the memory from, and how much.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemRoute {
    /// `RKMEM_ROUTE_*`.
    pub kind: u32,
    /// `RKMEM_ROUTE_EXACT` or 0.
    pub flags: u32,
    /// Bytes of memory the allocation held, as the kernel says: `ksize()` for kmalloc, the
    /// pages of the block, the pages vmalloc mapped (0 for a route not taken).
    pub bytes: u64,
    /// Bytes of address space reserved after the allocation and never mapped: vmalloc's guard
    /// page (0 for the other routes).
    pub guard: u32,
    /// Zero.
    pub reserved: u32,
}

/// Argument of [`RKMEM_IOC_ROUTES`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemRoutes {
    /// In: bytes, `1..=RKMEM_ROUTES_MAX`.
    pub size: u64,
    /// Must be zero.
    pub reserved: u64,
    /// Out: the host's `kmalloc(size)`: a kmalloc-N slab object, or whole pages above
    /// `KMALLOC_MAX_CACHE_SIZE` (`RKMEM_ROUTE_NONE` above `KMALLOC_MAX_SIZE`).
    pub kmalloc: RkmemRoute,
    /// Out: the host's `vmalloc(size)`.
    pub vmalloc: RkmemRoute,
    /// Out: the host's `kvmalloc(size)`: kmalloc's answer if it succeeded, else vmalloc's.
    pub kvmalloc: RkmemRoute,
    /// Out: rkmem's `rkmalloc(size)`: a size class, a block or exact pages of the arena, vmalloc.
    pub rkmalloc: RkmemRoute,
    /// Out: the host's `alloc_pages_exact(size)`: the pages it kept (`RKMEM_ROUTE_NONE` above
    /// `KMALLOC_MAX_SIZE`).
    pub exact: RkmemRoute,
    /// Out: the host's `alloc_pages(get_order(size))`: the block of `2^order` pages.
    pub order: RkmemRoute,
    /// Out: the host's `KMALLOC_MAX_CACHE_SIZE` (the largest kmalloc-N cache).
    pub kmalloc_max_cache_size: u32,
    /// Out: the host's `PAGE_SIZE`.
    pub page_size: u32,
    /// Out: the host's `KMALLOC_MAX_SIZE` (the largest kmalloc, a block of `MAX_PAGE_ORDER`).
    pub kmalloc_max_size: u64,
}

/// One size through every route (read only: each allocation is measured and freed before the
/// call returns). `EINVAL`: a size of 0 or above [`RKMEM_ROUTES_MAX`], a nonzero reserved field;
/// `ENOMEM`: an allocation failed (everything taken is freed).
pub const RKMEM_IOC_ROUTES: u32 = iowr::<RkmemRoutes>(0x17);

/// [`RkmemPoolCreate::source`]: objects of a cache of this file (`cache_id`).
pub const RKMEM_POOL_SRC_CACHE: u32 = 1;
/// [`RkmemPoolCreate::source`]: rkmalloc of `size` bytes (1 byte .. 4 MiB).
pub const RKMEM_POOL_SRC_RKMALLOC: u32 = 2;
/// [`RkmemPoolCreate::source`]: buddy blocks of `order`.
pub const RKMEM_POOL_SRC_PAGES: u32 = 3;
/// [`RkmemPoolCreate::flags`]: a test aid: once the reserve is filled, the source fails every
/// allocation (fault injection), so every element comes from the reserve.
pub const RKMEM_POOL_FAIL_SOURCE: u32 = 1 << 0;
/// Largest reserve of a mempool.
pub const RKMEM_POOL_MAX_MIN: u32 = 4096;

/// Argument of [`RKMEM_IOC_POOL_CREATE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemPoolCreate {
    /// In: `RKMEM_POOL_SRC_*`.
    pub source: u32,
    /// In: with [`RKMEM_POOL_SRC_CACHE`], the cache id; otherwise zero.
    pub cache_id: u32,
    /// In: with [`RKMEM_POOL_SRC_RKMALLOC`], the element size; otherwise zero.
    pub size: u64,
    /// In: with [`RKMEM_POOL_SRC_PAGES`], the order 0..10; otherwise zero.
    pub order: u32,
    /// In: elements reserved, preallocated now, `1..=RKMEM_POOL_MAX_MIN`.
    pub min_nr: u32,
    /// In: `RKMEM_POOL_*` flags.
    pub flags: u32,
    /// Out: the pool id.
    pub id: u32,
}

/// Create a mempool owned by this file. `EINVAL` bad source/size/order/min/flag; `ENOENT`
/// unknown cache; `ENOMEM` the reserve could not be preallocated.
pub const RKMEM_IOC_POOL_CREATE: u32 = iowr::<RkmemPoolCreate>(0x40);

/// [`RkmemPoolAlloc::flags`]: the caller may sleep: the allocation waits for a free element
/// instead of failing (interruptible by a signal: `EINTR`).
pub const RKMEM_POOL_MAY_SLEEP: u32 = 1 << 0;

/// Argument of [`RKMEM_IOC_POOL_ALLOC`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemPoolAlloc {
    /// In: the pool.
    pub pool_id: u32,
    /// In: `RKMEM_POOL_MAY_SLEEP` or 0.
    pub flags: u32,
    /// Out: the handle (free it with [`RKMEM_IOC_FREE`]: the element goes back to the pool).
    pub handle: u64,
    /// Out: usable bytes of the element.
    pub bytes: u64,
}

/// Allocate an element: from the source, else from the reserve, else (with
/// [`RKMEM_POOL_MAY_SLEEP`]) wait for one; without it: `ENOMEM` at once.
pub const RKMEM_IOC_POOL_ALLOC: u32 = iowr::<RkmemPoolAlloc>(0x41);

/// Argument of [`RKMEM_IOC_POOL_RESIZE`] and [`RKMEM_IOC_POOL_DESTROY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemPoolId {
    /// The pool.
    pub pool_id: u32,
    /// The new reserve size for resize (`1..=RKMEM_POOL_MAX_MIN`); zero for destroy.
    pub min_nr: u32,
}

/// Change a pool's reserve size (`mempool_resize`). `ENOMEM` if growing it failed.
pub const RKMEM_IOC_POOL_RESIZE: u32 = iow::<RkmemPoolId>(0x42);
/// Destroy a pool of this file. `EBUSY` while elements are out.
pub const RKMEM_IOC_POOL_DESTROY: u32 = iow::<RkmemPoolId>(0x43);

/// Answer of [`RKMEM_IOC_SELFTEST`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemSelftest {
    /// Checks that held.
    pub passed: u32,
    /// Checks that failed (each is also named in dmesg).
    pub failed: u32,
    /// Bad frees of pages this call made on purpose and saw refused. They are made on a private
    /// arena of one 4 MiB block (the module's code, its own memory), so the module's
    /// `bad_free_*` counters in /proc/rkmem/stats do not move and no other user's block can be
    /// hit. Calls may run concurrently; every check judges its own call's results. Written also
    /// when the call fails with `ENOMEM` (a check could not allocate): then the counts of what
    /// ran. A call whose answer cannot be written runs nothing (`EFAULT`). (ABI 2.)
    pub arena_bad_frees: u64,
}

/// Run the module's in-kernel checks of paths user space cannot reach through handles: double
/// frees, frees of foreign pages, of the wrong order or count (on a private arena), of inner,
/// foreign and other caches' objects (on temporary caches). Each must be refused, counted, and
/// leave the allocator intact.
pub const RKMEM_IOC_SELFTEST: u32 = ior::<RkmemSelftest>(0x20);

/// [`RkmemCompact::flags`]: compact the slabs of the file's caches.
pub const RKMEM_COMPACT_SLABS: u32 = 1 << 0;
/// [`RkmemCompact::flags`]: compact the arena: evacuate the least-used slots that hold no pinned
/// page (every open file's page allocations and slab objects in them move to other slots), so
/// that whole 4 MiB blocks become free and go back to the host kernel.
pub const RKMEM_COMPACT_ARENA: u32 = 1 << 1;

/// Argument of [`RKMEM_IOC_COMPACT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemCompact {
    /// In: `RKMEM_COMPACT_*` flags (at least one).
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
    /// Out: objects moved (each copied and its handle re-pointed).
    pub objects_moved: u64,
    /// Out: slabs emptied and given back to the arena.
    pub slabs_freed: u64,
    /// Out: pages of those slabs.
    pub pages_freed: u64,
    /// Out: partial slabs left in place because they hold an object no handle of the file names
    /// (a mempool element: pinned).
    pub pinned_skips: u64,
    /// Out: caches compacted.
    pub caches: u32,
    /// Explicit padding; zero.
    pub pad: u32,
    /// Out (arena): pages of page allocations moved to another slot (slab objects moved count
    /// in `objects_moved`).
    pub pages_moved: u64,
    /// Out (arena): slots evacuated (wholly free afterwards).
    pub blocks_freed: u64,
    /// Out (arena): pages of those given back to the host kernel (the rest stay as free 4 MiB
    /// blocks while the arena is at its minimum).
    pub host_pages: u64,
    /// Out (arena): slots in use skipped because they hold a pinned page.
    pub pinned_slots: u64,
    /// Out (arena): slots isolated but not emptied (a page of them came back into use, or the
    /// other slots had no room for one of their blocks).
    pub blocks_failed: u64,
}

/// Compact memory behind the handles. `RKMEM_COMPACT_SLABS`: the slabs of the caller's caches
/// and of the size classes: objects its handles name move out of the sparsely used slabs into
/// the fullest ones while the file's handle lock is held (a concurrent read or write of a
/// handle sees the old or the new copy, whole), and the emptied slabs go back to the arena.
/// `RKMEM_COMPACT_ARENA`: arena compaction over every open file (each file's handle lock held
/// while its allocations move). Allocations no handle names (mempool elements, the module's
/// own) are pinned. `EINVAL` for no or unknown flags or a nonzero reserved field; `ENOMEM`;
/// `EINTR`: a signal came while it waited for another run. (ABI 4.)
pub const RKMEM_IOC_COMPACT: u32 = iowr::<RkmemCompact>(0x60);

/// [`RkmemBench::kind`]: a bitmap slab cache vs a SLUB cache (`SLAB_NO_MERGE`) of `size` and
/// `align`, alloc+free pairs.
pub const RKMEM_BENCH_SLAB_PAIR: u32 = 1;
/// [`RkmemBench::kind`]: as [`RKMEM_BENCH_SLAB_PAIR`], in batches of [`RKMEM_BENCH_BATCH`]
/// allocations followed by as many frees; also reports the bytes of slabs holding one batch.
pub const RKMEM_BENCH_SLAB_BATCH: u32 = 2;
/// [`RkmemBench::kind`]: rkmalloc vs kmalloc of `size` (1..=4096), alloc+free pairs.
pub const RKMEM_BENCH_KMALLOC: u32 = 3;
/// [`RkmemBench::kind`]: the arena (buddy + per-CPU caches) vs `alloc_pages`/`__free_pages`
/// of `order`, alloc+free pairs.
pub const RKMEM_BENCH_PAGES: u32 = 4;
/// [`RkmemBench::kind`]: an rkmem mempool over rkmalloc(`size`) vs the kernel's
/// `mempool_create_kmalloc_pool` of `size`, both with a reserve of [`RKMEM_BENCH_POOL_MIN`];
/// alloc+free pairs.
pub const RKMEM_BENCH_MEMPOOL: u32 = 5;
/// [`RkmemBench::kind`]: no timing: objects and pages per slab of an rkmem cache and of a
/// SLUB cache of `size` and `align` (SLUB's measured from a fresh cache's slabs).
pub const RKMEM_BENCH_LAYOUT: u32 = 6;
/// [`RkmemBench::kind`]: remote frees, a producer and a consumer: batches of up to
/// [`RKMEM_BENCH_BATCH`] objects of a cache of `size` and `align` allocated on the calling
/// CPU and freed on another online CPU (in a work item there), `iters` objects per repetition,
/// an rkmem cache vs a SLUB cache. Times are the allocations' and frees' own time (each side's
/// loops timed on their CPU) per object. `ENODEV` with one online CPU. (ABI 3.)
pub const RKMEM_BENCH_REMOTE: u32 = 7;
/// [`RkmemBench::kind`]: no timing: the footprint of one live set. Both sides run the same
/// sequence on a new cache of `size` and `align`: `iters` allocations, frees of a random half
/// (from `seed`), `iters / 4` allocations; then the pages each holds for its live objects,
/// from its own accounting, in `*_pages_held` (rkmem: its cache's slab pages, and in
/// `rkmem_bytes` what their off-slab headers took from kmalloc, at its bucket sizes; SLUB:
/// the exact growth of `NR_SLAB_UNRECLAIMABLE_B` over the sequence). (ABI 3.)
pub const RKMEM_BENCH_FOOTPRINT: u32 = 8;
/// [`RkmemBench::kind`]: a mixed-size trace, rkmalloc vs kmalloc: `iters` operations on
/// [`RKMEM_BENCH_TRACE_SLOTS`] slots, each freeing a random slot's allocation (if any) and
/// allocating a new one there, sizes from a heavy-tailed distribution up to `size` bytes (at
/// most [`RKMEM_BENCH_TRACE_MAX_SIZE`]); the same trace (from `seed`) for both sides. Times
/// per operation; `*_pages_held`: the peak pages each side held (sampled in an untimed run of
/// the trace). (ABI 3.)
pub const RKMEM_BENCH_TRACE: u32 = 9;
/// [`RkmemBench::kind`]: latency of single operations: `iters` allocations in batches of up to
/// [`RKMEM_BENCH_BATCH`] live objects, each allocation and free timed on its own; `*_lat_ns`
/// get the median, 99th percentile and maximum of allocations, then of frees (nanoseconds,
/// percentiles within 1/16). Of a slab cache (`size` and `align` nonzero), of rkmalloc vs
/// kmalloc (`size`, `align` 0), or of pages (`size` 0, `order`); `reps` must be 1. (ABI 3.)
pub const RKMEM_BENCH_LATENCY: u32 = 10;
/// [`RkmemBench::kind`]: no timing of the host: fragmentation and compaction. Both sides fill
/// a new cache of `size` and `align` with `iters` objects and free a random 90% (from `seed`);
/// then SLUB's cache is shrunk (`kmem_cache_shrink`) and rkmem's compacted through the objects'
/// handles; `*_pages_held`: the pages each holds afterwards (as for
/// [`RKMEM_BENCH_FOOTPRINT`]); `rkmem_objs`: objects moved; `rkmem_ps`: the compaction's time
/// per object moved. (ABI 3.)
pub const RKMEM_BENCH_COMPACT: u32 = 11;
/// Slots of [`RKMEM_BENCH_TRACE`]: the most allocations live at once.
pub const RKMEM_BENCH_TRACE_SLOTS: u32 = 1024;
/// The largest `size` of [`RKMEM_BENCH_TRACE`].
pub const RKMEM_BENCH_TRACE_MAX_SIZE: u32 = 65536;
/// Allocations per batch of [`RKMEM_BENCH_SLAB_BATCH`] (fewer if `iters` is smaller).
pub const RKMEM_BENCH_BATCH: u32 = 1000;
/// Reserve of both pools of [`RKMEM_BENCH_MEMPOOL`].
pub const RKMEM_BENCH_POOL_MIN: u32 = 16;
/// Most iterations of one repetition.
pub const RKMEM_BENCH_MAX_ITERS: u32 = 1_000_000;
/// Most repetitions of one call.
pub const RKMEM_BENCH_MAX_REPS: u32 = 31;
/// [`RkmemBench::flags`]: time only rkmem's side (the host's fields stay zero).
pub const RKMEM_BENCH_ONLY_RKMEM: u32 = 1 << 0;
/// [`RkmemBench::flags`]: time only the host kernel's side.
pub const RKMEM_BENCH_ONLY_HOST: u32 = 1 << 1;
/// [`RkmemBench::flags`]: the host kernel's side runs first in the first repetition (and so in
/// every odd-numbered one); without it rkmem's does. A caller that makes one call per repetition
/// alternates the order with this flag.
pub const RKMEM_BENCH_HOST_FIRST: u32 = 1 << 2;
/// [`RkmemBench::flags`]: slab kinds: keep this call's rkmem cache and SLUB cache in the open
/// file for its next call of the same kind, size and alignment, which then times the same two
/// caches (after its own warm-up) instead of creating new ones. Creating and destroying a
/// cache waits for RCU grace periods, which would dominate a caller that makes one call per
/// repetition. The kept caches go when the file closes or a call without this flag, or with
/// other parameters, comes.
pub const RKMEM_BENCH_KEEP: u32 = 1 << 3;

/// Argument of [`RKMEM_IOC_BENCH`]. Times are picoseconds per operation, where an operation
/// is one allocation and its free; each repetition times `iters` operations of rkmem, then of
/// the host kernel, back to back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemBench {
    /// In: `RKMEM_BENCH_*` kind.
    pub kind: u32,
    /// In: `RKMEM_BENCH_ONLY_*` flags (not both), `RKMEM_BENCH_HOST_FIRST`, `RKMEM_BENCH_KEEP`.
    pub flags: u32,
    /// In: object size (slab, kmalloc, mempool, layout: 1..=4096); otherwise zero.
    pub size: u32,
    /// In: alignment (slab, layout: a power of two up to 4096); otherwise zero.
    pub align: u32,
    /// In: buddy order 0..=10 (pages); otherwise zero.
    pub order: u32,
    /// In: operations per repetition, `1..=RKMEM_BENCH_MAX_ITERS` (zero for layout).
    pub iters: u32,
    /// In: repetitions, `1..=RKMEM_BENCH_MAX_REPS` (zero for layout); the median is reported.
    pub reps: u32,
    /// Out: the CPU the call started on.
    pub cpu: u32,
    /// Out: rkmem, median picoseconds per operation.
    pub rkmem_ps: u64,
    /// Out: host kernel, median picoseconds per operation.
    pub host_ps: u64,
    /// Out: rkmem, fastest repetition.
    pub rkmem_min_ps: u64,
    /// Out: host kernel, fastest repetition.
    pub host_min_ps: u64,
    /// Out: slab batch: bytes of rkmem's slabs holding one batch.
    pub rkmem_bytes: u64,
    /// Out: slab batch: bytes of SLUB's slabs holding one batch.
    pub host_bytes: u64,
    /// Out: slab kinds and layout: rkmem's objects per slab.
    pub rkmem_objs: u32,
    /// Out: slab kinds and layout: rkmem's pages per slab.
    pub rkmem_pages: u32,
    /// Out: layout: SLUB's objects per slab.
    pub host_objs: u32,
    /// Out: layout: SLUB's pages per slab.
    pub host_pages: u32,
    /// In: trace and footprint: the seed of the random sequence (the same for both sides).
    pub seed: u64,
    /// Out: latency: rkmem's allocation median, 99th percentile and maximum, then its free's
    /// (nanoseconds).
    pub rkmem_lat_ns: [u64; 6],
    /// Out: latency: the host kernel's, as `rkmem_lat_ns`.
    pub host_lat_ns: [u64; 6],
    /// Out: footprint: pages rkmem holds for the live set; trace: its peak.
    pub rkmem_pages_held: u64,
    /// Out: footprint and trace: the host kernel's, as `rkmem_pages_held`.
    pub host_pages_held: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// Run one benchmark (`EINVAL`: bad kind, flags, size, alignment, order, count or reserved
/// field; `ENOMEM`; `EINTR` when a signal arrives between repetitions, or while the call waits
/// for another thread's benchmark on the same file).
pub const RKMEM_IOC_BENCH: u32 = iowr::<RkmemBench>(0x50);

/// Most operations per CPU of one [`RKMEM_IOC_STRESS`] call.
pub const RKMEM_STRESS_MAX_OPS: u64 = 1 << 32;
/// Longest [`RKMEM_IOC_STRESS`] call, milliseconds: the caller waits for its workers without
/// being able to take a signal, so a call is kept well below the hung-task timeout; longer
/// runs are several calls.
pub const RKMEM_STRESS_MAX_MS: u32 = 10_000;
/// [`RkmemStress::flags`]: each worker changes one byte of its first allocation after filling
/// it, so that the run must report exactly one failure per worker: the check of the checker.
pub const RKMEM_STRESS_CORRUPT_ONE: u32 = 1 << 0;

/// Argument of [`RKMEM_IOC_STRESS`]. (ABI 5.)
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RkmemStress {
    /// In: the seed; each CPU's worker draws its own sequence from it and its CPU number.
    pub seed: u64,
    /// In: most operations per CPU, `1..=RKMEM_STRESS_MAX_OPS`.
    pub ops: u64,
    /// In: the call's time limit, `1..=RKMEM_STRESS_MAX_MS` milliseconds: each worker stops at
    /// `ops` operations or at this time, whichever comes first.
    pub ms: u32,
    /// In: `RKMEM_STRESS_*` flags.
    pub flags: u32,
    /// Out: workers run (one per online CPU).
    pub cpus: u32,
    /// Explicit padding; zero.
    pub pad: u32,
    /// Out: allocations and frees made, over all workers.
    pub done_ops: u64,
    /// Out: allocations by kind: cache objects, rkmalloc, page blocks, exact pages, mempool
    /// elements.
    pub allocs: [u64; 5],
    /// Out: frees (each after its allocation's pattern was checked).
    pub frees: u64,
    /// Out: frees of an allocation that another CPU's worker made.
    pub remote_frees: u64,
    /// Out: bytes checked against their pattern.
    pub bytes_verified: u64,
    /// Out: allocations refused with `ENOMEM` (the arena has a maximum): not failures.
    pub enomem: u64,
    /// Out: patterns found changed, and frees an allocator refused (each named in dmesg, at
    /// most one line per worker).
    pub failures: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// Run the in-kernel stress engine: on every online CPU a worker (a work item bound to the CPU)
/// makes a seeded random mix of every allocator's operations: objects of nine caches created
/// for the call (8 to 4000 bytes, alignments 1 to 64), rkmalloc of heavy-tailed sizes up to
/// 20000 bytes, page blocks of orders 0..3, exact pages, elements of a mempool; an eighth of
/// the frees is handed to another CPU's worker. Each allocation is filled with its own pattern
/// and checked before it is freed. Everything is freed before the call returns. `EINVAL` for
/// bad counts, flags or reserved fields; `ENOMEM` if the call's caches cannot be made. (ABI 5.)
pub const RKMEM_IOC_STRESS: u32 = iowr::<RkmemStress>(0x70);

// The layout is the ABI: a size change must be a new ioctl number and ABI version.
const _: () = assert!(core::mem::size_of::<RkmemVersion>() == 16);
const _: () = assert!(core::mem::size_of::<RkmemPagesAlloc>() == 32);
const _: () = assert!(core::mem::size_of::<RkmemHandle>() == 8);
const _: () = assert!(core::mem::size_of::<RkmemIo>() == 32);
const _: () = assert!(core::mem::size_of::<RkmemBlock>() == 16);
const _: () = assert!(core::mem::size_of::<RkmemArenaMap>() == 40);
const _: () = assert!(core::mem::size_of::<RkmemTrim>() == 24);
const _: () = assert!(core::mem::size_of::<RkmemSelftest>() == 16);
const _: () = assert!(core::mem::size_of::<RkmemCacheCreate>() == 64);
const _: () = assert!(core::mem::size_of::<RkmemCacheId>() == 8);
const _: () = assert!(core::mem::size_of::<RkmemHandleInfo>() == 112);
const _: () = assert!(core::mem::size_of::<RkmemRoute>() == 24);
const _: () = assert!(core::mem::size_of::<RkmemRoutes>() == 176);
const _: () = assert!(core::mem::size_of::<RkmemObjAlloc>() == 32);
const _: () = assert!(core::mem::size_of::<RkmemSlabEntry>() == 16);
const _: () = assert!(core::mem::size_of::<RkmemCacheSlabs>() == 56);
const _: () = assert!(core::mem::size_of::<RkmemPoolCreate>() == 32);
const _: () = assert!(core::mem::size_of::<RkmemPoolAlloc>() == 24);
const _: () = assert!(core::mem::size_of::<RkmemPoolId>() == 8);
const _: () = assert!(core::mem::size_of::<RkmemBench>() == 224);
const _: () = assert!(core::mem::size_of::<RkmemStress>() == 128);
