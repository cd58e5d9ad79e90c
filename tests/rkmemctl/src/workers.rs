// SPDX-License-Identifier: GPL-2.0

//! What the `rkmemctl stress` commands share: their common settings, one worker thread per
//! entry of a CPU list (pinned to it, with its own open file), the deadline and the split of
//! `--ops` between the threads, the watchdog of the main thread, the per-thread report with its
//! counters and kept failure messages, and the report lines every command prints alike.

use crate::dev::Device;
use crate::pattern;
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Failures kept per thread for the report (all are counted).
pub const KEEP_FAILURES: usize = 8;

/// The settings every stress command has.
#[derive(Clone, Debug)]
pub struct Settings {
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

impl Settings {
    /// `Err` unless there is at least one thread holding at least one allocation.
    pub fn check(&self) -> Result<(), String> {
        if self.threads == 0 || self.live == 0 {
            return Err("--threads and --live must be at least 1".into());
        }
        Ok(())
    }

    /// The operations thread `idx` may do: its share of `--ops`, or no limit.
    pub fn quota(&self, idx: usize) -> u64 {
        self.ops.map_or(u64::MAX, |ops| {
            ops / self.threads as u64 + u64::from((idx as u64) < ops % self.threads as u64)
        })
    }

    /// The first line of a report: `name`, the threads (on `cpus` if given), and the limits.
    pub fn header(&self, name: &str, cpus: Option<&[usize]>) -> String {
        let on = cpus.map_or(String::new(), |cpus| {
            let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
            format!(" on CPUs {}", list.join(","))
        });
        format!(
            "{name}: {} threads{on}, seed {:#x}, at most {:.1} s{}, up to {} live allocations per thread",
            self.threads,
            self.seed,
            self.duration.as_secs_f64(),
            self.ops.map_or(String::new(), |n| format!(" or {n} operations")),
            self.live,
        )
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

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> Result<(), Errno> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    // Pid 0: the calling thread.
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// The CPU of each of `threads` threads: the allowed CPUs, round robin.
pub fn assign(threads: usize) -> Vec<usize> {
    let cpus = allowed_cpus();
    (0..threads).map(|i| cpus[i % cpus.len()]).collect()
}

/// A random part of an allocation of `bytes` bytes to check: `(offset, len)`, at most 64 KiB.
pub fn check_span(rng: &mut pattern::Rng, bytes: u64) -> (u64, u64) {
    let offset = rng.below(bytes);
    let len = 1 + rng.below((bytes - offset).min(64 << 10));
    (offset, len)
}

/// When the workers stop: at the deadline, or earlier when the main thread says so.
pub struct Stop {
    flag: AtomicBool,
    deadline: Instant,
}

impl Stop {
    /// Whether a worker that has done `ops` operations stops now (looked at every 16).
    pub fn due(&self, ops: u64) -> bool {
        ops.is_multiple_of(16)
            && (self.flag.load(Ordering::Relaxed) || Instant::now() >= self.deadline)
    }
}

/// The worker threads of one run.
pub struct Crew<'a> {
    /// The command (`stress pages`), named when workers hang.
    name: &'a str,
    /// The CPU of each thread.
    cpus: &'a [usize],
    /// When the run started.
    pub start: Instant,
    stop: Stop,
    /// Start the hang message on a new line (a progress bar may be on the current one).
    newline: bool,
}

impl<'a> Crew<'a> {
    /// A run of one thread per entry of `cpus` for `duration` from now.
    pub fn new(name: &'a str, cpus: &'a [usize], duration: Duration) -> Crew<'a> {
        let start = Instant::now();
        Crew {
            name,
            cpus,
            start,
            stop: Stop {
                flag: AtomicBool::new(false),
                deadline: start + duration,
            },
            newline: false,
        }
    }

    /// Starts the message about hanging workers on a new line.
    pub fn newline_before_hang(mut self) -> Self {
        self.newline = true;
        self
    }

