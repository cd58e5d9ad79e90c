// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl pool`: mempools by hand (`pool create`, `pool hold`), a walk-through of the
//! reserve's semantics (`pool demo`), the guarantee under contention (`pool stress`), and the
//! parser of `/proc/rkmem/mempools`.
//!
//! A pool belongs to the open file that created it: closing the file (also when the process
//! exits or is killed) frees its elements and destroys it, so `create` shows the pool and exits,
//! `hold` sleeps, and `demo` runs its whole script on one file.

use crate::dev::{self, Alloc, CacheSpec, Device, PoolSource};
use crate::pattern;
use crate::uapi;
use clap::{Args, Subcommand, ValueEnum};
use nix::errno::Errno;
use std::io::Write;
use std::time::{Duration, Instant};

/// `/proc/rkmem/mempools`.
pub const MEMPOOLS: &str = "/proc/rkmem/mempools";

/// The header line of `/proc/rkmem/mempools` (without the newline).
pub const MEMPOOLS_HEADER: &str =
    "# id source                    min reserve      out    waits    saves failures";

/// One row of `/proc/rkmem/mempools`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolRow {
    /// Pool id.
    pub id: u32,
    /// The element source: `cache:NAME`, `rkmalloc-64`, `rkmalloc:2pages`, `pages:order3`.
    pub source: String,
    /// Target reserve size.
    pub min: u64,
    /// Elements in the reserve now.
    pub reserve: u64,
    /// Elements handed out and not freed.
    pub out: u64,
    /// Times a caller slept waiting for a free element.
    pub waits: u64,
    /// Allocations the reserve served because the source failed.
    pub saves: u64,
    /// Allocations that failed (not sleeping and the reserve empty, or interrupted).
    pub failures: u64,
}

/// Renders a row exactly as the module does (`{:>4} {:<24} {:>5} {:>7} {:>8} {:>8} {:>8} {:>8}`).
pub fn format_row(r: &PoolRow) -> String {
    format!(
        "{:>4} {:<24} {:>5} {:>7} {:>8} {:>8} {:>8} {:>8}",
        r.id, r.source, r.min, r.reserve, r.out, r.waits, r.saves, r.failures
    )
}

fn parse_row(line: &str) -> Result<PoolRow, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 8 {
        return Err(format!("mempools row {line:?}: {} fields, want 8", f.len()));
    }
    let num = |i: usize| -> Result<u64, String> {
        f[i].parse().map_err(|_| {
            format!(
                "mempools row {line:?}: field {} {:?} is not a number",
                i + 1,
                f[i]
            )
        })
    };
    let row = PoolRow {
        id: u32::try_from(num(0)?).map_err(|_| format!("mempools row {line:?}: bad id"))?,
        source: f[1].to_string(),
        min: num(2)?,
        reserve: num(3)?,
        out: num(4)?,
        waits: num(5)?,
        saves: num(6)?,
        failures: num(7)?,
    };
    if format_row(&row) != line {
        return Err(format!(
            "mempools row {line:?} is not laid out as {:?}",
            format_row(&row)
        ));
    }
    Ok(row)
}

/// Parses `/proc/rkmem/mempools`: the header, then one row per pool, strictly.
pub fn parse_mempools(text: &str) -> Result<Vec<PoolRow>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(MEMPOOLS_HEADER) => {}
        other => {
            return Err(format!(
                "mempools header is {other:?}, want {MEMPOOLS_HEADER:?}"
            ))
        }
    }
    if !text.ends_with('\n') {
        return Err("mempools does not end with a newline".into());
    }
    lines.map(parse_row).collect()
}

/// Reads and parses `/proc/rkmem/mempools`.
pub fn mempools() -> Result<Vec<PoolRow>, String> {
    let text = std::fs::read_to_string(MEMPOOLS).map_err(|e| format!("{MEMPOOLS}: {e}"))?;
    parse_mempools(&text)
}

/// The row of pool `id`, if it has one (pool ids are unique module-wide).
pub fn row_of(id: u32) -> Result<Option<PoolRow>, String> {
    Ok(mempools()?.into_iter().find(|r| r.id == id))
}

/// The row of pool `id`; `Err` if it has none.
pub fn row(id: u32) -> Result<PoolRow, String> {
    row_of(id)?.ok_or_else(|| format!("pool {id} has no row in {MEMPOOLS}"))
}

/// The label the module gives a source: what /proc/rkmem/mempools shows.
pub fn source_label(source: PoolSource, cache_name: &str) -> String {
    match source {
        PoolSource::Cache(_) => format!("cache:{cache_name}"),
        PoolSource::Rkmalloc(size) if size <= 4096 => {
            dev::rkmalloc_class_name(size).unwrap_or_else(|| "?".into())
        }
        // Whole pages: as many as rkmalloc hands out for the size (a power of two up to 8).
        PoolSource::Rkmalloc(size) => format!(
            "rkmalloc:{}pages",
            dev::rkmalloc_bytes(size).unwrap_or(0) / dev::PAGE_SIZE
        ),
        PoolSource::Pages(order) => format!("pages:order{order}"),
    }
}

