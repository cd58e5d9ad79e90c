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
use crate::stress::{allowed_cpus, pin};
use nix::errno::Errno;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Failures kept per thread for the report (all are counted).
const KEEP_FAILURES: usize = 8;
/// Largest rkmalloc request of the run: 2 MiB past the page route (vmalloc).
const VMALLOC_MAX: u64 = (4 << 20) + (2 << 20);

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads (each pinned to one CPU, round robin).
    pub threads: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many operations in all (split between the threads).
    pub ops: Option<u64>,
    /// Seed of the random choices and of the patterns.
    pub seed: u64,
    /// Most allocations one thread holds at a time.
    pub live: usize,
}

/// What one thread did.
#[derive(Clone, Debug, Default)]
struct Report {
    cpu: usize,
    cache: String,
    ops: u64,
    obj_allocs: u64,
    rk_slab: u64,
    rk_pages: u64,
    rk_vmalloc: u64,
    frees: u64,
    checks: u64,
    ctor_checks: u64,
    enomem: u64,
    edquot: u64,
    bytes_verified: u64,
    peak_live: usize,
    failures: u64,
    messages: Vec<String>,
}

impl Report {
    fn fail(&mut self, msg: String) {
        self.failures += 1;
        if self.messages.len() < KEEP_FAILURES {
            self.messages.push(msg);
        }
    }
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

struct Live {
    handle: u64,
    bytes: u64,
    source: Source,
}

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
        let (got, want) = match source {
            Source::Cache => {
                self.r.obj_allocs += 1;
                (
                    self.dev.obj_alloc(self.cache.id),
                    Some(u64::from(self.spec.size)),
                )
            }
            Source::Rkmalloc(size) => {
                match size {
                    0..=4096 => self.r.rk_slab += 1,
                    s if s <= 1024 * PAGE_SIZE => self.r.rk_pages += 1,
                    _ => self.r.rk_vmalloc += 1,
                }
                (self.dev.rkmalloc(size), dev::rkmalloc_bytes(size))
            }
        };
        let a = match got {
            Ok(a) => a,
            Err(Errno::ENOMEM) => {
                self.r.enomem += 1;
                return;
            }
            // The file's cap (`file_max_mb`): rare, with several big allocations held.
            Err(Errno::EDQUOT) => {
                self.r.edquot += 1;
                return;
            }
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
            self.r.ctor_checks += 1;
            match self.dev.read(a.handle, 0, buf) {
                Err(e) => self.r.fail(format!("read new object {:#x}: {e}", a.handle)),
                Ok(()) => {
                    if let Some(at) = buf.iter().position(|&b| b != byte) {
                        self.r.fail(format!(
                            "new object {:#x} of {}: byte {at} is {:#04x}, the constructor fills {byte:#04x}",
                            a.handle, self.r.cache, buf[at]
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
            source,
        });
        self.r.peak_live = self.r.peak_live.max(self.live.len());
    }

    /// Reads `len` bytes at `offset` of live allocation `i` and compares them with its pattern.
    fn verify(&mut self, i: usize, offset: u64, len: u64) {
        let l = &self.live[i];
        let buf = &mut self.buf[..len as usize];
        if let Err(e) = self.dev.read(l.handle, offset, buf) {
            return self.r.fail(format!(
                "read {len} bytes at {offset} of {:#x} ({}): {e}",
                l.handle, l.source
            ));
        }
        let key = pattern::key(l.handle, self.seed);
        if let Some((at, want, got)) = pattern::first_mismatch(key, offset, buf) {
            let msg = format!(
                "content of {:#x} ({}, {} bytes) differs at byte {at}: {want:#04x} written, {got:#04x} read",
                l.handle, l.source, l.bytes
            );
            return self.r.fail(msg);
        }
        self.r.bytes_verified += len;
    }

    fn check(&mut self) {
        let i = self.rng.below(self.live.len() as u64) as usize;
        let bytes = self.live[i].bytes;
        let offset = self.rng.below(bytes);
        let len = 1 + self.rng.below((bytes - offset).min(64 << 10));
        self.r.checks += 1;
        self.verify(i, offset, len);
    }

    fn free(&mut self, i: usize) {
        self.verify(i, 0, self.live[i].bytes);
        let l = self.live.swap_remove(i);
        self.r.frees += 1;
        if let Err(e) = self.dev.free(l.handle) {
            self.r
                .fail(format!("free {:#x} ({}): {e}", l.handle, l.source));
        }
    }

    fn run(&mut self, stop: &AtomicBool, deadline: Instant, quota: u64) {
        while self.r.ops < quota {
            if self.r.ops.is_multiple_of(16)
                && (stop.load(Ordering::Relaxed) || Instant::now() >= deadline)
            {
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
                self.r.cache
            ));
        }
    }
}

fn worker(idx: usize, cpu: usize, opts: &Options, stop: &AtomicBool, deadline: Instant) -> Report {
    let mut r = Report {
        cpu,
        cache: cache_name(idx),
        ..Default::default()
    };
    if let Err(e) = pin(cpu) {
        r.fail(format!("sched_setaffinity(CPU {cpu}): {e}"));
        return r;
    }
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => {
            r.fail(format!("open {}: {e}", dev::DEV_PATH));
            return r;
        }
    };
    let mut rng = Rng::new(pattern::mix64(opts.seed ^ (idx as u64 + 1)));
    // Every other thread's cache has a constructor.
    let spec = match random_cache(&mut rng, &r.cache, idx.is_multiple_of(2)) {
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
                r.cache, spec.size, spec.align
            ));
            return r;
        }
    };
    if cache.objsize < spec.size || cache.objects_per_slab == 0 {
        r.fail(format!(
            "create {}: objsize {} for {}-byte objects, {} per slab",
            r.cache, cache.objsize, spec.size, cache.objects_per_slab
        ));
    }
    r.cache = format!(
        "{} (size {}, align {}, {})",
        r.cache,
        spec.size,
        spec.align,
        spec.ctor
            .map_or("no ctor".to_string(), |b| format!("ctor {b:#04x}"))
    );
    let per_thread = opts.ops.map_or(u64::MAX, |ops| {
        ops / opts.threads as u64 + u64::from((idx as u64) < ops % opts.threads as u64)
    });
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
    w.run(stop, deadline, per_thread);
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
    if opts.threads == 0 || opts.live == 0 {
        return Err("--threads and --live must be at least 1".into());
    }
    // Fail early, in the main thread, if the device or slabinfo is not there.
    drop(Device::open().map_err(|e| format!("{}: {e}", dev::DEV_PATH))?);
    procfs::slabinfo()?;
    let cpus = allowed_cpus();
    let assigned: Vec<usize> = (0..opts.threads).map(|i| cpus[i % cpus.len()]).collect();
    let cpu_list: Vec<String> = assigned.iter().map(|c| c.to_string()).collect();
    println!(
        "stress slab: {} threads on CPUs {}, seed {:#x}, at most {:.1} s{}, up to {} live allocations per thread",
        opts.threads,
        cpu_list.join(","),
        opts.seed,
        opts.duration.as_secs_f64(),
        opts.ops.map_or(String::new(), |n| format!(" or {n} operations")),
        opts.live,
    );
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut watch = Watch::default();
    let reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = assigned
            .iter()
            .enumerate()
            .map(|(i, &cpu)| {
                let stop = &stop;
                s.spawn(move || worker(i, cpu, opts, stop, deadline))
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            watch.look();
            std::thread::sleep(Duration::from_millis(200));
            let now = Instant::now();
            if now > deadline + Duration::from_secs(60) {
                stop.store(true, Ordering::Relaxed);
            }
            if now > deadline + Duration::from_secs(120) {
                eprintln!("rkmemctl: stress slab: workers still busy 120 s after the deadline");
                std::process::exit(2);
            }
        }
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join().unwrap_or_else(|_| {
                    let mut r = Report {
                        cpu: assigned[i],
                        cache: cache_name(i),
                        ..Default::default()
                    };
                    r.fail("thread panicked".into());
                    r
                })
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64().max(1e-6);
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
    let mut failures = watch.failures.len() as u64;
    let (mut ops, mut allocs, mut enomem, mut frees, mut checks, mut verified) = (0, 0, 0, 0, 0, 0);
    for (i, r) in reports.iter().enumerate() {
        println!(
            "thread {i} (CPU {}): cache {}: {} ops: {} cache objects, rkmalloc {} slab / {} pages / {} vmalloc ({} ENOMEM, {} EDQUOT), {} frees, {} checks, {} constructor checks, peak {} live, {} MiB verified, {} failures",
            r.cpu,
            r.cache,
            r.ops,
            r.obj_allocs,
            r.rk_slab,
            r.rk_pages,
            r.rk_vmalloc,
            r.enomem,
            r.edquot,
            r.frees,
            r.checks,
            r.ctor_checks,
            r.peak_live,
            r.bytes_verified >> 20,
            r.failures
        );
        ops += r.ops;
        allocs += r.obj_allocs + r.rk_slab + r.rk_pages + r.rk_vmalloc;
        enomem += r.enomem + r.edquot;
        frees += r.frees;
        checks += r.checks;
        verified += r.bytes_verified;
        failures += r.failures;
    }
    for (i, r) in reports.iter().enumerate() {
        for m in &r.messages {
            println!("FAIL thread {i}: {m}");
        }
    }
    for m in watch.failures.iter().take(KEEP_FAILURES) {
        println!("FAIL slabinfo: {m}");
    }
    println!(
        "total: {ops} ops in {secs:.2} s = {:.0} ops/s; {allocs} allocs ({enomem} ENOMEM or EDQUOT), {frees} frees, {checks} checks; {} MiB verified; slabinfo read {} times, peak {} active objects, {} caches of this run",
        ops as f64 / secs,
        verified >> 20,
        watch.reads,
        watch.peak_objs,
        watch.peak_caches,
    );
    if failures != 0 {
        return Err(format!("stress slab: {failures} failures"));
    }
    println!("stress slab: ok, no failures");
    Ok(())
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
