// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl top`: a live, full-screen view of the module, redrawn every `--interval`:
//!
//! - the arena map (one bar per present slot, as `rkmemctl map` draws them),
//! - the free blocks per order (`/proc/rkmem/buddyinfo`) with the unusable free space and
//!   fragmentation indices (`/proc/rkmem/extfrag`),
//! - slab occupancy per cache (`/proc/rkmem/slabinfo` and the fullness buckets of
//!   `/proc/rkmem/occupancy`),
//! - activity since the previous frame: page allocations and frees per second, reclaim runs
//!   (`reclaim_*` of `/proc/rkmem/stats`), shrinker calls (`/proc/rkmem/shrinker`), compaction
//!   runs and moves (`/proc/rkmem/compaction`).
//!
//! No curses: each frame is one write of "cursor home, clear screen" and at most `rows - 1`
//! lines, each cut to the terminal's width (TIOCGWINSZ of stdout; 80x24 if it has none), so a
//! frame never wraps or scrolls and the last row stays free for the cursor. `q` quits when
//! stdin is a terminal (it is read without echo, signals left on); Ctrl-C quits as cleanly.
//! The frame is made from the texts alone ([`render`]), so the host tests check it.

use crate::dev::{Device, SlotMap};
use crate::procfs::{self, Extfrag, FreeCounts, SlabRow, NR_ORDERS};
use nix::libc;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Fullness buckets of `/proc/rkmem/occupancy`: 0-9%, ..., 90-99%, 100%.
pub const BUCKETS: usize = 11;

/// The terminal size used when stdout has none.
pub const FALLBACK_SIZE: (usize, usize) = (24, 80);

/// What one frame shows: the /proc/rkmem files, parsed, and the arena's slot maps.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Counters of `stats`, `shrinker` and `compaction` (their names are distinct).
    pub counters: HashMap<String, u64>,
    /// `buddyinfo`.
    pub buddy: FreeCounts,
    /// `extfrag`.
    pub extfrag: Option<Extfrag>,
    /// `slabinfo`'s rows.
    pub slabs: Vec<SlabRow>,
    /// `occupancy`: slabs per fullness bucket, by cache name.
    pub occupancy: HashMap<String, [u64; BUCKETS]>,
    /// `RKMEM_IOC_ARENA_MAP` of every slot.
    pub maps: Vec<SlotMap>,
}

/// The texts of the files a sample is made of.
pub struct Texts<'a> {
    pub stats: &'a str,
    pub buddyinfo: &'a str,
    pub extfrag: &'a str,
    pub slabinfo: &'a str,
    pub occupancy: &'a str,
    pub shrinker: &'a str,
    pub compaction: &'a str,
}

/// Parses `/proc/rkmem/occupancy`: a `#` header, then a name and 11 counts per line.
pub fn parse_occupancy(text: &str) -> Result<HashMap<String, [u64; BUCKETS]>, String> {
    let mut out = HashMap::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut words = l.split_whitespace();
        let name = words.next().unwrap_or_default();
        let v = words
            .map(|w| w.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("occupancy: bad row {l:?}"))?;
        let h: [u64; BUCKETS] = v
            .try_into()
            .map_err(|_| format!("occupancy: row without {BUCKETS} buckets: {l:?}"))?;
        out.insert(name.to_string(), h);
    }
    Ok(out)
}

impl Sample {
    /// A sample from the files' texts and the slot maps.
    pub fn parse(t: &Texts<'_>, maps: Vec<SlotMap>) -> Result<Sample, String> {
        let mut c = HashMap::new();
        procfs::parse_counters("stats", t.stats, &mut c)?;
        procfs::parse_counters("shrinker", t.shrinker, &mut c)?;
        procfs::parse_counters("compaction", t.compaction, &mut c)?;
        Ok(Sample {
            counters: c,
            buddy: procfs::parse_buddyinfo(t.buddyinfo)?,
            extfrag: Some(procfs::parse_extfrag(t.extfrag)?),
            slabs: procfs::parse_slabinfo(t.slabinfo)?,
            occupancy: parse_occupancy(t.occupancy)?,
            maps,
        })
    }