/// Where a command's pool takes its elements from: exactly one of the three.
#[derive(Args, Clone, Copy, Debug)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// Objects of a new cache of SIZE-byte objects (1..=4096), created on the same file.
    #[arg(long, value_name = "SIZE", value_parser = crate::slab::parse_u32)]
    cache_size: Option<u32>,
    /// rkmalloc of SIZE bytes (1 byte .. 4 MiB).
    #[arg(long, value_name = "SIZE", value_parser = crate::slab::parse_number)]
    rkmalloc: Option<u64>,
    /// Buddy blocks of this order (0..=10).
    #[arg(long)]
    order: Option<u32>,
}

/// The pool a `pool create` or `pool hold` makes.
#[derive(Args, Clone, Copy, Debug)]
pub struct PoolArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Elements reserved (preallocated now), 1..=4096.
    #[arg(long, default_value_t = 4)]
    min: u32,
    /// Make the source fail every allocation once the reserve is filled
    /// (RKMEM_POOL_FAIL_SOURCE, a test aid).
    #[arg(long)]
    fail_source: bool,
}

/// Which source fails in `pool stress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailingSource {
    /// A cache pool with RKMEM_POOL_FAIL_SOURCE: every element comes from the reserve.
    Inject,
    /// An rkmalloc pool while another file holds the whole arena: the source fails for real.
    Arena,
}

#[derive(Subcommand)]
pub enum PoolCmd {
    /// Create a pool, print the module's answer and its /proc/rkmem/mempools row, exit (which
    /// destroys it).
    Create {
        #[command(flatten)]
        pool: PoolArgs,
    },
    /// Create a pool, take --count elements without sleeping, fill them with a pattern, print
    /// "holding ..." and sleep (until killed, or for --seconds, then verify, free, destroy).
    Hold {
        #[command(flatten)]
        pool: PoolArgs,
        /// Elements to take.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Hold this long, then verify, free and destroy; default: until killed.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// A pool over a 117-byte cache with a reserve of 8 and a failing source: what the reserve
    /// serves, ENOMEM, refills, a sleeper woken by a free, EBUSY, destroy.
    Demo,
    /// The mempool guarantee: more sleeping allocators than reserve elements, on all CPUs, all
    /// on one file, with the source failing: no sleeping allocation fails, every thread is
    /// served, non-sleeping callers get an element or ENOMEM.
    Stress {
        /// Sleeping allocator threads per CPU.
        #[arg(long, default_value_t = 4)]
        threads_per_cpu: usize,
        /// Reserve of the pool.
        #[arg(long, default_value_t = 2)]
        reserve: u32,
        /// Run this long.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Elements every sleeping thread must get.
        #[arg(long, default_value_t = 5)]
        min_per_thread: u64,
        /// How the source fails.
        #[arg(long, value_enum, default_value_t = FailingSource::Inject)]
        source: FailingSource,
    },
}

/// Runs a `pool` command.
pub fn run(cmd: PoolCmd) -> Result<(), String> {
    match cmd {
        PoolCmd::Create { pool } => create_cmd(pool),
        PoolCmd::Hold {
            pool,
            count,
            seconds,
        } => hold(pool, count, seconds),
        PoolCmd::Demo => demo(),
        PoolCmd::Stress {
            threads_per_cpu,
            reserve,
            seconds,
            min_per_thread,
            source,
        } => {
            if !(seconds > 0.0 && seconds <= 86_400.0) {
                return Err(format!("--seconds {seconds}: want 0 < seconds <= 86400"));
            }
            let opts = crate::pooltest::GuaranteeOpts {
                threads_per_cpu,
                reserve,
                duration: Duration::from_secs_f64(seconds),
                min_per_thread,
                source,
                verbose: true,
            };
            let summary = crate::pooltest::guarantee(&opts)?;
            println!("{summary}");
            println!("pool stress: ok");
            Ok(())
        }
    }
}

/// Creates what `args` asks for on `d`: the cache (if any) and the pool; returns the pool id,
/// its source and the source's label.
fn make_pool(d: &Device, args: PoolArgs) -> Result<(u32, PoolSource, String), String> {
    let s = args.source;
    let (source, cache_name) = match (s.cache_size, s.rkmalloc, s.order) {
        (Some(size), _, _) => {
            let name = format!("pool{size}_{}", std::process::id());
            let c = d
                .cache_create(&CacheSpec::new(&name, size, 1)?)
                .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE {name} (size {size}): {e}"))?;
            (PoolSource::Cache(c.id), name)
        }
        (None, Some(size), _) => (PoolSource::Rkmalloc(size), String::new()),
        (None, None, Some(order)) => (PoolSource::Pages(order), String::new()),
        (None, None, None) => return Err("want --cache-size, --rkmalloc or --order".into()),
    };
    let flags = if args.fail_source {
        uapi::RKMEM_POOL_FAIL_SOURCE
    } else {
        0
    };
    let id = d
        .pool_create(source, args.min, flags)
        .map_err(|e| format!("RKMEM_IOC_POOL_CREATE {source:?} min {}: {e}", args.min))?;
    let label = source_label(source, &cache_name);
    Ok((id, source, label))
}

fn print_rows(ids: &[u32]) -> Result<(), String> {
    println!("{MEMPOOLS_HEADER}");
    for r in mempools()?.iter().filter(|r| ids.contains(&r.id)) {
        println!("{}", format_row(r));
    }
    Ok(())
}

fn create_cmd(args: PoolArgs) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let (id, _, label) = make_pool(&d, args)?;
    println!(
        "pool {id}: {label}, {} elements reserved{}",
        args.min,
        if args.fail_source {
            ", source failing from now on"
        } else {
            ""
        }
    );
    print_rows(&[id])
}

