// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl bench`: rkmem's allocators against the host kernel's, side by side in one boot.
//!
//! Every timing comes from `RKMEM_IOC_BENCH`, which runs rkmem's loop and the host kernel's
//! counterpart inside the kernel, one call per repetition. Each repetition times both sides
//! back to back, alternating which goes first; the reported ratio is the median of the
//! per-repetition ratios rkmem/host with a distribution-free 95% interval ([`stats`]). On all
//! CPUs, one pinned thread per CPU (each with its own file) runs the first side at the same
//! time, then, after a barrier, the other, so the two are never measured against each other's
//! load; throughput is summed over threads.
//!
//! Output: one JSON object per line, each prefixed with `RKBENCH ` so that it can be picked out
//! of a serial console log. Benchmarks report; they never fail on a number.

use crate::dev::Device;
use crate::procfs;
use crate::stats;
use crate::uapi::{self, RkmemBench};
use crate::workers::{allowed_cpus, pin};
use nix::errno::Errno;
use std::sync::{Arc, Barrier};
use std::thread;

/// Object sizes of the slab benchmarks (the list).
pub const SLAB_SIZES: [u32; 7] = [16, 64, 117, 128, 192, 256, 1024];
/// rkmalloc's size classes (`rust/core/sizeclass.rs`), the sizes of the kmalloc benchmark.
pub const KMALLOC_SIZES: [u32; 12] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096];
/// Sizes between the classes, also timed by the kmalloc benchmark (both sides round up).
pub const KMALLOC_BETWEEN: [u32; 3] = [100, 200, 3000];
/// Buddy orders of the page benchmark.
pub const ORDERS: [u32; 6] = [0, 1, 2, 3, 9, 10];
/// Element sizes of the mempool benchmark.
pub const POOL_SIZES: [u32; 3] = [64, 256, 1024];
/// Object sizes of the remote-free benchmark.
pub const REMOTE_SIZES: [u32; 3] = [64, 256, 1024];
/// Object sizes of the footprint benchmark.
pub const FOOTPRINT_SIZES: [u32; 6] = [16, 64, 117, 256, 1000, 3000];
/// Object sizes of the compaction benchmark.
pub const COMPACT_SIZES: [u32; 4] = [64, 256, 1000, 3000];
/// Objects of the footprint sequence (fewer for large objects: at most 32 MiB).
pub const FOOTPRINT_OBJECTS: u32 = 20000;
/// The largest request of the mixed trace.
pub const TRACE_MAX: u32 = 65536;
/// Alignment of the slab caches: what `kmem_cache_create` gives with align 0 on x86_64
/// (`ARCH_SLAB_MINALIGN`, a word).
pub const SLAB_ALIGN: u32 = 8;

/// What to run and how long (`rkmemctl bench` options).
#[derive(clap::Args, Clone, Debug)]
pub struct Opts {
    /// Operations (alloc+free pairs) per repetition, 1..=1000000.
    #[arg(long, default_value_t = 20000)]
    pub iters: u32,
    /// Repetitions per benchmark, each timing rkmem and the host back to back (alternating
    /// which goes first); the median of their ratios is reported with a 95% interval. At least
    /// 15 for an interval worth reading; 1..=1000.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: u32,
    /// Run only these: slab, batch, kmalloc, pages, mempool, remote, trace, footprint, compact,
    /// compacting, latency, layout, frag (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Step between object sizes of the objects-per-slab table (1: every size 8..4096).
    #[arg(long, default_value_t = 1)]
    pub layout_step: u32,
    /// Operations of the fragmentation workload.
    #[arg(long, default_value_t = 200000)]
    pub frag_ops: u32,
    /// Seed of the fragmentation workload, the mixed trace and the footprint sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn emit(fields: &[(&str, String)]) {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!("RKBENCH {{{}}}", body.join(","));
}

