// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl stress pages`: threads pinned one per CPU, each with its own open file, allocate
//! blocks of random orders and exact sizes, write a pattern, read it back and free them.
//!
//! `ENOMEM` is an expected answer when the arena is at its maximum (counted); a pattern that
//! does not read back, a size or handle that is wrong, and any other errno are failures.

use crate::dev::{Device, PagesReq, PAGE_SIZE};
use crate::pattern::{self, Rng};
use crate::procfs;
use crate::uapi::RKMEM_MAX_ORDER;
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, Instant};

/// Relative weights of the orders `0..=10`: mostly small blocks, as real callers ask.
const ORDER_WEIGHTS: [u32; RKMEM_MAX_ORDER as usize + 1] = [40, 20, 12, 8, 6, 4, 3, 2, 2, 1, 1];

/// Failures kept per thread for the report (all are counted).
const KEEP_FAILURES: usize = 8;

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
    /// Percentage of allocations that are exact-size (`RKMEM_PAGES_EXACT`).
    pub exact_pct: u64,
}

/// What one thread did.
#[derive(Clone, Debug, Default)]
struct Report {
    cpu: usize,
    ops: u64,
    allocs: u64,
    frees: u64,
    checks: u64,
    enomem: u64,
    bytes_written: u64,
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

struct Live {
    handle: u64,
    bytes: u64,
    req: PagesReq,
}

/// A random request: a block of a weighted order or an exact count in `1..=1024`, weighted
/// toward small counts.
fn random_req(rng: &mut Rng, exact_pct: u64) -> PagesReq {
    if rng.below(100) < exact_pct {
        let span = 1u64 << rng.below(u64::from(RKMEM_MAX_ORDER) + 1);
        PagesReq::Exact(1 + rng.below(span) as u32)
    } else {
        PagesReq::Order(rng.weighted(&ORDER_WEIGHTS) as u32)
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(Pid::from_raw(0)).unwrap_or_else(|_| CpuSet::new());
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

pub fn pin(cpu: usize) -> Result<(), Errno> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    // Pid 0: the calling thread.
    sched_setaffinity(Pid::from_raw(0), &set)
}

struct Worker<'a> {
    dev: Device,
    rng: Rng,
    seed: u64,
    opts: &'a Options,
    live: Vec<Live>,
    buf: Vec<u8>,
    r: Report,
}

impl Worker<'_> {
    fn alloc(&mut self) {
        let req = random_req(&mut self.rng, self.opts.exact_pct);
        self.r.allocs += 1;
        let a = match self.dev.pages_alloc(req) {
            Ok(a) => a,
            Err(Errno::ENOMEM) => {
                self.r.enomem += 1;
                return;
            }
            Err(e) => return self.r.fail(format!("alloc {req}: {e}")),
        };
        let want = req.pages() * PAGE_SIZE;
        if a.bytes != want {
            self.r.fail(format!(
                "alloc {req}: {} bytes, want {want} (handle {:#x})",
                a.bytes, a.handle
            ));
        }
        if a.handle == 0 || self.live.iter().any(|l| l.handle == a.handle) {
            self.r.fail(format!(
                "alloc {req}: handle {:#x} is zero or in use",
                a.handle
            ));
            return;
        }
        let bytes = a.bytes.min(want);
        let buf = &mut self.buf[..bytes as usize];
        pattern::fill(pattern::key(a.handle, self.seed), 0, buf);
        if let Err(e) = self.dev.write(a.handle, 0, buf) {
            self.r.fail(format!(
                "write {bytes} bytes to {:#x} ({req}): {e}",
                a.handle
            ));
        } else {
            self.r.bytes_written += bytes;
        }
        self.live.push(Live {
            handle: a.handle,
            bytes,
            req,
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
                l.handle, l.req
            ));
        }
        let key = pattern::key(l.handle, self.seed);
        if let Some((at, want, got)) = pattern::first_mismatch(key, offset, buf) {
            let msg = format!(
                "content of {:#x} ({}, {} bytes) differs at byte {at}: {want:#04x} written, {got:#04x} read",
                l.handle, l.req, l.bytes
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

    fn free(&mut self) {
        let i = self.rng.below(self.live.len() as u64) as usize;
        self.verify(i, 0, self.live[i].bytes);
        let l = self.live.swap_remove(i);
        self.r.frees += 1;
        if let Err(e) = self.dev.free(l.handle) {
            self.r
                .fail(format!("free {:#x} ({}): {e}", l.handle, l.req));
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
                self.free();
            }
            self.r.ops += 1;
        }
        // Check what is still held; closing the file frees it.
        for i in 0..self.live.len() {
            self.verify(i, 0, self.live[i].bytes);
        }
    }
}

fn worker(idx: usize, cpu: usize, opts: &Options, stop: &AtomicBool, deadline: Instant) -> Report {
    let mut r = Report {
        cpu,
        ..Default::default()
    };
    if let Err(e) = pin(cpu) {
        r.fail(format!("sched_setaffinity(CPU {cpu}): {e}"));
        return r;
    }
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => {
            r.fail(format!("open {}: {e}", crate::dev::DEV_PATH));
            return r;
        }
    };
    let per_thread = opts.ops.map_or(u64::MAX, |ops| {
        ops / opts.threads as u64 + u64::from((idx as u64) < ops % opts.threads as u64)
    });
    let seed = opts.seed;
    let mut w = Worker {
        dev,
        rng: Rng::new(pattern::mix64(seed ^ (idx as u64 + 1))),
        seed,
        opts,
        live: Vec::new(),
        buf: vec![0u8; (PAGE_SIZE << RKMEM_MAX_ORDER) as usize],
        r,
    };
    w.run(stop, deadline, per_thread);
    w.r
}

