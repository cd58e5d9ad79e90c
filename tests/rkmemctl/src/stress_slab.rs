// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl stress slab`: threads pinned one per CPU, each with its own open file and its own
//! slab cache (random object size 8..=4096, random alignment 1..=64, every other one with a
//! constructor), allocate objects from that cache and from rkmalloc (mostly small sizes, some
//! whole pages, rarely vmalloc beyond 4 MiB), write a pattern, read it back and free them.
//!
//! The patterns are keyed by handle and offset: two objects that overlap, or an object that
//! another thread's object overlaps, cannot both read back intact. A new object of a cache with
//! a constructor must read as the constructor's byte before it is written. While the workers
//! run, the main thread parses `/proc/rkmem/slabinfo` (every row must keep its invariants under
//! concurrent change); at the end each worker destroys its cache, and no row of this run may
//! be left in slabinfo.
//!
//! `ENOMEM` is an expected answer when the arena is at its maximum, `EDQUOT` when a thread's
//! file holds `file_max_mb` (both counted); everything else that differs from the documented
//! behaviour is a failure.

use crate::dev::{self, CacheInfo, CacheSpec, Device, PAGE_SIZE};
use crate::pattern::{self, Rng};
use crate::procfs;
use crate::workers::{self, Crew, Extra, Settings, Stop, KEEP_FAILURES};
use std::time::Duration;

/// Largest rkmalloc request of the run: 2 MiB past the page route (vmalloc).
const VMALLOC_MAX: u64 = (4 << 20) + (2 << 20);

/// Settings of a run.
pub type Options = Settings;

/// What one thread did besides the common counts (`allocs` counts all four kinds).
#[derive(Clone, Debug, Default)]
struct Slab {
    /// The thread's cache: its name, and once created its size, alignment and constructor.
    cache: String,
    obj_allocs: u64,
    rk_slab: u64,
    rk_pages: u64,
    rk_vmalloc: u64,
    ctor_checks: u64,
}

impl Extra for Slab {
    fn add(&mut self, o: &Self) {
        self.obj_allocs += o.obj_allocs;
        self.rk_slab += o.rk_slab;
        self.rk_pages += o.rk_pages;
        self.rk_vmalloc += o.rk_vmalloc;
        self.ctor_checks += o.ctor_checks;
    }
}

type Report = workers::Report<Slab>;

/// The report of worker `idx`, on `cpu`, before it has done anything.
fn new_report(idx: usize, cpu: usize) -> Report {
    let mut r = Report::new(cpu);
    r.x.cache = cache_name(idx);
    r
}

/// Where an allocation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The thread's own cache.
    Cache,
    /// rkmalloc of this many bytes.
    Rkmalloc(u64),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Cache => write!(f, "cache object"),
            Source::Rkmalloc(n) => write!(f, "rkmalloc {n}"),
        }
    }
}

type Live = workers::Live<Source>;

/// A random cache: size 8..=4096, alignment a power of two 1..=64, and with `ctor` a
/// constructor filling new objects with a random byte.
fn random_cache(rng: &mut Rng, name: &str, ctor: bool) -> Result<CacheSpec, String> {
    let size = 8 + rng.below(4096 - 8 + 1) as u32;
    let align = 1u32 << rng.below(7);
    let byte = rng.below(256) as u8;
    let spec = CacheSpec::new(name, size, align)?;
    Ok(if ctor { spec.with_ctor(byte) } else { spec })
}

/// A random rkmalloc size: mostly small (a size class), some whole pages (up to 4 MiB, small
/// counts more likely), rarely beyond 4 MiB (vmalloc).
fn random_rkmalloc_size(rng: &mut Rng) -> u64 {
    match rng.below(1000) {
        // 85%: 1..=64, 1..=512 or 1..=4096 bytes.
        0..=849 => {
            let limit = [64, 512, 4096][rng.below(3) as usize];
            1 + rng.below(limit)
        }
        // 14.5%: 4097 bytes up to 4 MiB, log-uniform spans.
        850..=994 => {
            let span = PAGE_SIZE << rng.below(11);
            (PAGE_SIZE + 1 + rng.below(span)).min(1024 * PAGE_SIZE)
        }
        // 0.5%: vmalloc.
        _ => (4 << 20) + 1 + rng.below(VMALLOC_MAX - (4 << 20)),
    }
}

