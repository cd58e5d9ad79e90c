// SPDX-License-Identifier: GPL-2.0

//! `RKMEM_IOC_STRESS`: the in-kernel stress engine, as the kernel's own test modules stress an
//! allocator (`lib/test_meminit.c`, `mm/kasan/kasan_test.c`): no system call per operation,
//! so that on the native UML kernel a call makes millions of operations a second.
//!
//! A worker runs on every online CPU at once (a work item bound to the CPU,
//! `glue/stress.c`), each with its own random sequence from the call's seed
//! ([`crate::rkcore::stress::Engine`]: which step, which allocator, which size). It holds up to
//! [`SLOTS`] allocations: objects of the call's nine caches, rkmalloc allocations (size
//! classes, page blocks, exact pages), page blocks of orders 0..3, exact pages, elements of
//! the call's mempool. Each allocation is filled with its own pattern when it is made and
//! checked before it is freed; an eighth of them is handed over to the other workers through a
//! shared mailbox, so that frees on another CPU than the allocation's are part of the mix (the
//! per-CPU arrays' remote path). Workers stop at the call's step count or its time limit, free
//! what they hold, and add their counts to the call's totals; the caller frees what is left in
//! the mailbox. Nothing a user of the module holds is touched: the caches and the pool are the
//! call's, and compaction never moves what no file's handle names.

use crate::arena::{Arena, Pages};
use crate::classes::{self, Classes, RkAlloc};
use crate::ffi::{rkmem_bench_now_ns, rkmem_bench_resched, rkmem_stress_each_cpu};
use crate::mempool::{Elem, Mempool, Source};
use crate::rkcore::stress::{self as eng, Engine, Kind, Step, Totals, CACHES, SLOTS};
use crate::slab::{Cache, Obj};
use crate::uapi::{self, RkmemStress};
use core::fmt;
use kernel::ffi::{c_long, c_void};
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
    uaccess::UserSlice,
};

/// Owner of the call's caches and pool: no open file.
const NO_OWNER: u64 = u64::MAX;
/// Allocations waiting in the mailbox for another worker, at most.
const MAILBOX: usize = 256;
/// Steps between two looks at the clock (and chances for other tasks to run).
const CLOCK_EVERY: u64 = 64;
/// Element size and reserve of the call's mempool (over rkmalloc).
const POOL_SIZE: u64 = 256;
const POOL_MIN: usize = 16;

/// What a worker holds of one allocation.
enum Held {
    Obj(u8, Obj),
    Rk(RkAlloc),
    Pages(Pages),
    Pool(Elem),
}

/// One allocation in a slot or in the mailbox.
struct Item {
    held: Held,
    /// Its pattern's tag.
    tag: u64,
    /// Bytes filled with the pattern: the allocation's usable size.
    len: usize,
    /// The CPU whose worker made it.
    cpu: u32,
}

/// What every worker of a call shares.
struct Ctx<'a> {
    arena: &'static Arena,
    classes: &'a Classes,
    caches: KVec<Arc<Cache>>,
    pool: Pin<KBox<Mempool>>,
    mailbox: Pin<KBox<SpinLock<KVec<Item>>>>,
    totals: Pin<KBox<SpinLock<Totals>>>,
    seed: u64,
    steps: u64,
    deadline_ns: u64,
    corrupt_one: bool,
}

/// Nanoseconds of the monotonic clock.
fn now_ns() -> u64 {
    // SAFETY: `ktime_get_ns` only reads the clock.
    unsafe { rkmem_bench_now_ns() }
}

impl Ctx<'_> {
    /// The kernel virtual address of `h`'s first byte.
    fn addr(&self, h: &mut Held) -> usize {
        match h {
            Held::Obj(_, o) => o.addr(),
            Held::Rk(a) => a.addr(self.arena),
            Held::Pages(p) => self.arena.addr_of(p.first()),
            Held::Pool(e) => e.addr(),
        }
    }

    /// A new allocation of `kind`, not yet filled.
    fn alloc(&self, kind: Kind, cpu: u32) -> Result<Item> {
        let (held, len) = match kind {
            Kind::Obj(c) => {
                let cache = self.caches.get(usize::from(c)).ok_or(EINVAL)?;
                (Held::Obj(c, cache.alloc(true)?), cache.object_size())
            }
            Kind::Rkmalloc(size) => {
                let a = classes::rkmalloc(self.classes, self.arena, u64::from(size), true)?;
                let len = a.bytes();
                (Held::Rk(a), len)
            }
            Kind::Pages(order) => {
                let p = self.arena.alloc(u32::from(order), true)?;
                let len = p.bytes();
                (Held::Pages(p), len)
            }
            Kind::Exact(n) => {
                let p = self.arena.alloc_exact(usize::from(n), true)?;
                let len = p.bytes();
                (Held::Pages(p), len)
            }
            // Without sleeping: every worker holds elements, so a sleeping wait for a free
            // could wait for itself.
            Kind::Pool => (
                Held::Pool(self.pool.alloc(false)?),
                self.pool.element_bytes(),
            ),
        };
        Ok(Item {
            held,
            tag: 0,
            len,
            cpu,
        })
    }

    /// The bytes of `it`'s allocation.
    ///
    /// The slice is valid while `it` lives and is not freed: `it` owns the allocation (its
    /// typed handle is the only one), `len` is its usable size, and nothing moves it (the
    /// call's caches and pool are no file's, and compaction moves only what files' handles
    /// name).
    fn bytes<'i>(&self, it: &'i mut Item) -> &'i mut [u8] {
        let addr = self.addr(&mut it.held);
        // SAFETY: see above: `[addr, addr + len)` is the allocation's memory, owned by `it`
        // (borrowed mutably for the slice's lifetime), mapped (arena pages and slab objects
        // are in the kernel's direct map), and any byte pattern is a valid `u8`.
        unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, it.len) }
    }

    /// Gives `h` back to its allocator; `false` if the allocator refused it.
    fn free(&self, h: Held) -> bool {
        match h {
            Held::Obj(c, o) => self
                .caches
                .get(usize::from(c))
                .is_some_and(|cache| cache.free(o).is_ok()),
            Held::Rk(a) => a.free(self.classes, self.arena),
            Held::Pages(p) => self.arena.free(p).is_ok(),
            Held::Pool(e) => self.pool.free(e).is_ok(),
        }
    }
}

