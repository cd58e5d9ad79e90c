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
    /// Stop taking memory once MemAvailable is below this many MiB.
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
    /// While holding, keep MemFree just above the kernel's low watermark (the sum of the
    /// zones' `low` in /proc/zoneinfo): take 256 KiB steps while MemFree is more than 16 MiB
    /// above it, give memory back while it is less than 8 MiB above it (re-reading the watermarks, which the kernel boosts). The hog stays well
    /// clear of `min` (others may take 4 MiB blocks or fault in buffers between two of its
    /// steps), so nobody should need the OOM killer; a high-order allocation such as the arena's 4 MiB blocks
    /// finds no free block or fails the watermark check and wakes kswapd, which calls every
    /// shrinker.
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

/// The sums over all zones of the `min` and `low` watermarks in /proc/zoneinfo, in KiB.
fn watermarks_kb() -> Result<(u64, u64), String> {
    let text =
        std::fs::read_to_string("/proc/zoneinfo").map_err(|e| format!("/proc/zoneinfo: {e}"))?;
    Ok(parse_watermarks_kb(&text))
}

fn parse_watermarks_kb(text: &str) -> (u64, u64) {
    let (mut min, mut low) = (0, 0);
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match (
            f.next(),
            f.next().and_then(|v| v.parse::<u64>().ok()),
            f.next(),
        ) {
            (Some("min"), Some(v), None) => min += v * 4,
            (Some("low"), Some(v), None) => low += v * 4,
            _ => {}
        }
    }
    (min, low)
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
        if avail < o.leave_mb || held + o.chunk_mb > max || Instant::now() > fill_deadline {
            break;
        }
        // Do not overshoot by more than the gap: the last chunk may be smaller.
        let gap = ((avail - o.leave_mb + 1) as usize * MIB).min(chunk);
        chunks.push(Chunk::take(gap.max(MIB))?);
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
    let _ = std::io::stdout().flush();
    let hold_until = Instant::now() + Duration::from_secs_f64(o.seconds);
    let (mut min_avail, mut released) = (u64::MAX, 0usize);
    let (wmark_min, wmark_low) = watermarks_kb()?;
    let (mut topped, mut min_free) = (0usize, u64::MAX);
    if o.reclaim {
        println!(
            "hog: keeping MemFree near the low watermark ({wmark_low} kB; min {wmark_min} kB)"
        );
    }
    while Instant::now() < hold_until {
        let avail = available_mib()?;
        min_avail = min_avail.min(avail);
        if o.reclaim {
            let free = meminfo_kb("MemFree")?;
            min_free = min_free.min(free);
            // Read again each time: the kernel boosts its watermarks after fragmentation
            // events, and a hog that kept to the old ones was seen meeting the OOM killer.
            let (_, wmark_low) = watermarks_kb()?;
            if free < wmark_low + 8192 {
                // Others need memory: give back, and stay clear of min and the OOM killer.
                if let Some(c) = chunks.pop() {
                    released += c.len;
                }
            } else if free > wmark_low + 16384 {
                let step = 256 << 10;
                chunks.push(Chunk::take(step)?);
                topped += step;
                continue;
            }
            std::thread::sleep(Duration::from_millis(10));
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
            "hog: took {} KiB more to stay at the low watermark, lowest MemFree {} kB",
            topped >> 10,
            if min_free == u64::MAX { 0 } else { min_free }
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
    fn zoneinfo_watermarks() {
        let text = "Node 0, zone    DMA32\n  pages free     1000\n        min      707\n        low      883\n        high     1059\n        protection: (0, 0, 0)\nNode 0, zone  Movable\n        min      32\n        low      32\n";
        assert_eq!(parse_watermarks_kb(text), ((707 + 32) * 4, (883 + 32) * 4));
    }
}