fn s(v: &str) -> String {
    format!("\"{v}\"")
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

/// One call of `RKMEM_IOC_BENCH`.
fn call(dev: &Device, mut b: RkmemBench) -> Result<RkmemBench, Errno> {
    dev.raw_ioctl(uapi::RKMEM_IOC_BENCH, std::ptr::from_mut(&mut b) as usize)?;
    Ok(b)
}

/// One benchmark point: kind, size, align, order.
#[derive(Clone, Copy, Debug)]
struct Point {
    name: &'static str,
    kind: u32,
    size: u32,
    align: u32,
    order: u32,
    /// The trace's seed (trace points; 0 otherwise).
    seed: u64,
}

/// One repetition of a point: rkmem's and the host's time per operation (averaged over the
/// threads when several CPUs run it) and which side went first.
#[derive(Clone, Copy, Debug)]
struct Rep {
    rk_ns: f64,
    host_ns: f64,
    /// Operations per second, summed over the threads.
    rk_ops: f64,
    host_ops: f64,
    host_first: bool,
}

/// The repetitions of a point on one set of CPUs.
struct Outcome {
    reps: Vec<Rep>,
    /// The last answer of the first thread (layout and bytes fields).
    last: RkmemBench,
}

fn request(p: Point, iters: u32, flags: u32) -> RkmemBench {
    // Slab kinds keep their two caches in the thread's file from one repetition to the next
    // (creating a cache waits for RCU grace periods); they go when the file closes.
    let keep = match p.kind {
        uapi::RKMEM_BENCH_SLAB_PAIR | uapi::RKMEM_BENCH_SLAB_BATCH => uapi::RKMEM_BENCH_KEEP,
        _ => 0,
    };
    RkmemBench {
        kind: p.kind,
        flags: flags | keep,
        size: p.size,
        align: p.align,
        order: p.order,
        iters,
        reps: 1,
        seed: p.seed,
        ..Default::default()
    }
}

/// Runs `reps` repetitions of `p` on each of `cpus` at once, one pinned thread per CPU with its
/// own file, one `RKMEM_IOC_BENCH` call per side and repetition, alternating which side goes
/// first. On one CPU both sides of a repetition run back to back in one call
/// (`RKMEM_BENCH_HOST_FIRST` on every other one); on several, every CPU runs the first side at
/// once, then (after a barrier) the second, so neither side is measured under the other's load.
fn run_point(p: Point, cpus: &[usize], iters: u32, reps: u32) -> Result<Outcome, String> {
    let one = cpus.len() == 1;
    let barrier = Arc::new(Barrier::new(cpus.len()));
    let handles: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let barrier = barrier.clone();
            thread::spawn(move || -> Result<Vec<(RkmemBench, RkmemBench)>, String> {
                let pinned = pin(cpu).map_err(|e| format!("sched_setaffinity(CPU {cpu}): {e}"));
                let dev = Device::open().map_err(|e| format!("open: {e}"));
                let phase = |flags: u32| match (&pinned, &dev) {
                    (Ok(()), Ok(d)) => {
                        call(d, request(p, iters, flags)).map_err(|e| format!("bench: {e}"))
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                };
                let mut out = Vec::with_capacity(reps as usize);
                let mut first_err = None;
                for i in 0..reps {
                    let host_first = i % 2 == 1;
                    if one {
                        let flags = if host_first {
                            uapi::RKMEM_BENCH_HOST_FIRST
                        } else {
                            0
                        };
                        let b = phase(flags)?;
                        out.push((b, b));
                        continue;
                    }
                    // Every thread goes through every barrier, also after an error, so that
                    // the others are not left waiting.
                    let order = if host_first {
                        [uapi::RKMEM_BENCH_ONLY_HOST, uapi::RKMEM_BENCH_ONLY_RKMEM]
                    } else {
                        [uapi::RKMEM_BENCH_ONLY_RKMEM, uapi::RKMEM_BENCH_ONLY_HOST]
                    };
                    let mut got = [RkmemBench::default(); 2];
                    for (slot, flags) in got.iter_mut().zip(order) {
                        barrier.wait();
                        match phase(flags) {
                            Ok(b) => *slot = b,
                            Err(e) => first_err = first_err.or(Some(e)),
                        }
                    }
                    let (rk, host) = if host_first {
                        (got[1], got[0])
                    } else {
                        (got[0], got[1])
                    };
                    out.push((rk, host));
                }
                first_err.map_or(Ok(out), Err)
            })
        })
        .collect();
    let mut per_thread = Vec::new();
    for h in handles {
        per_thread.push(
            h.join()
                .map_err(|_| "a bench thread panicked".to_string())??,
        );
    }
    let n = per_thread.len() as f64;
    let ns = |ps: u64| ps as f64 / 1000.0;
    let reps = (0..reps as usize)
        .map(|i| {
            let side = |f: fn(&(RkmemBench, RkmemBench)) -> u64| {
                per_thread.iter().map(move |t| ns(f(&t[i])))
            };
            Rep {
                rk_ns: side(|(r, _)| r.rkmem_ps).sum::<f64>() / n,
                host_ns: side(|(_, h)| h.host_ps).sum::<f64>() / n,
                rk_ops: side(|(r, _)| r.rkmem_ps).map(|t| 1e9 / t).sum(),
                host_ops: side(|(_, h)| h.host_ps).map(|t| 1e9 / t).sum(),
                host_first: i % 2 == 1,
            }
        })
        .collect();
    Ok(Outcome {
        reps,
        last: per_thread
            .first()
            .and_then(|t| t.last())
            .map_or_else(RkmemBench::default, |(r, _)| *r),
    })
}

