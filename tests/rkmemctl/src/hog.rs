// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl hog`: a user-space memory hog that pushes the host kernel into reclaim.
//!
//! It maps and touches anonymous memory in chunks until `/proc/meminfo`'s `MemAvailable` is
//! below `--leave-mb`, holds it for `--seconds`, and exits. It is bounded: it never takes more
//! than `--max-mb`, gives chunks back while `MemAvailable` is below half of `--leave-mb` (others
//! keep allocating while it holds), and marks itself the OOM killer's first choice
//! (`oom_score_adj` 1000) so that, if the kernel runs out anyway, the hog dies and not init or
//! the test.

use clap::Args;
use nix::libc;
use std::io::Write;
use std::time::{Duration, Instant};

/// Options of `rkmemctl hog`.
#[derive(Args, Clone, Copy, Debug)]
pub struct Opts {
    /// Stop taking memory once MemAvailable is below this many MiB (not with --reclaim, where
    /// the zone's watermarks decide).
    #[arg(long, value_name = "MIB")]
    leave_mb: u64,
    /// Hold the memory this long, then exit.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Map and touch this many MiB at a time.
    #[arg(long, value_name = "MIB", default_value_t = 4)]
    chunk_mb: u64,
    /// Never hold more than this many MiB [default: MemTotal - leave-mb].
    #[arg(long, value_name = "MIB")]
    max_mb: Option<u64>,
    /// Keep the largest zone's free pages strictly between its `min` and `low` watermarks
    /// (from /proc/zoneinfo, re-read every step): first fill to 3/4 of the way from `min` to
    /// `low`, then take 256 KiB steps while free is above that and give memory back while it
    /// is below 1/2 of the way. Below `low`, every allocation in the zone fails the fast
    /// path's watermark check and wakes kswapd, which calls every shrinker; above `min`
    /// nobody needs direct reclaim or the OOM killer. The band is `watermark_scale_factor`
    /// wide; the test widens it (`vm.watermark_scale_factor`) and turns boosting off
    /// (`vm.watermark_boost_factor`) so that it is many MiB and does not move.
    #[arg(long)]
    reclaim: bool,
}

const MIB: usize = 1 << 20;

/// A field of `/proc/meminfo` in KiB.
fn meminfo_kb(field: &str) -> Result<u64, String> {
    let text =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    parse_meminfo_kb(&text, field).ok_or_else(|| format!("no field {field} in /proc/meminfo"))
}

fn parse_meminfo_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// One zone of /proc/zoneinfo: its name and, in pages, free, the `min` and `low` watermarks
/// (boost included) and the managed pages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Zone {
    name: String,
    free: u64,
    min: u64,
    low: u64,
    managed: u64,
}

/// The zone with the most managed pages: where ordinary allocations land.
fn main_zone() -> Result<Zone, String> {
    let text =
        std::fs::read_to_string("/proc/zoneinfo").map_err(|e| format!("/proc/zoneinfo: {e}"))?;
    parse_main_zone(&text).ok_or_else(|| "no populated zone in /proc/zoneinfo".to_string())
}

fn parse_main_zone(text: &str) -> Option<Zone> {
    let mut zones: Vec<Zone> = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("Node ") {
            let name = rest.split("zone").nth(1).unwrap_or("").trim().to_string();
            zones.push(Zone {
                name,
                free: 0,
                min: 0,
                low: 0,
                managed: 0,
            });
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let f: Vec<&str> = l.split_whitespace().collect();
        let value = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        match f.as_slice() {
            ["pages", "free", _] => z.free = value(2)?,
            ["min", _] => z.min = value(1)?,
            ["low", _] => z.low = value(1)?,
            ["managed", _] => z.managed = value(1)?,
            _ => {}
        }
    }
    zones
        .into_iter()
        .filter(|z| z.managed > 0)
        .max_by_key(|z| z.managed)
}

fn available_mib() -> Result<u64, String> {
    Ok(meminfo_kb("MemAvailable")? >> 10)
}