struct Worker<'a> {
    dev: Device,
    rng: Rng,
    seed: u64,
    opts: &'a Options,
    spec: CacheSpec,
    cache: CacheInfo,
    live: Vec<Live>,
    buf: Vec<u8>,
    r: Report,
}

impl Worker<'_> {
    fn alloc(&mut self) {
        let source = if self.rng.below(2) == 0 {
            Source::Cache
        } else {
            Source::Rkmalloc(random_rkmalloc_size(&mut self.rng))
        };
        self.r.allocs += 1;
        let (got, want) = match source {
            Source::Cache => {
                self.r.x.obj_allocs += 1;
                (
                    self.dev.obj_alloc(self.cache.id),
                    Some(u64::from(self.spec.size)),
                )
            }
            Source::Rkmalloc(size) => {
                match size {
                    0..=4096 => self.r.x.rk_slab += 1,
                    s if s <= 1024 * PAGE_SIZE => self.r.x.rk_pages += 1,
                    _ => self.r.x.rk_vmalloc += 1,
                }
                (self.dev.rkmalloc(size), dev::rkmalloc_bytes(size))
            }
        };
        let a = match got {
            Ok(a) => a,
            // `EDQUOT`, the file's cap, is rare: several big allocations held.
            Err(e) if self.r.at_limit(e) => return,
            Err(e) => return self.r.fail(format!("alloc {source}: {e}")),
        };
        if Some(a.bytes) != want {
            self.r.fail(format!(
                "alloc {source}: {} usable bytes, want {want:?} (handle {:#x})",
                a.bytes, a.handle
            ));
            // Free it without touching it: its size is not trusted.
            let _ = self.dev.free(a.handle);
            return;
        }
        if a.handle == 0 || self.live.iter().any(|l| l.handle == a.handle) {
            return self.r.fail(format!(
                "alloc {source}: handle {:#x} is zero or in use",
                a.handle
            ));
        }
        let buf = &mut self.buf[..a.bytes as usize];
        if let (Source::Cache, Some(byte)) = (source, self.spec.ctor) {
            // A new object of a cache with a constructor is constructed, whatever its last
            // owner wrote into it.
            self.r.x.ctor_checks += 1;
            match self.dev.read(a.handle, 0, buf) {
                Err(e) => self.r.fail(format!("read new object {:#x}: {e}", a.handle)),
                Ok(()) => {
                    if let Some(at) = buf.iter().position(|&b| b != byte) {
                        self.r.fail(format!(
                            "new object {:#x} of {}: byte {at} is {:#04x}, the constructor fills {byte:#04x}",
                            a.handle, self.r.x.cache, buf[at]
                        ));
                    }
                }
            }
        }
        pattern::fill(pattern::key(a.handle, self.seed), 0, buf);
        if let Err(e) = self.dev.write(a.handle, 0, buf) {
            self.r.fail(format!(
                "write {} bytes to {:#x} ({source}): {e}",
                a.bytes, a.handle
            ));
        }
        self.live.push(Live {
            handle: a.handle,
            bytes: a.bytes,
            what: source,
        });
        self.r.peak_live = self.r.peak_live.max(self.live.len());
    }

    /// Reads `len` bytes at `offset` of live allocation `i` and compares them with its pattern.
    fn verify(&mut self, i: usize, offset: u64, len: u64) {
        let dev = &self.dev;
        let buf = &mut self.buf[..len as usize];
        let res = self.live[i].read_back(self.seed, offset, buf, |h, o, b| dev.read(h, o, b));
        self.r.verified(len, res);
    }

    fn check(&mut self) {
        let i = self.rng.below(self.live.len() as u64) as usize;
        let (offset, len) = workers::check_span(&mut self.rng, self.live[i].bytes);
        self.r.checks += 1;
        self.verify(i, offset, len);
    }

    fn free(&mut self, i: usize) {
        self.verify(i, 0, self.live[i].bytes);
        let l = self.live.swap_remove(i);
        self.r.frees += 1;
        if let Err(e) = self.dev.free(l.handle) {
            self.r
                .fail(format!("free {:#x} ({}): {e}", l.handle, l.what));
        }
    }

    fn run(&mut self, stop: &Stop, quota: u64) {
        while self.r.ops < quota {
            if stop.due(self.r.ops) {
                break;
            }
            let r = self.rng.below(100);
            if self.live.is_empty() || (self.live.len() < self.opts.live && r < 50) {
                self.alloc();
            } else if r < 75 {
                self.check();
            } else {
                let i = self.rng.below(self.live.len() as u64) as usize;
                self.free(i);
            }
            self.r.ops += 1;
        }
        // Verify and free what is still held, then destroy the cache: it must be idle now.
        while !self.live.is_empty() {
            self.free(self.live.len() - 1);
        }
        if let Err(e) = self.dev.cache_destroy(self.cache.id) {
            self.r.fail(format!(
                "destroy {} with every object freed: {e}",
                self.r.x.cache
            ));
        }
    }
}

