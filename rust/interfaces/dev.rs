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

use crate::arena::SLOT_PAGES;
use crate::classes::{self, RkAlloc};
use crate::mempool::Elem;
use crate::rkcore::buddy::BlockKind;
use crate::rkcore::slab::SlabList;
use crate::slab::{Cache, Obj};
use crate::stats::{inc, STATS};
use crate::uapi::{self, RkmemArenaMap, RkmemBlock, RkmemHandle, RkmemIo, RkmemPagesAlloc};
use crate::uapi::{RkmemCacheCreate, RkmemCacheId, RkmemObjAlloc};
use crate::uapi::{RkmemCacheSlabs, RkmemHandleInfo, RkmemSlabEntry};
use crate::uapi::{RkmemCompact, RkmemSelftest, RkmemTrim, RkmemVersion};
use crate::uapi::{RkmemPoolAlloc, RkmemPoolCreate, RkmemPoolId};
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

/// Module version reported by `RKMEM_IOC_VERSION`.
const VERSION: (u16, u16, u16) = (0, 5, 0);

/// What an open file holds: the allocator and its owned handle.
enum Held {
    /// From an allocator: pages, an object, rkmalloc.
    Alloc(RkAlloc),
    /// An element of one of the file's mempools.
    PoolElem(kernel::sync::Arc<crate::mempool::Mempool>, Elem),
}

/// An allocation held by an open file. Dropping it gives the memory back (the handle moves
/// out of the `Option` into its allocator's free, once).
pub(super) struct Allocation(Option<Held>);

impl Allocation {
    fn new(h: Held) -> Allocation {
        Allocation(Some(h))
    }

    /// Usable bytes.
    fn bytes(&self) -> usize {
        match &self.0 {
            Some(Held::Alloc(a)) => a.bytes(),
            Some(Held::PoolElem(p, _)) => p.element_bytes(),
            None => 0,
        }
    }

    /// Shows `f` the object of cache `c` this allocation holds, if it holds one (what
    /// compaction may move: an object of a user cache or of a size class, but not an element of
    /// a mempool, even from `c`); `f` may re-point it.
    pub(super) fn visit_object(
        &mut self,
        c: &Cache,
        arena: &crate::arena::Arena,
        f: &mut dyn FnMut(&mut Obj),
    ) {
        match &mut self.0 {
            Some(Held::Alloc(RkAlloc::Object(cc, obj))) if cc.id == c.id => f(obj),
            Some(Held::Alloc(RkAlloc::Class { obj, .. })) => obj.with_obj(c, arena, f),
            _ => {}
        }
    }

    /// The address of the slab object this allocation holds (a user cache's or a size
    /// class's), if it holds one that compaction may move.
    pub(super) fn object_addr(&mut self) -> Option<usize> {
        match &mut self.0 {
            Some(Held::Alloc(RkAlloc::Object(_, obj))) => Some(obj.addr()),
            Some(Held::Alloc(RkAlloc::Class { obj, .. })) => Some(obj.addr()),
            _ => None,
        }
    }

    /// The block of arena pages this allocation holds, if it holds one (a page allocation, or
    /// rkmalloc's pages for sizes above 4 KiB): what arena compaction may move.
    pub(super) fn pages_mut(&mut self) -> Option<&mut crate::arena::Pages> {
        match &mut self.0 {
            Some(Held::Alloc(RkAlloc::Pages(p))) => Some(p),
            _ => None,
        }
    }

    /// Kernel virtual address of the first byte.
    fn addr(&mut self, arena: &crate::arena::Arena) -> usize {
        match &mut self.0 {
            Some(Held::Alloc(a)) => a.addr(arena),
            Some(Held::PoolElem(_, e)) => e.addr(),
            None => 0,
        }
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // Refused frees are counted and reported by the allocators; nothing else to do here.
        match self.0.take() {
            Some(Held::Alloc(a)) => {
                if let Some(shared) = crate::shared() {
                    let _ = a.free(&shared.classes, &shared.arena);
                }
            }
            Some(Held::PoolElem(p, e)) => {
                // The element is this pool's: it came from `p.alloc` below.
                let _ = p.free(e);
            }
            None => {}
        }
    }
}

/// Source of per-file ids (cache ownership).
static NEXT_FILE_ID: Atomic<u64> = Atomic::new(1);