/// Runs the stress test and prints its report; `Err` if anything failed.
pub fn run(opts: &Options) -> Result<(), String> {
    if opts.threads == 0 || opts.live == 0 {
        return Err("--threads and --live must be at least 1".into());
    }
    // Fail early, in the main thread, if the device is not there.
    drop(Device::open().map_err(|e| format!("{}: {e}", crate::dev::DEV_PATH))?);
    let cpus = allowed_cpus();
    let assigned: Vec<usize> = (0..opts.threads).map(|i| cpus[i % cpus.len()]).collect();
    let cpu_list: Vec<String> = assigned.iter().map(|c| c.to_string()).collect();
    println!(
        "stress pages: {} threads on CPUs {}, seed {:#x}, at most {:.1} s{}, up to {} live allocations per thread",
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
    let mut peak_arena_mib = 0;
    let reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = assigned
            .iter()
            .enumerate()
            .map(|(i, &cpu)| {
                let stop = &stop;
                s.spawn(move || worker(i, cpu, opts, stop, deadline))
            })
            .collect();
        // Watch the arena grow while the workers run.
        while !handles.iter().all(|h| h.is_finished()) {
            if let Ok(e) = procfs::extfrag() {
                peak_arena_mib = peak_arena_mib.max(e.arena_mib);
            }
            std::thread::sleep(Duration::from_millis(200));
            let now = Instant::now();
            if now > deadline + Duration::from_secs(60) {
                stop.store(true, Ordering::Relaxed);
            }
            if now > deadline + Duration::from_secs(120) {
                // A worker is stuck inside an ioctl: report it rather than hang.
                eprintln!("rkmemctl: stress pages: workers still busy 120 s after the deadline");
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
                        ..Default::default()
                    };
                    r.fail("thread panicked".into());
                    r
                })
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    let mut total = Report::default();
    for (i, r) in reports.iter().enumerate() {
        println!(
            "thread {i} (CPU {}): {} ops: {} allocs ({} ENOMEM), {} frees, {} checks, peak {} live, {} MiB written, {} MiB verified, {} failures",
            r.cpu,
            r.ops,
            r.allocs,
            r.enomem,
            r.frees,
            r.checks,
            r.peak_live,
            r.bytes_written >> 20,
            r.bytes_verified >> 20,
            r.failures
        );
        total.ops += r.ops;
        total.allocs += r.allocs;
        total.enomem += r.enomem;
        total.frees += r.frees;
        total.checks += r.checks;
        total.bytes_written += r.bytes_written;
        total.bytes_verified += r.bytes_verified;
        total.failures += r.failures;
    }
    for (i, r) in reports.iter().enumerate() {
        for m in &r.messages {
            println!("FAIL thread {i}: {m}");
        }
    }
    println!(
        "total: {} ops in {secs:.2} s = {:.0} ops/s; {} allocs ({} ENOMEM), {} frees, {} checks; {} MiB verified; arena peak {} MiB",
        total.ops,
        total.ops as f64 / secs,
        total.allocs,
        total.enomem,
        total.frees,
        total.checks,
        total.bytes_verified >> 20,
        peak_arena_mib,
    );
    if total.failures != 0 {
        return Err(format!("stress pages: {} failures", total.failures));
    }
    println!("stress pages: ok, no failures");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_valid_and_mostly_small() {
        let mut rng = Rng::new(3);
        let mut small = 0;
        for _ in 0..10_000 {
            let req = random_req(&mut rng, 25);
            match req {
                PagesReq::Order(o) => assert!(o <= RKMEM_MAX_ORDER),
                PagesReq::Exact(n) => assert!((1..=1024).contains(&n)),
            }
            if req.pages() <= 8 {
                small += 1;
            }
        }
        assert!(small > 5_000, "{small}");
    }
}
