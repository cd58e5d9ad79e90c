// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl stress kernel`: the module's in-kernel stress engine (`RKMEM_IOC_STRESS`) called
//! in a loop for a number of seconds, each call at most `--call-ms` long (the module bounds a
//! call at 10 s: its caller cannot take a signal while the workers run). Checks that no pattern
//! changed and no free was refused, that every allocator took part, that frees crossed CPUs,
//! and that /proc/rkmem is back at its starting counts; prints the totals and `N passed, N
//! failed`, and a `RKSTRESS` line for the suite's summary.

use crate::dev::Device;
use crate::fuzz::{report_checks, sanity, Snapshot};
use crate::uapi::{self, RkmemStress};
use std::time::{Duration, Instant};

/// What to run.
pub struct Options {
    pub seconds: f64,
    pub seed: u64,
    pub call_ms: u32,
    /// Steps per CPU of one call (default: the most, so that the time limit ends each call).
    pub ops: Option<u64>,
    pub corrupt_one: bool,
    /// Run until this many operations are done (`seconds` is then the most it may take).
    pub total_ops: Option<u64>,
}

const KINDS: [&str; 5] = [
    "cache objects",
    "rkmalloc",
    "page blocks",
    "exact pages",
    "mempool",
];

/// The sum of several calls' answers.
#[derive(Default)]
struct Sum {
    calls: u64,
    cpus: u32,
    ops: u64,
    allocs: [u64; 5],
    frees: u64,
    remote_frees: u64,
    bytes: u64,
    enomem: u64,
    failures: u64,
}

impl Sum {
    fn add(&mut self, s: &RkmemStress) {
        self.calls += 1;
        self.cpus = self.cpus.max(s.cpus);
        self.ops += s.done_ops;
        for (a, b) in self.allocs.iter_mut().zip(s.allocs) {
            *a += b;
        }
        self.frees += s.frees;
        self.remote_frees += s.remote_frees;
        self.bytes += s.bytes_verified;
        self.enomem += s.enomem;
        self.failures += s.failures;
    }
}

/// One call with `arg`'s inputs.
fn call(d: &Device, seed: u64, ms: u32, ops: u64, flags: u32) -> Result<RkmemStress, String> {
    let mut s = RkmemStress {
        seed,
        ops,
        ms,
        flags,
        ..Default::default()
    };
    d.stress(&mut s)
        .map_err(|e| format!("RKMEM_IOC_STRESS: {e}"))?;
    Ok(s)
}

/// The arguments the module must refuse with `EINVAL`.
fn bad_arguments(d: &Device) -> Result<(), String> {
    let good = RkmemStress {
        seed: 1,
        ops: 10,
        ms: 10,
        ..Default::default()
    };
    let cases: [(&str, RkmemStress); 7] = [
        ("ops 0", RkmemStress { ops: 0, ..good }),
        (
            "ops above RKMEM_STRESS_MAX_OPS",
            RkmemStress {
                ops: uapi::RKMEM_STRESS_MAX_OPS + 1,
                ..good
            },
        ),
        ("ms 0", RkmemStress { ms: 0, ..good }),
        (
            "ms above RKMEM_STRESS_MAX_MS",
            RkmemStress {
                ms: uapi::RKMEM_STRESS_MAX_MS + 1,
                ..good
            },
        ),
        (
            "unknown flag",
            RkmemStress {
                flags: 1 << 7,
                ..good
            },
        ),
        (
            "nonzero reserved",
            RkmemStress {
                reserved: 1,
                ..good
            },
        ),
        ("nonzero pad", RkmemStress { pad: 1, ..good }),
    ];
    for (what, mut arg) in cases {
        match d.stress(&mut arg) {
            Err(nix::errno::Errno::EINVAL) => {}
            other => return Err(format!("{what}: {other:?}, want EINVAL")),
        }
    }
    Ok(())
}

