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
use crate::uapi::RKMEM_MAX_ORDER;
use crate::workers::{self, Crew, Extra, Settings, Stop, Unread};
use nix::errno::Errno;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest allocation of the run: rkmalloc past the page route (vmalloc), 6 MiB.
const MAX_BYTES: u64 = 6 << 20;

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Options {
    pub common: Settings,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Compact in a loop from the main thread while the workers run.
    pub compact: bool,
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

/// What one thread did besides the common counts (whose `failures` are the unexpected answers).
#[derive(Clone)]
struct Timed {
    verify_failures: u64,
    /// Latencies, per [`Op`].
    hist: Vec<Hist>,
}

impl Default for Timed {
    fn default() -> Timed {
        Timed {
            verify_failures: 0,
            hist: vec![Hist::default(); OPS.len()],
        }
    }
}

impl Extra for Timed {
    fn add(&mut self, o: &Self) {
        self.verify_failures += o.verify_failures;
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            a.merge(b);
        }
    }
}

type Report = workers::Report<Timed>;

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

type Live = workers::Live<Kind>;

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
        self.r.x.hist[op as usize].record(ns);
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
            Err(e) if self.r.at_limit(e) => return,
            Err(e) => return self.r.fail(format!("alloc {kind}: {e}")),
        };
        let want = match kind {
            Kind::Pages(req) => Some(req.pages() * PAGE_SIZE),
            Kind::Rkmalloc(n) => crate::dev::rkmalloc_bytes(n),
            _ => None,
        };
        if want.is_some_and(|w| w != a.bytes) || a.bytes == 0 || a.bytes > MAX_BYTES {
            self.r.fail(format!(
                "alloc {kind}: {} bytes, want {want:?} (handle {:#x})",
                a.bytes, a.handle
            ));
            let _ = self.dev.free(a.handle);
            return;
        }
        if a.handle == 0 || self.live.iter().any(|l| l.handle == a.handle) {
            self.r.fail(format!(
                "alloc {kind}: handle {:#x} is zero or in use",
                a.handle
            ));
            return;
        }
        let bytes = a.bytes;
        let key = pattern::key(a.handle, self.seed);
        let mut buf = std::mem::take(&mut self.buf);
        pattern::fill(key, 0, &mut buf[..bytes as usize]);
        let res = self.timed(Op::Write, |d| d.write(a.handle, 0, &buf[..bytes as usize]));
        self.buf = buf;
        if let Err(e) = res {
            self.r.fail(format!(
                "write {bytes} bytes to {:#x} ({kind}): {e}",
                a.handle
            ));
        }
        self.live.push(Live {
            handle: a.handle,
            bytes,
            what: kind,
        });
        self.r.peak_live = self.r.peak_live.max(self.live.len());
    }

    fn verify(&mut self, i: usize, offset: u64, len: u64) {
        let l = self.live[i];
        let mut buf = std::mem::take(&mut self.buf);
        let res = l.read_back(self.seed, offset, &mut buf[..len as usize], |h, o, b| {
            self.timed(Op::Read, |d| d.read(h, o, b))
        });
        self.buf = buf;
        match res {
            Ok(()) => self.r.bytes_verified += len,
            Err(Unread::Failed(m)) => self.r.fail(m),
            Err(Unread::Differs(m)) => {
                self.r.x.verify_failures += 1;
                self.r.keep(m);
            }
        }
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
        if let Err(e) = self.timed(Op::Free, |d| d.free(l.handle)) {
            self.r
                .fail(format!("free {:#x} ({}): {e}", l.handle, l.what));
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
                Err(e) => return self.r.fail(e),
            };
            match self.dev.cache_create(&spec) {
                Ok(c) => self.caches.push(c.id),
                Err(e) => self
                    .r
                    .fail(format!("cache {name} size {size} align {align}: {e}")),
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
                Err(e) => self.r.fail(format!("pool over {s:?} min {min}: {e}")),
            }
        }
    }

    fn teardown(&mut self) {
        while !self.live.is_empty() {
            self.free(self.live.len() - 1);
        }
        for id in std::mem::take(&mut self.pools) {
            if let Err(e) = self.dev.pool_destroy(id) {
                self.r.fail(format!("destroy pool {id}: {e}"));
            }
        }
        for id in std::mem::take(&mut self.caches) {
            if let Err(e) = self.dev.cache_destroy(id) {
                self.r.fail(format!("destroy cache {id}: {e}"));
            }
        }
    }

    fn run(&mut self, stop: &Stop, quota: u64) {
        while self.r.ops < quota {
            if stop.due(self.r.ops) {
                break;
            }
            if self.r.ops.is_multiple_of(16) {
                self.progress.ops.fetch_add(16, Ordering::Relaxed);
            }
            let r = self.rng.below(100);
            if self.live.is_empty() || (self.live.len() < self.opts.common.live && r < 50) {
                self.alloc();
            } else if r < 70 {
                self.check();
            } else {
                let i = self.rng.below(self.live.len() as u64) as usize;
                self.free(i);
            }
            self.r.ops += 1;
        }
        self.progress.failures.fetch_add(
            self.r.x.verify_failures + self.r.failures,
            Ordering::Relaxed,
        );
    }
}