/// A JSON array of numbers.
fn arr(v: impl Iterator<Item = f64>) -> String {
    let items: Vec<String> = v.map(num).collect();
    format!("[{}]", items.join(","))
}

fn timed(p: Point, cpus: &[usize], opts: &Opts, iters: u32) -> Result<(), String> {
    let sets: Vec<&[usize]> = if cpus.len() > 1 {
        vec![&cpus[..1], cpus]
    } else {
        vec![cpus]
    };
    for set in sets {
        let o = run_point(p, set, iters, opts.reps)?;
        let ratios: Vec<f64> = o.reps.iter().map(|r| r.rk_ns / r.host_ns).collect();
        let st = stats::summarize(&ratios, 0.95)
            .ok_or_else(|| format!("a repetition timed zero: {ratios:?}"))?;
        let med = |f: fn(&Rep) -> f64| stats::median(&o.reps.iter().map(f).collect::<Vec<_>>());
        let mut f = vec![
            ("bench", s(p.name)),
            ("size", p.size.to_string()),
            ("align", p.align.to_string()),
            ("order", p.order.to_string()),
            ("cpus", set.len().to_string()),
            ("iters", iters.to_string()),
            ("reps", opts.reps.to_string()),
            ("rkmem_ns", num(med(|r| r.rk_ns))),
            ("host_ns", num(med(|r| r.host_ns))),
            ("ratio", num(st.median)),
            ("ratio_lo", num(st.lo)),
            ("ratio_hi", num(st.hi)),
            ("ratio_coverage", num(st.coverage)),
            ("ratio_min", num(st.min)),
            ("ratio_max", num(st.max)),
            ("rkmem_mops", num(med(|r| r.rk_ops) / 1e6)),
            ("host_mops", num(med(|r| r.host_ops) / 1e6)),
            ("rep_rkmem_ns", arr(o.reps.iter().map(|r| r.rk_ns))),
            ("rep_host_ns", arr(o.reps.iter().map(|r| r.host_ns))),
            (
                "rep_host_first",
                format!(
                    "[{}]",
                    o.reps
                        .iter()
                        .map(|r| if r.host_first { "1" } else { "0" })
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        ];
        if p.kind == uapi::RKMEM_BENCH_TRACE {
            f.push(("seed", p.seed.to_string()));
            f.push(("rkmem_peak_pages", o.last.rkmem_pages_held.to_string()));
            f.push(("host_peak_pages", o.last.host_pages_held.to_string()));
        }
        if p.kind == uapi::RKMEM_BENCH_SLAB_BATCH {
            f.push(("rkmem_bytes", o.last.rkmem_bytes.to_string()));
            f.push(("host_bytes", o.last.host_bytes.to_string()));
        }
        if matches!(
            p.kind,
            uapi::RKMEM_BENCH_SLAB_PAIR | uapi::RKMEM_BENCH_SLAB_BATCH
        ) {
            f.push(("rkmem_objs", o.last.rkmem_objs.to_string()));
            f.push(("rkmem_pages", o.last.rkmem_pages.to_string()));
        }
        emit(&f);
    }
    Ok(())
}

fn read_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The answer of one size's layout probe.
type Probe = (u32, Result<RkmemBench, Errno>);

/// Objects per slab of rkmem's caches vs SLUB's, for every `step`-th size 8..4096 (and the
/// slab benchmark's sizes), plus SLUB's own kmalloc-N caches from /sys/kernel/slab. Each size
/// creates and destroys a cache of each kind, which waits for RCU grace periods: several
/// threads, each with its own file, probe sizes at once (nothing here is timed).
fn layout(step: u32) -> Result<(), String> {
    let mut sizes: Vec<u32> = (8..=4096).step_by(step.max(1) as usize).collect();
    sizes.extend(SLAB_SIZES);
    sizes.push(4096);
    sizes.sort_unstable();
    sizes.dedup();
    let threads = (allowed_cpus().len() * 4).clamp(1, 16);
    let sizes = Arc::new(sizes);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let sizes = sizes.clone();
            thread::spawn(move || -> Result<Vec<Probe>, String> {
                let dev = Device::open().map_err(|e| format!("open: {e}"))?;
                Ok(sizes
                    .iter()
                    .skip(t)
                    .step_by(threads)
                    .map(|&size| {
                        let req = RkmemBench {
                            kind: uapi::RKMEM_BENCH_LAYOUT,
                            size,
                            align: SLAB_ALIGN,
                            ..Default::default()
                        };
                        (size, call(&dev, req))
                    })
                    .collect())
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| "a layout thread panicked".to_string())??,
        );
    }
    all.sort_by_key(|(size, _)| *size);
    for (size, r) in all {
        match r {
            Ok(b) => emit(&[
                ("bench", s("layout")),
                ("size", size.to_string()),
                ("align", SLAB_ALIGN.to_string()),
                ("rkmem_objs", b.rkmem_objs.to_string()),
                ("rkmem_pages", b.rkmem_pages.to_string()),
                ("host_objs", b.host_objs.to_string()),
                ("host_pages", b.host_pages.to_string()),
            ]),
            Err(e) => emit(&[
                ("bench", s("layout")),
                ("size", size.to_string()),
                ("error", s(&e.to_string())),
            ]),
        }
    }
    let sys = std::path::Path::new("/sys/kernel/slab");
    if !sys.is_dir() {
        emit(&[
            ("bench", s("sysfs_slab")),
            ("error", s("/sys/kernel/slab is absent (kernel config)")),
        ]);
        return Ok(());
    }
    for size in KMALLOC_SIZES {
        let dir = format!("/sys/kernel/slab/kmalloc-{}", name_of(size));
        let objs = read_u32(&format!("{dir}/objs_per_slab"));
        let order = read_u32(&format!("{dir}/order"));
        let osize = read_u32(&format!("{dir}/slab_size"));
        let opt = |v: Option<u32>| v.map_or("null".to_string(), |v| v.to_string());
        emit(&[
            ("bench", s("sysfs_slab")),
            ("cache", s(&format!("kmalloc-{}", name_of(size)))),
            ("size", size.to_string()),
            ("objs_per_slab", opt(objs)),
            ("order", opt(order)),
            ("slab_size", opt(osize)),
        ]);
    }
    Ok(())
}

/// kmalloc's cache name suffix: `8` .. `2k`, `4k`.
fn name_of(size: u32) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}k", size / 1024)
    } else {
        size.to_string()
    }
}