/// A worker's state: its sequence, its slots, its counts.
struct Worker<'c, 'a> {
    ctx: &'c Ctx<'a>,
    cpu: u32,
    eng: Engine,
    live: KVec<Option<Item>>,
    t: Totals,
    reported: bool,
    corrupted: bool,
}

impl<'c, 'a> Worker<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, cpu: u32) -> Result<Self> {
        let mut live = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for _ in 0..SLOTS {
            live.push(None, GFP_KERNEL)?;
        }
        Ok(Worker {
            ctx,
            cpu,
            eng: Engine::new(ctx.seed, cpu),
            live,
            t: Totals::default(),
            reported: false,
            corrupted: false,
        })
    }

    /// A failure: counted, and the worker's first one named in dmesg.
    fn fail(&mut self, what: fmt::Arguments<'_>) {
        self.t.failures += 1;
        if !self.reported {
            self.reported = true;
            pr_err!("stress: cpu {}: {}\n", self.cpu, what);
        }
    }

    /// Checks `it`'s pattern and frees it.
    fn release(&mut self, mut it: Item) {
        let (tag, len, from) = (it.tag, it.len, it.cpu);
        if let Some(off) = eng::check(self.ctx.bytes(&mut it), tag) {
            self.fail(fmt!(
                "pattern of a {len}-byte allocation (made on cpu {from}) changed at offset {off}"
            ));
        }
        self.t.bytes_verified += len as u64;
        if !self.ctx.free(it.held) {
            self.fail(fmt!("a free of a {len}-byte allocation was refused"));
        }
        self.t.frees += 1;
        self.t.ops += 1;
        // The caller's frees of what was left in the mailbox (`cpu` MAX) are not a worker's.
        if from != self.cpu && self.cpu != u32::MAX {
            self.t.remote_frees += 1;
        }
    }

    fn alloc_into(&mut self, slot: usize, kind: Kind) {
        self.t.ops += 1;
        let mut it = match self.ctx.alloc(kind, self.cpu) {
            Ok(it) => it,
            Err(e) if e == ENOMEM => {
                self.t.enomem += 1;
                return;
            }
            Err(e) => {
                self.fail(fmt!("allocation of {kind:?} failed: {e:?}"));
                return;
            }
        };
        it.tag = self.eng.next_tag();
        let tag = it.tag;
        let b = self.ctx.bytes(&mut it);
        eng::fill(b, tag);
        if self.ctx.corrupt_one && !self.corrupted {
            self.corrupted = true;
            if let Some(x) = b.get_mut(b.len() / 2) {
                *x ^= 0x40;
            }
        }
        self.t.allocs[kind.index()] += 1;
        match self.live.get_mut(slot) {
            Some(cell) => *cell = Some(it),
            None => self.release(it),
        }
    }

    fn run(&mut self) {
        let ctx = self.ctx;
        for n in 0..ctx.steps {
            if n % CLOCK_EVERY == 0 {
                if now_ns() >= ctx.deadline_ns {
                    break;
                }
                // SAFETY: process context (a work item), no lock held.
                unsafe { rkmem_bench_resched() };
            }
            let live = &self.live;
            let step = self.eng.step(|i| live.get(i).is_some_and(|c| c.is_some()));
            match step {
                Step::Alloc { slot, kind } => self.alloc_into(slot, kind),
                Step::Free { slot } => {
                    if let Some(it) = self.live.get_mut(slot).and_then(Option::take) {
                        self.release(it);
                    }
                }
                Step::Handoff { slot } => {
                    if let Some(it) = self.live.get_mut(slot).and_then(Option::take) {
                        let mut m = ctx.mailbox.lock();
                        let r = m.push_within_capacity(it);
                        drop(m);
                        if let Err(e) = r {
                            self.release(e.0);
                        }
                    }
                }
                Step::TakeRemote => {
                    let it = ctx.mailbox.lock().pop();
                    if let Some(it) = it {
                        self.release(it);
                    }
                }
            }
        }
        for i in 0..SLOTS {
            if let Some(it) = self.live.get_mut(i).and_then(Option::take) {
                self.release(it);
            }
        }
    }
}