fn worker(idx: usize, cpu: usize, opts: &Options, stop: &Stop) -> Report {
    let mut r = new_report(idx, cpu);
    let Some(dev) = r.pinned_device() else {
        return r;
    };
    let mut rng = Rng::new(pattern::mix64(opts.seed ^ (idx as u64 + 1)));
    // Every other thread's cache has a constructor.
    let spec = match random_cache(&mut rng, &r.x.cache, idx.is_multiple_of(2)) {
        Ok(s) => s,
        Err(e) => {
            r.fail(e);
            return r;
        }
    };
    let cache = match dev.cache_create(&spec) {
        Ok(c) => c,
        Err(e) => {
            r.fail(format!(
                "create {} (size {}, align {}): {e}",
                r.x.cache, spec.size, spec.align
            ));
            return r;
        }
    };
    if cache.objsize < spec.size || cache.objects_per_slab == 0 {
        r.fail(format!(
            "create {}: objsize {} for {}-byte objects, {} per slab",
            r.x.cache, cache.objsize, spec.size, cache.objects_per_slab
        ));
    }
    r.x.cache = format!(
        "{} (size {}, align {}, {})",
        r.x.cache,
        spec.size,
        spec.align,
        spec.ctor
            .map_or("no ctor".to_string(), |b| format!("ctor {b:#04x}"))
    );
    let mut w = Worker {
        dev,
        rng,
        seed: opts.seed,
        opts,
        spec,
        cache,
        live: Vec::new(),
        buf: vec![0u8; VMALLOC_MAX as usize],
        r,
    };
    w.run(stop, opts.quota(idx));
    w.r
}

/// The name of worker `idx`'s cache: unique per process and thread.
fn cache_name(idx: usize) -> String {
    format!("{}{idx}", cache_prefix())
}

fn cache_prefix() -> String {
    format!("stress-{}-", std::process::id())
}

/// What the main thread saw in slabinfo while the workers ran.
#[derive(Default)]
struct Watch {
    reads: u64,
    peak_objs: u64,
    peak_caches: usize,
    failures: Vec<String>,
}

impl Watch {
    fn look(&mut self) {
        let rows = match procfs::slabinfo() {
            Ok(rows) => rows,
            Err(e) => return self.failures.push(e),
        };
        self.reads += 1;
        for r in &rows {
            if let Err(e) = r.check() {
                self.failures.push(e);
            }
        }
        let prefix = cache_prefix();
        let ours = rows.iter().filter(|r| r.name.starts_with(&prefix));
        self.peak_caches = self.peak_caches.max(ours.clone().count());
        self.peak_objs = self.peak_objs.max(rows.iter().map(|r| r.active_objs).sum());
    }
}