/// An anonymous private mapping, unmapped on drop.
struct Chunk {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Chunk {
    /// Maps `len` bytes and writes one byte per page, so the kernel must back every page.
    fn take(len: usize) -> Result<Chunk, String> {
        // SAFETY: an anonymous private mapping at an address the kernel chooses touches no
        // existing memory of this process.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap {len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        let page = 4096;
        for off in (0..len).step_by(page) {
            // SAFETY: `off < len`: inside the mapping just made, readable and writable.
            unsafe { ptr.cast::<u8>().add(off).write_volatile(0xa5) };
        }
        Ok(Chunk { ptr, len })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly a mapping made by `take` and not unmapped before.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Runs the hog; prints what it took and held.
pub fn run(o: &Opts) -> Result<(), String> {
    if !(o.seconds >= 0.0 && o.seconds <= 3600.0) {
        return Err(format!("--seconds {}: want 0..=3600", o.seconds));
    }
    if o.chunk_mb == 0 || o.chunk_mb > 1024 {
        return Err(format!("--chunk-mb {}: want 1..=1024", o.chunk_mb));
    }
    // The OOM killer's first choice: if memory runs out anyway, the hog goes, not the test.
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "1000") {
        eprintln!("rkmemctl hog: oom_score_adj: {e} (continuing)");
    }
    if o.reclaim {
        let z = main_zone()?;
        if z.low <= z.min + 1024 {
            return Err(format!(
                "zone {}: low {} - min {} pages is under 4 MiB, too narrow to hold free pages \
                 between them (raise vm.watermark_scale_factor)",
                z.name, z.low, z.min
            ));
        }
    }
    let total = meminfo_kb("MemTotal")? >> 10;
    let max = o.max_mb.unwrap_or(total.saturating_sub(o.leave_mb));
    let start_avail = available_mib()?;
    let chunk = o.chunk_mb as usize * MIB;
    let mut chunks: Vec<Chunk> = Vec::new();
    let start = Instant::now();
    // Filling is bounded in time too: a kernel that reclaims slowly must not keep us here.
    let fill_deadline = start + Duration::from_secs(60);
    loop {
        let avail = available_mib()?;
        let held = chunks.len() as u64 * o.chunk_mb;
        // In --reclaim mode MemAvailable is no guide: it subtracts the high watermarks, which
        // the test raises; the zone's own numbers decide.
        if (avail < o.leave_mb && !o.reclaim)
            || held + o.chunk_mb > max
            || Instant::now() > fill_deadline
        {
            break;
        }
        // Do not overshoot by more than the gap: the last chunk may be smaller.
        let mut gap = ((avail.saturating_sub(o.leave_mb) + 1) as usize * MIB).min(chunk);
        if o.reclaim {
            gap = chunk;
            // Down to 3/4 of the way from `min` to `low` in the main zone.
            let z = main_zone()?;
            let target = z.min + (z.low - z.min) * 3 / 4;
            if z.free <= target {
                break;
            }
            gap = gap.min(((z.free - target) as usize) << 12);
        }
        chunks.push(Chunk::take(gap.max(if o.reclaim { 4096 } else { MIB }))?);
    }
    let took: usize = chunks.iter().map(|c| c.len).sum();
    println!(
        "hog: took {} MiB in {:.1} s: MemAvailable {} -> {} MiB (MemTotal {total} MiB); holding {:.1} s",
        took / MIB,
        start.elapsed().as_secs_f64(),
        start_avail,
        available_mib()?,
        o.seconds
    );
    if o.reclaim {
        let z = main_zone()?;
        println!(
            "hog: keeping zone {} between min and low: free {} kB, min {} kB, low {} kB",
            z.name,
            z.free * 4,
            z.min * 4,
            z.low * 4
        );
    }
    let _ = std::io::stdout().flush();
    let hold_until = Instant::now() + Duration::from_secs_f64(o.seconds);
    let (mut min_avail, mut released) = (u64::MAX, 0usize);
    let (mut topped, mut lowest, mut highest) = (0usize, u64::MAX, 0u64);
    while Instant::now() < hold_until {
        let avail = available_mib()?;
        min_avail = min_avail.min(avail);
        if o.reclaim {
            // Read again each step: others allocate and free, and the kernel may move the
            // watermarks (boosting, a sysctl).
            let z = main_zone()?;
            lowest = lowest.min(z.free);
            highest = highest.max(z.free);
            let band = z.low.saturating_sub(z.min);
            if z.free < z.min + band / 2 {
                // Others need memory: give back until clear of `min` and the OOM killer.
                let mut short = ((z.min + band / 2 - z.free) as usize) << 12;
                while short > 0 {
                    let Some(c) = chunks.pop() else { break };
                    short = short.saturating_sub(c.len);
                    released += c.len;
                }
            } else if z.free > z.min + band * 3 / 4 {
                let step = (256 << 10).min(((z.free - z.min - band * 3 / 4) as usize) << 12);
                chunks.push(Chunk::take(step.max(4096))?);
                topped += step.max(4096);
            }
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        // Others allocate too: back off rather than drive the kernel to the OOM killer.
        if avail < o.leave_mb / 2 {
            if let Some(c) = chunks.pop() {
                released += c.len;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if o.reclaim {
        println!(
            "hog: took {} KiB more to stay between min and low; the zone's free pages were {} kB to {} kB",
            topped >> 10,
            if lowest == u64::MAX { 0 } else { lowest * 4 },
            highest * 4
        );
    }
    let kept: usize = chunks.iter().map(|c| c.len).sum();
    drop(chunks);
    println!(
        "hog: done: held {} MiB at the end, gave {} MiB back early, lowest MemAvailable {} MiB",
        kept / MIB,
        released / MIB,
        if min_avail == u64::MAX {
            available_mib()?
        } else {
            min_avail
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields() {
        let text =
            "MemTotal:         500000 kB\nMemFree:          100 kB\nMemAvailable:     204800 kB\n";
        assert_eq!(parse_meminfo_kb(text, "MemTotal"), Some(500_000));
        assert_eq!(parse_meminfo_kb(text, "MemAvailable"), Some(204_800));
        assert_eq!(parse_meminfo_kb(text, "Mem"), None);
        assert_eq!(parse_meminfo_kb(text, "SwapTotal"), None);
    }

    #[test]
    fn zoneinfo_main_zone() {
        let text = "Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 5\n  pages free     3000\n        boost    0\n        min      20\n        low      25\n        high     30\n        spanned  4095\n        present  3998\n        managed  3840\n        protection: (0, 400, 400)\n      nr_free_pages 3000\nNode 0, zone    DMA32\n  pages free     1000\n        boost    0\n        min      707\n        low      883\n        high     1059\n        promo    1200\n        spanned  126960\n        present  126960\n        managed  110000\n        protection: (0, 0, 0)\nNode 0, zone   Normal\n  pages free     0\n        min      0\n        low      0\n        managed  0\n";
        assert_eq!(
            parse_main_zone(text),
            Some(Zone {
                name: "DMA32".into(),
                free: 1000,
                min: 707,
                low: 883,
                managed: 110_000
            })
        );
        assert_eq!(parse_main_zone("nothing\n"), None);
    }
}
