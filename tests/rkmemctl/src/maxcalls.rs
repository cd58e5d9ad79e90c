// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl max-calls`: the longest calls a user can make, for the lockup detectors to watch
//! (the guest test lowers their thresholds first): `RKMEM_IOC_BENCH` of every timed kind at
//! the most iterations and repetitions the ABI allows, meanwhile a second thread's benchmark
//! on the same file waiting for the first (it must wait interruptibly: signalled, it returns
//! `EINTR`), and the largest compaction (slabs and arena over every file, after fragmenting
//! the arena). Each call must succeed; the kernel must not report a soft lockup, an RCU stall
//! or a hung task (the guest test checks dmesg). Prints `N passed, N failed`.

use crate::dev::{Device, PagesReq};
use crate::fuzz::report_checks;
use crate::uapi::{self, RkmemBench};
use nix::errno::Errno;
use nix::libc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Counts of the calls (the maxima by default; smaller for a quick try).
pub struct Options {
    pub iters: u32,
    pub reps: u32,
}

fn bench(d: &Device, mut b: RkmemBench) -> Result<RkmemBench, Errno> {
    d.raw_ioctl(uapi::RKMEM_IOC_BENCH, std::ptr::from_mut(&mut b) as usize)?;
    Ok(b)
}

/// (name, kind, size, align, order): the timed kinds.
pub const KINDS: [(&str, u32, u32, u32, u32); 8] = [
    ("slab pair 64 B", uapi::RKMEM_BENCH_SLAB_PAIR, 64, 8, 0),
    ("slab batch 64 B", uapi::RKMEM_BENCH_SLAB_BATCH, 64, 8, 0),
    ("rkmalloc 64 B", uapi::RKMEM_BENCH_KMALLOC, 64, 0, 0),
    ("pages order 3", uapi::RKMEM_BENCH_PAGES, 0, 0, 3),
    ("mempool 256 B", uapi::RKMEM_BENCH_MEMPOOL, 256, 0, 0),
    ("remote frees 64 B", uapi::RKMEM_BENCH_REMOTE, 64, 8, 0),
    ("trace up to 64 KiB", uapi::RKMEM_BENCH_TRACE, 65536, 0, 0),
    ("compact 256 B", uapi::RKMEM_BENCH_COMPACT, 256, 8, 0),
];

pub fn point(kind: u32, size: u32, align: u32, order: u32, iters: u32, reps: u32) -> RkmemBench {
    let seeded = matches!(kind, uapi::RKMEM_BENCH_TRACE | uapi::RKMEM_BENCH_COMPACT);
    RkmemBench {
        kind,
        size,
        align,
        order,
        iters,
        // The compaction benchmark is one untimed run (no repetitions).
        reps: if kind == uapi::RKMEM_BENCH_COMPACT {
            0
        } else {
            reps
        },
        seed: u64::from(seeded),
        ..Default::default()
    }
}

/// A benchmark on a file that another thread's long benchmark holds: the waiter is signalled
/// until it returns, and must return `EINTR` while the holder still runs.
fn waiter_is_interruptible(o: &Options) -> Result<(), String> {
    crate::pooltest::install_sigusr1()?;
    let d = Device::open().map_err(|e| format!("open: {e}"))?;
    let holder_done = AtomicBool::new(false);
    let (tid_tx, tid_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let (dr, done) = (&d, &holder_done);
        let holder = s.spawn(move || {
            let r = bench(
                dr,
                point(uapi::RKMEM_BENCH_KMALLOC, 64, 0, 0, o.iters, o.reps),
            );
            done.store(true, Ordering::SeqCst);
            r
        });
        // The holder has the file's benchmark lock once its first repetition runs: give it
        // a moment to get there.
        std::thread::sleep(Duration::from_millis(300));
        s.spawn(move || {
            // SAFETY: pthread_self has no precondition.
            let _ = tid_tx.send(unsafe { libc::pthread_self() });
            let r = bench(dr, point(uapi::RKMEM_BENCH_KMALLOC, 64, 0, 0, 1, 1));
            let _ = tx.send((r, done.load(Ordering::SeqCst)));
        });
        let verdict = (|| {
            let tid = tid_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "the waiter thread did not start".to_string())?;
            let t0 = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: `tid` is a live thread of this process until it sends its result
                // (not yet received); SIGUSR1 has a handler.
                unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
                if let Ok((r, holder_was_done)) = rx.try_recv() {
                    if holder_was_done {
                        return Err(format!(
                            "the waiter returned ({r:?}) only after the holder finished: its wait was \
                             not interruptible (or the holder was too short: more --iters)"));
                    }
                    return match r {
                        Err(Errno::EINTR) => Ok(()),
                        other => Err(format!("the waiter got {other:?}, want EINTR")),
                    };
                }
                if t0.elapsed() > Duration::from_secs(600) {
                    return Err("the waiter did not return in 600 s of signals".into());
                }
            }
        })();
        // The holder may be interrupted too (between repetitions): either answer is fine.
        match holder.join() {
            Ok(Ok(_)) | Ok(Err(Errno::EINTR)) => verdict,
            Ok(Err(e)) => verdict.and(Err(format!("the holder's benchmark failed: {e}"))),
            Err(_) => Err("the holder thread panicked".into()),
        }
    })
}