fn fill(d: &Device, a: &Alloc) -> Result<(), String> {
    let mut buf = vec![0u8; a.bytes as usize];
    pattern::fill(pattern::key(a.handle, 0), 0, &mut buf);
    d.write(a.handle, 0, &buf)
        .map_err(|e| format!("write {} bytes to {:#x}: {e}", a.bytes, a.handle))
}

fn verify(d: &Device, a: &Alloc) -> Result<(), String> {
    let mut buf = vec![0u8; a.bytes as usize];
    d.read(a.handle, 0, &mut buf)
        .map_err(|e| format!("read {} bytes of {:#x}: {e}", a.bytes, a.handle))?;
    match pattern::first_mismatch(pattern::key(a.handle, 0), 0, &buf) {
        None => Ok(()),
        Some((at, want, got)) => Err(format!(
            "element {:#x} differs at byte {at}: {want:#04x} written, {got:#04x} read",
            a.handle
        )),
    }
}

fn hold(args: PoolArgs, count: u32, seconds: Option<u64>) -> Result<(), String> {
    let d = Device::open_cmd()?;
    let (id, _, label) = make_pool(&d, args)?;
    let mut held = Vec::new();
    let mut enomem = false;
    for _ in 0..count {
        match d.pool_alloc(id, false) {
            Ok(a) => {
                fill(&d, &a)?;
                held.push(a);
            }
            Err(Errno::ENOMEM) => {
                enomem = true;
                break;
            }
            Err(e) => return Err(format!("RKMEM_IOC_POOL_ALLOC pool {id}: {e}")),
        }
    }
    println!(
        "holding {} elements of pool {id} ({label}, reserve {}){}",
        held.len(),
        args.min,
        if enomem {
            ", then ENOMEM (not sleeping)"
        } else {
            ""
        }
    );
    print_rows(&[id])?;
    let _ = std::io::stdout().flush();
    match seconds {
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Some(s) => std::thread::sleep(Duration::from_secs(s)),
    }
    for a in &held {
        verify(&d, a)?;
        d.free(a.handle)
            .map_err(|e| format!("free {:#x}: {e}", a.handle))?;
    }
    d.pool_destroy(id)
        .map_err(|e| format!("RKMEM_IOC_POOL_DESTROY {id}: {e}"))?;
    println!("verified, freed and destroyed pool {id}");
    Ok(())
}

fn rows_indented(id: u32) -> Result<(), String> {
    println!("   {MEMPOOLS_HEADER}");
    match row_of(id)? {
        Some(r) => println!("   {}", format_row(&r)),
        None => println!("   (no row for pool {id})"),
    }
    Ok(())
}

