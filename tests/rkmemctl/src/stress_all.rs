// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl stress all`: every allocator of rkmem at once. Threads pinned round robin to the
//! CPUs, each with its own open file, two caches of odd sizes and three mempools (over one of
//! its caches, over rkmalloc, over buddy blocks), run a random mix of allocations (buddy orders
//! and exact sizes, cache objects, rkmalloc size classes, whole pages and vmalloc, mempool
//! elements), content checks and frees. Every allocation is filled with a pattern keyed by its
//! handle and checked in full before it is freed.
//!
//! While it runs, a progress bar is drawn on stderr (only when stderr is a terminal). At the
//! end: ops/s, latency percentiles per operation, the answers (`ENOMEM` and `EDQUOT` are
//! expected near the limits and counted), verification failures (must be 0), and the check
//! that /proc/rkmem is back at its starting counts once everything is freed and trimmed.

use crate::dev::{CacheSpec, Device, PagesReq, PoolSource, PAGE_SIZE};
use crate::fuzz::{report_checks, sanity, Snapshot};
use crate::pattern::{self, Rng};
use crate::stress::{allowed_cpus, pin};
use crate::uapi::RKMEM_MAX_ORDER;
use nix::errno::Errno;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failures kept per thread for the report (all are counted).
const KEEP_FAILURES: usize = 8;
/// Largest allocation of the run: rkmalloc past the page route (vmalloc), 6 MiB.
const MAX_BYTES: u64 = 6 << 20;

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
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// The operations whose latency is measured (one ioctl each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Pages,
    Exact,
    Cache,
    Rkmalloc,
    Pool,
    Write,
    Read,
    Free,
}

const OPS: [Op; 8] = [
    Op::Pages,
    Op::Exact,
    Op::Cache,
    Op::Rkmalloc,
    Op::Pool,
    Op::Write,
    Op::Read,
    Op::Free,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Pages => "alloc pages (order)",
            Op::Exact => "alloc pages (exact)",
            Op::Cache => "alloc cache object",
            Op::Rkmalloc => "rkmalloc",
            Op::Pool => "mempool alloc",
            Op::Write => "write",
            Op::Read => "read",
            Op::Free => "free",
        }
    }
}

/// A log-linear latency histogram (like HdrHistogram with 16 sub-buckets per power of two:
/// every value is kept within 1/16 of itself).
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const SUB: u64 = 16;

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            counts: vec![0; 64 * SUB as usize],
            n: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        // v in [2^e, 2^(e+1)), e >= 4: keep the top 5 bits, 16 buckets per power of two.
        let e = 63 - u64::from(v.leading_zeros());
        let sub = (v >> (e - 4)) - SUB;
        (SUB + (e - 4) * SUB + sub) as usize
    }

    /// The largest value that falls into bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let e = (i - SUB) / SUB + 4;
        let sub = (i - SUB) % SUB;
        ((SUB + sub + 1) << (e - 4)).wrapping_sub(1)
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, v: u64) {
        let i = Self::index(v).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max = self.max.max(o.max);
    }

    /// The value at percentile `p` (0..=100): no more than 1/16 above the true one.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// What one thread did.
#[derive(Clone, Default)]
struct Report {
    cpu: usize,
    ops: u64,
    allocs: u64,
    frees: u64,
    checks: u64,
    enomem: u64,
    edquot: u64,
    verify_failures: u64,
    errors: u64,
    bytes_verified: u64,
    peak_live: usize,
    messages: Vec<String>,
    hist: Vec<Hist>,
}

impl Report {
    fn fail(&mut self, verify: bool, msg: String) {
        if verify {
            self.verify_failures += 1;
        } else {
            self.errors += 1;
        }
        if self.messages.len() < KEEP_FAILURES {
            self.messages.push(msg);
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pages(PagesReq),
    Cache(u32),
    Rkmalloc(u64),
    Pool(u32),
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Pages(r) => write!(f, "pages {r}"),
            Kind::Cache(id) => write!(f, "object of cache {id}"),
            Kind::Rkmalloc(n) => write!(f, "rkmalloc {n}"),
            Kind::Pool(id) => write!(f, "element of pool {id}"),
        }
    }
}

struct Live {
    handle: u64,
    bytes: u64,
    kind: Kind,
}