/// Runs the stress test and prints its report; `Err` if anything failed.
pub fn run(opts: &Options) -> Result<(), String> {
    opts.check()?;
    // Fail early, in the main thread, if the device or slabinfo is not there.
    drop(Device::open().map_err(|e| format!("{}: {e}", dev::DEV_PATH))?);
    procfs::slabinfo()?;
    let cpus = workers::assign(opts.threads);
    println!("{}", opts.header("stress slab", Some(&cpus)));
    let mut watch = Watch::default();
    let crew = Crew::new("stress slab", &cpus, opts.duration);
    let (reports, secs) = crew.run(
        |i, cpu, stop| worker(i, cpu, opts, stop),
        || {
            watch.look();
            std::thread::sleep(Duration::from_millis(200));
        },
        |i, cpu| {
            let mut r = new_report(i, cpu);
            r.fail("thread panicked".into());
            r
        },
    );
    // Every worker destroyed its cache (or its file is closed): none may be left.
    match procfs::slabinfo() {
        Ok(rows) => {
            let prefix = cache_prefix();
            let left: Vec<&str> = rows
                .iter()
                .filter(|r| r.name.starts_with(&prefix))
                .map(|r| r.name.as_str())
                .collect();
            if !left.is_empty() {
                watch.failures.push(format!(
                    "caches still in slabinfo after the run: {}",
                    left.join(", ")
                ));
            }
        }
        Err(e) => watch.failures.push(e),
    }
    for (i, r) in reports.iter().enumerate() {
        println!(
            "thread {i} (CPU {}): cache {}: {} ops: {} cache objects, rkmalloc {} slab / {} pages / {} vmalloc ({} ENOMEM, {} EDQUOT), {} frees, {} checks, {} constructor checks, peak {} live, {} MiB verified, {} failures",
            r.cpu,
            r.x.cache,
            r.ops,
            r.x.obj_allocs,
            r.x.rk_slab,
            r.x.rk_pages,
            r.x.rk_vmalloc,
            r.enomem,
            r.edquot,
            r.frees,
            r.checks,
            r.x.ctor_checks,
            r.peak_live,
            r.bytes_verified >> 20,
            r.failures
        );
    }
    let total = workers::total(&reports);
    workers::print_failures(&reports);
    for m in watch.failures.iter().take(KEEP_FAILURES) {
        println!("FAIL slabinfo: {m}");
    }
    println!(
        "{}; {} allocs ({} ENOMEM or EDQUOT), {} frees, {} checks; {} MiB verified; slabinfo read {} times, peak {} active objects, {} caches of this run",
        workers::total_ops(total.ops, secs),
        total.allocs,
        total.enomem + total.edquot,
        total.frees,
        total.checks,
        total.bytes_verified >> 20,
        watch.reads,
        watch.peak_objs,
        watch.peak_caches,
    );
    workers::verdict("stress slab", total.failures + watch.failures.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_caches_are_valid() {
        let mut rng = Rng::new(9);
        let mut aligns = [0u32; 7];
        for i in 0..2000 {
            let s = random_cache(&mut rng, "stress-1-0", i % 2 == 0).unwrap();
            assert!((8..=4096).contains(&s.size));
            assert!(s.align.is_power_of_two() && s.align <= 64);
            assert_eq!(s.ctor.is_some(), i % 2 == 0);
            aligns[s.align.trailing_zeros() as usize] += 1;
        }
        assert!(aligns.iter().all(|&n| n > 200), "{aligns:?}");
    }

    #[test]
    fn rkmalloc_sizes_are_valid_and_mostly_small() {
        let mut rng = Rng::new(5);
        let (mut small, mut pages, mut vmalloc) = (0, 0, 0);
        for _ in 0..100_000 {
            let size = random_rkmalloc_size(&mut rng);
            assert!(dev::rkmalloc_bytes(size).is_some(), "{size}");
            assert!(size <= VMALLOC_MAX);
            match size {
                0..=4096 => small += 1,
                s if s <= 4 << 20 => pages += 1,
                _ => vmalloc += 1,
            }
        }
        assert!(small > 80_000, "{small}");
        assert!(pages > 10_000, "{pages}");
        assert!(vmalloc > 100 && vmalloc < 1_000, "{vmalloc}");
    }

    #[test]
    fn cache_names_fit() {
        let name = format!("stress-{}-{}", u32::MAX, 999);
        assert!(name.len() <= crate::uapi::RKMEM_CACHE_NAME_MAX);
    }
}