/// A long random workload of page allocations and frees on the arena, sampling the unusable
/// free space index per order along the way; everything is freed and trimmed at the end.
fn frag(dev: &Device, ops: u32, seed: u64) -> Result<(), String> {
    use crate::dev::PagesReq;
    use crate::pattern::Rng;
    let before = procfs::buddyinfo()?;
    let mut rng = Rng::new(seed);
    let mut live: Vec<u64> = Vec::new();
    // Orders weighted toward small blocks, like real page demand.
    const WEIGHTS: [u32; 6] = [40, 20, 15, 10, 10, 5];
    let samples = 20u32;
    let every = (ops / samples).max(1);
    let mut failed = 0u64;
    for i in 1..=ops {
        // Hold about 1500 blocks at a time: free more often once above it.
        let free_p = if live.len() > 1500 { 70 } else { 40 };
        if !live.is_empty() && rng.below(100) < free_p {
            let k = rng.below(live.len() as u64) as usize;
            let h = live.swap_remove(k);
            dev.free(h).map_err(|e| format!("free: {e}"))?;
        } else {
            let order = rng.weighted(&WEIGHTS) as u32;
            match dev.pages_alloc(PagesReq::Order(order)) {
                Ok(a) => live.push(a.handle),
                Err(_) => failed += 1,
            }
        }
        if i % every == 0 {
            let e = procfs::extfrag()?;
            let idx: Vec<String> = e
                .unusable
                .iter()
                .map(|v| format!("{:.3}", *v as f64 / 1000.0))
                .collect();
            emit(&[
                ("bench", s("frag")),
                ("op", i.to_string()),
                ("live", live.len().to_string()),
                ("arena_pages", e.arena_pages.to_string()),
                ("free_pages", e.free_pages.to_string()),
                ("largest_free_order", e.largest_free_order.to_string()),
                ("unusable", format!("[{}]", idx.join(","))),
                ("alloc_failures", failed.to_string()),
            ]);
        }
    }
    for h in live.drain(..) {
        dev.free(h).map_err(|e| format!("free: {e}"))?;
    }
    dev.trim(uapi::RKMEM_TRIM_SLABS | uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA)
        .map_err(|e| format!("trim: {e}"))?;
    let after = procfs::buddyinfo()?;
    emit(&[
        ("bench", s("frag_end")),
        ("buddyinfo_restored", (before == after).to_string()),
    ]);
    Ok(())
}