fn worker(idx: usize, cpu: usize, opts: &Options, stop: &Stop, progress: &Progress) -> Report {
    let mut r = Report::new(cpu);
    let Some(dev) = r.pinned_device() else {
        return r;
    };
    let seed = opts.common.seed;
    let mut w = Worker {
        dev,
        rng: Rng::new(pattern::mix64(seed ^ (idx as u64 + 1) ^ 0xa11)),
        seed,
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
    w.run(stop, opts.common.quota(idx));
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
    let c = &opts.common;
    c.check()?;
    let before = Snapshot::take()?;
    let cpus = workers::assign(c.threads);
    println!("{}", c.header("stress all", None));
    let _ = std::io::stdout().flush();
    let progress = Progress {
        ops: AtomicU64::new(0),
        live: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    };
    let bar = opts.progress && stderr_is_tty();
    let crew = Crew::new("stress all", &cpus, c.duration).newline_before_hang();
    let start = crew.start;
    let compactor = if opts.compact {
        Some(Device::open().map_err(|e| format!("open /dev/rkmem: {e}"))?)
    } else {
        None
    };
    let mut compacted = crate::uapi::RkmemCompact::default();
    let (mut compactions, mut compact_errors) = (0u64, Vec::new());
    let (reports, secs) = crew.run(
        |i, cpu, stop| worker(i, cpu, opts, stop, &progress),
        || {
            match &compactor {
                Some(d) => {
                    let flags = crate::uapi::RKMEM_COMPACT_SLABS | crate::uapi::RKMEM_COMPACT_ARENA;
                    match d.compact(flags) {
                        Ok(r) => {
                            compactions += 1;
                            compacted.objects_moved += r.objects_moved;
                            compacted.pages_moved += r.pages_moved;
                            compacted.blocks_freed += r.blocks_freed;
                        }
                        // ENOMEM near the limits is an answer the interface documents.
                        Err(Errno::ENOMEM) => {}
                        Err(e) => compact_errors.push(e),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
            if bar {
                let secs = start.elapsed().as_secs_f64();
                let done = progress.ops.load(Ordering::Relaxed);
                let by_time = secs / c.duration.as_secs_f64();
                let by_ops = c.ops.map_or(0.0, |n| done as f64 / n.max(1) as f64);
                draw(
                    by_time.max(by_ops),
                    done,
                    secs,
                    progress.failures.load(Ordering::Relaxed),
                );
            }
        },
        |_, cpu| Report::panicked(cpu),
    );
    if bar {
        eprint!("\r{:78}\r", "");
    }
    // Closed before the final snapshot counts the open files.
    drop(compactor);
    for (i, r) in reports.iter().enumerate() {
        println!(
            "thread {i} (CPU {}): {} ops: {} allocs ({} ENOMEM, {} EDQUOT), {} frees, {} checks, peak {} live, {} MiB verified, {} verification failures, {} errors",
            r.cpu, r.ops, r.allocs, r.enomem, r.edquot, r.frees, r.checks, r.peak_live,
            r.bytes_verified >> 20, r.x.verify_failures, r.failures
        );
    }
    let total = workers::total(&reports);
    workers::print_failures(&reports);
    println!(
        "{}; {} allocs ({} ENOMEM, {} EDQUOT), {} frees, {} checks; {} MiB verified",
        workers::total_ops(total.ops, secs),
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
        let h = &total.x.hist[op as usize];
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
    if opts.compact {
        println!(
            "compactions meanwhile: {compactions}: {} objects and {} pages moved, {} blocks freed",
            compacted.objects_moved, compacted.pages_moved, compacted.blocks_freed
        );
    }
    println!("verification failures: {}", total.x.verify_failures);
    let mut checks: Vec<(String, Result<(), String>)> = vec![
        (
            "every allocation read back as written".into(),
            if total.x.verify_failures == 0 {
                Ok(())
            } else {
                Err(format!("{} verification failures", total.x.verify_failures))
            },
        ),
        (
            "every call answered as documented (ENOMEM/EDQUOT counted)".into(),
            if total.failures == 0 {
                Ok(())
            } else {
                Err(format!("{} unexpected answers", total.failures))
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
    if opts.compact {
        checks.push((
            "compaction ran throughout, answering as documented".into(),
            if compactions > 0 && compact_errors.is_empty() {
                Ok(())
            } else {
                Err(format!("{compactions} runs, errors {compact_errors:?}"))
            },
        ));
    }
    checks.push((
        "the module answers correctly after the run".into(),
        sanity(),
    ));
    let after = Snapshot::take()?;
    checks.extend(before.compare(&after));
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