/// One worker, on the CPU it runs on.
///
/// # Safety
///
/// `arg` points to the call's live `Ctx`, which outlives every worker (the caller waits for all
/// of them) and is shared only through `&` (its mutable parts are behind its spinlocks).
unsafe extern "C" fn worker(arg: *mut c_void) -> c_long {
    // SAFETY: the caller's promise.
    let ctx = unsafe { &*arg.cast::<Ctx<'_>>() };
    let cpu = kernel::cpu::CpuId::current().as_u32();
    let t = match Worker::new(ctx, cpu) {
        Ok(mut w) => {
            w.run();
            w.t
        }
        Err(_) => Totals {
            enomem: 1,
            ..Totals::default()
        },
    };
    ctx.totals.lock().add(&t);
    0
}

fn validate(s: &RkmemStress) -> Result {
    let ok = (1..=uapi::RKMEM_STRESS_MAX_OPS).contains(&s.ops)
        && (1..=uapi::RKMEM_STRESS_MAX_MS).contains(&s.ms)
        && s.flags & !uapi::RKMEM_STRESS_CORRUPT_ONE == 0
        && s.reserved == 0
        && s.pad == 0;
    if ok {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// The call's caches, as [`CACHES`] lists them.
fn make_caches(arena: &'static Arena) -> Result<KVec<Arc<Cache>>> {
    let mut v = KVec::with_capacity(CACHES.len(), GFP_KERNEL)?;
    for &(size, align) in CACHES.iter() {
        let c = Arc::pin_init(
            Cache::new(
                arena,
                classes::temporary_cache_id()?,
                b"rkmem-stress",
                size as usize,
                align as usize,
                None,
                crate::slab_debug(),
                NO_OWNER,
            )?,
            GFP_KERNEL,
        )?;
        v.push(c, GFP_KERNEL)?;
    }
    Ok(v)
}

/// `RKMEM_IOC_STRESS`.
pub(crate) fn run(user: UserSlice) -> Result {
    let (mut r, mut w) = user.reader_writer();
    let mut s: RkmemStress = r.read()?;
    validate(&s)?;
    let shared = crate::shared().ok_or(ENODEV)?;
    let arena: &'static Arena = &shared.arena;
    let pool = KBox::pin_init(
        Mempool::new(
            arena,
            0,
            NO_OWNER,
            Source::rkmalloc(&shared.classes, POOL_SIZE)?,
            POOL_MIN,
            false,
        )?,
        GFP_KERNEL,
    )?;
    pool.fill()?;
    let ctx = Ctx {
        arena,
        classes: &shared.classes,
        caches: make_caches(arena)?,
        pool,
        mailbox: KBox::pin_init(
            new_spinlock!(
                KVec::with_capacity(MAILBOX, GFP_KERNEL)?,
                "rkmem_stress_mailbox"
            ),
            GFP_KERNEL,
        )?,
        totals: KBox::pin_init(
            new_spinlock!(Totals::default(), "rkmem_stress_totals"),
            GFP_KERNEL,
        )?,
        seed: s.seed,
        steps: s.ops,
        deadline_ns: now_ns() + u64::from(s.ms) * 1_000_000,
        corrupt_one: s.flags & uapi::RKMEM_STRESS_CORRUPT_ONE != 0,
    };
    // SAFETY: `worker` gets `ctx`, which lives until the end of this function, after
    // `rkmem_stress_each_cpu` has waited for every worker; it is not touched here meanwhile.
    let cpus =
        unsafe { rkmem_stress_each_cpu(Some(worker), core::ptr::from_ref(&ctx).cast_mut().cast()) };
    // What is left in the mailbox: checked and freed here (a CPU no worker runs on).
    let mut rest = Totals::default();
    {
        let mut tail = Worker {
            ctx: &ctx,
            cpu: u32::MAX,
            eng: Engine::new(0, 0),
            live: KVec::new(),
            t: Totals::default(),
            reported: false,
            corrupted: false,
        };
        loop {
            let it = ctx.mailbox.lock().pop();
            match it {
                Some(it) => tail.release(it),
                None => break,
            }
        }
        rest.add(&tail.t);
    }
    let mut t = *ctx.totals.lock();
    t.add(&rest);
    drop(ctx);
    let cpus = u32::try_from(cpus).map_err(|_| Error::from_errno(cpus as i32))?;
    s.cpus = cpus;
    s.done_ops = t.ops;
    s.allocs = t.allocs;
    s.frees = t.frees;
    s.remote_frees = t.remote_frees;
    s.bytes_verified = t.bytes_verified;
    s.enomem = t.enomem;
    s.failures = t.failures;
    w.write(&s)
}