/// One untimed or single-call benchmark: the answer, or the error emitted as a row (counted).
fn single(dev: &Device, b: RkmemBench, name: &str) -> Option<RkmemBench> {
    match call(dev, b) {
        Ok(r) => Some(r),
        Err(e) => {
            emit(&[
                ("bench", s(name)),
                ("size", b.size.to_string()),
                ("order", b.order.to_string()),
                ("error", s(&format!("bench: {e}"))),
            ]);
            None
        }
    }
}

/// The footprint rows: per size, the pages each side holds for the same live set. Returns the
/// number of failed sizes.
fn footprint(dev: &Device, seed: u64) -> Result<u32, String> {
    let mut errors = 0;
    for size in FOOTPRINT_SIZES {
        let n = FOOTPRINT_OBJECTS.min((32 << 20) / size);
        let b = RkmemBench {
            kind: uapi::RKMEM_BENCH_FOOTPRINT,
            size,
            align: SLAB_ALIGN,
            iters: n,
            seed,
            ..Default::default()
        };
        let Some(r) = single(dev, b, "footprint") else {
            errors += 1;
            continue;
        };
        // The live set: n, minus the freed half, plus n/4 (the same for both sides).
        emit(&[
            ("bench", s("footprint")),
            ("size", size.to_string()),
            ("align", SLAB_ALIGN.to_string()),
            ("objects", n.to_string()),
            ("seed", seed.to_string()),
            ("rkmem_pages", r.rkmem_pages_held.to_string()),
            ("rkmem_meta_bytes", r.rkmem_bytes.to_string()),
            ("host_pages", r.host_pages_held.to_string()),
            // The off-slab headers count, in pages.
            (
                "ratio",
                num((r.rkmem_pages_held as f64 + r.rkmem_bytes as f64 / 4096.0)
                    / r.host_pages_held.max(1) as f64),
            ),
        ]);
    }
    Ok(errors)
}

