// SPDX-License-Identifier: GPL-2.0

//! Chapter 4: cleaning with two thresholds.
//!
//! The textbook's paging daemon: while enough memory is free nothing happens; below a first
//! threshold a background worker cleans a batch at a time, asynchronously, while allocations go
//! on; below a second one the allocating task itself cleans before it may go on, so the
//! heaviest allocators pay ("throttle the heavy writers"); past the last resort the host kernel
//! kills a task (the OOM killer). rkmem's two levels are `/proc/rkmem/watermarks`, in free pages
//! of its arena (`low`, then `high` below it); what it can clean is what it caches: pages in the
//! per-CPU page caches, objects in the slab caches' per-CPU arrays, empty slabs (the shrinker's
//! `reclaimable_*` counters). Who did the work comes from the `rkmem_reclaim` tracepoint's task
//! where the kernel has tracing, and from the counters (`reclaim_async_*` are the background
//! worker's, `reclaim_sync_*` the allocating task's) everywhere.

use super::Figures;
use crate::dev::{Alloc, CacheSpec, Device, PagesReq};
use crate::procfs;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WATERMARKS: &str = "/proc/rkmem/watermarks";
const SHRINKER: &str = "/proc/rkmem/shrinker";
const PROACTIVENESS: &str = "/proc/rkmem/compaction_proactiveness";
const TRACEFS: &str = "/sys/kernel/tracing";
/// Free pages between the two levels: less than one 4 MiB block (1024 pages), so that one
/// order-10 allocation can take the arena from above `low` to below `high` in one step.
pub const BAND_PAGES: u64 = 512;
/// Pages the chapter wants cached (cleanable) before the stages that clean.
const CLEANABLE_WANT: u64 = 600;
/// How far below `low` stage 2 takes the arena: more than one trimming batch can need.
const BELOW_LOW: u64 = 300;

/// What the textbook says a fill level leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Enough is free: nobody cleans.
    Nothing,
    /// Between the thresholds: the background worker cleans, the allocating task does not.
    Worker,
    /// Below the second threshold: the allocating task cleans itself.
    Task,
}

/// The textbook's rule for `free` pages with thresholds `low` > `high` (free-page levels).
pub fn textbook(free: u64, low: u64, high: u64) -> Expect {
    if free < high {
        Expect::Task
    } else if free < low {
        Expect::Worker
    } else {
        Expect::Nothing
    }
}

/// What the counters say happened in a stage.
pub fn observed(d: &Delta) -> Expect {
    if d.sync_runs > 0 {
        Expect::Task
    } else if d.async_runs > 0 {
        Expect::Worker
    } else {
        Expect::Nothing
    }
}

/// The module's reclaim state: the counters, the cleanable pages and the fill level.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    kicks: u64,
    async_runs: u64,
    async_pages: u64,
    sync_runs: u64,
    sync_pages: u64,
    cleanable: u64,
    free: u64,
}

/// The change between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Background worker kicks.
    pub kicks: u64,
    /// Background worker runs.
    pub async_runs: u64,
    /// Pages the worker cleaned.
    pub async_pages: u64,
    /// Synchronous (allocating task) runs.
    pub sync_runs: u64,
    /// Pages the allocating tasks cleaned.
    pub sync_pages: u64,
}