/// The handle table of one open file.
pub(super) struct Handles {
    pub(super) tree: RBTree<u64, Allocation>,
    next: u64,
    /// Bytes of all allocations in `tree`.
    bytes: u64,
}

/// The handle table of an open file and its lock, shared with the list of open files that
/// arena compaction and `/proc/rkmem/compact` walk ([`crate::Shared::files`]).
#[pin_data]
pub(crate) struct FileHandles {
    /// The file's id (owner of its caches and mempools).
    pub(super) id: u64,
    #[pin]
    pub(super) table: Mutex<Handles>,
}

/// State of one open file of `/dev/rkmem`.
#[pin_data(PinnedDrop)]
pub(crate) struct RkmemFile {
    id: u64,
    handles: Arc<FileHandles>,
    /// The slab benchmark's caches kept between calls (`RKMEM_BENCH_KEEP`).
    #[pin]
    bench: Mutex<Option<crate::bench::Kept>>,
}

#[pinned_drop]
impl PinnedDrop for RkmemFile {
    fn drop(self: Pin<&mut Self>) {
        // Off the list of open files first (a compaction that took the table before sees it
        // empty once it gets the lock), then the allocations (objects of this file's caches
        // among them), then the caches.
        if let Some(shared) = crate::shared() {
            shared.files.lock().retain(|f| f.id != self.id);
        }
        let tree = core::mem::replace(&mut self.handles.table.lock().tree, RBTree::new());
        drop(tree);
        if let Some(shared) = crate::shared() {
            crate::mempool::destroy_owned(&shared.pools, self.id);
            classes::destroy_owned(&shared.caches, self.id);
        }
    }
}