    /// Runs `work(idx, cpu, stop)` on every thread and calls `poll` (which should sleep a
    /// little) until all have returned. Workers are told to stop 60 s after the deadline; at
    /// 120 s one is stuck inside an ioctl: the process exits with 2 rather than hang. A thread
    /// that panicked is reported by `panicked(idx, cpu)`. Returns the reports in thread order
    /// and the seconds the run took.
    pub fn run<R: Send>(
        &self,
        work: impl Fn(usize, usize, &Stop) -> R + Sync,
        mut poll: impl FnMut(),
        panicked: impl Fn(usize, usize) -> R,
    ) -> (Vec<R>, f64) {
        let deadline = self.stop.deadline;
        let reports = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .cpus
                .iter()
                .enumerate()
                .map(|(i, &cpu)| {
                    let (work, stop) = (&work, &self.stop);
                    s.spawn(move || work(i, cpu, stop))
                })
                .collect();
            while !handles.iter().all(|h| h.is_finished()) {
                poll();
                let now = Instant::now();
                if now > deadline + Duration::from_secs(60) {
                    self.stop.flag.store(true, Ordering::Relaxed);
                }
                if now > deadline + Duration::from_secs(120) {
                    eprintln!(
                        "{}rkmemctl: {}: workers still busy 120 s after the deadline",
                        if self.newline { "\n" } else { "" },
                        self.name
                    );
                    std::process::exit(2);
                }
            }
            handles
                .into_iter()
                .enumerate()
                .map(|(i, h)| h.join().unwrap_or_else(|_| panicked(i, self.cpus[i])))
                .collect()
        });
        (reports, self.start.elapsed().as_secs_f64().max(1e-6))
    }
}

/// An allocation a worker holds, filled with the pattern of its handle; `what` names it in
/// messages.
#[derive(Clone, Copy, Debug)]
pub struct Live<W> {
    pub handle: u64,
    pub bytes: u64,
    pub what: W,
}

/// Why an allocation did not read back.
#[derive(Debug)]
pub enum Unread {
    /// The read failed.
    Failed(String),
    /// The bytes read are not the pattern written.
    Differs(String),
}

impl Unread {
    pub fn message(self) -> String {
        match self {
            Unread::Failed(m) | Unread::Differs(m) => m,
        }
    }
}

impl<W: std::fmt::Display> Live<W> {
    /// Reads `buf.len()` bytes at `offset` of the allocation with `read(handle, offset, buf)`
    /// and compares them with the pattern it was filled with (keyed by `seed`).
    pub fn read_back(
        &self,
        seed: u64,
        offset: u64,
        buf: &mut [u8],
        read: impl FnOnce(u64, u64, &mut [u8]) -> Result<(), Errno>,
    ) -> Result<(), Unread> {
        let (handle, what) = (self.handle, &self.what);
        if let Err(e) = read(handle, offset, buf) {
            return Err(Unread::Failed(format!(
                "read {} bytes at {offset} of {handle:#x} ({what}): {e}",
                buf.len()
            )));
        }
        let key = pattern::key(handle, seed);
        if let Some((at, want, got)) = pattern::first_mismatch(key, offset, buf) {
            return Err(Unread::Differs(format!(
                "content of {handle:#x} ({what}, {} bytes) differs at byte {at}: {want:#04x} written, {got:#04x} read",
                self.bytes
            )));
        }
        Ok(())
    }
}

/// The counters of one command that are not in [`Report`], and how two are added up.
pub trait Extra: Default {
    fn add(&mut self, other: &Self);
}

/// What one thread did: the counters every command keeps, and the command's own in `x`.
#[derive(Clone, Debug, Default)]
pub struct Report<X> {
    pub cpu: usize,
    pub ops: u64,
    pub allocs: u64,
    pub frees: u64,
    pub checks: u64,
    pub enomem: u64,
    pub edquot: u64,
    pub bytes_verified: u64,
    pub peak_live: usize,
    pub failures: u64,
    pub messages: Vec<String>,
    pub x: X,
}

impl<X: Extra> Report<X> {
    /// The report of a thread on `cpu` that has done nothing yet.
    pub fn new(cpu: usize) -> Self {
        Report {
            cpu,
            ..Default::default()
        }
    }

    /// The report of a thread that panicked.
    pub fn panicked(cpu: usize) -> Self {
        let mut r = Self::new(cpu);
        r.fail("thread panicked".into());
        r
    }