/// The `name value` counters of a /proc file (`/proc/rkmem/watermarks`' last line,
/// `pressure LEVEL`, is a word, not a number: left out).
fn counters(path: &str) -> Result<HashMap<String, u64>, String> {
    let text = procfs::read(path)?;
    let numbers: String = text
        .lines()
        .filter(|l| !l.starts_with("pressure "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut m = HashMap::new();
    procfs::parse_counters(path, &numbers, &mut m)?;
    Ok(m)
}

fn num(m: &HashMap<String, u64>, path: &str, k: &str) -> Result<u64, String> {
    m.get(k)
        .copied()
        .ok_or_else(|| format!("no number '{k}' in {path}"))
}

impl Snapshot {
    fn take() -> Result<Snapshot, String> {
        let st = counters(procfs::STATS)?;
        let sh = counters(SHRINKER)?;
        let wm = counters(WATERMARKS)?;
        let s = |k| num(&st, procfs::STATS, k);
        let r = |k| num(&sh, SHRINKER, k);
        Ok(Snapshot {
            kicks: s("reclaim_async_kicks")?,
            async_runs: s("reclaim_async_runs")?,
            async_pages: s("reclaim_async_pages")?,
            sync_runs: s("reclaim_sync_runs")?,
            sync_pages: s("reclaim_sync_pages")?,
            cleanable: r("reclaimable_pcp_pages")?
                + r("reclaimable_cpu_object_pages")?
                + r("reclaimable_empty_slab_pages")?,
            free: num(&wm, WATERMARKS, "free")?,
        })
    }

    fn since(&self, before: &Snapshot) -> Delta {
        Delta {
            kicks: self.kicks - before.kicks,
            async_runs: self.async_runs - before.async_runs,
            async_pages: self.async_pages - before.async_pages,
            sync_runs: self.sync_runs - before.sync_runs,
            sync_pages: self.sync_pages - before.sync_pages,
        }
    }
}

fn free_now() -> Result<u64, String> {
    num(&counters(WATERMARKS)?, WATERMARKS, "free")
}

fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing '{text}' to {path}: {e}"))
}

/// Puts back the watermarks and the proactiveness the chapter changed, and stops tracing.
struct Restore {
    marks: String,
    proactiveness: String,
    traced: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = write(WATERMARKS, &self.marks);
        let _ = write(PROACTIVENESS, &self.proactiveness);
        if self.traced {
            let _ = write(&format!("{TRACEFS}/events/rkmem/rkmem_reclaim/enable"), "0");
        }
    }
}

/// Turns the `rkmem_reclaim` tracepoint on if the kernel has tracing (mounting tracefs).
fn trace_on() -> bool {
    let event = format!("{TRACEFS}/events/rkmem/rkmem_reclaim/enable");
    if !std::path::Path::new(&event).exists() {
        let has = std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|f| f.lines().any(|l| l.ends_with("tracefs")));
        if !has
            || !std::process::Command::new("mount")
                .args(["-t", "tracefs", "nodev", TRACEFS])
                .status()
                .is_ok_and(|s| s.success())
        {
            return false;
        }
    }
    write(&format!("{TRACEFS}/trace"), "").is_ok() && write(&event, "1").is_ok()
}

/// One `rkmem_reclaim` event: the task that ran it, sync or async, pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleaner {
    /// The task's name (`comm`), as the trace shows it (`<...>` when the trace did not record
    /// it).
    pub task: String,
    /// The task's pid.
    pub pid: u32,
    /// The allocating task's synchronous run (else the background worker's).
    pub sync: bool,
    /// Pages freed.
    pub pages: u64,
}

/// The `rkmem_reclaim` events of a trace (`TASK-PID [CPU] FLAGS TIME: rkmem_reclaim: async
/// pages=N`).
pub fn parse_trace(text: &str) -> Vec<Cleaner> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (head, ev) = l.split_once(" rkmem_reclaim: ")?;
            let task = head.trim_start().split(" [").next()?.trim_end();
            let (task, pid) = task.rsplit_once('-')?;
            let (task, pid) = (task.to_string(), pid.parse().ok()?);
            let mut it = ev.split_whitespace();
            let sync = match it.next()? {
                "sync" => true,
                "async" => false,
                _ => return None,
            };
            let pages = it.next()?.strip_prefix("pages=")?.parse().ok()?;
            Some(Cleaner {
                task,
                pid,
                sync,
                pages,
            })
        })
        .collect()
}

/// The events since the last call (the trace is cleared after reading).
fn cleaners(traced: bool) -> Vec<Cleaner> {
    if !traced {
        return Vec::new();
    }
    let t = std::fs::read_to_string(format!("{TRACEFS}/trace")).unwrap_or_default();
    let _ = write(&format!("{TRACEFS}/trace"), "");
    let mut v = parse_trace(&t);
    // A task whose name the trace did not record (`<...>`): its name now, if it still lives.
    for c in v.iter_mut().filter(|c| c.task == "<...>") {
        if let Ok(n) = std::fs::read_to_string(format!("/proc/{}/comm", c.pid)) {
            c.task = n.trim().to_string();
        }
    }
    v
}