/// Relative weights of the buddy orders `0..=10`: mostly small blocks.
const ORDER_WEIGHTS: [u32; RKMEM_MAX_ORDER as usize + 1] = [40, 20, 12, 8, 6, 4, 3, 2, 1, 1, 1];

/// Shared counters for the progress bar.
struct Progress {
    ops: AtomicU64,
    live: AtomicU64,
    failures: AtomicU64,
}

struct Worker<'a> {
    dev: Device,
    rng: Rng,
    seed: u64,
    opts: &'a Options,
    caches: Vec<u32>,
    pools: Vec<u32>,
    live: Vec<Live>,
    buf: Vec<u8>,
    progress: &'a Progress,
    r: Report,
}

impl Worker<'_> {
    fn timed<T>(&mut self, op: Op, f: impl FnOnce(&Device) -> T) -> T {
        let t = Instant::now();
        let out = f(&self.dev);
        let ns = t.elapsed().as_nanos() as u64;
        self.r.hist[op as usize].record(ns);
        out
    }

    /// A random rkmalloc size: mostly a size class, some whole pages, rarely vmalloc.
    fn rkmalloc_size(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=79 => {
                let limit = [64, 512, 4096][self.rng.below(3) as usize];
                1 + self.rng.below(limit)
            }
            80..=98 => 4097 + self.rng.below(256 << 10),
            _ => (4 << 20) + 1 + self.rng.below(MAX_BYTES - (4 << 20)),
        }
    }

    fn alloc(&mut self) {
        let which = self.rng.weighted(&[30, 10, 20, 25, 15]);
        let (op, kind) = match which {
            0 => (
                Op::Pages,
                Kind::Pages(PagesReq::Order(self.rng.weighted(&ORDER_WEIGHTS) as u32)),
            ),
            1 => {
                let span = 1u64 << self.rng.below(u64::from(RKMEM_MAX_ORDER) + 1);
                (
                    Op::Exact,
                    Kind::Pages(PagesReq::Exact(1 + self.rng.below(span) as u32)),
                )
            }
            2 if !self.caches.is_empty() => {
                let id = self.caches[self.rng.below(self.caches.len() as u64) as usize];
                (Op::Cache, Kind::Cache(id))
            }
            4 if !self.pools.is_empty() => {
                let id = self.pools[self.rng.below(self.pools.len() as u64) as usize];
                (Op::Pool, Kind::Pool(id))
            }
            _ => (Op::Rkmalloc, Kind::Rkmalloc(self.rkmalloc_size())),
        };
        self.r.allocs += 1;
        let res = self.timed(op, |d| match kind {
            Kind::Pages(req) => d.pages_alloc(req),
            Kind::Cache(id) => d.obj_alloc(id),
            Kind::Rkmalloc(n) => d.rkmalloc(n),
            Kind::Pool(id) => d.pool_alloc(id, false),
        });
        let a = match res {
            Ok(a) => a,
            Err(Errno::ENOMEM) => {
                self.r.enomem += 1;
                return;
            }
            Err(Errno::EDQUOT) => {
                self.r.edquot += 1;
                return;
            }
            Err(e) => return self.r.fail(false, format!("alloc {kind}: {e}")),
        };
        let want = match kind {
            Kind::Pages(req) => Some(req.pages() * PAGE_SIZE),
            Kind::Rkmalloc(n) => crate::dev::rkmalloc_bytes(n),
            _ => None,
        };
        if want.is_some_and(|w| w != a.bytes) || a.bytes == 0 || a.bytes > MAX_BYTES {
            self.r.fail(
                false,
                format!(
                    "alloc {kind}: {} bytes, want {want:?} (handle {:#x})",
                    a.bytes, a.handle
                ),
            );
            let _ = self.dev.free(a.handle);
            return;
        }
        if a.handle == 0 || self.live.iter().any(|l| l.handle == a.handle) {
            self.r.fail(
                false,
                format!("alloc {kind}: handle {:#x} is zero or in use", a.handle),
            );
            return;
        }
        let bytes = a.bytes;
        let key = pattern::key(a.handle, self.seed);
        let mut buf = std::mem::take(&mut self.buf);
        pattern::fill(key, 0, &mut buf[..bytes as usize]);
        let res = self.timed(Op::Write, |d| d.write(a.handle, 0, &buf[..bytes as usize]));
        self.buf = buf;
        if let Err(e) = res {
            self.r.fail(
                false,
                format!("write {bytes} bytes to {:#x} ({kind}): {e}", a.handle),
            );
        }
        self.live.push(Live {
            handle: a.handle,
            bytes,
            kind,
        });
        self.r.peak_live = self.r.peak_live.max(self.live.len());
    }

    fn verify(&mut self, i: usize, offset: u64, len: u64) {
        let (handle, bytes, kind) = (self.live[i].handle, self.live[i].bytes, self.live[i].kind);
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.timed(Op::Read, |d| {
            d.read(handle, offset, &mut buf[..len as usize])
        });
        if let Err(e) = res {
            self.buf = buf;
            return self.r.fail(
                false,
                format!("read {len} bytes at {offset} of {handle:#x} ({kind}): {e}"),
            );
        }
        let key = pattern::key(handle, self.seed);
        if let Some((at, want, got)) = pattern::first_mismatch(key, offset, &buf[..len as usize]) {
            self.r.fail(
                true,
                format!(
                    "content of {handle:#x} ({kind}, {bytes} bytes) differs at byte {at}: {want:#04x} written, {got:#04x} read"
                ),
            );
        } else {
            self.r.bytes_verified += len;
        }
        self.buf = buf;
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
        if let Err(e) = self.timed(Op::Free, |d| d.free(l.handle)) {
            self.r
                .fail(false, format!("free {:#x} ({}): {e}", l.handle, l.kind));
        }
    }

    fn setup(&mut self, idx: usize) {
        for k in 0..2 {
            // Odd sizes: anything from 1 to 4096 bytes, alignment 1..=64.
            let size = (1 + self.rng.below(4096) as u32) | 1;
            let align = 1u32 << self.rng.below(7);
            let name = format!("stress{idx}.{k}-{}", self.seed % 100_000);
            let spec = match CacheSpec::new(&name, size.min(4096), align) {
                Ok(s) if k == 1 => s.with_ctor(0xa5),
                Ok(s) => s,
                Err(e) => return self.r.fail(false, e),
            };
            match self.dev.cache_create(&spec) {
                Ok(c) => self.caches.push(c.id),
                Err(e) => self.r.fail(
                    false,
                    format!("cache {name} size {size} align {align}: {e}"),
                ),
            }
        }
        let min = 4 + self.rng.below(13) as u32;
        let mut sources = vec![
            PoolSource::Rkmalloc(1 + self.rng.below(8192)),
            PoolSource::Pages(self.rng.below(3) as u32),
        ];
        if let Some(&c) = self.caches.first() {
            sources.push(PoolSource::Cache(c));
        }
        for s in sources {
            match self.dev.pool_create(s, min, 0) {
                Ok(id) => self.pools.push(id),
                Err(Errno::ENOMEM) => self.r.enomem += 1,
                Err(e) => self
                    .r
                    .fail(false, format!("pool over {s:?} min {min}: {e}")),
            }
        }
    }

    fn teardown(&mut self) {
        while !self.live.is_empty() {
            self.free(self.live.len() - 1);
        }
        for id in std::mem::take(&mut self.pools) {
            if let Err(e) = self.dev.pool_destroy(id) {
                self.r.fail(false, format!("destroy pool {id}: {e}"));
            }
        }
        for id in std::mem::take(&mut self.caches) {
            if let Err(e) = self.dev.cache_destroy(id) {
                self.r.fail(false, format!("destroy cache {id}: {e}"));
            }
        }
    }

    fn run(&mut self, stop: &AtomicBool, deadline: Instant, quota: u64) {
        while self.r.ops < quota {
            if self.r.ops.is_multiple_of(16) {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                self.progress.ops.fetch_add(16, Ordering::Relaxed);
            }
            let r = self.rng.below(100);
            if self.live.is_empty() || (self.live.len() < self.opts.live && r < 50) {
                self.alloc();
            } else if r < 70 {
                self.check();
            } else {
                let i = self.rng.below(self.live.len() as u64) as usize;
                self.free(i);
            }
            self.r.ops += 1;
        }
        self.progress
            .failures
            .fetch_add(self.r.verify_failures + self.r.errors, Ordering::Relaxed);
    }
}