/// Runs the engine for `o.seconds`; prints the totals and `N passed, N failed`.
pub fn run(o: &Options) -> Result<(), String> {
    if !(1..=uapi::RKMEM_STRESS_MAX_MS).contains(&o.call_ms) {
        return Err(format!(
            "--call-ms {}: want 1..={}",
            o.call_ms,
            uapi::RKMEM_STRESS_MAX_MS
        ));
    }
    let ops = o.ops.unwrap_or(uapi::RKMEM_STRESS_MAX_OPS);
    let before = Snapshot::take()?;
    let d = Device::open().map_err(|e| format!("{}: {e}", crate::dev::DEV_PATH))?;
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    checks.push((
        "bad arguments are refused with EINVAL".into(),
        bad_arguments(&d),
    ));
    let flags = if o.corrupt_one {
        uapi::RKMEM_STRESS_CORRUPT_ONE
    } else {
        0
    };
    let mut sum = Sum::default();
    let t0 = Instant::now();
    let limit = Duration::from_secs_f64(o.seconds);
    let mut err = None;
    let enough = |sum: &Sum| o.total_ops.is_some_and(|n| sum.ops >= n);
    while t0.elapsed() < limit && !enough(&sum) {
        let left = limit.saturating_sub(t0.elapsed()).as_millis() as u32;
        let ms = o.call_ms.min(left.max(1));
        match call(&d, o.seed.wrapping_add(sum.calls), ms, ops, flags) {
            Ok(s) => sum.add(&s),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
        if o.corrupt_one {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(d);
    println!(
        "stress kernel: {} calls on {} CPUs in {:.1} s, seed {:#x}",
        sum.calls, sum.cpus, secs, o.seed
    );
    println!(
        "  {} operations ({:.2} M/s), {} frees, {} of them on another CPU",
        sum.ops,
        sum.ops as f64 / secs / 1e6,
        sum.frees,
        sum.remote_frees
    );
    for (name, n) in KINDS.iter().zip(sum.allocs) {
        println!("  {name:>14}: {n} allocations");
    }
    println!(
        "  {} bytes verified, {} allocations refused with ENOMEM, {} failures",
        sum.bytes, sum.enomem, sum.failures
    );
    println!(
        "RKSTRESS ops={} bytes={} failures={} calls={}",
        sum.ops, sum.bytes, sum.failures, sum.calls
    );
    checks.push(("every call succeeded".into(), err.map_or(Ok(()), Err)));
    if let Some(n) = o.total_ops {
        checks.push((
            format!("{n} operations within the {} s allowed", o.seconds),
            if enough(&sum) {
                Ok(())
            } else {
                Err(format!("{} operations when the time was up", sum.ops))
            },
        ));
    }
    let want = if o.corrupt_one {
        u64::from(sum.cpus) * sum.calls
    } else {
        0
    };
    checks.push((
        if o.corrupt_one {
            "the checker found the byte each worker changed (one failure per worker)".into()
        } else {
            "no pattern changed and no free was refused".into()
        },
        if sum.failures == want {
            Ok(())
        } else {
            Err(format!(
                "{} failures, want {want} (see dmesg)",
                sum.failures
            ))
        },
    ));
    checks.push((
        "every allocator took part".into(),
        match KINDS.iter().zip(sum.allocs).find(|(_, n)| *n == 0) {
            Some((name, _)) => Err(format!("no allocation of {name}")),
            None => Ok(()),
        },
    ));
    checks.push((
        "frees crossed CPUs".into(),
        if sum.cpus < 2 || sum.remote_frees > 0 {
            Ok(())
        } else {
            Err(format!("no remote free on {} CPUs", sum.cpus))
        },
    ));
    checks.push((
        "every allocation was freed".into(),
        if sum.allocs.iter().sum::<u64>() == sum.frees {
            Ok(())
        } else {
            Err(format!(
                "{} allocations, {} frees",
                sum.allocs.iter().sum::<u64>(),
                sum.frees
            ))
        },
    ));
    checks.push(("the module answers correctly afterwards".into(), sanity()));
    let after = Snapshot::take()?;
    checks.extend(before.compare(&after));
    let (p, f) = report_checks(&checks);
    println!("stress kernel: {p} passed, {f} failed");
    if f != 0 {
        return Err(format!("stress kernel: {f} checks failed"));
    }
    Ok(())
}