#[vtable]
impl MiscDevice for RkmemFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let shared = crate::shared().ok_or(ENODEV)?;
        let id = NEXT_FILE_ID.fetch_add(1, Relaxed);
        let handles = Arc::pin_init(
            pin_init!(FileHandles {
                id,
                table <- new_mutex!(Handles { tree: RBTree::new(), next: 1, bytes: 0 }, "rkmem_file_handles"),
            }),
            GFP_KERNEL,
        )?;
        shared.files.lock().push(handles.clone(), GFP_KERNEL)?;
        // From here on the file's drop takes it off the list again.
        let f = KBox::try_pin_init(
            try_pin_init!(RkmemFile {
                id,
                handles,
                bench <- new_mutex!(None, "rkmem_file_bench"),
            }),
            GFP_KERNEL,
        );
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                shared.files.lock().retain(|f| f.id != id);
                return Err(e);
            }
        };
        inc(&STATS.opens);
        Ok(f)
    }

    fn release(device: Pin<KBox<Self>>, _file: &File) {
        // Dropping the file frees every allocation and cache it still holds.
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
                drop(self.take(h.handle).ok_or(ENOENT)?);
                if let Some(shared) = crate::shared() {
                    super::compaction::after_free(shared);
                }
            }
            uapi::RKMEM_IOC_WRITE => self.io(user, true)?,
            uapi::RKMEM_IOC_READ => self.io(user, false)?,
            uapi::RKMEM_IOC_ARENA_MAP => arena_map(user)?,
            uapi::RKMEM_IOC_HANDLE_INFO => self.handle_info(user)?,
            uapi::RKMEM_IOC_ROUTES => super::routes::run(user)?,
            uapi::RKMEM_IOC_CACHE_SLABS => self.cache_slabs(user)?,
            uapi::RKMEM_IOC_TRIM => {
                let (mut r, mut w) = user.reader_writer();
                let mut t: RkmemTrim = r.read()?;
                let all = uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA | uapi::RKMEM_TRIM_SLABS;
                if t.reserved != 0 || t.flags & !all != 0 {
                    return Err(EINVAL);
                }
                let shared = crate::shared().ok_or(ENODEV)?;
                // After any compaction run in flight (a user's, or the proactive worker's after
                // a burst of frees): a run holds the pages it is moving and an isolated slot,
                // which a trim in the middle of it would leave behind.
                let _no_compaction = crate::arena::lock_interruptible(&shared.compact_lock)?;
                let (_, done) = shared.trim(t.flags);
                t.pcp_pages = done.pcp_pages as u64;
                t.released_pages = done.released_pages as u64;
                w.write(&t)?;
            }
            uapi::RKMEM_IOC_CACHE_CREATE => self.cache_create(user)?,
            uapi::RKMEM_IOC_CACHE_DESTROY => {
                let c: RkmemCacheId = user.reader().read()?;
                if c.reserved != 0 {
                    return Err(EINVAL);
                }
                let shared = crate::shared().ok_or(ENODEV)?;
                // Not while a compaction runs: its drain of the cache's per-CPU arrays holds
                // objects in flight (neither cached nor free), which the destroy's count of
                // live objects would take for a leak (EBUSY; seen with compaction looping on
                // another CPU).
                let _no_compaction = crate::arena::lock_interruptible(&shared.compact_lock)?;
                classes::destroy(&shared.caches, c.id, self.id)?;
            }
            uapi::RKMEM_IOC_OBJ_ALLOC => self.obj_alloc(user)?,
            uapi::RKMEM_IOC_POOL_CREATE => self.pool_create(user)?,
            uapi::RKMEM_IOC_POOL_ALLOC => self.pool_alloc(user)?,
            uapi::RKMEM_IOC_POOL_RESIZE => {
                let r: RkmemPoolId = user.reader().read()?;
                if r.min_nr == 0 || r.min_nr > uapi::RKMEM_POOL_MAX_MIN {
                    return Err(EINVAL);
                }
                let shared = crate::shared().ok_or(ENODEV)?;
                let p = crate::mempool::find(&shared.pools, r.pool_id, self.id).ok_or(ENOENT)?;
                p.resize(r.min_nr as usize)?;
            }
            uapi::RKMEM_IOC_POOL_DESTROY => {
                let r: RkmemPoolId = user.reader().read()?;
                if r.min_nr != 0 {
                    return Err(EINVAL);
                }
                let shared = crate::shared().ok_or(ENODEV)?;
                crate::mempool::destroy(&shared.pools, r.pool_id, self.id)?;
            }
            uapi::RKMEM_IOC_SELFTEST => {
                let shared = crate::shared().ok_or(ENODEV)?;
                // The answer's buffer is checked first: a call that cannot be answered runs no
                // check (its refused frees could not be accounted for), EFAULT at once.
                user.writer().write(&RkmemSelftest::default())?;
                let arena: &'static crate::arena::Arena = &shared.arena;
                let mut o = crate::selftest::Outcome::default();
                let ran = (|| -> Result {
                    crate::selftest::run(&mut o)?;
                    crate::selftest::run_slab(arena, crate::slab_debug(), &mut o)?;
                    crate::selftest::run_mempool(arena, &mut o)?;
                    crate::selftest::run_rkmalloc(&shared.classes, arena, &mut o)?;
                    crate::selftest::run_percpu(&mut o)
                })();
                // Written also when a check could not run (ENOMEM): the counts of what ran.
                UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd))
                    .writer()
                    .write(&RkmemSelftest {
                        passed: o.passed,
                        failed: o.failed,
                        arena_bad_frees: o.arena_bad_frees,
                    })?;
                ran?;
            }
            uapi::RKMEM_IOC_BENCH => crate::bench::run(user, &self.bench)?,
            uapi::RKMEM_IOC_COMPACT => self.compact(user)?,
            uapi::RKMEM_IOC_STRESS => crate::stress::run(user)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    /// The per-file cap on bytes held (`file_max_mb`).
    fn cap() -> u64 {
        u64::from(crate::params().file_max_mb) << 20
    }

    /// Refuses a request of `bytes` that cannot fit under the cap (checked before allocating,
    /// so that an over-cap request costs nothing).
    fn precheck(&self, bytes: u64) -> Result {
        if self.handles.table.lock().bytes.saturating_add(bytes) > Self::cap() {
            return Err(EDQUOT);
        }
        Ok(())
    }

    /// Stores `a` under a new handle; `EDQUOT` (and `a` freed) if it would pass the cap.
    fn insert(&self, a: Allocation) -> Result<u64> {
        let bytes = a.bytes() as u64;
        let mut h = self.handles.table.lock();
        // On any failure below `a` is dropped, which frees the memory.
        if h.bytes.saturating_add(bytes) > Self::cap() {
            return Err(EDQUOT);
        }
        let handle = h.next;
        h.next = h.next.checked_add(1).ok_or(ENOSPC)?;
        h.tree
            .try_create_and_insert(handle, a, GFP_KERNEL_ACCOUNT)?;
        h.bytes += bytes;
        Ok(handle)
    }

    /// Puts `a` in the handle table and writes `req` back to user space, completed by `fill`
    /// with the new handle and the allocation's usable bytes. If that write fails, user space
    /// never learns the handle: the allocation is taken out again and freed.
    fn publish<T: AsBytes>(
        &self,
        a: Allocation,
        w: &mut UserSliceWriter,
        req: &mut T,
        fill: impl FnOnce(&mut T, u64, u64),
    ) -> Result {
        let bytes = a.bytes() as u64;
        let handle = self.insert(a)?;
        fill(req, handle, bytes);
        if let Err(e) = w.write(req) {
            drop(self.take(handle));
            return Err(e);
        }
        Ok(())
    }

    /// Takes handle `handle` out of the table (the caller drops it, freeing the memory).
    fn take(&self, handle: u64) -> Option<Allocation> {
        let mut h = self.handles.table.lock();
        let a = h.tree.remove(&handle)?;
        h.bytes = h.bytes.saturating_sub(a.bytes() as u64);
        Some(a)
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
            if (1..=SLOT_PAGES as u32).contains(&req.npages) {
                self.precheck(u64::from(req.npages) * crate::arena::PAGE_SIZE as u64)?;
            }
            arena.alloc_exact(req.npages as usize, true)?
        } else {
            if req.npages != 0 {
                return Err(EINVAL);
            }
            if req.order <= uapi::RKMEM_MAX_ORDER {
                self.precheck((crate::arena::PAGE_SIZE as u64) << req.order)?;
            }
            arena.alloc(req.order, true)?
        };
        let a = Allocation::new(Held::Alloc(RkAlloc::Pages(pages)));
        self.publish(a, &mut w, &mut req, |r, handle, bytes| {
            r.handle = handle;
            r.bytes = bytes;
        })
    }

    /// `RKMEM_IOC_HANDLE_INFO`: where a block of pages or an object of a user cache sits in
    /// the arena, and the object's slab bitmap. Read only.
    fn handle_info(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let req: RkmemHandleInfo = r.read()?;
        if req.reserved != 0 {
            return Err(EINVAL);
        }
        let arena = &crate::shared().ok_or(ENODEV)?.arena;
        let mut out = RkmemHandleInfo {
            handle: req.handle,
            ..Default::default()
        };
        {
            // Under the handle mutex: the allocation stays put (compaction re-points handles
            // under it too).
            let mut handles = self.handles.table.lock();
            let a = handles.tree.get_mut(&req.handle).ok_or(ENOENT)?;
            match &mut a.0 {
                Some(Held::Alloc(RkAlloc::Pages(p))) => {
                    out.kind = uapi::RKMEM_INFO_PAGES;
                    out.slot = (p.first() / SLOT_PAGES) as u32;
                    out.page = (p.first() % SLOT_PAGES) as u32;
                    out.pages = p.npages() as u32;
                }
                Some(Held::Alloc(RkAlloc::Object(c, obj))) => {
                    let v = c.inspect(obj.addr()).ok_or(EINVAL)?;
                    let first = arena.page_of(v.slab as usize).ok_or(EINVAL)?;
                    out.kind = uapi::RKMEM_INFO_OBJECT;
                    out.slot = (first / SLOT_PAGES) as u32;
                    out.page = (first % SLOT_PAGES) as u32;
                    out.pages = c.layout.pages() as u32;
                    out.offset = v.offset as u32;
                    out.index = v.index;
                    out.objects = c.layout.objects();
                    out.in_use = v.in_use;
                    out.color = v.color;
                    out.bitmap = v.bitmap;
                }
                _ => return Err(EINVAL),
            }
        }
        w.write(&out)
    }

    /// `RKMEM_IOC_CACHE_SLABS`: the full, partial and empty lists of a cache of this file as
    /// the kernel holds them (slot and page of each slab, its objects in use). Read only.
    fn cache_slabs(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemCacheSlabs = r.read()?;
        if req.reserved != 0 || req.max_entries > uapi::RKMEM_SLABS_MAX_ENTRIES {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        // The registry's mutex only while the cache is found (lock order 2), dropped before the
        // cache's `inner` is taken.
        let c = classes::find(&shared.caches, req.cache_id, self.id).ok_or(ENOENT)?;
        let arena = &shared.arena;
        // Room for the answer before the spinlock: nothing is allocated under it.
        let mut out: KVec<RkmemSlabEntry> =
            KVec::with_capacity(req.max_entries as usize, GFP_KERNEL)?;
        let counts = c.slabs(|list, slab, in_use| {
            let Some(first) = arena.page_of(slab as usize) else {
                return;
            };
            let e = RkmemSlabEntry {
                slot: (first / SLOT_PAGES) as u32,
                page: (first % SLOT_PAGES) as u32,
                list: match list {
                    SlabList::Full => uapi::RKMEM_SLAB_FULL,
                    SlabList::Partial => uapi::RKMEM_SLAB_PARTIAL,
                    SlabList::Empty => uapi::RKMEM_SLAB_EMPTY,
                },
                in_use,
            };
            // Past `max_entries` the rest is cut (the counts still tell all).
            let _ = out.push_within_capacity(e);
        });
        // The user copies with no lock held.
        let mut entries = UserSlice::new(
            UserPtr::from_addr(req.entries as usize),
            out.len() * core::mem::size_of::<RkmemSlabEntry>(),
        )
        .writer();
        for e in out.iter() {
            entries.write(e)?;
        }
        let n32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        req.nr_entries = out.len() as u32;
        req.full = n32(counts.full());
        req.partial = n32(counts.partial());
        req.empty = n32(counts.empty());
        req.objects = c.layout.objects();
        req.pages = c.layout.pages() as u32;
        req.keep_empty = counts.keep_empty();
        req.in_use = counts.objects_in_use();
        w.write(&req)
    }

    fn io(&self, user: UserSlice, write: bool) -> Result {
        let io: RkmemIo = user.reader().read()?;
        let arena = &crate::shared().ok_or(ENODEV)?.arena;
        let mut handles = self.handles.table.lock();
        let a = handles.tree.get_mut(&io.handle).ok_or(ENOENT)?;
        let end = io.offset.checked_add(io.len).ok_or(EINVAL)?;
        if end > a.bytes() as u64 {
            return Err(EINVAL);
        }
        if io.len == 0 {
            return Ok(());
        }
        let addr = a.addr(arena) + io.offset as usize;
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

impl RkmemFile {
    fn cache_create(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemCacheCreate = r.read()?;
        if req.flags & !(uapi::RKMEM_CACHE_CTOR | uapi::RKMEM_CACHE_NOCPU) != 0
            || req.ctor_byte > 0xff
        {
            return Err(EINVAL);
        }
        if req.flags & uapi::RKMEM_CACHE_CTOR == 0 && req.ctor_byte != 0 {
            return Err(EINVAL);
        }
        // The name: NUL-padded, no byte after the first NUL.
        let len = req
            .name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(req.name.len());
        if req.name[len..].iter().any(|b| *b != 0) || len > uapi::RKMEM_CACHE_NAME_MAX {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        let arena: &'static crate::arena::Arena = &shared.arena;
        let ctor = (req.flags & uapi::RKMEM_CACHE_CTOR != 0).then_some(req.ctor_byte as u8);
        let c = classes::create(
            &shared.caches,
            arena,
            &req.name[..len],
            req.size as usize,
            req.align as usize,
            ctor,
            crate::slab_debug(),
            req.flags & uapi::RKMEM_CACHE_NOCPU == 0,
            self.id,
        )?;
        req.id = c.id;
        req.objects_per_slab = c.layout.objects();
        req.pages_per_slab = c.layout.pages() as u32;
        req.objsize = c.layout.stride() as u32;
        drop(c);
        if let Err(e) = w.write(&req) {
            let _ = classes::destroy(&shared.caches, req.id, self.id);
            return Err(e);
        }
        Ok(())
    }

    fn obj_alloc(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemObjAlloc = r.read()?;
        if req.flags != 0 {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        let a = if req.cache_id == 0 {
            // Bad sizes are EINVAL (from rkmalloc), not EDQUOT.
            if (1..=uapi::RKMEM_RKMALLOC_MAX).contains(&req.size) {
                self.precheck(req.size)?;
            }
            classes::rkmalloc(&shared.classes, &shared.arena, req.size, true)?
        } else {
            if req.size != 0 {
                return Err(EINVAL);
            }
            let c = classes::find(&shared.caches, req.cache_id, self.id).ok_or(ENOENT)?;
            let obj = c.alloc(true)?;
            RkAlloc::Object(c, obj)
        };
        let a = Allocation::new(Held::Alloc(a));
        self.publish(a, &mut w, &mut req, |r, handle, bytes| {
            r.handle = handle;
            r.bytes = bytes;
        })
    }
}

impl RkmemFile {
    fn pool_create(&self, user: UserSlice) -> Result {
        use crate::mempool::Source;
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemPoolCreate = r.read()?;
        if req.flags & !uapi::RKMEM_POOL_FAIL_SOURCE != 0
            || req.id != 0
            || req.min_nr == 0
            || req.min_nr > uapi::RKMEM_POOL_MAX_MIN
        {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        let source = match req.source {
            uapi::RKMEM_POOL_SRC_CACHE if req.size == 0 && req.order == 0 => {
                Source::Cache(classes::find(&shared.caches, req.cache_id, self.id).ok_or(ENOENT)?)
            }
            uapi::RKMEM_POOL_SRC_RKMALLOC if req.cache_id == 0 && req.order == 0 => {
                Source::rkmalloc(&shared.classes, req.size)?
            }
            uapi::RKMEM_POOL_SRC_PAGES
                if req.cache_id == 0 && req.size == 0 && req.order <= uapi::RKMEM_MAX_ORDER =>
            {
                Source::Order(req.order)
            }
            _ => return Err(EINVAL),
        };
        let arena: &'static crate::arena::Arena = &shared.arena;
        let pool = crate::mempool::create(
            &shared.pools,
            arena,
            self.id,
            source,
            req.min_nr as usize,
            req.flags & uapi::RKMEM_POOL_FAIL_SOURCE != 0,
        )?;
        req.id = pool.id;
        drop(pool);
        if let Err(e) = w.write(&req) {
            let _ = crate::mempool::destroy(&shared.pools, req.id, self.id);
            return Err(e);
        }
        Ok(())
    }

    fn pool_alloc(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let mut req: RkmemPoolAlloc = r.read()?;
        if req.flags & !uapi::RKMEM_POOL_MAY_SLEEP != 0 || req.handle != 0 || req.bytes != 0 {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        let pool = crate::mempool::find(&shared.pools, req.pool_id, self.id).ok_or(ENOENT)?;
        let e = pool.alloc(req.flags & uapi::RKMEM_POOL_MAY_SLEEP != 0)?;
        let a = Allocation::new(Held::PoolElem(pool, e));
        self.publish(a, &mut w, &mut req, |r, handle, bytes| {
            r.handle = handle;
            r.bytes = bytes;
        })
    }
}

impl RkmemFile {
    /// `RKMEM_IOC_COMPACT`: slab compaction of this file's caches and arena compaction of
    /// every open file's allocations, through their handles (see [`super::compaction`]).
    fn compact(&self, user: UserSlice) -> Result {
        let (mut r, mut w) = user.reader_writer();
        let req: RkmemCompact = r.read()?;
        let known = uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA;
        if req.reserved != 0 || req.pad != 0 || req.flags == 0 || req.flags & !known != 0 {
            return Err(EINVAL);
        }
        let shared = crate::shared().ok_or(ENODEV)?;
        let mut out = super::compaction::run(
            shared,
            super::compaction::Trigger::Ioctl,
            req.flags,
            Some(&self.handles),
            &super::compaction::Limits::ALL,
        )?;
        out.flags = req.flags;
        w.write(&out)
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
    RkmemCacheCreate,
    RkmemCacheId,
    RkmemObjAlloc,
    RkmemHandleInfo,
    crate::uapi::RkmemRoutes,
    RkmemSlabEntry,
    RkmemCacheSlabs,
    RkmemPoolCreate,
    RkmemPoolAlloc,
    RkmemPoolId,
    crate::uapi::RkmemBench,
    crate::uapi::RkmemCompact,
    crate::uapi::RkmemStress,
);
