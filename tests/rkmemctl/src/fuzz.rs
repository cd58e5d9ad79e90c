// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl fuzz`: a bounded number of ioctl calls with random and boundary arguments.
//!
//! Each worker thread holds two open files (its own and a "foreign" one) and sends, in a random
//! mix: random command numbers (rkmem's type byte and others, every direction and size), every
//! real command with random and boundary fields (zero, maximum, overflowing, reserved bits),
//! bad pointers (NULL, kernel addresses, non-canonical addresses, `PROT_NONE` pages, structs
//! that straddle into an inaccessible page, read-only pages for commands that write back),
//! freed handles, handles, caches and pools of the other file. For every call the documented
//! answer is predicted from the arguments (`EINVAL`, `ENOENT`, `EFAULT`, `ENOTTY`, ...; `ENOMEM`
//! and `EDQUOT` are accepted where memory is asked for) and a different answer is a failure.
//! Allocations that succeed get a pattern keyed by their handle, checked before they are freed.
//! Meanwhile a churn thread opens and closes files, shares them with the workers and closes
//! them while the workers may be inside an ioctl on them.
//!
//! Afterwards, with every file closed, the module must still answer correctly (version, a page
//! and an rkmalloc round trip) and its counters must be back: `open_files`, no cache or pool
//! left, and after a trim buddyinfo at its load-time value.

use crate::dev::{self, Device, PAGE_SIZE};
use crate::pattern::{self, Rng};
use crate::procfs;
use crate::uapi::{self, *};
use nix::errno::Errno;
use nix::libc;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// ioctl calls in all (split between the threads).
    pub ops: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Worker threads (plus one churn thread).
    pub threads: usize,
    /// Print every call (slow).
    pub verbose: bool,
}

/// Failures kept per thread for the report (all are counted).
const KEEP_FAILURES: usize = 12;
/// Bytes of each thread's buffer for `RKMEM_IOC_READ`/`WRITE` (and its guard page after it).
const SCRATCH: usize = (4 << 20) + 4096;
/// Most allocations a thread keeps on its main file.
const MAX_LIVE: usize = 24;
/// Most caches and pools a thread keeps.
const MAX_CACHES: usize = 4;
const MAX_POOLS: usize = 3;

/// Every command of the ABI with its name.
pub const COMMANDS: [(u32, &str); 21] = [
    (RKMEM_IOC_VERSION, "VERSION"),
    (RKMEM_IOC_PAGES_ALLOC, "PAGES_ALLOC"),
    (RKMEM_IOC_FREE, "FREE"),
    (RKMEM_IOC_WRITE, "WRITE"),
    (RKMEM_IOC_READ, "READ"),
    (RKMEM_IOC_ARENA_MAP, "ARENA_MAP"),
    (RKMEM_IOC_TRIM, "TRIM"),
    (RKMEM_IOC_HANDLE_INFO, "HANDLE_INFO"),
    (RKMEM_IOC_ROUTES, "ROUTES"),
    (RKMEM_IOC_CACHE_CREATE, "CACHE_CREATE"),
    (RKMEM_IOC_CACHE_DESTROY, "CACHE_DESTROY"),
    (RKMEM_IOC_OBJ_ALLOC, "OBJ_ALLOC"),
    (RKMEM_IOC_CACHE_SLABS, "CACHE_SLABS"),
    (RKMEM_IOC_POOL_CREATE, "POOL_CREATE"),
    (RKMEM_IOC_POOL_ALLOC, "POOL_ALLOC"),
    (RKMEM_IOC_POOL_RESIZE, "POOL_RESIZE"),
    (RKMEM_IOC_POOL_DESTROY, "POOL_DESTROY"),
    (RKMEM_IOC_SELFTEST, "SELFTEST"),
    (RKMEM_IOC_BENCH, "BENCH"),
    (RKMEM_IOC_COMPACT, "COMPACT"),
    (RKMEM_IOC_STRESS, "STRESS"),
];

/// Type bytes whose commands the VFS itself handles for any file (`do_vfs_ioctl`: FIOCLEX,
/// FIONBIO, FIFREEZE, FS_IOC_SETFLAGS, FICLONE, FS_IOC_GETFSUUID, FIBMAP, ...): a random number
/// of these types could freeze a filesystem or make /dev/rkmem immutable, so they are not sent.
const VFS_TYPES: [u32; 6] = [0x00, 0x15, b'T' as u32, b'X' as u32, b'f' as u32, 0x94];

/// One expected answer: `0` for success, else an errno.
type Answer = i32;
const OK: Answer = 0;

fn errno_name(a: Answer) -> String {
    if a == OK {
        "ok".into()
    } else {
        format!("{}", Errno::from_raw(a))
            .split(':')
            .next()
            .unwrap_or("?")
            .to_string()
    }
}

/// How the argument pointer of one call is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ptr {
    /// A valid, writable struct.
    Valid,
    /// A valid struct in a read-only page: `_IOW` works, writing the answer back is `EFAULT`.
    ReadOnly,
    /// An address the kernel must refuse (`EFAULT`).
    Bad(u64),
}

/// Addresses no user copy may reach: NULL and low pages (below `mmap_min_addr`), the direct
/// map and the kernel text, non-canonical, the last bytes of the address space.
const BAD_ADDRS: [u64; 8] = [
    0,
    0x10,
    0x1000,
    0xffff_8880_0000_0000,
    0xffff_ffff_8100_0000,
    0x0000_8000_0000_0000,
    0xdead_0000_0000_0000,
    u64::MAX - 3,
];

/// Direction of a command: does the kernel write the argument back?
fn writes_back(cmd: u32) -> bool {
    (cmd >> 30) & uapi::IOC_READ != 0
}

/// A private anonymous mapping, unmapped on drop.
struct Map {
    addr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the threads that use it own it.
unsafe impl Send for Map {}

impl Map {
    fn new(len: usize) -> Map {
        // SAFETY: an anonymous private mapping at an address the kernel picks; no memory of
        // this program is affected.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(addr != libc::MAP_FAILED, "mmap {len} bytes failed");
        Map {
            addr: addr.cast(),
            len,
        }
    }

    fn at(&self, off: usize) -> u64 {
        self.addr as u64 + off as u64
    }

