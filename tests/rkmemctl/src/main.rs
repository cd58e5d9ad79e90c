// SPDX-License-Identifier: GPL-2.0

//! rkmemctl: drives the rkmem module from user space over `/dev/rkmem` and reads
//! `/proc/rkmem`.

#[path = "../../../rust/uapi.rs"]
#[allow(dead_code)]
mod uapi;

mod bench;
mod compact;
mod compacttest;
mod dev;
mod failnth;
mod fuzz;
mod hog;
mod kstress;
mod lab;
mod map;
mod maxcalls;
mod pages;
mod pattern;
mod pool;
mod pooltest;
mod procfs;
mod ptyshot;
mod selftest;
mod slab;
mod slabtest;
mod slabtop;
mod stats;
mod statsview;
mod stress;
mod stress_all;
mod stress_slab;
mod top;
mod workers;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rkmemctl",
    version,
    about = "Drive the rkmem kernel module over /dev/rkmem"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ask the module for its ABI version and features, and check them against this program.
    Version,
    /// /proc/rkmem in readable tables: counters grouped, buddyinfo and fragmentation per
    /// order, mempools, shrinker, watermarks.
    Stats {
        /// Print /proc/rkmem/stats as it is ("name value" lines).
        #[arg(long)]
        raw: bool,
    },
    /// Random and boundary ioctls (random command numbers, bad fields and pointers, freed and
    /// foreign handles, files closed under the callers); then checks that the module still
    /// answers and its counters are back. Prints `N passed, N failed`.
    Fuzz {
        /// ioctl calls in all.
        #[arg(long, default_value_t = 20_000)]
        ops: u64,
        /// Seed of the random choices [default: from the clock].
        #[arg(long, value_parser = slab::parse_number)]
        seed: Option<u64>,
        /// Worker threads (plus one that opens and closes files) [default: number of CPUs].
        #[arg(long)]
        threads: Option<usize>,
        /// Print every call on stderr.
        #[arg(long)]
        verbose: bool,
    },
    /// Systematic fault injection (/proc/thread-self/fail-nth): fails each host allocation
    /// site of opening the device and of every allocating ioctl in turn (and with --module, of
    /// loading the module); every call must succeed or answer ENOMEM, and /proc/rkmem must be
    /// back at its starting counts. Needs CONFIG_FAULT_INJECTION and failslab/fail_page_alloc
    /// set to fail GFP_KERNEL allocations. Prints `N passed, N failed`.
    Failnth {
        /// Also sweep loading this module file (rkmem must not be loaded; it is afterwards).
        #[arg(long)]
        module: Option<String>,
    },
    /// The longest calls a user can make (every benchmark kind at its maximum counts, a
    /// second benchmark waiting on the same file, the largest compaction), for the kernel's
    /// lockup detectors to watch. Prints `N passed, N failed`.
    MaxCalls {
        /// Iterations per repetition (default: RKMEM_BENCH_MAX_ITERS).
        #[arg(long, default_value_t = uapi::RKMEM_BENCH_MAX_ITERS)]
        iters: u32,
        /// Repetitions (default: RKMEM_BENCH_MAX_REPS).
        #[arg(long, default_value_t = uapi::RKMEM_BENCH_MAX_REPS)]
        reps: u32,
    },
    /// Run the interface tests against the loaded module; prints `N passed, N failed`.
    Test {
        /// Run only tests whose name contains this text.
        filter: Option<String>,
    },
    /// Allocate pages from the buddy allocator (handles die with the process).
    Pages {
        #[command(subcommand)]
        cmd: PagesCmd,
    },
    /// Textbook examples replayed on the module, the textbook's picture next to what the kernel
    /// did: `buddy` (the buddy-system table), `bitmap` (a bitmap allocator of a 117-byte
    /// struct), `slab` (slabs moving between the full, partial and empty lists; the shrinker),
    /// `watermarks` (cleaning with two thresholds), `routes` (kmalloc, vmalloc, kvmalloc: the same
    /// sizes through each, bytes asked and used), `fragmentation` (the indices, then compaction);
    /// all chapters if none is given. Fails if any row differs. `buddy` needs a freshly loaded
    /// module (arena_initial_mb=4), `fragmentation` one with arena_initial_mb=16.
    Lab {
        /// The chapter (every chapter in turn if none is given).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(lab::CHAPTERS))]
        chapter: Option<String>,
        /// Append each picture's data to FILE as JSON lines, for scripts/lab_figures.py to
        /// draw as PNG on the host.
        #[arg(long, value_name = "FILE")]
        data: Option<std::path::PathBuf>,
    },
    /// Draw the arena's block map: one bar and a block list per 4 MiB slot.
    Map {
        /// Only this slot.
        #[arg(long)]
        slot: Option<u32>,
        /// Also list every block: start page, pages, size, kind.
        #[arg(long)]
        list: bool,
    },
    /// Trim rkmem's caches like its shrinker: empty slabs, per-CPU page caches, free arena
    /// blocks above arena_initial_mb (all three if no flag is given).
    Trim {
        /// Give empty slabs and per-CPU object caches back (RKMEM_TRIM_SLABS).
        #[arg(long)]
        slabs: bool,
        /// Drain the per-CPU page caches into the buddy lists (RKMEM_TRIM_PCP).
        #[arg(long)]
        pcp: bool,
        /// Release wholly free 4 MiB blocks above arena_initial_mb (RKMEM_TRIM_ARENA).
        #[arg(long)]
        arena: bool,
    },
    /// Compact memory behind the handles (RKMEM_IOC_COMPACT): the slabs of this file's caches
    /// and the size classes, and the arena over every open file (both if no flag is given).
    Compact {
        /// Slab compaction (RKMEM_COMPACT_SLABS).
        #[arg(long)]
        slabs: bool,
        /// Arena compaction (RKMEM_COMPACT_ARENA).
        #[arg(long)]
        arena: bool,
        /// Fragment the arena, show its map, a cache's occupancy and MemFree, compact, show
        /// them again, and check every survivor's bytes.
        #[arg(long, conflicts_with_all = ["slabs", "arena"])]
        demo: bool,
    },
    /// Stress tests with content verification.
    Stress {
        #[command(subcommand)]
        cmd: StressCmd,
    },
    /// Create slab caches and hold objects of them (caches die with the process).
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
    /// The slab allocator at work.
    Slab {
        #[command(subcommand)]
        cmd: SlabCmd,
    },
    /// Benchmarks against the host kernel's allocators (JSON lines prefixed `RKBENCH `).
    Bench(bench::Opts),
    /// Mempools: create, hold, a demo of the reserve, the guarantee under contention.
    Pool {
        #[command(subcommand)]
        cmd: pool::PoolCmd,
    },
    /// A user-space memory hog: take anonymous memory until MemAvailable is below --leave-mb,
    /// hold it, exit (pushes the kernel into reclaim).
    Hog(hog::Opts),
    /// A slabtop(1)-like view of /proc/rkmem/slabinfo.
    Slabtop {
        /// Print one view and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between views.
        #[arg(long, default_value_t = 3.0)]
        interval: f64,
        /// Order of the table.
        #[arg(long, value_enum, default_value_t = slabtop::SortBy::Active)]
        sort: slabtop::SortBy,
    },
    /// A live view, redrawn every --interval: the arena map, free blocks per order with the
    /// fragmentation indices, slab occupancy per cache, and the page, reclaim, shrinker and
    /// compaction activity since the previous frame. Fits the terminal (80x24 without one);
    /// q quits.
    Top {
        /// Seconds between frames.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Exit after this many frames [default: until q or Ctrl-C].
        #[arg(long)]
        iterations: Option<u64>,
    },
    /// Run a command in a pseudo-terminal of --rows x --cols, emulate a VT100 on its output
    /// and print the screen it leaves (one line per row); a summary line on stderr (exit
    /// code, longest line written, rows the terminal wrapped). Exits with the command's code.
    Ptyshot {
        /// Rows of the terminal.
        #[arg(long, default_value_t = 24)]
        rows: u16,
        /// Columns of the terminal.
        #[arg(long, default_value_t = 80)]
        cols: u16,
        /// Kill the command after this many seconds (exit code 124).
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
}