/// Fills cleanable memory: objects of 4 KiB caches allocated and freed, which leaves them in
/// the per-CPU arrays and their slabs kept empty, until at least `want` pages are cleanable.
fn make_cleanable(d: &Device, caches: &mut Vec<u32>, want: u64) -> Result<u64, String> {
    loop {
        let now = Snapshot::take()?.cleanable;
        if now >= want {
            return Ok(now);
        }
        if caches.len() >= 32 {
            return Err(format!(
                "only {now} cleanable pages after filling {} caches",
                caches.len()
            ));
        }
        if caches.len() < 8 {
            let spec = CacheSpec::new(&format!("lab_dirty{}", caches.len()), 4096, 8)?;
            caches.push(
                d.cache_create(&spec)
                    .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE: {e}"))?
                    .id,
            );
        }
        for &id in caches.iter() {
            let objs: Vec<Alloc> = (0..64)
                .map(|_| d.obj_alloc(id))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("RKMEM_IOC_OBJ_ALLOC: {e}"))?;
            for a in objs {
                d.free(a.handle)
                    .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
            }
        }
        if caches.len() >= 8 {
            // Every cache is full of cached objects: more caches would not help.
            let again = Snapshot::take()?.cleanable;
            if again <= now {
                return Ok(again);
            }
        }
    }
}

/// Allocates order-4 blocks (16 pages, past the per-CPU page caches) until at most `target`
/// pages are free, never crossing below it by more than one block.
fn fill_to(d: &Device, held: &mut Vec<Alloc>, target: u64) -> Result<u64, String> {
    loop {
        let free = free_now()?;
        if free <= target + 16 {
            return Ok(free);
        }
        let order = if free > target + 1024 + 64 { 10 } else { 4 };
        held.push(
            d.pages_alloc(PagesReq::Order(order))
                .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC order {order}: {e}"))?,
        );
    }
}

fn who(c: &[Cleaner]) -> String {
    if c.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = c
        .iter()
        .map(|c| {
            format!(
                "{}{} ({}, {} pages)",
                c.task,
                if c.pid == std::process::id() {
                    " (this task)"
                } else {
                    ""
                },
                if c.sync { "sync" } else { "async" },
                c.pages
            )
        })
        .collect();
    format!("rkmem_reclaim events: {}", parts.join(", "))
}

fn describe(e: Expect) -> &'static str {
    match e {
        Expect::Nothing => "nothing happens",
        Expect::Worker => "the background worker cleans, asynchronously",
        Expect::Task => "the allocating task cleans, synchronously",
    }
}