fn worker(
    idx: usize,
    cpu: usize,
    opts: &Options,
    stop: &AtomicBool,
    deadline: Instant,
    progress: &Progress,
) -> Report {
    let mut r = Report {
        cpu,
        hist: vec![Hist::default(); OPS.len()],
        ..Default::default()
    };
    if let Err(e) = pin(cpu) {
        r.fail(false, format!("sched_setaffinity(CPU {cpu}): {e}"));
        return r;
    }
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => {
            r.fail(false, format!("open {}: {e}", crate::dev::DEV_PATH));
            return r;
        }
    };
    let quota = opts.ops.map_or(u64::MAX, |ops| {
        ops / opts.threads as u64 + u64::from((idx as u64) < ops % opts.threads as u64)
    });
    let mut w = Worker {
        dev,
        rng: Rng::new(pattern::mix64(opts.seed ^ (idx as u64 + 1) ^ 0xa11)),
        seed: opts.seed,
        opts,
        caches: Vec::new(),
        pools: Vec::new(),
        live: Vec::new(),
        buf: vec![0u8; MAX_BYTES as usize],
        progress,
        r,
    };
    w.setup(idx);
    progress.live.fetch_add(1, Ordering::Relaxed);
    w.run(stop, deadline, quota);
    w.teardown();
    progress.live.fetch_sub(1, Ordering::Relaxed);
    w.r
}

fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { nix::libc::isatty(2) == 1 }
}

fn draw(frac: f64, ops: u64, secs: f64, failures: u64) {
    const W: usize = 30;
    let done = ((frac.clamp(0.0, 1.0)) * W as f64) as usize;
    let bar: String = "#".repeat(done) + &".".repeat(W - done);
    let mut e = std::io::stderr();
    let _ = write!(
        e,
        "\r[{bar}] {:3.0}% {ops} ops {:.0} ops/s {secs:.0}s failures {failures} ",
        frac * 100.0,
        ops as f64 / secs.max(1e-3)
    );
    let _ = e.flush();
}

fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.0}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}", ns as f64 / 1e3)
    }
}

/// Runs the stress test and prints its report; `Err` if anything failed.
pub fn run(opts: &Options) -> Result<(), String> {
    if opts.threads == 0 || opts.live == 0 {
        return Err("--threads and --live must be at least 1".into());
    }
    let before = Snapshot::take()?;
    let cpus = allowed_cpus();
    let assigned: Vec<usize> = (0..opts.threads).map(|i| cpus[i % cpus.len()]).collect();
    println!(
        "stress all: {} threads, seed {:#x}, at most {:.1} s{}, up to {} live allocations per thread",
        opts.threads,
        opts.seed,
        opts.duration.as_secs_f64(),
        opts.ops.map_or(String::new(), |n| format!(" or {n} operations")),
        opts.live,
    );
    let _ = std::io::stdout().flush();
    let stop = AtomicBool::new(false);
    let progress = Progress {
        ops: AtomicU64::new(0),
        live: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    };
    let bar = opts.progress && stderr_is_tty();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = assigned
            .iter()
            .enumerate()
            .map(|(i, &cpu)| {
                let (stop, progress) = (&stop, &progress);
                s.spawn(move || worker(i, cpu, opts, stop, deadline, progress))
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            let now = Instant::now();
            if bar {
                let secs = (now - start).as_secs_f64();
                let done = progress.ops.load(Ordering::Relaxed);
                let by_time = secs / opts.duration.as_secs_f64();
                let by_ops = opts.ops.map_or(0.0, |n| done as f64 / n.max(1) as f64);
                draw(
                    by_time.max(by_ops),
                    done,
                    secs,
                    progress.failures.load(Ordering::Relaxed),
                );
            }
            if now > deadline + Duration::from_secs(60) {
                stop.store(true, Ordering::Relaxed);
            }
            if now > deadline + Duration::from_secs(120) {
                eprintln!("\nrkmemctl: stress all: workers still busy 120 s after the deadline");
                std::process::exit(2);
            }
        }
        if bar {
            eprint!("\r{:78}\r", "");
        }
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join().unwrap_or_else(|_| {
                    let mut r = Report {
                        cpu: assigned[i],
                        hist: vec![Hist::default(); OPS.len()],
                        ..Default::default()
                    };
                    r.fail(false, "thread panicked".into());
                    r
                })
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    let mut total = Report {
        hist: vec![Hist::default(); OPS.len()],
        ..Default::default()
    };
    for (i, r) in reports.iter().enumerate() {
        println!(
            "thread {i} (CPU {}): {} ops: {} allocs ({} ENOMEM, {} EDQUOT), {} frees, {} checks, peak {} live, {} MiB verified, {} verification failures, {} errors",
            r.cpu, r.ops, r.allocs, r.enomem, r.edquot, r.frees, r.checks, r.peak_live,
            r.bytes_verified >> 20, r.verify_failures, r.errors
        );
        total.ops += r.ops;
        total.allocs += r.allocs;
        total.enomem += r.enomem;
        total.edquot += r.edquot;
        total.frees += r.frees;
        total.checks += r.checks;
        total.bytes_verified += r.bytes_verified;
        total.verify_failures += r.verify_failures;
        total.errors += r.errors;
        for (a, b) in total.hist.iter_mut().zip(&r.hist) {
            a.merge(b);
        }
    }
    for (i, r) in reports.iter().enumerate() {
        for m in &r.messages {
            println!("FAIL thread {i}: {m}");
        }
    }
    println!(
        "total: {} ops in {secs:.2} s = {:.0} ops/s; {} allocs ({} ENOMEM, {} EDQUOT), {} frees, {} checks; {} MiB verified",
        total.ops,
        total.ops as f64 / secs,
        total.allocs,
        total.enomem,
        total.edquot,
        total.frees,
        total.checks,
        total.bytes_verified >> 20,
    );
    let mut t = format!(
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
        "latency (us)", "count", "p50", "p90", "p99", "max"
    );
    for op in OPS {
        let h = &total.hist[op as usize];
        if h.n == 0 {
            continue;
        }
        let _ = writeln!(
            t,
            "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9}",
            op.name(),
            h.n,
            us(h.percentile(50.0)),
            us(h.percentile(90.0)),
            us(h.percentile(99.0)),
            us(h.max)
        );
    }
    print!("{t}");
    println!("verification failures: {}", total.verify_failures);
    let mut checks: Vec<(String, Result<(), String>)> = vec![
        (
            "every allocation read back as written".into(),
            if total.verify_failures == 0 {
                Ok(())
            } else {
                Err(format!("{} verification failures", total.verify_failures))
            },
        ),
        (
            "every call answered as documented (ENOMEM/EDQUOT counted)".into(),
            if total.errors == 0 {
                Ok(())
            } else {
                Err(format!("{} unexpected answers", total.errors))
            },
        ),
        (
            "the run did work".into(),
            if total.allocs > 0 && total.frees > 0 {
                Ok(())
            } else {
                Err(format!("{} allocs, {} frees", total.allocs, total.frees))
            },
        ),
    ];
    checks.push((
        "the module answers correctly after the run".into(),
        sanity(),
    ));
    let after = Snapshot::take()?;
    checks.extend(before.compare(&after, 0));
    let (p, f) = report_checks(&checks);
    println!("stress all: {p} passed, {f} failed");
    if f != 0 {
        return Err(format!("stress all: {f} checks failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Hist::default();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        for (p, want) in [(50.0, 500_000.0), (90.0, 900_000.0), (99.0, 990_000.0)] {
            let got = h.percentile(p) as f64;
            assert!(
                got >= want * 0.99 && got <= want * 1.07,
                "p{p}: {got} vs {want}"
            );
        }
        assert_eq!(h.percentile(100.0), 1_000_000);
        assert_eq!(h.max, 1_000_000);
        let mut small = Hist::default();
        for v in [0, 1, 5, 15] {
            small.record(v);
        }
        assert_eq!(small.percentile(50.0), 1);
        assert_eq!(small.percentile(100.0), 15);
    }

    #[test]
    fn histogram_buckets_are_monotonic() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([u64::MAX / 2]) {
            let i = Hist::index(v);
            assert!(i >= last, "{v}");
            assert!(
                Hist::upper(i) >= v,
                "{v}: bucket {i} upper {}",
                Hist::upper(i)
            );
            last = i;
        }
    }
}