/// The compaction rows: per size, the pages each side holds after the same fragmenting
/// sequence (fill, free a random 90%), SLUB shrunk and rkmem compacted. Returns the failures.
/// A thread on another CPU that, until stopped, fragments a cache of its own file (2000
/// objects of 256 bytes allocated, a random 90% freed) and compacts it (slabs and arena), over
/// and over: the load under which `slab_pair_compacting` times the slab pairs.
struct Compactor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Result<(u64, u64), String>>,
}

impl Compactor {
    fn start(cpu: usize) -> Result<Compactor, String> {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> Result<(u64, u64), String> {
            crate::workers::pin(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
            let d = Device::open().map_err(|e| format!("open: {e}"))?;
            let c = d
                .cache_create(&crate::dev::CacheSpec::new("bench_compactor", 256, 8)?)
                .map_err(|e| format!("cache create: {e}"))?;
            let mut rng = crate::pattern::Rng::new(7);
            let (mut runs, mut moved) = (0u64, 0u64);
            let mut live = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let mut batch = Vec::with_capacity(2000);
                for _ in 0..2000 {
                    batch.push(d.obj_alloc(c.id).map_err(|e| format!("alloc: {e}"))?);
                }
                for a in batch {
                    if rng.below(10) == 0 {
                        live.push(a);
                    } else {
                        d.free(a.handle).map_err(|e| format!("free: {e}"))?;
                    }
                }
                let r = d
                    .compact(uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA)
                    .map_err(|e| format!("compact: {e}"))?;
                runs += 1;
                moved += r.objects_moved;
                if live.len() > 20000 {
                    for a in live.drain(..) {
                        d.free(a.handle).map_err(|e| format!("free: {e}"))?;
                    }
                }
            }
            for a in live {
                d.free(a.handle).map_err(|e| format!("free: {e}"))?;
            }
            d.cache_destroy(c.id)
                .map_err(|e| format!("cache destroy: {e}"))?;
            Ok((runs, moved))
        });
        Ok(Compactor { stop, thread })
    }

    /// Stops the thread: (compactions run, objects moved).
    fn stop(self) -> Result<(u64, u64), String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the compactor panicked".into()))
    }
}

fn compaction(dev: &Device, seed: u64) -> Result<u32, String> {
    let mut errors = 0;
    for size in COMPACT_SIZES {
        let n = FOOTPRINT_OBJECTS.min((32 << 20) / size);
        let b = RkmemBench {
            kind: uapi::RKMEM_BENCH_COMPACT,
            size,
            align: SLAB_ALIGN,
            iters: n,
            seed,
            ..Default::default()
        };
        let Some(r) = single(dev, b, "compact") else {
            errors += 1;
            continue;
        };
        emit(&[
            ("bench", s("compact")),
            ("size", size.to_string()),
            ("align", SLAB_ALIGN.to_string()),
            ("objects", n.to_string()),
            ("seed", seed.to_string()),
            ("moved", r.rkmem_objs.to_string()),
            ("ns_per_move", num(r.rkmem_ps as f64 / 1000.0)),
            ("rkmem_pages", r.rkmem_pages_held.to_string()),
            ("rkmem_meta_bytes", r.rkmem_bytes.to_string()),
            ("host_pages", r.host_pages_held.to_string()),
            (
                "ratio",
                num((r.rkmem_pages_held as f64 + r.rkmem_bytes as f64 / 4096.0)
                    / r.host_pages_held.max(1) as f64),
            ),
        ]);
    }
    Ok(errors)
}