    /// Counts a failure and keeps its message.
    pub fn fail(&mut self, msg: String) {
        self.failures += 1;
        self.keep(msg);
    }

    /// Keeps a message for the report (the first [`KEEP_FAILURES`]).
    pub fn keep(&mut self, msg: String) {
        if self.messages.len() < KEEP_FAILURES {
            self.messages.push(msg);
        }
    }

    /// Pins the calling worker thread to its CPU and opens its own file; `None` (the failure
    /// counted) if either fails.
    pub fn pinned_device(&mut self) -> Option<Device> {
        let cpu = self.cpu;
        let dev = pin(cpu)
            .map_err(|e| format!("sched_setaffinity(CPU {cpu}): {e}"))
            .and_then(|()| {
                Device::open().map_err(|e| format!("open {}: {e}", crate::dev::DEV_PATH))
            });
        dev.map_err(|e| self.fail(e)).ok()
    }

    /// Counts `ENOMEM` and `EDQUOT` (the arena at its maximum, the file at `file_max_mb`),
    /// answers expected near the limits; `false` for any other.
    pub fn at_limit(&mut self, e: Errno) -> bool {
        match e {
            Errno::ENOMEM => self.enomem += 1,
            Errno::EDQUOT => self.edquot += 1,
            _ => return false,
        }
        true
    }

    /// Counts `len` bytes verified, or the failure to read them back.
    pub fn verified(&mut self, len: u64, res: Result<(), Unread>) {
        match res {
            Ok(()) => self.bytes_verified += len,
            Err(u) => self.fail(u.message()),
        }
    }

    /// Adds the counts of `o` to these (not the CPU, the peak or the messages).
    pub fn add(&mut self, o: &Self) {
        self.ops += o.ops;
        self.allocs += o.allocs;
        self.frees += o.frees;
        self.checks += o.checks;
        self.enomem += o.enomem;
        self.edquot += o.edquot;
        self.bytes_verified += o.bytes_verified;
        self.failures += o.failures;
        self.x.add(&o.x);
    }
}

/// The sum of `reports`.
pub fn total<X: Extra>(reports: &[Report<X>]) -> Report<X> {
    let mut t = Report::default();
    for r in reports {
        t.add(r);
    }
    t
}

/// Prints the kept failure messages of every thread.
pub fn print_failures<X>(reports: &[Report<X>]) {
    for (i, r) in reports.iter().enumerate() {
        for m in &r.messages {
            println!("FAIL thread {i}: {m}");
        }
    }
}

/// The start of the `total:` line: operations, seconds and the rate.
pub fn total_ops(ops: u64, secs: f64) -> String {
    format!(
        "total: {ops} ops in {secs:.2} s = {:.0} ops/s",
        ops as f64 / secs
    )
}

/// The last line of `name`'s report when no failure was counted; `Err` otherwise.
pub fn verdict(name: &str, failures: u64) -> Result<(), String> {
    if failures != 0 {
        return Err(format!("{name}: {failures} failures"));
    }
    println!("{name}: ok, no failures");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_add_up() {
        let s = Settings {
            threads: 3,
            duration: Duration::from_secs(1),
            ops: Some(10),
            seed: 1,
            live: 1,
        };
        assert_eq!((0..3).map(|i| s.quota(i)).collect::<Vec<_>>(), [4, 3, 3]);
        let s = Settings { ops: None, ..s };
        assert_eq!(s.quota(2), u64::MAX);
    }

    #[test]
    fn header_lines() {
        let s = Settings {
            threads: 2,
            duration: Duration::from_secs(3),
            ops: Some(100),
            seed: 0x2a,
            live: 64,
        };
        assert_eq!(
            s.header("stress pages", Some(&[0, 1])),
            "stress pages: 2 threads on CPUs 0,1, seed 0x2a, at most 3.0 s or 100 operations, up to 64 live allocations per thread"
        );
        let s = Settings { ops: None, ..s };
        assert_eq!(
            s.header("stress all", None),
            "stress all: 2 threads, seed 0x2a, at most 3.0 s, up to 64 live allocations per thread"
        );
        assert_eq!(total_ops(10, 2.0), "total: 10 ops in 2.00 s = 5 ops/s");
    }
}