/// `rkmemctl lab watermarks`.
pub fn watermarks(fig: &mut Figures) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let wm = counters(WATERMARKS)?;
    let max = num(&wm, WATERMARKS, "max_pages")?;
    let restore = Restore {
        marks: format!(
            "{} {}",
            num(&wm, WATERMARKS, "low")?,
            num(&wm, WATERMARKS, "high")?
        ),
        proactiveness: procfs::read(PROACTIVENESS)?.trim().to_string(),
        traced: trace_on(),
    };
    let low = max / 2;
    let high = low - BAND_PAGES;
    // No proactive compaction kicking the worker meanwhile.
    write(PROACTIVENESS, "0")?;
    write(WATERMARKS, &format!("{low} {high}"))?;
    println!("== lab watermarks: cleaning with two thresholds");
    println!(
        "textbook: memory is cleaned by a daemon between two thresholds and by the allocating\n\
         task itself below the second; past the last resort the OOM killer picks a victim.\n\
         rkmem: its arena may grow to {max} pages; its levels are free pages (low {low}, high\n\
         {high}: `echo \"{low} {high}\" > {WATERMARKS}`); what it can clean is what it caches\n\
         (per-CPU page caches, per-CPU object arrays, empty slabs: the shrinker's reclaimable_*).\n\
         who: {}",
        if restore.traced {
            "the task of each rkmem_reclaim trace event, and the counters"
        } else {
            "the counters (reclaim_async_* are the worker's, reclaim_sync_* the allocating task's; no tracing in this kernel)"
        }
    );
    let _ = cleaners(restore.traced);
    let mut held: Vec<Alloc> = Vec::new();
    let mut caches: Vec<u32> = Vec::new();
    let mut same = 0;
    let mut stages = 0;
    let me = std::process::id();

    // One stage: judged at `level`, the lowest free count its allocations reached (the worker
    // may have brought it back up by the time the stage ends).
    let stage = |n: u32,
                 title: &str,
                 level: u64,
                 before: &Snapshot,
                 after: &Snapshot,
                 cl: &[Cleaner],
                 fig: &mut Figures|
     -> Result<bool, String> {
        let delta = after.since(before);
        let want = textbook(level, low, high);
        let got = observed(&delta);
        // A cleaner that cleaned nothing did not clean.
        let cleaned = match got {
            Expect::Nothing => true,
            Expect::Worker => delta.async_pages > 0,
            Expect::Task => delta.sync_pages > 0,
        };
        // Tracing, where there is any, must name the cleaner the counters say.
        let tasks_ok = cl.iter().all(|c| match got {
            Expect::Task => c.sync && c.pid == me,
            Expect::Worker => !c.sync && c.pid != me && c.task.starts_with("kworker"),
            Expect::Nothing => false,
        });
        let ok = want == got && tasks_ok && cleaned;
        println!("\nstage {n}: {title}");
        println!(
            "  free pages {} -> {} (lowest {level}; low {low}, high {high}); cleanable pages {} -> {}",
            before.free, after.free, before.cleanable, after.cleanable
        );
        println!("  textbook: {}", describe(want));
        println!(
            "  rkmem:    {}   {}",
            describe(got),
            if ok { "(same)" } else { "DIFFERS" }
        );
        println!(
            "            worker: {} kicks, {} runs, {} pages; allocating task: {} runs, {} pages",
            delta.kicks, delta.async_runs, delta.async_pages, delta.sync_runs, delta.sync_pages
        );
        let w = who(cl);
        if !w.is_empty() {
            println!("            {w}");
        }
        let cls: Vec<_> = cl
            .iter()
            .map(|c| {
                serde_json::json!({"task": c.task, "pid": c.pid, "sync": c.sync,
                    "pages": c.pages, "this_task": c.pid == me})
            })
            .collect();
        fig.emit(
            "stage",
            serde_json::json!({"stage": n, "title": title, "low": low, "high": high,
                "max_pages": max, "free_before": before.free, "free_after": after.free,
                "lowest_free": level, "cleanable_before": before.cleanable,
                "cleanable_after": after.cleanable, "kicks": delta.kicks,
                "async_runs": delta.async_runs, "async_pages": delta.async_pages,
                "sync_runs": delta.sync_runs, "sync_pages": delta.sync_pages,
                "textbook": describe(want), "rkmem": describe(got), "same": ok,
                "cleaners": cls}),
        )?;
        Ok(ok)
    };

    // Stage 1: above low.
    make_cleanable(&d, &mut caches, CLEANABLE_WANT)?;
    let s0 = Snapshot::take()?;
    fill_to(&d, &mut held, low + 256)?;
    let s1 = Snapshot::take()?;
    let cl = cleaners(restore.traced);
    stages += 1;
    same += u32::from(stage(
        1,
        "the arena fills, free pages stay above low",
        s1.free,
        &s0,
        &s1,
        &cl,
        fig,
    )?);

    // Stage 2: below low, above high: the worker cleans until free is back above low.
    let s1 = Snapshot::take()?;
    fill_to(&d, &mut held, low - BELOW_LOW)?;
    let lowest = free_now()?;
    let t0 = Instant::now();
    let mut s2 = Snapshot::take()?;
    while t0.elapsed() < Duration::from_secs(10)
        && (s2.async_runs == s1.async_runs || s2.free < low)
    {
        std::thread::sleep(Duration::from_millis(50));
        s2 = Snapshot::take()?;
    }
    let cl = cleaners(restore.traced);
    stages += 1;
    println!(
        "\n(stage 2 went down to {lowest} free pages; the worker was waited for {} ms)",
        t0.elapsed().as_millis()
    );
    same += u32::from(stage(
        2,
        "free pages below low, above high",
        lowest,
        &s1,
        &s2,
        &cl,
        fig,
    )?);

    // Stage 3: room again, cleanable memory again, then one 4 MiB allocation from just above
    // low to below high: the allocating task cleans before it returns.
    while free_now()? < low + CLEANABLE_WANT + 1100 {
        let Some(a) = held.pop() else { break };
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
    }
    make_cleanable(&d, &mut caches, CLEANABLE_WANT)?;
    fill_to(&d, &mut held, low + 64)?;
    let s3a = Snapshot::take()?;
    if s3a.free < low || s3a.free >= high + 1024 {
        return Err(format!(
            "stage 3 could not start between low and high + 1024 ({} free)",
            s3a.free
        ));
    }
    held.push(
        d.pages_alloc(PagesReq::Order(10))
            .map_err(|e| format!("RKMEM_IOC_PAGES_ALLOC order 10: {e}"))?,
    );
    let s3 = Snapshot::take()?;
    let cl = cleaners(restore.traced);
    stages += 1;
    same += u32::from(stage(
        3,
        "one 4 MiB allocation takes free pages from above low to below high",
        s3a.free.saturating_sub(1024),
        &s3a,
        &s3,
        &cl,
        fig,
    )?);

    // Stage 4: the last resort.
    println!("\nstage 4: past the last resort");
    let mut blocks = 0;
    let err = loop {
        match d.pages_alloc(PagesReq::Order(10)) {
            Ok(a) => {
                held.push(a);
                blocks += 1;
            }
            Err(e) => break e,
        }
        if blocks > max / 1024 + 1 {
            return Err("the arena grew past arena_max_mb".into());
        }
    };
    let s4 = Snapshot::take()?;
    let _ = cleaners(restore.traced);
    let enomem = err == nix::errno::Errno::ENOMEM;
    println!(
        "  rkmem: {blocks} more 4 MiB blocks, then {err} (free pages {}, cleanable {}): the arena \
         is at arena_max_mb and reclaim found nothing more to clean; rkmem's callers get an \
         error, never a killed task   {}",
        s4.free,
        s4.cleanable,
        if enomem { "(as documented)" } else { "DIFFERS" }
    );
    stages += 1;
    same += u32::from(enomem);
    fig.emit(
        "last_resort",
        serde_json::json!({"blocks": blocks, "error": err.to_string(), "free": s4.free,
            "cleanable": s4.cleanable, "same": enomem}),
    )?;
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    println!(
        "  the host kernel (described, not triggered): when its own reclaim (kswapd between its\n\
         \x20 low and min watermarks, direct reclaim below min; rkmem's shrinker is called in both)\n\
         \x20 cannot free enough for an allocation that may not fail, out_of_memory() picks the\n\
         \x20 task with the highest badness (its RSS, swap and page tables, plus oom_score_adj)\n\
         \x20 and kills it. Here: this task's oom_score {} (oom_score_adj {}), init's {};\n\
         \x20 vm.overcommit_memory {}, vm.panic_on_oom {}, vm.oom_kill_allocating_task {}.",
        read("/proc/self/oom_score"),
        read("/proc/self/oom_score_adj"),
        read("/proc/1/oom_score"),
        read("/proc/sys/vm/overcommit_memory"),
        read("/proc/sys/vm/panic_on_oom"),
        read("/proc/sys/vm/oom_kill_allocating_task")
    );

    for a in held.drain(..) {
        d.free(a.handle)
            .map_err(|e| format!("RKMEM_IOC_FREE: {e}"))?;
    }
    for id in caches {
        d.cache_destroy(id)
            .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))?;
    }
    drop(restore);
    if same == stages {
        println!("\nlab watermarks: {stages} of {stages} stages match the textbook");
        Ok(())
    } else {
        Err(format!(
            "{} of {stages} stages differ from the textbook",
            stages - same
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textbook_rule() {
        assert_eq!(textbook(100, 50, 20), Expect::Nothing);
        assert_eq!(textbook(50, 50, 20), Expect::Nothing);
        assert_eq!(textbook(49, 50, 20), Expect::Worker);
        assert_eq!(textbook(20, 50, 20), Expect::Worker);
        assert_eq!(textbook(19, 50, 20), Expect::Task);
    }

    #[test]
    fn who_cleaned_from_the_counters() {
        let mut d = Delta::default();
        assert_eq!(observed(&d), Expect::Nothing);
        d.kicks = 1;
        assert_eq!(observed(&d), Expect::Nothing, "kicked but not run");
        d.async_runs = 1;
        assert_eq!(observed(&d), Expect::Worker);
        d.sync_runs = 1;
        assert_eq!(observed(&d), Expect::Task);
    }

    #[test]
    fn trace_lines() {
        let t = "# tracer: nop\n\
                 \x20   kworker/1:2-57      [001] .....    12.345678: rkmem_reclaim: async pages=304\n\
                 \x20      rkmemctl-201     [000] .....    13.000001: rkmem_reclaim: sync pages=256\n\
                 \x20      rkmemctl-201     [000] .....    13.000002: rkmem_page_alloc: order=4\n\
                 \x20         <...>-202     [000] .....    13.000003: rkmem_reclaim: sync pages=0\n";
        assert_eq!(
            parse_trace(t),
            vec![
                Cleaner {
                    task: "kworker/1:2".into(),
                    pid: 57,
                    sync: false,
                    pages: 304
                },
                Cleaner {
                    task: "rkmemctl".into(),
                    pid: 201,
                    sync: true,
                    pages: 256
                },
                Cleaner {
                    task: "<...>".into(),
                    pid: 202,
                    sync: true,
                    pages: 0
                },
            ]
        );
    }
}