/// The latency rows: p50/p99/max of single allocations and frees, per allocator, one CPU.
/// Returns the number of failed points.
fn latency(dev: &Device, iters: u32) -> Result<u32, String> {
    let mut errors = 0;
    let points = [
        ("slab", 64, SLAB_ALIGN, 0),
        ("slab", 1024, SLAB_ALIGN, 0),
        ("kmalloc", 64, 0, 0),
        ("kmalloc", 4096, 0, 0),
        ("pages", 0, 0, 0),
        ("pages", 0, 0, 3),
    ];
    for (what, size, align, order) in points {
        let b = RkmemBench {
            kind: uapi::RKMEM_BENCH_LATENCY,
            size,
            align,
            order,
            iters,
            reps: 1,
            ..Default::default()
        };
        let Some(r) = single(dev, b, "latency") else {
            errors += 1;
            continue;
        };
        let l = |v: &[u64; 6], i: usize| v[i].to_string();
        emit(&[
            ("bench", s("latency")),
            ("what", s(what)),
            ("size", size.to_string()),
            ("align", align.to_string()),
            ("order", order.to_string()),
            ("iters", iters.to_string()),
            ("rkmem_alloc_p50", l(&r.rkmem_lat_ns, 0)),
            ("rkmem_alloc_p99", l(&r.rkmem_lat_ns, 1)),
            ("rkmem_alloc_max", l(&r.rkmem_lat_ns, 2)),
            ("rkmem_free_p50", l(&r.rkmem_lat_ns, 3)),
            ("rkmem_free_p99", l(&r.rkmem_lat_ns, 4)),
            ("rkmem_free_max", l(&r.rkmem_lat_ns, 5)),
            ("host_alloc_p50", l(&r.host_lat_ns, 0)),
            ("host_alloc_p99", l(&r.host_lat_ns, 1)),
            ("host_alloc_max", l(&r.host_lat_ns, 2)),
            ("host_free_p50", l(&r.host_lat_ns, 3)),
            ("host_free_p99", l(&r.host_lat_ns, 4)),
            ("host_free_max", l(&r.host_lat_ns, 5)),
        ]);
    }
    Ok(errors)
}