/// The cache a `cache` command creates.
#[derive(Args, Clone)]
struct CacheArgs {
    /// Cache name: 1 to 31 characters of [A-Za-z0-9_.-], unique.
    name: String,
    /// Object size in bytes (1..=4096).
    #[arg(long, value_parser = slab::parse_u32)]
    size: u32,
    /// Object alignment: a power of two up to 4096 (1 = byte aligned).
    #[arg(long, default_value = "1", value_parser = slab::parse_u32)]
    align: u32,
    /// Constructor: fill every new object with this byte (0..=255, or 0x00..=0xff).
    #[arg(long, value_name = "BYTE", value_parser = slab::parse_u8)]
    ctor: Option<u8>,
}

#[derive(Subcommand)]
enum CacheCmd {
    /// Create a cache, print the module's answer and its slabinfo row, exit (which destroys it).
    Create {
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Create a cache, allocate objects, fill them with a pattern, print "holding ..." and
    /// sleep (until killed, or for --seconds, then check, free and destroy).
    Hold {
        #[command(flatten)]
        cache: CacheArgs,
        /// Objects to allocate from the cache.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Also hold --count rkmalloc allocations of this many bytes.
        #[arg(long, value_name = "BYTES", value_parser = slab::parse_number)]
        rkmalloc: Option<u64>,
        /// Hold this long, then verify, free and destroy; default: until killed.
        #[arg(long)]
        seconds: Option<u64>,
    },
}

#[derive(Subcommand)]
enum SlabCmd {
    /// A cache for a 117-byte struct: allocate, write, verify, slabinfo rows, free, destroy;
    /// then where rkmalloc serves a few sizes.
    Demo,
}

/// What to allocate: `--order N` or `--exact NPAGES`.
#[derive(Args, Clone, Copy)]
#[group(required = true, multiple = false)]
struct ReqArgs {
    /// A block of 2^N pages, N in 0..=10.
    #[arg(long)]
    order: Option<u32>,
    /// Exactly NPAGES pages (1..=1024).
    #[arg(long, value_name = "NPAGES")]
    exact: Option<u32>,
}

impl ReqArgs {
    fn req(self) -> dev::PagesReq {
        match (self.order, self.exact) {
            (_, Some(n)) => dev::PagesReq::Exact(n),
            (Some(o), None) => dev::PagesReq::Order(o),
            // clap's group makes one of them required.
            (None, None) => dev::PagesReq::Order(0),
        }
    }
}

#[derive(Subcommand)]
enum PagesCmd {
    /// Allocate, print the handles, exit (which frees them).
    Alloc {
        #[command(flatten)]
        what: ReqArgs,
        /// How many allocations.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Print the arena map while holding them.
        #[arg(long)]
        map: bool,
    },
    /// Allocate, fill with a pattern, print "holding ..." and sleep (until killed, or for
    /// --seconds, then check the pattern and free).
    Hold {
        #[command(flatten)]
        what: ReqArgs,
        /// How many allocations.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Hold this long, then verify and free; default: until killed.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Allocate and free blocks of several orders, printing the arena map after each step.
    Demo,
}

/// What every stress command takes.
#[derive(Args)]
struct StressArgs {
    /// Worker threads, pinned round robin to the allowed CPUs [default: number of CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many operations in all.
    #[arg(long)]
    ops: Option<u64>,
    /// Seed of the random choices and data patterns [default: from the clock].
    #[arg(long, value_parser = slab::parse_number)]
    seed: Option<u64>,
    /// Most allocations each thread holds at a time [default: 32; stress slab: 64].
    #[arg(long)]
    live: Option<usize>,
}

impl StressArgs {
    /// The workers' settings (one thread per allowed CPU and a seed from the clock unless
    /// given; `live` unless given), after checking `--seconds`.
    fn settings(&self, live: usize) -> Result<workers::Settings, String> {
        check_seconds(self.seconds)?;
        Ok(workers::Settings {
            threads: self
                .threads
                .unwrap_or_else(|| workers::allowed_cpus().len()),
            duration: Duration::from_secs_f64(self.seconds),
            ops: self.ops,
            seed: seed_or_clock(self.seed),
            live: self.live.unwrap_or(live),
        })
    }
}

#[derive(Subcommand)]
enum StressCmd {
    /// Every allocator at once (buddy orders and exact sizes, caches of odd sizes, rkmalloc,
    /// mempools), each allocation checked against its pattern before it is freed; latency
    /// percentiles per operation, and /proc/rkmem back at its starting counts at the end.
    /// Prints `N passed, N failed`.
    All {
        #[command(flatten)]
        common: StressArgs,
        /// No progress bar (it is drawn only when stderr is a terminal anyway).
        #[arg(long)]
        no_progress: bool,
        /// Meanwhile compact (slabs and arena, every open file) in a loop from the main
        /// thread: every move happens under the workers' reads and writes.
        #[arg(long)]
        compact: bool,
    },
    /// The module's in-kernel stress engine (RKMEM_IOC_STRESS) in a loop: a worker per CPU
    /// makes a seeded random mix of every allocator's operations, each allocation filled with
    /// a pattern and checked before its free, an eighth freed on another CPU; no system call
    /// per operation. Prints the totals and `N passed, N failed`.
    Kernel {
        /// Seconds to run (several calls).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seed of the first call (each next call adds one) [default: from the clock].
        #[arg(long, value_parser = slab::parse_number)]
        seed: Option<u64>,
        /// Milliseconds per call (1..=10000).
        #[arg(long, default_value_t = 2000)]
        call_ms: u32,
        /// Steps per CPU of one call [default: unbounded, the time ends each call].
        #[arg(long)]
        ops: Option<u64>,
        /// One call in which each worker changes a byte of its first allocation: the run
        /// passes only if the engine reports exactly those (the check of the checker).
        #[arg(long, conflicts_with = "total_ops")]
        corrupt_one: bool,
        /// Run until this many operations are verified; --seconds is then the most the run
        /// may take (a failure if the operations are not done by then).
        #[arg(long)]
        total_ops: Option<u64>,
    },
    /// One thread per CPU, each with its own fd: random alloc / write / verify / free.
    Pages {
        #[command(flatten)]
        common: StressArgs,
        /// Percentage of exact-size allocations.
        #[arg(long, default_value_t = 25)]
        exact_pct: u64,
    },
    /// One thread per CPU, each with its own fd and its own cache (random size and alignment):
    /// objects and rkmalloc allocations, random alloc / write / verify / free.
    Slab {
        #[command(flatten)]
        common: StressArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Version => version(),
        Cmd::Stats { raw: true } => print_file(procfs::STATS),
        Cmd::Stats { raw: false } => statsview::run(),
        Cmd::Fuzz {
            ops,
            seed,
            threads,
            verbose,
        } => fuzz::run(&fuzz::Options {
            ops,
            seed: seed_or_clock(seed),
            threads: threads.unwrap_or_else(|| workers::allowed_cpus().len()),
            verbose,
        }),
        Cmd::Stress {
            cmd:
                StressCmd::All {
                    common,
                    no_progress,
                    compact,
                },
        } => common.settings(32).and_then(|common| {
            stress_all::run(&stress_all::Options {
                common,
                progress: !no_progress,
                compact,
            })
        }),
        Cmd::Stress {
            cmd:
                StressCmd::Kernel {
                    seconds,
                    seed,
                    call_ms,
                    ops,
                    corrupt_one,
                    total_ops,
                },
        } => check_seconds(seconds).and_then(|()| {
            kstress::run(&kstress::Options {
                seconds,
                seed: seed_or_clock(seed),
                call_ms,
                ops,
                corrupt_one,
                total_ops,
            })
        }),
        Cmd::MaxCalls { iters, reps } => maxcalls::run(&maxcalls::Options { iters, reps }),
        Cmd::Test { filter } => return selftest::run(filter.as_deref()),
        Cmd::Failnth { module } => failnth::run(module.as_deref()),
        Cmd::Pages { cmd } => match cmd {
            PagesCmd::Alloc { what, count, map } => pages::alloc(what.req(), count, map),
            PagesCmd::Hold {
                what,
                count,
                seconds,
            } => pages::hold(what.req(), count, seconds),
            PagesCmd::Demo => pages::demo(),
        },
        Cmd::Map { slot, list } => show_map(slot, list),
        Cmd::Lab { chapter, data } => lab::run(chapter.as_deref(), data.as_deref()),
        Cmd::Bench(opts) => bench::run(&opts),
        Cmd::Trim { slabs, pcp, arena } => trim(slabs, pcp, arena),
        Cmd::Compact { demo: true, .. } => compact::demo(),
        Cmd::Compact { slabs, arena, .. } => compact::run(slabs, arena),
        Cmd::Stress {
            cmd: StressCmd::Pages { common, exact_pct },
        } => common.settings(32).and_then(|common| {
            stress::run(&stress::Options {
                common,
                exact_pct: exact_pct.min(100),
            })
        }),
        Cmd::Stress {
            cmd: StressCmd::Slab { common },
        } => common.settings(64).and_then(|s| stress_slab::run(&s)),
        Cmd::Cache { cmd } => match cmd {
            CacheCmd::Create { cache: c } => slab::create_cmd(&c.name, c.size, c.align, c.ctor),
            CacheCmd::Hold {
                cache: c,
                count,
                rkmalloc,
                seconds,
            } => {
                let what = slab::HoldSpec {
                    count,
                    rkmalloc_count: if rkmalloc.is_some() { count } else { 0 },
                    rkmalloc_size: rkmalloc.unwrap_or(0),
                };
                slab::hold(&c.name, c.size, c.align, c.ctor, what, seconds)
            }
        },
        Cmd::Slab { cmd: SlabCmd::Demo } => slab::demo(),
        Cmd::Pool { cmd } => pool::run(cmd),
        Cmd::Hog(opts) => hog::run(&opts),
        Cmd::Slabtop {
            once,
            interval,
            sort,
        } => slabtop::run(once, interval, sort),
        Cmd::Top {
            interval,
            iterations,
        } => top::run(interval, iterations),
        Cmd::Ptyshot {
            rows,
            cols,
            timeout,
            cmd,
        } => match ptyshot::run(rows, cols, timeout, &cmd) {
            Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(255)),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkmemctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn version() -> Result<(), String> {
    let d = dev::Device::open_cmd()?;
    let v = d.version().map_err(|e| format!("RKMEM_IOC_VERSION: {e}"))?;
    println!(
        "rkmem module {}.{}.{}, ABI {}, features {:#x}",
        v.major, v.minor, v.patch, v.abi_version, v.features
    );
    dev::check_abi(&v)?;
    println!("ABI matches rkmemctl (ABI {})", uapi::RKMEM_ABI_VERSION);
    Ok(())
}

fn print_file(path: &str) -> Result<(), String> {
    print!("{}", procfs::read(path)?);
    Ok(())
}

fn show_map(slot: Option<u32>, list: bool) -> Result<(), String> {
    let d = dev::Device::open_cmd()?;
    let maps = match slot {
        Some(s) => vec![d
            .arena_map(s)
            .map_err(|e| format!("RKMEM_IOC_ARENA_MAP slot {s}: {e}"))?],
        None => d
            .arena_maps()
            .map_err(|e| format!("RKMEM_IOC_ARENA_MAP: {e}"))?,
    };
    match slot {
        Some(s) if !maps[0].present => println!("slot {s}: absent (the arena has not grown there)"),
        Some(_) => {
            println!("{}", map::legend(maps[0].slot_pages));
            print!("{}", map::render_slot(&maps[0]));
        }
        None => print!("{}", map::render(&maps, true)),
    }
    if list {
        for m in maps.iter().filter(|m| m.present) {
            println!(
                "slot {}: {:>5} {:>5} {:>6}  kind",
                m.slot, "start", "pages", "size"
            );
            for b in &m.blocks {
                let kind = match b.kind {
                    uapi::RKMEM_BLOCK_FREE => "free",
                    uapi::RKMEM_BLOCK_USED => "used",
                    uapi::RKMEM_BLOCK_EXACT => "exact",
                    _ => "?",
                };
                println!(
                    "        {:>5} {:>5} {:>6}  {kind}",
                    b.start,
                    b.pages,
                    map::size(u64::from(b.pages))
                );
            }
        }
    }
    Ok(())
}

fn trim(slabs: bool, pcp: bool, arena: bool) -> Result<(), String> {
    let all = !(slabs || pcp || arena);
    let mut flags = 0;
    for (on, flag) in [
        (slabs, uapi::RKMEM_TRIM_SLABS),
        (pcp, uapi::RKMEM_TRIM_PCP),
        (arena, uapi::RKMEM_TRIM_ARENA),
    ] {
        if on || all {
            flags |= flag;
        }
    }
    let t = dev::Device::open_cmd()?
        .trim(flags)
        .map_err(|e| format!("RKMEM_IOC_TRIM: {e}"))?;
    println!(
        "trim: {} pages from the per-CPU caches back to the buddy lists, {} pages released to the kernel",
        t.pcp_pages, t.released_pages
    );
    Ok(())
}

fn check_seconds(seconds: f64) -> Result<(), String> {
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("--seconds {seconds}: want 0 < seconds <= 86400"));
    }
    Ok(())
}

fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}