    /// Reads the files and the maps now. Buddyinfo is read last, right after the maps, so that
    /// the two agree while nothing allocates.
    pub fn read(d: &Device) -> Result<Sample, String> {
        let r = |f: &str| procfs::read(&format!("/proc/rkmem/{f}"));
        let (stats, shrinker, compaction) = (r("stats")?, r("shrinker")?, r("compaction")?);
        let (slabinfo, occupancy) = (r("slabinfo")?, r("occupancy")?);
        let maps = d
            .arena_maps()
            .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?;
        let (extfrag, buddyinfo) = (r("extfrag")?, r("buddyinfo")?);
        Sample::parse(
            &Texts {
                stats: &stats,
                buddyinfo: &buddyinfo,
                extfrag: &extfrag,
                slabinfo: &slabinfo,
                occupancy: &occupancy,
                shrinker: &shrinker,
                compaction: &compaction,
            },
            maps,
        )
    }

    fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Which frame this is, for the title line.
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo {
    /// 1 for the first frame.
    pub number: u64,
    /// Frames to draw, if bounded.
    pub of: Option<u64>,
    /// Seconds between frames.
    pub interval: f64,
}

/// `line` cut to `cols` characters (a frame never wraps).
pub fn fit(line: &str, cols: usize) -> String {
    line.chars().take(cols).collect()
}

/// A number of thousandths as the kernel's index, with two decimals.
fn index(v: i32) -> String {
    format!("{:.2}", f64::from(v) / 1000.0)
}

/// The widest bar of 64, 32 or 16 cells (divisors of a slot's 1024 pages) that fits `cols`
/// with its label and borders.
fn bar_width(cols: usize) -> usize {
    [64, 32, 16]
        .into_iter()
        .find(|&w| w + 10 <= cols)
        .unwrap_or(16)
}

fn arena_lines(s: &Sample, cols: usize) -> (String, Vec<String>) {
    let Some(first) = s.maps.first() else {
        return ("ARENA MAP  (no slots)".into(), vec![]);
    };
    let width = bar_width(cols);
    let present: Vec<&SlotMap> = s.maps.iter().filter(|m| m.present).collect();
    let cell = u64::from(first.slot_pages).div_ceil(width as u64).max(1);
    let title = format!(
        "ARENA MAP  {} of {} slots, {} per cell: '#' used, '=' exact, ':' part used, '.' free",
        present.len(),
        first.slots,
        crate::map::size(cell)
    );
    let mut body: Vec<String> = present
        .iter()
        .map(|m| {
            let [free, used, exact] = crate::map::totals(&m.blocks);
            format!(
                "{:<8}|{}|  used {used} exact {exact} free {free} pages, {} blocks",
                format!("slot {}", m.slot),
                crate::map::bar(&m.blocks, m.slot_pages, width),
                m.blocks.len()
            )
        })
        .collect();
    let absent: Vec<u32> = s
        .maps
        .iter()
        .filter(|m| !m.present)
        .map(|m| m.slot)
        .collect();
    if !absent.is_empty() {
        body.push(format!("        absent: {}", crate::map::ranges(&absent)));
    }
    (title, body)
}

fn order_lines(s: &Sample) -> Vec<String> {
    let free_pages = procfs::free_pages(&s.buddy);
    let largest = s.buddy.iter().rposition(|&n| n > 0);
    let mut title = format!(
        "FREE BLOCKS PER ORDER  {free_pages} pages free, largest free order {}",
        largest.map_or("none".to_string(), |o| o.to_string())
    );
    let pcp = s.get("arena_pcp_pages");
    let _ = write!(title, ", per-CPU caches {pcp} pages");
    let row = |label: &str, cells: &mut dyn Iterator<Item = String>| {
        let mut l = format!("{label:<9}");
        for c in cells {
            let _ = write!(l, "{c:>6}");
        }
        l
    };
    let mut lines = vec![
        title,
        row("order", &mut (0..NR_ORDERS).map(|o| o.to_string())),
        row(
            "block",
            &mut (0..NR_ORDERS).map(|o| crate::map::size(1 << o)),
        ),
        row("free", &mut s.buddy.iter().map(|n| n.to_string())),
    ];
    if let Some(e) = &s.extfrag {
        lines.push(row("unusable", &mut e.unusable.iter().map(|&v| index(v))));
        lines.push(row("extfrag", &mut e.extfrag.iter().map(|&v| index(v))));
    }
    lines
}

/// The slab table's header.
pub const SLAB_HEADER: &str = "cache              active   objs  use  size  slabs    KiB |   0%  10%  20%  30%  40%  50%  60%  70%  80%  90% 100%";

fn slab_lines(s: &Sample) -> (String, Vec<String>) {
    let mut rows = s.slabs.clone();
    crate::slabtop::sort(&mut rows, crate::slabtop::SortBy::Active);
    let in_use = rows.iter().filter(|r| r.active_objs > 0).count();
    let title = format!(
        "SLAB OCCUPANCY  {} caches, {in_use} with objects in use; slabs per fullness bucket",
        rows.len()
    );
    let body = rows
        .iter()
        .map(|r| {
            let pct = (r.active_objs * 100).checked_div(r.num_objs).unwrap_or(0);
            let mut l = format!(
                "{:<18} {:>6} {:>6} {:>3}% {:>5} {:>6} {:>6} |",
                r.name,
                r.active_objs,
                r.num_objs,
                pct,
                r.objsize,
                r.num_slabs,
                r.cache_bytes() / 1024
            );
            match s.occupancy.get(&r.name) {
                Some(h) => h.iter().for_each(|n| {
                    let _ = write!(l, " {n:>4}");
                }),
                None => l.push_str(" (no occupancy row)"),
            }
            l
        })
        .collect();
    (title, body)
}

fn activity_lines(prev: Option<(&Sample, f64)>, s: &Sample) -> Vec<String> {
    let Some((p, secs)) = prev else {
        let mut l = vec!["ACTIVITY  first frame: rates from the next refresh on, until then the totals since load".to_string()];
        l.push(format!(
            "pages      allocs {}  frees {}  per-CPU hits {}",
            s.get("page_allocs"),
            s.get("page_frees"),
            s.get("page_pcp_hits")
        ));
        l.push(format!(
            "reclaim    async runs {} ({} pages)  sync runs {} ({} pages)",
            s.get("reclaim_async_runs"),
            s.get("reclaim_async_pages"),
            s.get("reclaim_sync_runs"),
            s.get("reclaim_sync_pages")
        ));
        l.push(format!(
            "shrinker   count calls {}  scan calls {}  pages freed {}",
            s.get("count_calls"),
            s.get("scan_calls"),
            s.get("objects_freed")
        ));
        l.push(format!(
            "compaction runs {}  objects moved {}  pages moved {}  slots freed {}",
            compact_runs(s),
            s.get("compact_objects_moved"),
            s.get("compact_pages_moved"),
            s.get("compact_blocks_freed")
        ));
        return l;
    };
    let d = |k: &str| s.get(k).saturating_sub(p.get(k));
    let rate = |k: &str| {
        if secs > 0.0 {
            d(k) as f64 / secs
        } else {
            0.0
        }
    };
    vec![
        format!("ACTIVITY  over the last {secs:.2} s: per second, or +changes (totals since load)"),
        format!(
            "pages      allocs {:.1}/s  frees {:.1}/s  per-CPU hits {:.1}/s  ({} / {} / {})",
            rate("page_allocs"),
            rate("page_frees"),
            rate("page_pcp_hits"),
            s.get("page_allocs"),
            s.get("page_frees"),
            s.get("page_pcp_hits")
        ),
        format!(
            "reclaim    async runs +{} (+{} pages)  sync runs +{} (+{} pages)  ({} / {} runs)",
            d("reclaim_async_runs"),
            d("reclaim_async_pages"),
            d("reclaim_sync_runs"),
            d("reclaim_sync_pages"),
            s.get("reclaim_async_runs"),
            s.get("reclaim_sync_runs")
        ),
        format!(
            "shrinker   count calls +{}  scan calls +{}  pages freed +{}  ({} / {} calls)",
            d("count_calls"),
            d("scan_calls"),
            d("objects_freed"),
            s.get("count_calls"),
            s.get("scan_calls")
        ),
        format!(
            "compaction runs +{}  objects moved +{}  pages moved +{}  slots freed +{}  ({} runs)",
            compact_runs(s).saturating_sub(compact_runs(p)),
            d("compact_objects_moved"),
            d("compact_pages_moved"),
            d("compact_blocks_freed"),
            compact_runs(s)
        ),
    ]
}

fn compact_runs(s: &Sample) -> u64 {
    ["ioctl", "proc", "shrinker", "proactive"]
        .iter()
        .map(|t| s.get(&format!("compact_runs_{t}")))
        .sum()
}

/// The frame for a terminal of `rows` x `cols`: at most `rows - 1` lines (the last row stays
/// free), none wider than `cols`. `prev` is the previous frame's sample and the seconds since
/// it. The arena's slots and then the slab table get the rows the fixed sections leave; what
/// does not fit is counted in a last `... N more` line, and on a terminal too small for the
/// fixed sections the frame is cut at the bottom.
pub fn render(
    prev: Option<(&Sample, f64)>,
    s: &Sample,
    info: FrameInfo,
    rows: usize,
    cols: usize,
) -> Vec<String> {
    let avail = rows.saturating_sub(1).max(1);
    let arena_pages = s.get("arena_pages");
    let of = info.of.map_or(String::new(), |n| format!(" of {n}"));
    let title = format!(
        "rkmemctl top - frame {}{of}, every {} s - arena {} MiB of {} MiB, {} pages free - q quits",
        info.number,
        info.interval,
        arena_pages / 256,
        s.get("arena_max_mb"),
        s.get("arena_free_pages")
    );
    let (arena_title, mut arena) = arena_lines(s, cols);
    let orders = order_lines(s);
    let (slab_title, mut slabs) = slab_lines(s);
    let activity = activity_lines(prev, s);
    // Title, arena title, the order table, slab title and header, activity.
    let fixed = 1 + 1 + orders.len() + 2 + activity.len();
    let mut spare = avail.saturating_sub(fixed);
    for body in [&mut arena, &mut slabs] {
        if body.len() > spare {
            let keep = spare.saturating_sub(1);
            let more = body.len() - keep;
            body.truncate(keep);
            if spare > 0 {
                body.push(format!("        ... {more} more"));
            }
        }
        spare -= body.len();
    }
    let mut out = vec![title, arena_title];
    out.append(&mut arena);
    out.extend(orders);
    out.push(slab_title);
    out.push(SLAB_HEADER.to_string());
    out.append(&mut slabs);
    out.extend(activity);
    out.truncate(avail);
    out.iter().map(|l| fit(l, cols)).collect()
}

/// What is written to the terminal for a frame: cursor home, clear the screen, the lines
/// separated by CR LF (no line feed after the last: nothing scrolls).
pub fn frame_bytes(lines: &[String]) -> String {
    format!("\x1b[H\x1b[2J{}", lines.join("\r\n"))
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// The size (rows, columns) of the terminal on `fd`, or [`FALLBACK_SIZE`].
pub fn term_size(fd: impl AsRawFd) -> (usize, usize) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into `ws`, which outlives the call.
    match unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) } {
        Ok(_) if ws.ws_row > 0 && ws.ws_col > 0 => (usize::from(ws.ws_row), usize::from(ws.ws_col)),
        _ => FALLBACK_SIZE,
    }
}

