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
use crate::workers::{self, Crew, Extra, Settings, Stop};
use nix::errno::Errno;
use std::time::Duration;

/// Relative weights of the orders `0..=10`: mostly small blocks, as real callers ask.
const ORDER_WEIGHTS: [u32; RKMEM_MAX_ORDER as usize + 1] = [40, 20, 12, 8, 6, 4, 3, 2, 2, 1, 1];

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Options {
    pub common: Settings,
    /// Percentage of allocations that are exact-size (`RKMEM_PAGES_EXACT`).
    pub exact_pct: u64,
}

/// What one thread did besides the common counts.
#[derive(Clone, Debug, Default)]
struct Written {
    bytes_written: u64,
}

impl Extra for Written {
    fn add(&mut self, o: &Self) {
        self.bytes_written += o.bytes_written;
    }
}

type Report = workers::Report<Written>;

type Live = workers::Live<PagesReq>;

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
            self.r.x.bytes_written += bytes;
        }
        self.live.push(Live {
            handle: a.handle,
            bytes,
            what: req,
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

    fn free(&mut self) {
        let i = self.rng.below(self.live.len() as u64) as usize;
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
            if self.live.is_empty() || (self.live.len() < self.opts.common.live && r < 50) {
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

fn worker(idx: usize, cpu: usize, opts: &Options, stop: &Stop) -> Report {
    let mut r = Report::new(cpu);
    let Some(dev) = r.pinned_device() else {
        return r;
    };
    let seed = opts.common.seed;
    let mut w = Worker {
        dev,
        rng: Rng::new(pattern::mix64(seed ^ (idx as u64 + 1))),
        seed,
        opts,
        live: Vec::new(),
        buf: vec![0u8; (PAGE_SIZE << RKMEM_MAX_ORDER) as usize],
        r,
    };
    w.run(stop, opts.common.quota(idx));
    w.r
}

/// Runs the stress test and prints its report; `Err` if anything failed.
pub fn run(opts: &Options) -> Result<(), String> {
    let c = &opts.common;
    c.check()?;
    // Fail early, in the main thread, if the device is not there.
    drop(Device::open().map_err(|e| format!("{}: {e}", crate::dev::DEV_PATH))?);
    let cpus = workers::assign(c.threads);
    println!("{}", c.header("stress pages", Some(&cpus)));
    let mut peak_arena_mib = 0;
    let crew = Crew::new("stress pages", &cpus, c.duration);
    let (reports, secs) = crew.run(
        |i, cpu, stop| worker(i, cpu, opts, stop),
        // Watch the arena grow while the workers run.
        || {
            if let Ok(e) = procfs::extfrag() {
                peak_arena_mib = peak_arena_mib.max(e.arena_mib);
            }
            std::thread::sleep(Duration::from_millis(200));
        },
        |_, cpu| Report::panicked(cpu),
    );
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
            r.x.bytes_written >> 20,
            r.bytes_verified >> 20,
            r.failures
        );
    }
    let total = workers::total(&reports);
    workers::print_failures(&reports);
    println!(
        "{}; {} allocs ({} ENOMEM), {} frees, {} checks; {} MiB verified; arena peak {} MiB",
        workers::total_ops(total.ops, secs),
        total.allocs,
        total.enomem,
        total.frees,
        total.checks,
        total.bytes_verified >> 20,
        peak_arena_mib,
    );
    workers::verdict("stress pages", total.failures)
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