fn demo() -> Result<(), String> {
    let d = Device::open_cmd()?;
    let name = format!("pool_demo_117_{}", std::process::id());
    println!("-- a cache for a 117-byte struct, and a mempool over it with 8 elements reserved");
    let c = d
        .cache_create(&CacheSpec::new(&name, 117, 1)?)
        .map_err(|e| format!("RKMEM_IOC_CACHE_CREATE {name}: {e}"))?;
    println!(
        "   cache {name}: id {}, {} objects per {}-page slab",
        c.id, c.objects_per_slab, c.pages_per_slab
    );
    let id = d
        .pool_create(PoolSource::Cache(c.id), 8, uapi::RKMEM_POOL_FAIL_SOURCE)
        .map_err(|e| format!("RKMEM_IOC_POOL_CREATE: {e}"))?;
    println!("   pool {id}: reserve filled with 8 objects; RKMEM_POOL_FAIL_SOURCE: the cache fails every allocation from now on");
    rows_indented(id)?;

    println!("-- 10 allocations that may not sleep: the reserve serves 8, then ENOMEM at once");
    let mut held = Vec::new();
    for i in 1..=10 {
        let t = Instant::now();
        match d.pool_alloc(id, false) {
            Ok(a) => {
                fill(&d, &a)?;
                println!(
                    "   {i:>2}: handle {:#x}, {} bytes (from the reserve)",
                    a.handle, a.bytes
                );
                held.push(a);
            }
            Err(e) => println!("   {i:>2}: {e} after {} us", t.elapsed().as_micros()),
        }
    }
    rows_indented(id)?;

    println!("-- free 3: they refill the reserve first");
    for a in held.drain(..3) {
        verify(&d, &a)?;
        d.free(a.handle)
            .map_err(|e| format!("free {:#x}: {e}", a.handle))?;
    }
    rows_indented(id)?;

    println!("-- take the 3 back, then a sleeping allocation waits until another thread frees one");
    for _ in 0..3 {
        held.push(
            d.pool_alloc(id, false)
                .map_err(|e| format!("RKMEM_IOC_POOL_ALLOC: {e}"))?,
        );
    }
    let last = held.pop().ok_or("nothing held")?;
    let (waited, got) = std::thread::scope(|s| {
        let sleeper = s.spawn(|| {
            let t = Instant::now();
            let r = d.pool_alloc(id, true);
            (t.elapsed(), r)
        });
        std::thread::sleep(Duration::from_millis(300));
        let freed = d.free(last.handle);
        let (waited, got) = sleeper.join().unwrap_or((Duration::ZERO, Err(Errno::EIO)));
        (waited, freed.and(got))
    });
    let got = got.map_err(|e| format!("the sleeping allocation: {e}"))?;
    println!(
        "   the sleeper got handle {:#x} after {:.2} s, woken by the free",
        got.handle,
        waited.as_secs_f64()
    );
    held.push(got);
    rows_indented(id)?;

    println!("-- destroy while elements are out: EBUSY; free them all, then destroy");
    match d.pool_destroy(id) {
        Err(e) => println!("   RKMEM_IOC_POOL_DESTROY: {e}"),
        Ok(()) => return Err("destroying a pool with elements out succeeded".into()),
    }
    for a in held.drain(..) {
        d.free(a.handle)
            .map_err(|e| format!("free {:#x}: {e}", a.handle))?;
    }
    rows_indented(id)?;
    d.pool_destroy(id)
        .map_err(|e| format!("RKMEM_IOC_POOL_DESTROY {id}: {e}"))?;
    d.cache_destroy(c.id)
        .map_err(|e| format!("RKMEM_IOC_CACHE_DESTROY: {e}"))?;
    println!("   destroyed pool {id} and cache {name}");
    print_rows(&[id])?;
    println!("pool demo: done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# id source                    min reserve      out    waits    saves failures\n   \
                        1 cache:t117                  16      13        3        2        5        1\n   \
                        2 rkmalloc:2pages              2       2        0        0        0        0\n";

    #[test]
    fn mempools_parse() {
        let rows = parse_mempools(TEXT).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            PoolRow {
                id: 1,
                source: "cache:t117".into(),
                min: 16,
                reserve: 13,
                out: 3,
                waits: 2,
                saves: 5,
                failures: 1
            }
        );
        assert_eq!(rows[1].source, "rkmalloc:2pages");
        for (r, line) in rows.iter().zip(TEXT.lines().skip(1)) {
            assert_eq!(format_row(r), line);
        }
        assert_eq!(
            parse_mempools(&format!("{MEMPOOLS_HEADER}\n")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn mempools_layout_errors() {
        assert!(parse_mempools("").is_err());
        assert!(parse_mempools("# id source\n").is_err());
        assert!(parse_mempools(&TEXT.replace("  16 ", " 16  ")).is_err());
        assert!(parse_mempools(&TEXT.replace(" 13 ", " xx ")).is_err());
        assert!(parse_mempools(TEXT.trim_end()).is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(source_label(PoolSource::Cache(3), "t117"), "cache:t117");
        assert_eq!(source_label(PoolSource::Rkmalloc(64), ""), "rkmalloc-64");
        assert_eq!(source_label(PoolSource::Rkmalloc(100), ""), "rkmalloc-128");
        assert_eq!(source_label(PoolSource::Rkmalloc(2000), ""), "rkmalloc-2k");
        assert_eq!(
            source_label(PoolSource::Rkmalloc(8192), ""),
            "rkmalloc:2pages"
        );
        assert_eq!(
            source_label(PoolSource::Rkmalloc(4097), ""),
            "rkmalloc:2pages"
        );
        assert_eq!(source_label(PoolSource::Pages(3), ""), "pages:order3");
    }
}