static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig != libc::SIGWINCH {
        QUIT.store(true, Ordering::Relaxed);
    }
}

/// Handlers without `SA_RESTART`: SIGINT and SIGTERM end the loop (so the terminal is
/// restored), SIGWINCH only interrupts the wait (the next frame takes the new size).
fn install_handlers() -> Result<(), String> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGWINCH] {
        // SAFETY: an all-zero `sigaction` is valid (empty mask, no flags); the handler only
        // stores to an atomic, which is async-signal-safe.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        nix::errno::Errno::result(r).map_err(|e| format!("sigaction({sig}): {e}"))?;
    }
    Ok(())
}

/// stdin in non-canonical mode without echo while it lives (signals stay on).
struct KeyReader {
    saved: Option<nix::sys::termios::Termios>,
}

impl KeyReader {
    fn new() -> KeyReader {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.local_flags
                .remove(LocalFlags::ICANON | LocalFlags::ECHO);
            if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
                return KeyReader { saved: None };
            }
        }
        KeyReader { saved }
    }

    /// Waits until `deadline`; true if `q` was typed or a signal asked to quit.
    fn wait(&self, deadline: Instant) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let stdin = std::io::stdin();
        loop {
            if QUIT.load(Ordering::Relaxed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let mut fds = Vec::new();
            if self.saved.is_some() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(n) if n > 0 => {
                    let mut buf = [0u8; 64];
                    match nix::unistd::read(stdin.as_fd(), &mut buf) {
                        Ok(0) | Err(_) => return false,
                        Ok(k) => {
                            if buf[..k].iter().any(|&b| b == b'q' || b == b'Q') {
                                return true;
                            }
                        }
                    }
                }
                // A signal: SIGWINCH redraws at once, the others set QUIT.
                Err(nix::errno::Errno::EINTR) if !QUIT.load(Ordering::Relaxed) => return false,
                _ => {}
            }
        }
    }
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// `rkmemctl top`.
pub fn run(interval: f64, iterations: Option<u64>) -> Result<(), String> {
    if !(interval > 0.0 && interval <= 86_400.0) {
        return Err(format!("--interval {interval}: want 0 < seconds <= 86400"));
    }
    if iterations == Some(0) {
        return Err("--iterations 0: want at least 1".into());
    }
    let d = Device::open_cmd()?;
    install_handlers()?;
    let keys = KeyReader::new();
    let mut prev: Option<(Sample, Instant)> = None;
    let mut number = 0;
    let result = loop {
        number += 1;
        let start = Instant::now();
        let s = match Sample::read(&d) {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let (rows, cols) = term_size(std::io::stdout());
        let info = FrameInfo {
            number,
            of: iterations,
            interval,
        };
        let p = prev
            .as_ref()
            .map(|(p, at)| (p, start.duration_since(*at).as_secs_f64()));
        let lines = render(p, &s, info, rows, cols);
        let mut out = std::io::stdout().lock();
        if let Err(e) = out
            .write_all(frame_bytes(&lines).as_bytes())
            .and_then(|()| out.flush())
        {
            break Err(format!("stdout: {e}"));
        }
        drop(out);
        prev = Some((s, start));
        if iterations.is_some_and(|n| number >= n) {
            break Ok(());
        }
        if keys.wait(start + Duration::from_secs_f64(interval)) {
            break Ok(());
        }
    };
    drop(keys);
    // Below the frame, which left the last row free.
    print!("\r\n");
    let _ = std::io::stdout().flush();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::blk;
    use crate::uapi::{RKMEM_BLOCK_EXACT, RKMEM_BLOCK_FREE, RKMEM_BLOCK_USED};

    const STATS: &str = "abi_version 5\narena_initial_mb 8\narena_max_mb 64\narena_pages 2048\narena_free_pages 2037\narena_pcp_pages 15\npage_allocs 1000\npage_frees 400\npage_pcp_hits 300\nreclaim_async_runs 1\nreclaim_async_pages 8\nreclaim_sync_runs 0\nreclaim_sync_pages 0\n";
    const SHRINKER: &str =
        "count_calls 4\nscan_calls 2\nobjects_scanned 9\nobjects_freed 7\nscan_stops 0\n";
    const COMPACTION: &str = "compact_runs_ioctl 1\ncompact_runs_proc 0\ncompact_runs_shrinker 0\ncompact_runs_proactive 0\ncompact_objects_moved 3\ncompact_pages_moved 5\ncompact_blocks_freed 0\n";
    const BUDDY: &str = "Node 0, zone    rkmem      3      1      0      2      0      1      1      1      1      1      1 \n";
    const EXTFRAG: &str = "arena_pages 2048\narena_mib 8\nfree_pages 2037\nlargest_free_order 10\nunusable Node 0, zone    rkmem 0.000 0.002 0.003 0.003 0.008 0.008 0.030 0.073 0.159 0.331 0.675 \nextfrag Node 0, zone    rkmem -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 \n";
    const SLABINFO: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
topc                 500    510    117   34    1 : tunables   32   16    0 : slabdata     15     15      0\n\
rkmalloc-8             0      0      8  507    1 : tunables   32   16    0 : slabdata      0      0      0\n\
rkmalloc-4k            3      7   4096    7    8 : tunables   32   16    0 : slabdata      1      1      0\n";
    const OCCUPANCY: &str = "# name                  0-9%  10-19%  20-29%  30-39%  40-49%  50-59%  60-69%  70-79%  80-89%  90-99%    100%\n\
topc                       0       0       0       0       0       0       0       0       0       1      14\n\
rkmalloc-8                 0       0       0       0       0       0       0       0       0       0       0\n\
rkmalloc-4k                0       0       0       0       1       0       0       0       0       0       0\n";

    fn maps() -> Vec<SlotMap> {
        let mut slot0 = vec![
            blk(0, 512, RKMEM_BLOCK_USED),
            blk(512, 3, RKMEM_BLOCK_EXACT),
            blk(515, 1, RKMEM_BLOCK_FREE),
        ];
        let mut start = 516;
        for pages in [4, 8, 16, 32, 64, 128, 256] {
            slot0.push(blk(start, pages, RKMEM_BLOCK_FREE));
            start += pages;
        }
        (0..16)
            .map(|slot| SlotMap {
                slot,
                slots: 16,
                present: slot < 2,
                slot_pages: 1024,
                pcp_pages: 15,
                blocks: match slot {
                    0 => slot0.clone(),
                    1 => vec![blk(0, 1024, RKMEM_BLOCK_FREE)],
                    _ => vec![],
                },
            })
            .collect()
    }

    fn sample() -> Sample {
        Sample::parse(
            &Texts {
                stats: STATS,
                buddyinfo: BUDDY,
                extfrag: EXTFRAG,
                slabinfo: SLABINFO,
                occupancy: OCCUPANCY,
                shrinker: SHRINKER,
                compaction: COMPACTION,
            },
            maps(),
        )
        .unwrap()
    }

    fn info(number: u64) -> FrameInfo {
        FrameInfo {
            number,
            of: Some(3),
            interval: 0.5,
        }
    }

    #[test]
    fn frame_layout() {
        let f = render(None, &sample(), info(1), 40, 120);
        let text = f.join("\n");
        assert_eq!(
            f[0],
            "rkmemctl top - frame 1 of 3, every 0.5 s - arena 8 MiB of 64 MiB, 2037 pages free - q quits"
        );
        assert!(f[1].starts_with("ARENA MAP  2 of 16 slots, 64K per cell: '#' used"));
        assert_eq!(
            f[2],
            format!(
                "slot 0  |{}{}|  used 512 exact 3 free 509 pages, 10 blocks",
                "#".repeat(32),
                ":".to_owned() + &".".repeat(31)
            )
        );
        assert!(f[3].starts_with(&format!("slot 1  |{}|", ".".repeat(64))));
        assert_eq!(f[4], "        absent: slots 2-15");
        assert!(f[5].starts_with("FREE BLOCKS PER ORDER  2037 pages free, largest free order 10, per-CPU caches 15 pages"));
        assert_eq!(
            f[6],
            "order         0     1     2     3     4     5     6     7     8     9    10"
        );
        assert_eq!(
            f[7],
            "block        4K    8K   16K   32K   64K  128K  256K  512K    1M    2M    4M"
        );
        assert_eq!(
            f[8],
            "free          3     1     0     2     0     1     1     1     1     1     1"
        );
        assert_eq!(
            f[9],
            "unusable   0.00  0.00  0.00  0.00  0.01  0.01  0.03  0.07  0.16  0.33  0.68"
        );
        assert_eq!(
            f[10],
            "extfrag   -1.00 -1.00 -1.00 -1.00 -1.00 -1.00 -1.00 -1.00 -1.00 -1.00 -1.00"
        );
        assert!(f[11].starts_with("SLAB OCCUPANCY  3 caches, 2 with objects in use"));
        assert_eq!(f[12], SLAB_HEADER);
        assert_eq!(f[13], "topc                  500    510  98%   117     15     60 |    0    0    0    0    0    0    0    0    0    1   14");
        assert!(f[14].starts_with(
            "rkmalloc-4k             3      7  42%  4096      1     32 |    0    0    0    0    1"
        ));
        assert!(f[15].starts_with("rkmalloc-8 "));
        assert!(f[16].starts_with("ACTIVITY  first frame"));
        assert_eq!(f[17], "pages      allocs 1000  frees 400  per-CPU hits 300");
        assert!(f[19].starts_with("shrinker   count calls 4  scan calls 2  pages freed 7"));
        assert!(f[20].starts_with("compaction runs 1  objects moved 3  pages moved 5"));
        assert_eq!(f.len(), 21);
        assert!(f.iter().all(|l| l.len() <= 120), "{text}");
    }

    #[test]
    fn rates_since_the_previous_frame() {
        let p = sample();
        let mut s = sample();
        for (k, v) in [
            ("page_allocs", 1500),
            ("page_frees", 600),
            ("count_calls", 6),
            ("compact_runs_proc", 2),
            ("compact_pages_moved", 9),
            ("reclaim_sync_runs", 1),
        ] {
            s.counters.insert(k.into(), v);
        }
        let f = render(Some((&p, 0.5)), &s, info(2), 40, 120);
        let a = f.iter().position(|l| l.starts_with("ACTIVITY")).unwrap();
        assert!(
            f[a].starts_with("ACTIVITY  over the last 0.50 s"),
            "{}",
            f[a]
        );
        assert!(
            f[a + 1].starts_with(
                "pages      allocs 1000.0/s  frees 400.0/s  per-CPU hits 0.0/s  (1500 / 600 / 300)"
            ),
            "{}",
            f[a + 1]
        );
        assert!(f[a + 2].contains("sync runs +1 (+0 pages)"), "{}", f[a + 2]);
        assert!(
            f[a + 3].starts_with("shrinker   count calls +2  scan calls +0"),
            "{}",
            f[a + 3]
        );
        assert!(
            f[a + 4].starts_with("compaction runs +2  objects moved +0  pages moved +4"),
            "{}",
            f[a + 4]
        );
        assert!(!f.iter().any(|l| l.contains("first frame")));
    }

    #[test]
    fn fits_small_terminals() {
        let s = sample();
        for (rows, cols) in [(24, 80), (10, 40), (2, 10), (1, 1), (30, 60)] {
            let f = render(None, &s, info(1), rows, cols);
            assert!(f.len() < rows.max(2), "{rows}x{cols}: {} lines", f.len());
            assert!(
                f.iter().all(|l| l.chars().count() <= cols),
                "{rows}x{cols}: {f:?}"
            );
            assert!(f[0].starts_with(&fit("rkmemctl top", cols)));
        }
        // 80 columns: a 64-cell bar still fits; 40: a 16-cell one.
        let f = render(None, &s, info(1), 24, 80);
        assert!(f[2].starts_with(&format!("slot 0  |{}", "#".repeat(32))));
        let f = render(None, &s, info(1), 24, 40);
        assert_eq!(&f[2][..26], &format!("slot 0  |{}:.......|", "#".repeat(8)));
        assert!(f[1].contains("256K per cell"));
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let mut s = sample();
        for m in s.maps.iter_mut() {
            m.present = true;
            m.blocks = vec![blk(0, 1024, RKMEM_BLOCK_FREE)];
        }
        // 23 rows: 22 lines; fixed sections take 15, so 7 for 16 slots and 3 caches.
        let f = render(None, &s, info(1), 23, 120);
        assert_eq!(f.len(), 22);
        assert!(f[1].starts_with("ARENA MAP  16 of 16 slots,"));
        assert!(f[7].starts_with("slot 5 "), "{f:?}");
        assert_eq!(f[8], "        ... 10 more");
        assert!(f[9].starts_with("FREE BLOCKS"));
        // No room left for the caches: their count only.
        assert!(f[15].starts_with("SLAB OCCUPANCY  3 caches"));
        assert_eq!(f[16], SLAB_HEADER);
        assert!(f[17].starts_with("ACTIVITY"), "{f:?}");
    }

    #[test]
    fn a_frame_replaces_the_screen() {
        // Three frames through a terminal emulator, the first longer (16 slots) and with
        // longer lines (the first frame's activity title): the screen is the last one alone.
        let mut vt = vt100::Parser::new(
            std::num::NonZeroU16::new(40).unwrap(),
            std::num::NonZeroU16::new(120).unwrap(),
            0,
        );
        let s = sample();
        let mut big = sample();
        for m in big.maps.iter_mut() {
            m.present = true;
            m.blocks = vec![blk(0, 1024, RKMEM_BLOCK_FREE)];
        }
        let mut last = render(None, &big, info(1), 40, 120);
        let first_len = last.len();
        vt.process(frame_bytes(&last).as_bytes());
        for n in 2..=3 {
            last = render(Some((&s, 0.5)), &s, info(n), 40, 120);
            vt.process(frame_bytes(&last).as_bytes());
        }
        assert!(first_len > last.len());
        vt.process(b"\r\n");
        let screen: Vec<String> = vt.screen().rows(0, 120).collect();
        assert_eq!(&screen[..last.len()], &last[..]);
        assert!(screen[last.len()..].iter().all(|r| r.is_empty()));
        assert!((0..40).all(|r| !vt.screen().row_wrapped(r)));
    }

    #[test]
    fn bad_texts_are_errors() {
        let t = |occupancy| {
            Sample::parse(
                &Texts {
                    stats: STATS,
                    buddyinfo: BUDDY,
                    extfrag: EXTFRAG,
                    slabinfo: SLABINFO,
                    occupancy,
                    shrinker: SHRINKER,
                    compaction: COMPACTION,
                },
                vec![],
            )
        };
        assert!(t("topc 1 2 3\n").is_err());
        assert!(t("topc 1 2 3 4 5 6 7 8 9 10 x\n").is_err());
        assert!(t("").is_ok());
    }
}