/// `rkmemctl bench`.
pub fn run(opts: &Opts) -> Result<(), String> {
    let want = |n: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == n);
    let dev = Device::open().map_err(|e| format!("open {}: {e}", crate::dev::DEV_PATH))?;
    let v = dev.version().map_err(|e| format!("version: {e}"))?;
    if v.features & uapi::RKMEM_FEAT_BENCH == 0 {
        return Err("the module has no RKMEM_IOC_BENCH (feature bit missing)".into());
    }
    let cpus = allowed_cpus();
    let buddy_before = procfs::buddyinfo()?;
    emit(&[
        ("bench", s("meta")),
        ("cpus", cpus.len().to_string()),
        ("iters", opts.iters.to_string()),
        ("reps", opts.reps.to_string()),
        (
            "kernel",
            s(std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()),
        ),
    ]);
    let mut errors = 0;
    let mut go = |p: Point, iters: u32| {
        if let Err(e) = timed(p, &cpus, opts, iters) {
            errors += 1;
            emit(&[
                ("bench", s(p.name)),
                ("size", p.size.to_string()),
                ("order", p.order.to_string()),
                ("error", s(&e)),
            ]);
        }
    };
    let point = |name, kind, size, align, order| Point {
        name,
        kind,
        size,
        align,
        order,
        seed: 0,
    };
    if want("slab") {
        for size in SLAB_SIZES {
            go(
                point(
                    "slab_pair",
                    uapi::RKMEM_BENCH_SLAB_PAIR,
                    size,
                    SLAB_ALIGN,
                    0,
                ),
                opts.iters,
            );
        }
    }
    if want("batch") {
        for size in SLAB_SIZES {
            let p = point(
                "slab_batch",
                uapi::RKMEM_BENCH_SLAB_BATCH,
                size,
                SLAB_ALIGN,
                0,
            );
            go(p, opts.iters.max(uapi::RKMEM_BENCH_BATCH));
        }
    }
    if want("kmalloc") {
        for size in KMALLOC_SIZES.into_iter().chain(KMALLOC_BETWEEN) {
            go(
                point("kmalloc", uapi::RKMEM_BENCH_KMALLOC, size, 0, 0),
                opts.iters,
            );
        }
    }
    if want("pages") {
        for order in ORDERS {
            // Big blocks cost far more per operation: fewer of them.
            let iters = if order >= 9 {
                (opts.iters / 20).max(1)
            } else {
                opts.iters
            };
            go(point("pages", uapi::RKMEM_BENCH_PAGES, 0, 0, order), iters);
        }
    }
    if want("mempool") {
        for size in POOL_SIZES {
            go(
                point("mempool", uapi::RKMEM_BENCH_MEMPOOL, size, 0, 0),
                opts.iters,
            );
        }
    }
    if want("remote") {
        if cpus.len() < 2 {
            emit(&[("bench", s("remote")), ("skipped", s("one CPU"))]);
        } else {
            for size in REMOTE_SIZES {
                let p = point("remote", uapi::RKMEM_BENCH_REMOTE, size, SLAB_ALIGN, 0);
                go(p, opts.iters.max(uapi::RKMEM_BENCH_BATCH));
            }
        }
    }
    if want("trace") {
        let p = Point {
            seed: opts.seed,
            ..point("trace", uapi::RKMEM_BENCH_TRACE, TRACE_MAX, 0, 0)
        };
        go(p, opts.iters.max(uapi::RKMEM_BENCH_TRACE_SLOTS));
    }
    if want("footprint") {
        errors += footprint(&dev, opts.seed)?;
    }
    if want("compact") {
        errors += compaction(&dev, opts.seed)?;
    }
    if want("compacting") {
        if cpus.len() < 2 {
            emit(&[
                ("bench", s("slab_pair_compacting")),
                ("skipped", s("one CPU")),
            ]);
        } else {
            let busy = Compactor::start(cpus[1])?;
            for size in SLAB_SIZES {
                let p = point(
                    "slab_pair_compacting",
                    uapi::RKMEM_BENCH_SLAB_PAIR,
                    size,
                    SLAB_ALIGN,
                    0,
                );
                if let Err(e) = timed(p, &cpus[..1], opts, opts.iters) {
                    errors += 1;
                    emit(&[
                        ("bench", s(p.name)),
                        ("size", size.to_string()),
                        ("error", s(&e)),
                    ]);
                }
            }
            let (runs, moved) = busy.stop()?;
            emit(&[
                ("bench", s("compacting_meta")),
                ("compactions", runs.to_string()),
                ("objects_moved", moved.to_string()),
            ]);
        }
    }
    if want("latency") {
        errors += latency(&dev, opts.iters.max(uapi::RKMEM_BENCH_BATCH) * 5)?;
    }
    if want("layout") {
        layout(opts.layout_step)?;
    }
    // The timed benchmarks left nothing allocated: after a trim, buddyinfo is as it was.
    dev.trim(uapi::RKMEM_TRIM_SLABS | uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA)
        .map_err(|e| format!("trim: {e}"))?;
    let buddy_after = procfs::buddyinfo()?;
    emit(&[
        ("bench", s("buddyinfo_check")),
        ("restored", (buddy_before == buddy_after).to_string()),
    ]);
    if want("frag") {
        frag(&dev, opts.frag_ops, opts.seed)?;
    }
    emit(&[("bench", s("done")), ("errors", errors.to_string())]);
    Ok(())
}