/// Every timed kind at `o`'s counts (latency: reps must be 1).
fn every_kind(o: &Options) -> Vec<(String, Result<(), String>)> {
    let d = match Device::open() {
        Ok(d) => d,
        Err(e) => return vec![("open".into(), Err(e.to_string()))],
    };
    let mut out = Vec::new();
    for (name, kind, size, align, order) in KINDS {
        // The compaction benchmark's most objects (RKMEM_BENCH_COMPACT: 100000).
        let iters = if kind == uapi::RKMEM_BENCH_COMPACT {
            o.iters.min(100_000)
        } else {
            o.iters
        };
        let t0 = Instant::now();
        let r = match bench(&d, point(kind, size, align, order, iters, o.reps)) {
            Ok(_) => Ok(()),
            Err(Errno::ENODEV) if kind == uapi::RKMEM_BENCH_REMOTE => Ok(()),
            Err(e) => Err(format!("{e}")),
        };
        let reps = point(kind, size, align, order, iters, o.reps).reps;
        println!(
            "# {name}: {iters} iterations x {reps} repetitions in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        out.push((format!("bench {name} at {iters} x {reps}"), r));
    }
    let r = bench(&d, point(uapi::RKMEM_BENCH_LATENCY, 64, 8, 0, o.iters, 1))
        .map(drop)
        .map_err(|e| e.to_string());
    out.push((format!("bench latency 64 B at {} x 1", o.iters), r));
    out
}

/// The largest compaction: 8000 single pages (a file holds at most 16384 handles) with every
/// other one freed, then slabs and arena.
fn largest_compaction() -> Result<(), String> {
    let d = Device::open().map_err(|e| format!("open: {e}"))?;
    let mut held = Vec::new();
    for i in 0..8_000u32 {
        let a = d
            .pages_alloc(PagesReq::Order(0))
            .map_err(|e| format!("page {i}: {e}"))?;
        held.push(a.handle);
    }
    for h in held.iter().step_by(2) {
        d.free(*h).map_err(|e| format!("free: {e}"))?;
    }
    let c = d
        .compact(uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA)
        .map_err(|e| format!("RKMEM_IOC_COMPACT: {e}"))?;
    println!(
        "# compaction: {} pages moved, {} slots freed",
        c.pages_moved, c.blocks_freed
    );
    Ok(())
}

pub fn run(o: &Options) -> Result<(), String> {
    let mut checks: Vec<(String, Result<(), String>)> = vec![(
        "a benchmark waiting for another on its file is interruptible (EINTR)".into(),
        waiter_is_interruptible(o),
    )];
    checks.extend(every_kind(o));
    checks.push((
        "the largest compaction succeeds".into(),
        largest_compaction(),
    ));
    let (p, f) = report_checks(&checks);
    println!("max-calls: {p} passed, {f} failed");
    if f != 0 {
        return Err(format!("max-calls: {f} checks failed"));
    }
    Ok(())
}