    fn protect(&self, off: usize, len: usize, prot: i32) {
        // SAFETY: the range lies inside this mapping, which only this value uses.
        let r = unsafe { libc::mprotect(self.addr.add(off).cast(), len, prot) };
        assert_eq!(r, 0, "mprotect failed");
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Map::new` with this length and is no longer used.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// The argument pages of a thread: `[RW][NONE][RO][NONE]`.
struct ArgPages {
    map: Map,
}

const PG: usize = 4096;

impl ArgPages {
    fn new() -> ArgPages {
        let map = Map::new(4 * PG);
        map.protect(PG, PG, libc::PROT_NONE);
        map.protect(2 * PG, PG, libc::PROT_READ);
        map.protect(3 * PG, PG, libc::PROT_NONE);
        ArgPages { map }
    }

    /// The address of a struct of `size` bytes that starts in the RW page and ends in the
    /// `PROT_NONE` page after it.
    fn straddling(&self, size: usize) -> u64 {
        self.map.at(PG - size / 2)
    }

    fn none_page(&self) -> u64 {
        self.map.at(3 * PG)
    }

    /// Copies `v` into the read-only page and returns its address there.
    fn read_only<T: Copy>(&self, v: &T) -> u64 {
        self.map
            .protect(2 * PG, PG, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: the page is writable now, belongs to this value, and `T` is smaller than a
        // page (every uapi struct is).
        unsafe { std::ptr::write_unaligned(self.map.addr.add(2 * PG).cast::<T>(), *v) };
        self.map.protect(2 * PG, PG, libc::PROT_READ);
        self.map.at(2 * PG)
    }
}

/// A user buffer for the data of `READ`/`WRITE`: `SCRATCH` writable bytes, then a guard page.
struct Scratch {
    map: Map,
}

impl Scratch {
    fn new() -> Scratch {
        let map = Map::new(SCRATCH + PG);
        map.protect(SCRATCH, PG, libc::PROT_NONE);
        Scratch { map }
    }

    fn slice(&self, len: usize) -> &[u8] {
        // SAFETY: `len <= SCRATCH` (callers check); the range is mapped and readable.
        unsafe { std::slice::from_raw_parts(self.map.addr, len.min(SCRATCH)) }
    }

    fn slice_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: as `slice`, and borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.map.addr, len.min(SCRATCH)) }
    }
}

/// Per-command tallies of a thread.
#[derive(Default, Clone)]
struct Tally {
    /// command name -> answer -> count
    by_cmd: BTreeMap<&'static str, BTreeMap<Answer, u64>>,
}

impl Tally {
    fn add(&mut self, name: &'static str, a: Answer) {
        *self.by_cmd.entry(name).or_default().entry(a).or_default() += 1;
    }

    fn merge(&mut self, o: &Tally) {
        for (k, m) in &o.by_cmd {
            let e = self.by_cmd.entry(k).or_default();
            for (a, n) in m {
                *e.entry(*a).or_default() += n;
            }
        }
    }
}

/// What one thread did.
#[derive(Default)]
struct Report {
    calls: u64,
    /// Calls that certainly reached rkmem's ioctl handler, and of those the failed ones.
    driver_calls: u64,
    driver_errors: u64,
    /// Calls on a shared file that another thread may have closed meanwhile (the number may
    /// name another file by then): they may or may not have reached rkmem.
    maybe_calls: u64,
    verified_bytes: u64,
    failures: u64,
    messages: Vec<String>,
    tally: Tally,
}

impl Report {
    fn fail(&mut self, msg: String) {
        self.failures += 1;
        if self.messages.len() < KEEP_FAILURES {
            self.messages.push(msg);
        }
    }
}

/// A live allocation of the main file.
#[derive(Clone, Copy)]
struct Live {
    handle: u64,
    bytes: u64,
    /// The pattern is intact (no fuzzed write went into it).
    clean: bool,
    /// From pool `pool` (index into `pools` by id).
    pool: Option<u32>,
    /// From a cache of this file.
    cache: Option<u32>,
}

/// Bytes of the pattern written into each allocation (at its start and its end).
const PAT: u64 = 256;

struct Pool {
    id: u32,
    /// The cache of this file it takes its elements from.
    cache: Option<u32>,
    min: u32,
    out: u32,
    /// `min` is known (a failed resize leaves it uncertain): sleeping allocations allowed.
    known: bool,
}

/// A file shared between the churn thread and the workers.
struct Shared {
    /// The file descriptor the churn thread holds open right now, or -1.
    hot_fd: AtomicI32,
    stop: AtomicBool,
    maybe_calls: AtomicU64,
}

struct Worker<'a> {
    idx: usize,
    rng: Rng,
    seed: u64,
    main: Device,
    other: Device,
    other_handles: Vec<u64>,
    other_caches: Vec<u32>,
    other_pools: Vec<u32>,
    live: Vec<Live>,
    freed: Vec<u64>,
    caches: Vec<(u32, [u8; 32])>,
    cache_serial: u32,
    pools: Vec<Pool>,
    args: ArgPages,
    scratch: Scratch,
    shared: &'a Shared,
    verbose: bool,
    nr_slots: u32,
    r: Report,
}

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

/// A random 32-bit field: often a boundary, sometimes anything.
fn field32(rng: &mut Rng, good: &[u32]) -> u32 {
    match rng.below(10) {
        0..=5 => pick(rng, good),
        6 => pick(rng, &[0, 1, u32::MAX, u32::MAX - 1, 1 << 31, 1 << 16]),
        7 => 1 << rng.below(32),
        _ => rng.next_u64() as u32,
    }
}

impl Worker<'_> {
    fn pattern_key(&self, handle: u64) -> u64 {
        pattern::key(handle, self.seed ^ self.idx as u64)
    }

    /// Sends `cmd` with `arg` as `ptr` says; `arg` is updated only for `Ptr::Valid`.
    fn send<T: Copy>(&mut self, dev_main: bool, cmd: u32, arg: &mut T, ptr: Ptr) -> Answer {
        let addr = match ptr {
            Ptr::Valid => std::ptr::from_mut(arg) as u64,
            Ptr::ReadOnly => self.args.read_only(arg),
            Ptr::Bad(a) => a,
        };
        let dev = if dev_main { &self.main } else { &self.other };
        self.r.calls += 1;
        self.r.driver_calls += 1;
        let a = match dev.raw_ioctl(cmd, addr as usize) {
            Ok(_) => OK,
            Err(e) => {
                self.r.driver_errors += 1;
                e as i32
            }
        };
        if self.verbose {
            eprintln!(
                "t{} cmd {cmd:#010x} ptr {ptr:?} -> {}",
                self.idx,
                errno_name(a)
            );
        }
        a
    }

    /// Chooses how to pass the argument of `cmd`.
    fn ptr(&mut self, size: usize) -> Ptr {
        match self.rng.below(100) {
            0..=84 => Ptr::Valid,
            85..=89 => Ptr::ReadOnly,
            90..=91 => Ptr::Bad(self.args.straddling(size)),
            92 => Ptr::Bad(self.args.none_page()),
            _ => Ptr::Bad(pick(&mut self.rng, &BAD_ADDRS)),
        }
    }

    /// Checks answer `got` of command `name` against `want` (answers for a valid pointer),
    /// adjusted for `ptr`. Returns whether the call had its valid-pointer success effect.
    fn expect(
        &mut self,
        name: &'static str,
        cmd: u32,
        ptr: Ptr,
        want: &[Answer],
        got: Answer,
        what: &str,
    ) -> bool {
        self.r.tally.add(name, got);
        let allowed: Vec<Answer> = match ptr {
            Ptr::Valid => want.to_vec(),
            // The argument cannot be read (or, for `_IOR`, written): nothing else may happen.
            Ptr::Bad(_) => vec![libc::EFAULT],
            // The request is read and carried out; writing the answer back fails.
            Ptr::ReadOnly if writes_back(cmd) => want
                .iter()
                .map(|&a| if a == OK { libc::EFAULT } else { a })
                .collect(),
            Ptr::ReadOnly => want.to_vec(),
        };
        if !allowed.contains(&got) {
            let want_s: Vec<String> = allowed.iter().map(|&a| errno_name(a)).collect();
            self.r.fail(format!(
                "{name} ({cmd:#010x}) {what} ptr {ptr:?}: got {}, want {}",
                errno_name(got),
                want_s.join("|")
            ));
        }
        ptr == Ptr::Valid && got == OK
    }

    // ---- helpers on live allocations ----

    /// Writes the pattern into the first and last `PAT` bytes of a new allocation.
    fn adopt(&mut self, handle: u64, bytes: u64, pool: Option<u32>, cache: Option<u32>) {
        if bytes == 0 || handle == 0 {
            self.r.fail(format!(
                "allocation answered handle {handle:#x}, {bytes} bytes"
            ));
            return;
        }
        if self.live.iter().any(|l| l.handle == handle) || self.freed.contains(&handle) {
            self.r
                .fail(format!("handle {handle:#x} handed out twice on one file"));
        }
        let key = self.pattern_key(handle);
        let mut clean = true;
        for off in Self::pattern_offsets(bytes) {
            let n = PAT.min(bytes - off) as usize;
            let mut buf = vec![0u8; n];
            pattern::fill(key, off, &mut buf);
            if let Err(e) = self.main.write(handle, off, &buf) {
                self.r
                    .fail(format!("pattern write to {handle:#x} at {off}: {e}"));
                clean = false;
            }
        }
        self.live.push(Live {
            handle,
            bytes,
            clean,
            pool,
            cache,
        });
    }

    fn pattern_offsets(bytes: u64) -> Vec<u64> {
        if bytes <= PAT {
            vec![0]
        } else {
            vec![0, bytes - PAT.min(bytes - PAT)]
        }
    }

    fn verify(&mut self, l: Live) {
        if !l.clean {
            return;
        }
        let key = self.pattern_key(l.handle);
        for off in Self::pattern_offsets(l.bytes) {
            let n = PAT.min(l.bytes - off) as usize;
            let mut buf = vec![0u8; n];
            if let Err(e) = self.main.read(l.handle, off, &mut buf) {
                self.r
                    .fail(format!("pattern read of {:#x} at {off}: {e}", l.handle));
                return;
            }
            if let Some((at, w, g)) = pattern::first_mismatch(key, off, &buf) {
                self.r.fail(format!(
                    "content of {:#x} ({} bytes) differs at {at}: {w:#04x} written, {g:#04x} read",
                    l.handle, l.bytes
                ));
                return;
            }
            self.r.verified_bytes += n as u64;
        }
    }

    /// Frees live allocation `i` through the normal path (verified first).
    fn free_live(&mut self, i: usize) {
        let l = self.live.swap_remove(i);
        self.verify(l);
        match self.main.free(l.handle) {
            Ok(()) => {
                self.freed.push(l.handle);
                if self.freed.len() > 64 {
                    self.freed.remove(0);
                }
                if let Some(p) = l
                    .pool
                    .and_then(|id| self.pools.iter_mut().find(|p| p.id == id))
                {
                    p.out -= 1;
                }
            }
            Err(e) => self.r.fail(format!("free of live {:#x}: {e}", l.handle)),
        }
    }

    fn room(&mut self) {
        while self.live.len() >= MAX_LIVE {
            let i = self.rng.below(self.live.len() as u64) as usize;
            self.free_live(i);
        }
    }

    /// A handle this file does not hold: freed, foreign, zero, huge.
    fn dead_handle(&mut self) -> u64 {
        loop {
            let h = match self.rng.below(4) {
                0 if !self.freed.is_empty() => pick(&mut self.rng, &self.freed),
                1 if !self.other_handles.is_empty() => pick(&mut self.rng, &self.other_handles),
                2 => pick(&mut self.rng, &[0, u64::MAX, 1 << 63, 1 << 40]),
                _ => (self.rng.next_u64() | (1 << 40)) & !(1 << 63),
            };
            if !self.live.iter().any(|l| l.handle == h) {
                return h;
            }
        }
    }

    // ---- the commands ----

    fn version(&mut self) {
        let mut v = RkmemVersion::default();
        let ptr = self.ptr(size_of::<RkmemVersion>());
        let got = self.send(true, RKMEM_IOC_VERSION, &mut v, ptr);
        let done = self.expect("VERSION", RKMEM_IOC_VERSION, ptr, &[OK], got, "");
        if done
            && (v.abi_version != RKMEM_ABI_VERSION || v.features != RKMEM_FEATURES || v.pad != 0)
        {
            self.r.fail(format!("VERSION answered {v:?}"));
        }
    }

    fn pages_alloc(&mut self) {
        self.room();
        let rng = &mut self.rng;
        let exact = rng.below(3) == 0;
        let mut a = RkmemPagesAlloc {
            order: if exact {
                field32(rng, &[0, 0, 0, 1])
            } else {
                field32(rng, &[0, 1, 2, 3, 5, 9, 10, 11])
            },
            flags: if rng.below(8) == 0 {
                field32(rng, &[2, 3, 1 << 31])
            } else if exact {
                RKMEM_PAGES_EXACT
            } else {
                0
            },
            npages: if exact {
                field32(rng, &[1, 2, 3, 7, 100, 1023, 1024, 1025])
            } else if rng.below(10) == 0 {
                field32(rng, &[1, 5])
            } else {
                0
            },
            reserved: if rng.below(12) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
            handle: rng.next_u64(),
            bytes: rng.next_u64(),
        };
        let valid = a.reserved == 0
            && a.flags & !RKMEM_PAGES_EXACT == 0
            && if a.flags & RKMEM_PAGES_EXACT != 0 {
                a.order == 0 && (1..=1024).contains(&a.npages)
            } else {
                a.npages == 0 && a.order <= RKMEM_MAX_ORDER
            };
        let want: &[Answer] = if valid {
            &[OK, libc::ENOMEM, libc::EDQUOT]
        } else {
            &[libc::EINVAL]
        };
        let ptr = self.ptr(size_of::<RkmemPagesAlloc>());
        let what = format!(
            "order {} flags {:#x} npages {} reserved {:#x}",
            a.order, a.flags, a.npages, a.reserved
        );
        let got = self.send(true, RKMEM_IOC_PAGES_ALLOC, &mut a, ptr);
        if self.expect("PAGES_ALLOC", RKMEM_IOC_PAGES_ALLOC, ptr, want, got, &what) {
            let pages = if a.flags & RKMEM_PAGES_EXACT != 0 {
                u64::from(a.npages)
            } else {
                1 << a.order
            };
            if a.bytes != pages * PAGE_SIZE {
                self.r
                    .fail(format!("PAGES_ALLOC {what}: {} bytes", a.bytes));
            }
            self.adopt(a.handle, a.bytes, None, None);
        }
    }

    fn free(&mut self) {
        let live = !self.live.is_empty() && self.rng.below(2) == 0;
        let ptr = self.ptr(8);
        if live && ptr == Ptr::Valid {
            let i = self.rng.below(self.live.len() as u64) as usize;
            self.r.tally.add("FREE", OK);
            self.r.calls += 1;
            self.r.driver_calls += 1;
            return self.free_live(i);
        }
        let mut h = RkmemHandle {
            handle: self.dead_handle(),
        };
        let what = format!("dead handle {:#x}", h.handle);
        let got = self.send(true, RKMEM_IOC_FREE, &mut h, ptr);
        self.expect("FREE", RKMEM_IOC_FREE, ptr, &[libc::ENOENT], got, &what);
    }

    fn io(&mut self) {
        let write = self.rng.below(2) == 0;
        let (cmd, name) = if write {
            (RKMEM_IOC_WRITE, "WRITE")
        } else {
            (RKMEM_IOC_READ, "READ")
        };
        let rng = &mut self.rng;
        let target = if !self.live.is_empty() && rng.below(5) != 0 {
            Some(rng.below(self.live.len() as u64) as usize)
        } else {
            None
        };
        let (handle, bytes) = match target {
            Some(i) => (self.live[i].handle, self.live[i].bytes),
            None => (self.dead_handle(), 0),
        };
        let rng = &mut self.rng;
        let b = bytes.max(1);
        let offset = match rng.below(8) {
            0 => 0,
            1 => b,
            2 => b - 1,
            3 => u64::MAX - rng.below(8),
            4 => b + 1 + rng.below(1 << 20),
            _ => rng.below(b),
        };
        let len = match rng.below(8) {
            0 => 0,
            1 => b.saturating_sub(offset),
            2 => b.saturating_sub(offset) + 1,
            3 => u64::MAX - rng.below(8),
            4 => 1,
            _ => rng.below(b.saturating_sub(offset).min(1 << 16) + 1),
        };
        // The data buffer: mostly the scratch area (when it can hold `len`), else bad.
        let buf_ok = len as usize <= SCRATCH && rng.below(6) != 0;
        let buf = if buf_ok {
            self.scratch.map.at(0)
        } else {
            match rng.below(4) {
                0 => self.args.none_page(),
                // Starts in the scratch area, runs into its guard page.
                1 => self.scratch.map.at(SCRATCH - 16),
                _ => pick(rng, &BAD_ADDRS),
            }
        };
        let fits = offset.checked_add(len).is_some_and(|end| end <= bytes);
        let overflow = offset.checked_add(len).is_none();
        let want: &[Answer] = if target.is_none() {
            &[libc::ENOENT]
        } else if overflow || !fits {
            &[libc::EINVAL]
        } else if len == 0 || buf_ok || (buf == self.scratch.map.at(SCRATCH - 16) && len <= 16) {
            &[OK]
        } else {
            &[libc::EFAULT]
        };
        if write && buf_ok && len > 0 {
            let seed = self.rng.next_u64();
            pattern::fill(seed, 0, self.scratch.slice_mut(len as usize));
        }
        let mut io = RkmemIo {
            handle,
            offset,
            len,
            buf,
        };
        let what = format!(
            "handle {handle:#x} ({bytes} bytes) offset {offset:#x} len {len:#x} buf {buf:#x}"
        );
        let ptr = self.ptr(size_of::<RkmemIo>());
        let got = self.send(true, cmd, &mut io, ptr);
        let effect = self.expect(name, cmd, ptr, want, got, &what);
        let Some(i) = target else { return };
        if write && (got == OK || got == libc::EFAULT) && len > 0 && fits {
            // The allocation's bytes changed (all or a prefix): its pattern is gone.
            self.live[i].clean = false;
            if effect {
                // Read back what was written.
                let mut back = vec![0u8; len.min(4096) as usize];
                let at = (buf - self.scratch.map.at(0)) as usize;
                let want_bytes = self.scratch.slice(at + back.len())[at..].to_vec();
                match self.main.read(handle, offset, &mut back) {
                    Ok(()) if back == want_bytes => self.r.verified_bytes += back.len() as u64,
                    Ok(()) => self.r.fail(format!("WRITE {what}: read back differs")),
                    Err(e) => self.r.fail(format!("read back after WRITE {what}: {e}")),
                }
            }
        }
        if !write && effect && self.live[i].clean && len > 0 {
            // Compare what READ put into the scratch area with the pattern where it is known.
            let key = self.pattern_key(handle);
            let at = (buf - self.scratch.map.at(0)) as usize;
            let data = &self.scratch.slice(at + len as usize)[at..];
            for off in Self::pattern_offsets(bytes) {
                let (lo, hi) = (off.max(offset), (off + PAT).min(offset + len));
                if lo < hi {
                    let part = &data[(lo - offset) as usize..(hi - offset) as usize];
                    if let Some((at, w, g)) = pattern::first_mismatch(key, lo, part) {
                        self.r.fail(format!(
                            "READ {what}: byte {at} is {g:#04x}, pattern {w:#04x}"
                        ));
                    }
                }
            }
        }
    }

    fn arena_map(&mut self) {
        let rng = &mut self.rng;
        let slots = 64u32; // more than any arena_max_mb used here; the answer tells the truth
        let mut m = RkmemArenaMap {
            slot: field32(rng, &[0, 1, 2, 15, 16, slots]),
            max_entries: field32(rng, &[0, 1, 16, 1024, 1025]),
            entries: 0,
            reserved: if rng.below(10) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
            nr_entries: rng.next_u64() as u32,
            ..Default::default()
        };
        let entries_ok = m.max_entries <= 1024 && rng.below(5) != 0;
        m.entries = if entries_ok {
            self.scratch.map.at(0)
        } else {
            pick(rng, &[self.args.none_page(), 0, 0xffff_8880_0000_0000])
        };
        let nr_slots = self.nr_slots;
        let want: &[Answer] = if m.reserved != 0 || m.max_entries > 1024 || m.slot >= nr_slots {
            &[libc::EINVAL]
        } else if entries_ok || m.max_entries == 0 {
            &[OK]
        } else {
            // Nothing to write for an absent slot.
            &[libc::EFAULT, OK]
        };
        let what = format!(
            "slot {} max {} entries {:#x} reserved {}",
            m.slot, m.max_entries, m.entries, m.reserved
        );
        let ptr = self.ptr(size_of::<RkmemArenaMap>());
        let got = self.send(true, RKMEM_IOC_ARENA_MAP, &mut m, ptr);
        let done = self.expect("ARENA_MAP", RKMEM_IOC_ARENA_MAP, ptr, want, got, &what);
        if done
            && (m.nr_entries > m.max_entries
                || m.slots != nr_slots
                || m.slot_pages != 1024
                || m.present > 1)
        {
            self.r.fail(format!("ARENA_MAP {what}: answer {m:?}"));
        }
    }

    fn trim(&mut self) {
        let rng = &mut self.rng;
        let mut t = RkmemTrim {
            flags: if rng.below(4) == 0 {
                field32(rng, &[8, 7, 15])
            } else {
                rng.below(8) as u32
            },
            reserved: if rng.below(10) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
            pcp_pages: rng.next_u64(),
            released_pages: rng.next_u64(),
        };
        let valid = t.reserved == 0 && t.flags & !7 == 0;
        let what = format!("flags {:#x} reserved {:#x}", t.flags, t.reserved);
        let ptr = self.ptr(size_of::<RkmemTrim>());
        let got = self.send(true, RKMEM_IOC_TRIM, &mut t, ptr);
        let want: &[Answer] = if valid { &[OK] } else { &[libc::EINVAL] };
        self.expect("TRIM", RKMEM_IOC_TRIM, ptr, want, got, &what);
    }

    fn cache_name(&mut self) -> ([u8; 32], bool) {
        self.cache_serial += 1;
        let good = format!("fz{}-{}.{}", self.idx, self.cache_serial, self.seed % 1000);
        let rng = &mut self.rng;
        let mut name = [0u8; 32];
        let valid = match rng.below(12) {
            0 => true, // empty name
            1 => {
                name = [b'a'; 32]; // no NUL: 32 bytes
                false
            }
            2 => {
                name[..good.len()].copy_from_slice(good.as_bytes());
                name[31] = b'x'; // a byte after the NUL
                false
            }
            3 => {
                name[..4].copy_from_slice(b"a b/");
                false
            }
            4 => {
                name[..3].copy_from_slice(&[b'a', 0xff, b'b']);
                false
            }
            5 => {
                // Exactly 31 bytes: the longest valid name.
                let long = format!("{good}{}", "y".repeat(31));
                name[..31].copy_from_slice(&long.as_bytes()[..31]);
                true
            }
            _ => {
                name[..good.len()].copy_from_slice(good.as_bytes());
                true
            }
        };
        // The empty name is invalid too.
        (name, valid && name[0] != 0)
    }

    fn cache_create(&mut self) {
        if self.caches.len() >= MAX_CACHES {
            return self.cache_destroy();
        }
        let (mut name, mut name_ok) = self.cache_name();
        let mut dup = false;
        let rng = &mut self.rng;
        if rng.below(10) == 0 {
            // A name that exists: ours, the other file's, or an rkmalloc class.
            name = [0; 32];
            let n: &[u8] = if let Some((_, own)) = self.caches.first() {
                let l = own.iter().position(|&b| b == 0).unwrap_or(32);
                &own[..l]
            } else {
                b"rkmalloc-64"
            };
            name[..n.len()].copy_from_slice(n);
            name_ok = true;
            dup = true;
        }
        let rng = &mut self.rng;
        let ctor = rng.below(3) == 0;
        let mut c = RkmemCacheCreate {
            name,
            size: field32(rng, &[1, 8, 17, 100, 117, 1000, 4095, 4096, 4097, 0]),
            align: field32(rng, &[1, 2, 8, 64, 4096, 0, 3, 8192]),
            flags: if rng.below(10) == 0 {
                field32(rng, &[2, 3, 4, 6])
            } else {
                u32::from(ctor)
            },
            ctor_byte: if ctor || rng.below(10) == 0 {
                field32(rng, &[0, 0x5a, 0xff, 0x100])
            } else {
                0
            },
            id: rng.next_u64() as u32,
            ..Default::default()
        };
        let ctor_on = c.flags & RKMEM_CACHE_CTOR != 0;
        let fields_ok = c.flags & !(RKMEM_CACHE_CTOR | RKMEM_CACHE_NOCPU) == 0
            && c.ctor_byte <= 0xff
            && (ctor_on || c.ctor_byte == 0);
        let size_ok = (1..=RKMEM_CACHE_SIZE_MAX).contains(&c.size);
        let align_ok = c.align.is_power_of_two() && c.align <= 4096;
        // The order of the checks is not documented: a taken name with a bad alignment may be
        // either answer (the module checks the alignment when it builds the cache).
        let want: &[Answer] = if !fields_ok || !name_ok || !size_ok {
            &[libc::EINVAL]
        } else if dup && !align_ok {
            &[libc::EEXIST, libc::EINVAL]
        } else if !align_ok {
            &[libc::EINVAL]
        } else if dup {
            &[libc::EEXIST]
        } else {
            &[OK, libc::ENOMEM, libc::ENOSPC]
        };
        let what = format!(
            "name {:?} size {} align {} flags {:#x} ctor {:#x}",
            dev::cache_name_str(&c.name),
            c.size,
            c.align,
            c.flags,
            c.ctor_byte
        );
        let ptr = self.ptr(size_of::<RkmemCacheCreate>());
        let got = self.send(true, RKMEM_IOC_CACHE_CREATE, &mut c, ptr);
        if self.expect(
            "CACHE_CREATE",
            RKMEM_IOC_CACHE_CREATE,
            ptr,
            want,
            got,
            &what,
        ) {
            if c.id == 0 || c.objects_per_slab == 0 || c.objsize < c.size || c.pages_per_slab == 0 {
                self.r.fail(format!("CACHE_CREATE {what}: answer {c:?}"));
            }
            self.caches.push((c.id, c.name));
        }
    }

    fn cache_destroy(&mut self) {
        let rng = &mut self.rng;
        let own = !self.caches.is_empty() && rng.below(3) != 0;
        let id = if own {
            pick(rng, &self.caches).0
        } else if !self.other_caches.is_empty() && rng.below(2) == 0 {
            pick(rng, &self.other_caches)
        } else {
            field32(rng, &[0, 1, 12, 13, u32::MAX])
        };
        let mut arg = RkmemCacheId {
            id,
            reserved: if rng.below(10) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
        };
        let mine = self.caches.iter().any(|c| c.0 == id);
        // Objects out, or a pool over the cache (its reserve holds objects).
        let busy = self.live.iter().any(|l| l.cache == Some(id))
            || self.pools.iter().any(|p| p.cache == Some(id));
        let want: &[Answer] = if arg.reserved != 0 {
            &[libc::EINVAL]
        } else if !mine {
            &[libc::ENOENT]
        } else if busy {
            &[libc::EBUSY]
        } else {
            &[OK]
        };
        let what = format!("id {id} reserved {}", arg.reserved);
        let ptr = self.ptr(size_of::<RkmemCacheId>());
        let got = self.send(true, RKMEM_IOC_CACHE_DESTROY, &mut arg, ptr);
        let done = self.expect(
            "CACHE_DESTROY",
            RKMEM_IOC_CACHE_DESTROY,
            ptr,
            want,
            got,
            &what,
        );
        if got == OK && (done || ptr == Ptr::ReadOnly) {
            self.caches.retain(|c| c.0 != id);
        }
    }

    /// `RKMEM_IOC_CACHE_SLABS` on a cache of this file, of the other file or none, with
    /// boundary counts, reserved bits and bad entry pointers; a good answer must be a
    /// consistent picture (entries within the counts, lists in order, in use within a slab).
    fn cache_slabs(&mut self) {
        let rng = &mut self.rng;
        let cache_id = if !self.caches.is_empty() && rng.below(4) != 0 {
            pick(rng, &self.caches).0
        } else if !self.other_caches.is_empty() && rng.below(2) == 0 {
            pick(rng, &self.other_caches)
        } else {
            field32(rng, &[0, 1, 12, u32::MAX])
        };
        let mut m = RkmemCacheSlabs {
            cache_id,
            max_entries: field32(rng, &[0, 1, 4, 1024, 1025]),
            reserved: if rng.below(10) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
            nr_entries: rng.next_u64() as u32,
            in_use: rng.next_u64(),
            ..Default::default()
        };
        let entries_ok = m.max_entries <= RKMEM_SLABS_MAX_ENTRIES && rng.below(5) != 0;
        m.entries = if entries_ok {
            self.scratch.map.at(0)
        } else {
            pick(rng, &[self.args.none_page(), 0, 0xffff_8880_0000_0000])
        };
        let mine = self.caches.iter().any(|c| c.0 == cache_id);
        let want: &[Answer] = if m.reserved != 0 || m.max_entries > RKMEM_SLABS_MAX_ENTRIES {
            &[libc::EINVAL]
        } else if !mine {
            &[libc::ENOENT]
        } else if entries_ok || m.max_entries == 0 {
            &[OK]
        } else {
            // Nothing to write for a cache without slabs.
            &[libc::EFAULT, OK]
        };
        let what = format!(
            "cache {cache_id} max {} entries {:#x} reserved {}",
            m.max_entries, m.entries, m.reserved
        );
        let ptr = self.ptr(size_of::<RkmemCacheSlabs>());
        let got = self.send(true, RKMEM_IOC_CACHE_SLABS, &mut m, ptr);
        if !self.expect("CACHE_SLABS", RKMEM_IOC_CACHE_SLABS, ptr, want, got, &what) {
            return;
        }
        let slabs = u64::from(m.full) + u64::from(m.partial) + u64::from(m.empty);
        let mut bad = m.nr_entries > m.max_entries
            || u64::from(m.nr_entries) > slabs
            || m.objects == 0
            || m.pages == 0
            || !(5..=10).contains(&m.keep_empty)
            || m.in_use > (u64::from(m.full) + u64::from(m.partial)) * u64::from(m.objects);
        if entries_ok && !bad {
            let n = m.nr_entries as usize;
            let raw = self.scratch.slice(n * size_of::<RkmemSlabEntry>());
            let mut last = RKMEM_SLAB_FULL;
            for e in raw.chunks_exact(size_of::<RkmemSlabEntry>()) {
                let word = |i: usize| u32::from_ne_bytes(e[4 * i..4 * i + 4].try_into().unwrap());
                let (list, in_use) = (word(2), word(3));
                let list_ok = match list {
                    RKMEM_SLAB_FULL => in_use == m.objects,
                    RKMEM_SLAB_PARTIAL => in_use > 0 && in_use < m.objects,
                    RKMEM_SLAB_EMPTY => in_use == 0,
                    _ => false,
                };
                bad |= !list_ok || list < last || word(1) >= 1024;
                last = list;
            }
        }
        if bad {
            self.r.fail(format!("CACHE_SLABS {what}: answer {m:?}"));
        }
    }

    fn obj_alloc(&mut self) {
        self.room();
        let rng = &mut self.rng;
        let from_cache = !self.caches.is_empty() && rng.below(2) == 0;
        let cache_id = if from_cache {
            pick(rng, &self.caches).0
        } else if rng.below(8) == 0 {
            if !self.other_caches.is_empty() && rng.below(2) == 0 {
                pick(rng, &self.other_caches)
            } else {
                field32(rng, &[1, 12, u32::MAX])
            }
        } else {
            0
        };
        let size: u64 = if cache_id != 0 {
            if rng.below(10) == 0 {
                pick(rng, &[1, 8, u64::MAX])
            } else {
                0
            }
        } else {
            match rng.below(20) {
                0 => pick(rng, &[0, u64::MAX, RKMEM_RKMALLOC_MAX + 1, 1 << 63]),
                1 => pick(
                    rng,
                    &[RKMEM_RKMALLOC_MAX, (4 << 20) + 1, 4 << 20, (8 << 20) + 7],
                ),
                2..=4 => 4097 + rng.below(4 << 20),
                _ => 1 + rng.below(4096),
            }
        };
        let mut a = RkmemObjAlloc {
            cache_id,
            flags: if rng.below(12) == 0 {
                field32(rng, &[1])
            } else {
                0
            },
            size,
            handle: rng.next_u64(),
            bytes: rng.next_u64(),
        };
        let own_cache = self.caches.iter().any(|c| c.0 == cache_id);
        let want: &[Answer] = if a.flags != 0 {
            &[libc::EINVAL]
        } else if cache_id == 0 {
            if (1..=RKMEM_RKMALLOC_MAX).contains(&size) {
                &[OK, libc::ENOMEM, libc::EDQUOT]
            } else {
                &[libc::EINVAL]
            }
        } else if size != 0 {
            &[libc::EINVAL]
        } else if !own_cache {
            &[libc::ENOENT]
        } else {
            &[OK, libc::ENOMEM, libc::EDQUOT]
        };
        let what = format!("cache {cache_id} size {size:#x} flags {:#x}", a.flags);
        let ptr = self.ptr(size_of::<RkmemObjAlloc>());
        let got = self.send(true, RKMEM_IOC_OBJ_ALLOC, &mut a, ptr);
        if self.expect("OBJ_ALLOC", RKMEM_IOC_OBJ_ALLOC, ptr, want, got, &what) {
            if cache_id == 0 && Some(a.bytes) != dev::rkmalloc_bytes(size) {
                self.r.fail(format!(
                    "OBJ_ALLOC {what}: {} usable bytes, want {:?}",
                    a.bytes,
                    dev::rkmalloc_bytes(size)
                ));
            }
            self.adopt(a.handle, a.bytes, None, own_cache.then_some(cache_id));
            if a.bytes > 4 << 20 {
                // Do not keep the big ones.
                let i = self.live.len() - 1;
                self.free_live(i);
            }
        }
    }

    fn pool_create(&mut self) {
        if self.pools.len() >= MAX_POOLS {
            return self.pool_destroy();
        }
        let rng = &mut self.rng;
        let source = field32(rng, &[1, 2, 3, 3, 0, 4]);
        let own_cache = self.caches.first().map(|c| c.0);
        let mut p = RkmemPoolCreate {
            source,
            cache_id: match source {
                RKMEM_POOL_SRC_CACHE => match (own_cache, rng.below(6)) {
                    (_, 0) if !self.other_caches.is_empty() => pick(rng, &self.other_caches),
                    (Some(id), 1..) => id,
                    _ => field32(rng, &[0, 1, u32::MAX]),
                },
                _ if rng.below(10) == 0 => 1,
                _ => 0,
            },
            size: match source {
                RKMEM_POOL_SRC_RKMALLOC => pick(
                    rng,
                    &[
                        1,
                        8,
                        100,
                        4096,
                        4097,
                        4 << 20,
                        (4 << 20) + 1,
                        0,
                        u64::MAX,
                        64,
                    ],
                ),
                _ if rng.below(10) == 0 => 8,
                _ => 0,
            },
            order: match source {
                RKMEM_POOL_SRC_PAGES => field32(rng, &[0, 1, 3, 10, 11]),
                _ if rng.below(10) == 0 => 1,
                _ => 0,
            },
            min_nr: match rng.below(10) {
                0 => pick(
                    rng,
                    &[0, RKMEM_POOL_MAX_MIN, RKMEM_POOL_MAX_MIN + 1, u32::MAX],
                ),
                _ => 1 + rng.below(8) as u32,
            },
            flags: match rng.below(10) {
                0 => field32(rng, &[2, 3]),
                1 | 2 => RKMEM_POOL_FAIL_SOURCE,
                _ => 0,
            },
            id: if rng.below(10) == 0 { 7 } else { 0 },
        };
        let basics = p.flags & !RKMEM_POOL_FAIL_SOURCE == 0
            && p.id == 0
            && (1..=RKMEM_POOL_MAX_MIN).contains(&p.min_nr);
        let cache_mine = self.caches.iter().any(|c| c.0 == p.cache_id);
        let want: &[Answer] = if !basics {
            &[libc::EINVAL]
        } else {
            match p.source {
                RKMEM_POOL_SRC_CACHE if p.size == 0 && p.order == 0 => {
                    if cache_mine {
                        &[OK, libc::ENOMEM, libc::ENOSPC]
                    } else {
                        &[libc::ENOENT]
                    }
                }
                RKMEM_POOL_SRC_RKMALLOC if p.cache_id == 0 && p.order == 0 => {
                    if (1..=4 << 20).contains(&p.size) {
                        &[OK, libc::ENOMEM, libc::ENOSPC]
                    } else {
                        &[libc::EINVAL]
                    }
                }
                RKMEM_POOL_SRC_PAGES
                    if p.cache_id == 0 && p.size == 0 && p.order <= RKMEM_MAX_ORDER =>
                {
                    &[OK, libc::ENOMEM, libc::ENOSPC]
                }
                _ => &[libc::EINVAL],
            }
        };
        let what = format!(
            "source {} cache {} size {:#x} order {} min {} flags {:#x} id {}",
            p.source, p.cache_id, p.size, p.order, p.min_nr, p.flags, p.id
        );
        let ptr = self.ptr(size_of::<RkmemPoolCreate>());
        let got = self.send(true, RKMEM_IOC_POOL_CREATE, &mut p, ptr);
        if self.expect("POOL_CREATE", RKMEM_IOC_POOL_CREATE, ptr, want, got, &what) {
            if p.id == 0 {
                self.r.fail(format!("POOL_CREATE {what}: pool id 0"));
            }
            self.pools.push(Pool {
                id: p.id,
                cache: (p.source == RKMEM_POOL_SRC_CACHE).then_some(p.cache_id),
                min: p.min_nr,
                out: 0,
                known: true,
            });
        }
    }

    fn pool_alloc(&mut self) {
        self.room();
        let rng = &mut self.rng;
        let own = !self.pools.is_empty() && rng.below(5) != 0;
        let pool_id = if own {
            self.pools[rng.below(self.pools.len() as u64) as usize].id
        } else if !self.other_pools.is_empty() && rng.below(2) == 0 {
            pick(rng, &self.other_pools)
        } else {
            field32(rng, &[0, 1, 100, u32::MAX])
        };
        let mine = self.pools.iter().find(|p| p.id == pool_id);
        // Sleeping is allowed only where an element is guaranteed (else it would wait forever).
        let may_sleep_safe = mine.is_some_and(|p| p.known && p.out < p.min);
        let mut a = RkmemPoolAlloc {
            pool_id,
            flags: match rng.below(10) {
                0 => field32(rng, &[2, 3]),
                1..=3 if may_sleep_safe || mine.is_none() => RKMEM_POOL_MAY_SLEEP,
                _ => 0,
            },
            handle: if rng.below(12) == 0 { 1 } else { 0 },
            bytes: if rng.below(12) == 0 { 4096 } else { 0 },
        };
        if a.flags & RKMEM_POOL_MAY_SLEEP != 0 && mine.is_some() && !may_sleep_safe {
            a.flags &= !RKMEM_POOL_MAY_SLEEP;
        }
        let mine = mine.is_some();
        let want: &[Answer] =
            if a.flags & !RKMEM_POOL_MAY_SLEEP != 0 || a.handle != 0 || a.bytes != 0 {
                &[libc::EINVAL]
            } else if !mine {
                &[libc::ENOENT]
            } else if a.flags & RKMEM_POOL_MAY_SLEEP != 0 {
                &[OK, libc::EDQUOT]
            } else {
                &[OK, libc::ENOMEM, libc::EDQUOT]
            };
        let what = format!(
            "pool {pool_id} flags {:#x} handle {} bytes {}",
            a.flags, a.handle, a.bytes
        );
        let ptr = self.ptr(size_of::<RkmemPoolAlloc>());
        let got = self.send(true, RKMEM_IOC_POOL_ALLOC, &mut a, ptr);
        if self.expect("POOL_ALLOC", RKMEM_IOC_POOL_ALLOC, ptr, want, got, &what) {
            if let Some(p) = self.pools.iter_mut().find(|p| p.id == pool_id) {
                p.out += 1;
            }
            self.adopt(a.handle, a.bytes, Some(pool_id), None);
        }
    }

    fn pool_resize(&mut self) {
        let rng = &mut self.rng;
        let own = !self.pools.is_empty() && rng.below(4) != 0;
        let pool_id = if own {
            self.pools[rng.below(self.pools.len() as u64) as usize].id
        } else if !self.other_pools.is_empty() && rng.below(2) == 0 {
            pick(rng, &self.other_pools)
        } else {
            field32(rng, &[0, 1, u32::MAX])
        };
        let mut r = RkmemPoolId {
            pool_id,
            min_nr: match rng.below(10) {
                0 => pick(
                    rng,
                    &[0, RKMEM_POOL_MAX_MIN + 1, u32::MAX, RKMEM_POOL_MAX_MIN],
                ),
                _ => 1 + rng.below(10) as u32,
            },
        };
        let mine = self.pools.iter().any(|p| p.id == pool_id);
        let want: &[Answer] = if r.min_nr == 0 || r.min_nr > RKMEM_POOL_MAX_MIN {
            &[libc::EINVAL]
        } else if !mine {
            &[libc::ENOENT]
        } else {
            &[OK, libc::ENOMEM]
        };
        let what = format!("pool {pool_id} min {}", r.min_nr);
        let ptr = self.ptr(size_of::<RkmemPoolId>());
        let got = self.send(true, RKMEM_IOC_POOL_RESIZE, &mut r, ptr);
        self.expect("POOL_RESIZE", RKMEM_IOC_POOL_RESIZE, ptr, want, got, &what);
        if let Some(p) = self.pools.iter_mut().find(|p| p.id == pool_id) {
            // Read-only pages still carry the request (it is _IOW).
            if got == OK {
                p.min = r.min_nr;
            } else if got == libc::ENOMEM {
                p.known = false;
            }
        }
    }

    fn pool_destroy(&mut self) {
        let rng = &mut self.rng;
        let own = !self.pools.is_empty() && rng.below(4) != 0;
        let pool_id = if own {
            self.pools[rng.below(self.pools.len() as u64) as usize].id
        } else if !self.other_pools.is_empty() && rng.below(2) == 0 {
            pick(rng, &self.other_pools)
        } else {
            field32(rng, &[0, 1, u32::MAX])
        };
        if own && rng.below(2) == 0 {
            // Give its elements back first, so that the destroy succeeds.
            while let Some(i) = self.live.iter().position(|l| l.pool == Some(pool_id)) {
                self.free_live(i);
            }
        }
        let rng = &mut self.rng;
        let mut r = RkmemPoolId {
            pool_id,
            min_nr: if rng.below(10) == 0 { 1 } else { 0 },
        };
        let p = self.pools.iter().find(|p| p.id == pool_id);
        let want: &[Answer] = if r.min_nr != 0 {
            &[libc::EINVAL]
        } else {
            match p {
                None => &[libc::ENOENT],
                Some(p) if p.out > 0 => &[libc::EBUSY],
                Some(_) => &[OK],
            }
        };
        let what = format!("pool {pool_id} min {}", r.min_nr);
        let ptr = self.ptr(size_of::<RkmemPoolId>());
        let got = self.send(true, RKMEM_IOC_POOL_DESTROY, &mut r, ptr);
        self.expect(
            "POOL_DESTROY",
            RKMEM_IOC_POOL_DESTROY,
            ptr,
            want,
            got,
            &what,
        );
        if got == OK {
            self.pools.retain(|p| p.id != pool_id);
        }
    }

    fn selftest(&mut self) {
        let mut s = RkmemSelftest::default();
        let ptr = self.ptr(size_of::<RkmemSelftest>());
        // Runs alongside everything else: its checks judge their own results, its page checks
        // run on a private arena (the `bad_free_*` counters do not move; a call with a bad
        // pointer runs nothing).
        let got = self.send(true, RKMEM_IOC_SELFTEST, &mut s, ptr);
        // It may run out of memory part way (it answers with what ran).
        let want: &[Answer] = &[OK, libc::ENOMEM];
        let eff = match ptr {
            Ptr::Bad(_) => {
                self.r.tally.add("SELFTEST", got);
                if got != libc::EFAULT {
                    self.r
                        .fail(format!("SELFTEST ptr {ptr:?}: got {}", errno_name(got)));
                }
                false
            }
            _ => self.expect("SELFTEST", RKMEM_IOC_SELFTEST, ptr, want, got, ""),
        };
        if eff {
            if s.failed != 0 {
                self.r.fail(format!(
                    "SELFTEST: {} in-kernel checks failed (see dmesg)",
                    s.failed
                ));
            }
            if s.arena_bad_frees == 0 {
                self.r
                    .fail("SELFTEST answered that it made no refused bad free".to_string());
            }
        }
    }

    fn bench(&mut self) {
        let rng = &mut self.rng;
        let kind = field32(rng, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 12]);
        let mut b = RkmemBench {
            kind,
            flags: if rng.below(6) == 0 {
                field32(rng, &[3, 7, 15, 16])
            } else {
                rng.below(3) as u32
                    | pick(rng, &[0, RKMEM_BENCH_HOST_FIRST])
                    | pick(rng, &[0, RKMEM_BENCH_KEEP])
            },
            size: match kind {
                1 | 2 | 3 | 5 | 6 | 7 | 8 | 10 | 11 => field32(rng, &[8, 64, 100, 4096, 0, 4097]),
                9 => field32(rng, &[8, 5000, 65536, 0, 65537]),
                _ => 0,
            },
            align: match kind {
                1 | 2 | 6 | 7 | 8 | 10 | 11 => field32(rng, &[1, 8, 64, 3, 0]),
                _ => 0,
            },
            seed: if rng.below(3) == 0 { rng.next_u64() } else { 0 },
            order: if kind == 4 || kind == 10 {
                field32(rng, &[0, 3, 11])
            } else {
                0
            },
            iters: if kind == 6 {
                0
            } else if rng.below(8) == 0 {
                pick(rng, &[0, RKMEM_BENCH_MAX_ITERS + 1, u32::MAX])
            } else {
                1 + rng.below(40) as u32
            },
            reps: if kind == 6 {
                0
            } else if rng.below(8) == 0 {
                pick(rng, &[0, RKMEM_BENCH_MAX_REPS + 1])
            } else {
                1 + rng.below(2) as u32
            },
            reserved: if rng.below(10) == 0 { 1 } else { 0 },
            ..Default::default()
        };
        // Clearly invalid requests must be EINVAL; valid-looking ones may run (or be EINVAL
        // for a field combination this prediction does not model).
        let clearly_bad = b.reserved != 0
            || !(1..=11).contains(&b.kind)
            || b.flags & 3 == 3
            || b.flags & !(3 | RKMEM_BENCH_HOST_FIRST | RKMEM_BENCH_KEEP) != 0
            || b.iters > RKMEM_BENCH_MAX_ITERS
            || b.reps > RKMEM_BENCH_MAX_REPS;
        let want: &[Answer] = if clearly_bad {
            &[libc::EINVAL]
        } else {
            // ENODEV: remote frees with one online CPU.
            &[OK, libc::EINVAL, libc::ENOMEM, libc::ENODEV]
        };
        let what = format!(
            "kind {} flags {} size {} align {} order {} iters {} reps {} seed {} reserved {}",
            b.kind, b.flags, b.size, b.align, b.order, b.iters, b.reps, b.seed, b.reserved
        );
        // Never a bad pointer with a runnable benchmark? It must still be EFAULT: the
        // argument is read first.
        let ptr = self.ptr(size_of::<RkmemBench>());
        let got = self.send(true, RKMEM_IOC_BENCH, &mut b, ptr);
        self.expect("BENCH", RKMEM_IOC_BENCH, ptr, want, got, &what);
    }

    /// A random command number that is none of rkmem's commands.
    fn random_cmd(&mut self) {
        let rng = &mut self.rng;
        let (cmd, name) = loop {
            let dir = rng.below(4) as u32;
            let size = match rng.below(4) {
                0 => 0,
                1 => pick(rng, &[8u32, 16, 24, 32, 40, 64, 104]),
                2 => (1 << 14) - 1,
                _ => rng.below(1 << 14) as u32,
            };
            let (ty, name) = match rng.below(3) {
                0 | 1 => (RKMEM_IOC_MAGIC, "random rkmem cmd"),
                _ => (rng.below(256) as u32, "random foreign cmd"),
            };
            let nr = match rng.below(3) {
                // Real numbers with another direction or size.
                0 => pick(rng, &COMMANDS).0 & 0xff,
                _ => rng.below(256) as u32,
            };
            let cmd = (dir << 30) | (size << 16) | (ty << 8) | nr;
            if VFS_TYPES.contains(&ty) || COMMANDS.iter().any(|c| c.0 == cmd) {
                continue;
            }
            break (cmd, name);
        };
        // The argument: a buffer big enough for any size, or a bad address.
        let addr = if rng.below(2) == 0 {
            self.scratch.map.at(0)
        } else {
            pick(rng, &BAD_ADDRS)
        };
        self.r.calls += 1;
        self.r.driver_calls += 1;
        let got = match self.main.raw_ioctl(cmd, addr as usize) {
            Ok(_) => OK,
            Err(e) => {
                self.r.driver_errors += 1;
                e as i32
            }
        };
        self.r.tally.add(name, got);
        if got != libc::ENOTTY {
            self.r.fail(format!(
                "{name} {cmd:#010x} arg {addr:#x}: got {}, want ENOTTY",
                errno_name(got)
            ));
        }
    }

    /// Calls on the file the churn thread may be closing right now.
    fn hot_fd(&mut self) {
        let fd = self.shared.hot_fd.load(Ordering::Acquire);
        if fd < 0 {
            return;
        }
        self.r.maybe_calls += 1;
        self.shared.maybe_calls.fetch_add(1, Ordering::Relaxed);
        // The number may name another file by the time the call runs (it was closed and
        // reused): only commands that are harmless on any file of this program.
        let r = if self.rng.below(2) == 0 {
            let mut v = RkmemVersion::default();
            // SAFETY: `v` is a valid, writable RkmemVersion; whatever file `fd` names now, the
            // kernel writes at most the 16 bytes of this command's size there.
            unsafe { libc::ioctl(fd, RKMEM_IOC_VERSION as _, &mut v) }
        } else {
            let mut t = RkmemTrim {
                flags: RKMEM_TRIM_PCP,
                ..Default::default()
            };
            // SAFETY: as above, for a 24-byte `RkmemTrim`.
            unsafe { libc::ioctl(fd, RKMEM_IOC_TRIM as _, &mut t) }
        };
        let got = if r == 0 { OK } else { Errno::last_raw() };
        self.r.tally.add("shared fd (racing close)", got);
        if ![OK, libc::EBADF, libc::ENOTTY].contains(&got) {
            self.r
                .fail(format!("call on a file being closed: {}", errno_name(got)));
        }
    }

    /// Closes the foreign file and opens a new one, with a few allocations, a cache and a pool.
    fn renew_other(&mut self) {
        match Device::open() {
            Ok(d) => self.other = d,
            Err(e) => return self.r.fail(format!("open {}: {e}", dev::DEV_PATH)),
        }
        self.other_handles.clear();
        self.other_caches.clear();
        self.other_pools.clear();
        for order in [0, 2] {
            if let Ok(a) = self.other.pages_alloc(dev::PagesReq::Order(order)) {
                let key = pattern::key(a.handle, !self.seed);
                let mut buf = vec![0u8; 64];
                pattern::fill(key, 0, &mut buf);
                let _ = self.other.write(a.handle, 0, &buf);
                self.other_handles.push(a.handle);
            }
        }
        let name = format!("fzo{}-{}", self.idx, self.rng.below(1 << 30));
        if let Ok(spec) = dev::CacheSpec::new(&name, 40, 8) {
            if let Ok(c) = self.other.cache_create(&spec) {
                self.other_caches.push(c.id);
                let mut p = RkmemPoolCreate {
                    source: RKMEM_POOL_SRC_CACHE,
                    cache_id: c.id,
                    min_nr: 2,
                    ..Default::default()
                };
                if self
                    .other
                    .raw_ioctl(RKMEM_IOC_POOL_CREATE, std::ptr::from_mut(&mut p) as usize)
                    .is_ok()
                {
                    self.other_pools.push(p.id);
                }
            }
        }
        self.r.calls += 6;
    }

    /// The other file's allocations must be untouched by everything this file did.
    fn check_other(&mut self) {
        for &h in &self.other_handles.clone() {
            let mut buf = vec![0u8; 64];
            let key = pattern::key(h, !self.seed);
            self.r.calls += 1;
            match self.other.read(h, 0, &mut buf) {
                Ok(()) => {
                    if pattern::first_mismatch(key, 0, &buf).is_some() {
                        self.r
                            .fail(format!("the other file's allocation {h:#x} changed"));
                    }
                }
                Err(e) => self
                    .r
                    .fail(format!("the other file's allocation {h:#x}: {e}")),
            }
        }
    }

    fn step(&mut self) {
        let w = [
            3,  // version
            12, // pages alloc
            10, // free
            12, // read/write
            3,  // arena map
            2,  // trim
            5,  // cache create
            3,  // cache destroy
            10, // obj alloc
            4,  // pool create
            6,  // pool alloc
            2,  // pool resize
            2,  // pool destroy
            10, // random command numbers
            3,  // shared fd
            1,  // renew the other file
            1,  // bench
            2,  // compact
            1,  // stress engine
            2,  // routes
            3,  // cache slabs
        ];
        let which = self.rng.weighted(&w);
        if which == 16 && self.rng.below(8) == 0 {
            return self.selftest();
        }
        match which {
            0 => self.version(),
            1 => self.pages_alloc(),
            2 => self.free(),
            3 => self.io(),
            4 => self.arena_map(),
            5 => self.trim(),
            6 => self.cache_create(),
            7 => self.cache_destroy(),
            8 => self.obj_alloc(),
            9 => self.pool_create(),
            10 => self.pool_alloc(),
            11 => self.pool_resize(),
            12 => self.pool_destroy(),
            13 => self.random_cmd(),
            14 => self.hot_fd(),
            15 => {
                self.check_other();
                self.renew_other();
            }
            16 => self.bench(),
            17 => self.compact(),
            18 => self.stress(),
            19 => self.routes(),
            _ => self.cache_slabs(),
        }
    }

    /// `RKMEM_IOC_ROUTES` with random sizes (rarely the largest, 8 MiB) and reserved fields:
    /// bad ones are `EINVAL`; a good one answers vmalloc's pages and reserved fields zero, and
    /// holds nothing afterwards (the final counter checks).
    fn routes(&mut self) {
        let rng = &mut self.rng;
        let size = match rng.below(20) {
            0 => pick(rng, &[0, RKMEM_ROUTES_MAX + 1, u64::MAX, 1 << 63]),
            1 => pick(rng, &[1 << 20, RKMEM_ROUTES_MAX, (4 << 20) + 1]),
            _ => pick(rng, &[1, 8, 100, 4095, 4096, 4097, 5000, 20000, 100_000]),
        };
        let mut r = RkmemRoutes {
            size,
            reserved: if rng.below(10) == 0 {
                pick(rng, &[1, 1 << 63])
            } else {
                0
            },
            page_size: rng.next_u64() as u32,
            ..Default::default()
        };
        r.kmalloc.bytes = rng.next_u64();
        let valid = r.reserved == 0 && (1..=RKMEM_ROUTES_MAX).contains(&size);
        let want: &[Answer] = if valid {
            &[OK, libc::ENOMEM]
        } else {
            &[libc::EINVAL]
        };
        let what = format!("size {size} reserved {:#x}", r.reserved);
        let ptr = self.ptr(size_of::<RkmemRoutes>());
        let got = self.send(true, RKMEM_IOC_ROUTES, &mut r, ptr);
        if self.expect("ROUTES", RKMEM_IOC_ROUTES, ptr, want, got, &what) {
            let all = [
                r.kmalloc, r.vmalloc, r.kvmalloc, r.rkmalloc, r.exact, r.order,
            ];
            if r.vmalloc.bytes != size.div_ceil(PAGE_SIZE) * PAGE_SIZE
                || r.size != size
                || all.iter().any(|x| x.reserved != 0)
            {
                self.r.fail(format!("ROUTES ({what}) answered {r:?}"));
            }
        }
    }

    /// `RKMEM_IOC_STRESS` with random fields: short runs (a few hundred steps or
    /// milliseconds) must succeed with no failure in their answer, bad fields be `EINVAL`.
    fn stress(&mut self) {
        let rng = &mut self.rng;
        let mut s = RkmemStress {
            seed: rng.next_u64(),
            ops: if rng.below(8) == 0 {
                pick(rng, &[0, RKMEM_STRESS_MAX_OPS + 1, u64::MAX])
            } else {
                1 + rng.below(500)
            },
            ms: if rng.below(8) == 0 {
                pick(rng, &[0, RKMEM_STRESS_MAX_MS + 1, u32::MAX])
            } else {
                1 + rng.below(20) as u32
            },
            flags: if rng.below(10) == 0 {
                field32(rng, &[2, 4, 0x80, u32::MAX])
            } else {
                0
            },
            pad: if rng.below(12) == 0 { 1 } else { 0 },
            reserved: if rng.below(12) == 0 { 1 } else { 0 },
            failures: rng.next_u64(),
            ..Default::default()
        };
        let bad = s.ops == 0
            || s.ops > RKMEM_STRESS_MAX_OPS
            || s.ms == 0
            || s.ms > RKMEM_STRESS_MAX_MS
            || s.flags & !RKMEM_STRESS_CORRUPT_ONE != 0
            || s.pad != 0
            || s.reserved != 0;
        let want: &[Answer] = if bad {
            &[libc::EINVAL]
        } else {
            &[OK, libc::ENOMEM]
        };
        let what = format!(
            "ops {} ms {} flags {:#x} pad {} reserved {}",
            s.ops, s.ms, s.flags, s.pad, s.reserved
        );
        let ptr = self.ptr(size_of::<RkmemStress>());
        let got = self.send(true, RKMEM_IOC_STRESS, &mut s, ptr);
        // With RKMEM_STRESS_CORRUPT_ONE each worker that allocated reports its own change.
        let most = if s.flags & RKMEM_STRESS_CORRUPT_ONE != 0 {
            u64::from(s.cpus)
        } else {
            0
        };
        if self.expect("STRESS", RKMEM_IOC_STRESS, ptr, want, got, &what) && s.failures > most {
            self.r.fail(format!(
                "STRESS ({what}) answered {} failures on {} CPUs",
                s.failures, s.cpus
            ));
        }
    }

    /// `RKMEM_IOC_COMPACT` with random flags: moves this file's objects (and, with the arena
    /// flag, every open file's allocations) behind their handles, so every later read of a
    /// handle (the model's content checks) also checks the moves.
    fn compact(&mut self) {
        let rng = &mut self.rng;
        let mut c = RkmemCompact {
            flags: if rng.below(5) == 0 {
                field32(rng, &[0, 2, 3, 4, 0xff])
            } else {
                RKMEM_COMPACT_SLABS
            },
            reserved: if rng.below(10) == 0 { 1 } else { 0 },
            pad: if rng.below(10) == 0 { 1 } else { 0 },
            objects_moved: rng.next_u64(),
            ..Default::default()
        };
        let known = RKMEM_COMPACT_SLABS | RKMEM_COMPACT_ARENA;
        let bad = c.reserved != 0 || c.pad != 0 || c.flags == 0 || c.flags & !known != 0;
        let want: &[Answer] = if bad {
            &[libc::EINVAL]
        } else {
            &[OK, libc::ENOMEM]
        };
        let what = format!("flags {:#x} reserved {} pad {}", c.flags, c.reserved, c.pad);
        let ptr = self.ptr(size_of::<RkmemCompact>());
        let got = self.send(true, RKMEM_IOC_COMPACT, &mut c, ptr);
        self.expect("COMPACT", RKMEM_IOC_COMPACT, ptr, want, got, &what);
    }

    /// Frees everything through the ioctls (not by closing), so that the free paths of pools and
    /// caches run too.
    fn finish(&mut self) {
        while !self.live.is_empty() {
            let i = self.live.len() - 1;
            self.free_live(i);
        }
        for p in std::mem::take(&mut self.pools) {
            if let Err(e) = self.main.raw_ioctl(
                RKMEM_IOC_POOL_DESTROY,
                std::ptr::from_ref(&RkmemPoolId {
                    pool_id: p.id,
                    min_nr: 0,
                }) as usize,
            ) {
                self.r.fail(format!("final POOL_DESTROY {}: {e}", p.id));
            }
        }
        for (id, _) in std::mem::take(&mut self.caches) {
            if let Err(e) = self.main.cache_destroy(id) {
                self.r.fail(format!("final CACHE_DESTROY {id}: {e}"));
            }
        }
        self.check_other();
    }
}

fn worker(idx: usize, opts: &Options, quota: u64, shared: &Shared) -> Report {
    let mut r = Report::default();
    let (main, other) = match (Device::open(), Device::open()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            r.fail(format!("open {}: {e}", dev::DEV_PATH));
            return r;
        }
    };
    let mut w = Worker {
        idx,
        rng: Rng::new(pattern::mix64(
            opts.seed ^ (idx as u64 + 1).wrapping_mul(0x1234_5678_9abc),
        )),
        seed: opts.seed,
        main,
        other,
        other_handles: Vec::new(),
        other_caches: Vec::new(),
        other_pools: Vec::new(),
        live: Vec::new(),
        freed: Vec::new(),
        caches: Vec::new(),
        cache_serial: 0,
        pools: Vec::new(),
        args: ArgPages::new(),
        scratch: Scratch::new(),
        shared,
        verbose: opts.verbose,
        nr_slots: procfs::stat("arena_max_mb").map_or(16, |mb| (mb / 4) as u32),
        r,
    };
    w.renew_other();
    let start_calls = w.r.calls;
    while w.r.calls - start_calls < quota {
        w.step();
    }
    // Half the threads clean up by ioctl, the others leave it to the release of their files.
    if idx.is_multiple_of(2) {
        w.finish();
    } else {
        w.check_other();
    }
    let r = std::mem::take(&mut w.r);
    // Closing the files frees what they hold.
    drop(w);
    r
}

/// Opens and closes files while the workers run; publishes one of them as the "hot" file that
/// workers call into while this thread closes it.
fn churn(shared: &Shared, seed: u64) -> (u64, Vec<String>) {
    let mut rng = Rng::new(seed);
    let mut opened = 0;
    let mut errors = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        let d = match Device::open() {
            Ok(d) => d,
            Err(e) => {
                errors.push(format!("churn: open: {e}"));
                break;
            }
        };
        opened += 1;
        // Something for the release to free.
        for _ in 0..rng.below(4) {
            let _ = d.pages_alloc(dev::PagesReq::Order(rng.below(4) as u32));
            let _ = d.rkmalloc(1 + rng.below(3000));
        }
        if rng.below(3) == 0 {
            let name = format!("fzc-{}", rng.below(1 << 40));
            if let Ok(spec) = dev::CacheSpec::new(&name, 1 + rng.below(200) as u32, 1) {
                if let Ok(c) = d.cache_create(&spec) {
                    let _ = d.obj_alloc(c.id);
                    let mut p = RkmemPoolCreate {
                        source: RKMEM_POOL_SRC_CACHE,
                        cache_id: c.id,
                        min_nr: 3,
                        ..Default::default()
                    };
                    let _ = d.raw_ioctl(RKMEM_IOC_POOL_CREATE, std::ptr::from_mut(&mut p) as usize);
                }
            }
        }
        // A second descriptor of the same file, closed last: the release happens on that close.
        let fd: OwnedFd = match rng.below(2) {
            0 => {
                // SAFETY: `dup` of a descriptor this thread owns; the result is owned below.
                let dupfd = unsafe { libc::dup(d.as_raw_fd()) };
                drop(d);
                if dupfd < 0 {
                    continue;
                }
                // SAFETY: `dupfd` is a fresh descriptor nothing else owns.
                unsafe { OwnedFd::from_raw_fd(dupfd) }
            }
            _ => OwnedFd::from(d),
        };
        shared.hot_fd.store(fd.as_raw_fd(), Ordering::Release);
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        shared.hot_fd.store(-1, Ordering::Release);
        // Close while a worker may be inside an ioctl on it.
        drop(fd);
    }
    (opened, errors)
}

/// Counters of /proc/rkmem at one moment, for the before/after comparison.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub open_files: u64,
    pub ioctls: u64,
    pub ioctl_errors: u64,
    pub bad_frees: u64,
    pub slab_rows: Vec<String>,
    pub pool_rows: usize,
    /// buddyinfo after a trim, and whether that is the load-time value.
    pub buddy: procfs::FreeCounts,
    pub buddy_is_load_time: bool,
}

/// Lines of /proc/rkmem/mempools that describe a pool.
pub fn pool_rows() -> Result<usize, String> {
    Ok(procfs::read("/proc/rkmem/mempools")?
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .count())
}

impl Snapshot {
    /// Trims everything (one more open/close of the device) and reads the counters. Work the
    /// module does on its own after a run (proactive compaction's worker moving a block, which
    /// holds it in flight; the trim's try-locks skipping what such work holds) can keep pages
    /// for a moment: the trim is repeated, for at most a second, until buddyinfo is the
    /// load-time one.
    pub fn take() -> Result<Snapshot, String> {
        let initial = procfs::stat("arena_initial_mb")?;
        let d = Device::open().map_err(|e| format!("{}: {e}", dev::DEV_PATH))?;
        let mut tries = 0;
        let buddy = loop {
            d.trim(RKMEM_TRIM_SLABS | RKMEM_TRIM_PCP | RKMEM_TRIM_ARENA)
                .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
            let buddy = procfs::buddyinfo()?;
            tries += 1;
            if buddy == procfs::load_time_buddyinfo(initial) || tries == 20 {
                break buddy;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        drop(d);
        Ok(Snapshot {
            open_files: procfs::stat("open_files")?,
            ioctls: procfs::stat("ioctls")?,
            ioctl_errors: procfs::stat("ioctl_errors")?,
            bad_frees: procfs::bad_frees()?,
            slab_rows: procfs::slabinfo()?.into_iter().map(|r| r.name).collect(),
            pool_rows: pool_rows()?,
            buddy,
            buddy_is_load_time: buddy == procfs::load_time_buddyinfo(initial),
        })
    }

    /// The checks that the module is back where `self` was: named results.
    pub fn compare(&self, now: &Snapshot) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::new();
        let eq = |what: &str, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(format!("{what} is {b}, was {a} before the run"))
            }
        };
        out.push((
            "open_files back to its starting value".into(),
            eq(
                "open_files",
                self.open_files.to_string(),
                now.open_files.to_string(),
            ),
        ));
        out.push((
            "no cache of the run left in slabinfo".into(),
            eq(
                "slabinfo rows",
                self.slab_rows.join(","),
                now.slab_rows.join(","),
            ),
        ));
        out.push((
            "no mempool of the run left".into(),
            eq(
                "mempools rows",
                self.pool_rows.to_string(),
                now.pool_rows.to_string(),
            ),
        ));
        out.push((
            "bad_free_* counters unchanged (no user path reaches them; SELFTEST uses a private arena)".into(),
            eq(
                "bad_free_* sum",
                self.bad_frees.to_string(),
                now.bad_frees.to_string(),
            ),
        ));
        let what = if self.buddy_is_load_time {
            "buddyinfo back to the load-time value after trim"
        } else {
            "buddyinfo back to its starting value after trim"
        };
        out.push((
            what.into(),
            eq(
                "buddyinfo",
                procfs::format_buddyinfo(&self.buddy).trim_end().to_string(),
                procfs::format_buddyinfo(&now.buddy).trim_end().to_string(),
            ),
        ));
        out
    }
}

/// The module answers correctly after the run: version, a page and an rkmalloc round trip,
/// freed handles are gone.
pub fn sanity() -> Result<(), String> {
    let d = Device::open().map_err(|e| format!("{}: {e}", dev::DEV_PATH))?;
    let v = d.version().map_err(|e| format!("VERSION: {e}"))?;
    dev::check_abi(&v)?;
    if v.features != RKMEM_FEATURES {
        return Err(format!(
            "features {:#x}, want {:#x}",
            v.features, RKMEM_FEATURES
        ));
    }
    for req in [
        dev::PagesReq::Order(0),
        dev::PagesReq::Order(3),
        dev::PagesReq::Exact(5),
    ] {
        let a = d
            .pages_alloc(req)
            .map_err(|e| format!("PAGES_ALLOC {req}: {e}"))?;
        round_trip(&d, a.handle, a.bytes)?;
    }
    let a = d.rkmalloc(100).map_err(|e| format!("rkmalloc 100: {e}"))?;
    round_trip(&d, a.handle, a.bytes)?;
    Ok(())
}

fn round_trip(d: &Device, handle: u64, bytes: u64) -> Result<(), String> {
    let key = pattern::key(handle, 0x5a5a);
    let mut buf = vec![0u8; bytes as usize];
    pattern::fill(key, 0, &mut buf);
    d.write(handle, 0, &buf)
        .map_err(|e| format!("WRITE {handle:#x}: {e}"))?;
    let mut back = vec![0u8; bytes as usize];
    d.read(handle, 0, &mut back)
        .map_err(|e| format!("READ {handle:#x}: {e}"))?;
    if let Some((at, w, g)) = pattern::first_mismatch(key, 0, &back) {
        return Err(format!(
            "round trip of {handle:#x}: byte {at} {g:#04x}, want {w:#04x}"
        ));
    }
    d.free(handle)
        .map_err(|e| format!("FREE {handle:#x}: {e}"))?;
    match d.free(handle) {
        Err(Errno::ENOENT) => Ok(()),
        r => Err(format!("second FREE of {handle:#x}: {r:?}, want ENOENT")),
    }
}

/// Prints `ok`/`not ok` lines for `checks` and returns (passed, failed).
pub fn report_checks(checks: &[(String, Result<(), String>)]) -> (u64, u64) {
    let (mut p, mut f) = (0, 0);
    for (name, r) in checks {
        match r {
            Ok(()) => {
                p += 1;
                println!("ok - {name}");
            }
            Err(why) => {
                f += 1;
                println!("not ok - {name}: {why}");
            }
        }
    }
    (p, f)
}

/// Runs the fuzzer; prints `N passed, N failed`; `Err` if anything failed.
pub fn run(opts: &Options) -> Result<(), String> {
    if opts.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let before = Snapshot::take()?;
    println!(
        "fuzz: {} ioctl calls on {} threads (+1 opening and closing files), seed {:#x}",
        opts.ops, opts.threads, opts.seed
    );
    let shared = Shared {
        hot_fd: AtomicI32::new(-1),
        stop: AtomicBool::new(false),
        maybe_calls: AtomicU64::new(0),
    };
    let start = Instant::now();
    let (reports, churned) = std::thread::scope(|s| {
        let shared = &shared;
        let churner = s.spawn(move || churn(shared, pattern::mix64(opts.seed ^ 0xc4)));
        let handles: Vec<_> = (0..opts.threads)
            .map(|i| {
                let quota = opts.ops / opts.threads as u64
                    + u64::from((i as u64) < opts.ops % opts.threads as u64);
                s.spawn(move || worker(i, opts, quota, shared))
            })
            .collect();
        let reports: Vec<Report> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut r = Report::default();
                    r.fail("worker thread panicked".into());
                    r
                })
            })
            .collect();
        shared.stop.store(true, Ordering::Release);
        let churned = churner
            .join()
            .unwrap_or((0, vec!["churn thread panicked".into()]));
        (reports, churned)
    });
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    let mut total = Report::default();
    for r in &reports {
        total.calls += r.calls;
        total.driver_calls += r.driver_calls;
        total.driver_errors += r.driver_errors;
        total.maybe_calls += r.maybe_calls;
        total.verified_bytes += r.verified_bytes;
        total.failures += r.failures;
        total.tally.merge(&r.tally);
    }
    println!(
        "{} calls in {secs:.1} s ({:.0}/s), {} files opened and closed meanwhile, {} KiB of patterns verified",
        total.calls,
        total.calls as f64 / secs,
        churned.0,
        total.verified_bytes >> 10
    );
    println!("{:<26} {:>7}  answers", "command", "calls");
    for (name, m) in &total.tally.by_cmd {
        let n: u64 = m.values().sum();
        let mut s = String::new();
        for (a, c) in m {
            let _ = write!(s, "{}={c} ", errno_name(*a));
        }
        println!("{name:<26} {n:>7}  {}", s.trim_end());
    }
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    let mut msgs = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        for m in &r.messages {
            msgs.push(format!("thread {i}: {m}"));
        }
    }
    msgs.extend(churned.1.iter().cloned());
    checks.push((
        "every call answered as documented".into(),
        if total.failures == 0 && churned.1.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} wrong answers; first: {}",
                total.failures + churned.1.len() as u64,
                msgs.iter()
                    .take(KEEP_FAILURES)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        },
    ));
    checks.push((
        "the module answers correctly after the run".into(),
        sanity(),
    ));
    let after = Snapshot::take()?;
    checks.extend(before.compare(&after));
    // ioctls counted by the module: ours, plus some of the racing ones, plus the snapshots' and
    // the sanity check's (few): all of ours must be there.
    let d_ioctls = after.ioctls - before.ioctls;
    let d_errors = after.ioctl_errors - before.ioctl_errors;
    let maybe = shared.maybe_calls.load(Ordering::Relaxed);
    checks.push((
        "stats ioctls/ioctl_errors account for every call".into(),
        if d_ioctls >= total.driver_calls
            && d_errors >= total.driver_errors
            && d_errors <= d_ioctls
        {
            Ok(())
        } else {
            Err(format!(
                "ioctls +{d_ioctls}, ioctl_errors +{d_errors}; this run made {} calls ({} failed) and up to {maybe} racing ones",
                total.driver_calls, total.driver_errors
            ))
        },
    ));
    for m in msgs.iter().take(40) {
        println!("FAIL {m}");
    }
    let (p, f) = report_checks(&checks);
    println!("fuzz: {p} passed, {f} failed");
    if f != 0 {
        return Err(format!("fuzz: {f} checks failed"));
    }
    Ok(())
}
