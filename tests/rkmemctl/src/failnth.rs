// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl failnth`: systematic fault injection. For opening the device, for every ioctl that
//! allocates and (with `--module`) for loading the module, the host kernel's allocation sites
//! the call reaches are failed one at a time through `/proc/thread-self/fail-nth` (failslab and
//! fail_page_alloc must let GFP_KERNEL allocations fail: `ignore-gfp-wait` N, `min-order` 0),
//! from the first site until the call needs no more. Every call must succeed or fail with
//! ENOMEM; afterwards /proc/rkmem is back at its starting counts (what leaked in the kernel's
//! own memory is kmemleak's to say). Prints the sites tried per call and `N passed, N failed`.

use crate::dev::{CacheSpec, Device, PagesReq, PoolSource};
use crate::fuzz::{report_checks, sanity, Snapshot};
use crate::uapi;
use crate::uapi::RkmemBench;
use nix::errno::Errno;
use nix::kmod::{delete_module, finit_module, DeleteModuleFlags, ModuleInitFlags};
use nix::libc;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Calls with more sites than this are reported as failures (a call that never stops asking).
const MAX_SITES: u32 = 4000;

/// This thread's `/proc/thread-self/fail-nth`, opened before any fault is armed (opening it
/// allocates).
struct FailNth(File);

impl FailNth {
    fn open() -> Result<FailNth, String> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/thread-self/fail-nth")
            .map(FailNth)
            .map_err(|e| format!("/proc/thread-self/fail-nth: {e} (no CONFIG_FAULT_INJECTION?)"))
    }

    /// Runs `f` with the `n`-th allocation site it reaches failing; returns its result and
    /// whether the fault was injected (the site was reached).
    fn run<T>(&self, n: u32, f: impl FnOnce() -> T) -> Result<(T, bool), String> {
        self.0
            .write_at(n.to_string().as_bytes(), 0)
            .map_err(|e| format!("arm fail-nth {n}: {e}"))?;
        let r = f();
        let mut buf = [0u8; 16];
        let len = self
            .0
            .read_at(&mut buf, 0)
            .map_err(|e| format!("read fail-nth: {e}"))?;
        let left: u32 = std::str::from_utf8(&buf[..len])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("fail-nth reads no number")?;
        // Disarm (a write of 0) if the call did not reach the site.
        if left != 0 {
            self.0
                .write_at(b"0", 0)
                .map_err(|e| format!("disarm fail-nth: {e}"))?;
        }
        Ok((r, left == 0))
    }
}

/// The call under test, under the armed fault: `Ok` (with a handle, if the call made one) or an
/// errno.
type Call = dyn Fn(&Device, u32) -> Result<Option<u64>, Errno>;

/// What one call under test needs around it.
struct Case {
    name: &'static str,
    /// Prepares a file (not under faults) and returns what the call acts on.
    setup: fn(&Device) -> Result<u32, String>,
    /// The call itself, under the armed fault: `Ok` or an errno.
    call: fn(&Device, u32) -> Result<Option<u64>, Errno>,
}

fn no_setup(_: &Device) -> Result<u32, String> {
    Ok(0)
}

fn cache_setup(d: &Device) -> Result<u32, String> {
    d.cache_create(&CacheSpec::new("fi_cache", 117, 8)?)
        .map(|c| c.id)
        .map_err(|e| format!("cache create: {e}"))
}

fn pool_setup(d: &Device) -> Result<u32, String> {
    d.pool_create(PoolSource::Pages(1), 2, 0)
        .map_err(|e| format!("pool create: {e}"))
}

fn handle(r: Result<crate::dev::Alloc, Errno>) -> Result<Option<u64>, Errno> {
    r.map(|a| Some(a.handle))
}

/// `RKMEM_IOC_BENCH` calls, one case each, at one iteration and one repetition: every timed
/// kind, then the footprint of 64 live objects, the latency tails of one, one layout probe.
fn bench_points() -> Vec<(String, RkmemBench)> {
    let timed = crate::maxcalls::KINDS
        .iter()
        .map(|&(name, kind, size, align, order)| {
            (
                name.to_string(),
                crate::maxcalls::point(kind, size, align, order, 1, 1),
            )
        });
    let untimed = [
        (
            "footprint 64 B".to_string(),
            RkmemBench {
                kind: uapi::RKMEM_BENCH_FOOTPRINT,
                size: 64,
                align: 8,
                iters: 64,
                seed: 1,
                ..Default::default()
            },
        ),
        (
            "latency 64 B".to_string(),
            crate::maxcalls::point(uapi::RKMEM_BENCH_LATENCY, 64, 8, 0, 1, 1),
        ),
        (
            "layout 117 B".to_string(),
            RkmemBench {
                kind: uapi::RKMEM_BENCH_LAYOUT,
                size: 117,
                align: 8,
                ..Default::default()
            },
        ),
    ];
    timed.chain(untimed).collect()
}

/// The calls swept, every ioctl that allocates: the allocation interfaces, and the module's
/// own checks and benchmarks (`RKMEM_IOC_SELFTEST`, `RKMEM_IOC_BENCH`).
const CASES: &[Case] = &[
    Case {
        name: "PAGES_ALLOC order 0",
        setup: no_setup,
        call: |d, _| handle(d.pages_alloc(PagesReq::Order(0))),
    },
    Case {
        name: "PAGES_ALLOC order 3",
        setup: no_setup,
        call: |d, _| handle(d.pages_alloc(PagesReq::Order(3))),
    },
    Case {
        name: "PAGES_ALLOC exact 5",
        setup: no_setup,
        call: |d, _| handle(d.pages_alloc(PagesReq::Exact(5))),
    },
    Case {
        name: "RKMALLOC 100 B",
        setup: no_setup,
        call: |d, _| handle(d.rkmalloc(100)),
    },
    Case {
        name: "RKMALLOC 20000 B",
        setup: no_setup,
        call: |d, _| handle(d.rkmalloc(20000)),
    },
    Case {
        name: "RKMALLOC 5 MiB (vmalloc)",
        setup: no_setup,
        call: |d, _| handle(d.rkmalloc(5 << 20)),
    },
    Case {
        // The host's kmalloc, vmalloc (each page a site), kvmalloc (kmalloc's failure sends it
        // to vmalloc), rkmalloc and the page allocations, each freed before the next.
        name: "ROUTES 100 B",
        setup: no_setup,
        call: |d, _| d.routes(100).map(|_| None),
    },
    Case {
        name: "ROUTES 20000 B",
        setup: no_setup,
        call: |d, _| d.routes(20000).map(|_| None),
    },
    Case {
        name: "CACHE_CREATE",
        setup: no_setup,
        call: |d, _| {
            let spec = CacheSpec::new("fi_create", 200, 8).map_err(|_| Errno::EINVAL)?;
            d.cache_create(&spec).map(|_| None)
        },
    },
    Case {
        name: "OBJ_ALLOC",
        setup: cache_setup,
        call: |d, c| handle(d.obj_alloc(c)),
    },
    Case {
        name: "POOL_CREATE",
        setup: no_setup,
        call: |d, _| d.pool_create(PoolSource::Rkmalloc(300), 4, 0).map(|_| None),
    },
    Case {
        name: "POOL_ALLOC",
        setup: pool_setup,
        call: |d, p| handle(d.pool_alloc(p, false)),
    },
    Case {
        name: "POOL_RESIZE",
        setup: pool_setup,
        call: |d, p| d.pool_resize(p, 16).map(|()| None),
    },
    Case {
        name: "WRITE + READ",
        setup: no_setup,
        call: |d, _| {
            let a = d.pages_alloc(PagesReq::Order(1))?;
            let buf = vec![0x5au8; a.bytes as usize];
            let r = d.write(a.handle, 0, &buf).and_then(|()| {
                let mut back = vec![0u8; a.bytes as usize];
                d.read(a.handle, 0, &mut back)
            });
            r.map(|()| Some(a.handle))
        },
    },
    Case {
        name: "ARENA_MAP",
        setup: no_setup,
        call: |d, _| d.arena_map(0).map(|_| None),
    },
    Case {
        name: "TRIM",
        setup: no_setup,
        call: |d, _| {
            d.trim(uapi::RKMEM_TRIM_SLABS | uapi::RKMEM_TRIM_PCP | uapi::RKMEM_TRIM_ARENA)
                .map(|_| None)
        },
    },
    Case {
        name: "COMPACT slabs+arena",
        setup: cache_setup,
        call: |d, c| {
            let a = d.obj_alloc(c)?;
            let b = d.obj_alloc(c)?;
            d.free(a.handle)?;
            d.compact(uapi::RKMEM_COMPACT_SLABS | uapi::RKMEM_COMPACT_ARENA)
                .map(|_| Some(b.handle))
        },
    },
    Case {
        // The caller's allocations (the call's caches, mempool, workqueue, work items): the
        // workers' run in work items, where the caller's fail-nth does not reach.
        name: "STRESS 200 steps",
        setup: no_setup,
        call: |d, _| {
            let mut s = uapi::RkmemStress {
                seed: 1,
                ops: 200,
                ms: 100,
                ..Default::default()
            };
            d.stress(&mut s)?;
            if s.failures != 0 {
                // Not an errno the sweep accepts: reported as a wrong answer.
                return Err(Errno::EIO);
            }
            Ok(None)
        },
    },
    Case {
        // Every check's allocation failed in turn: ENOMEM (the checks that ran are counted),
        // or a clean run; a check that fails because of an injected fault is a wrong answer.
        name: "SELFTEST",
        setup: no_setup,
        call: |d, _| {
            let r = d.selftest()?;
            if r.failed != 0 {
                return Err(Errno::EIO);
            }
            Ok(None)
        },
    },
];

/// Sweeps one call: returns the sites tried, or why the sweep failed.
fn sweep(
    fi: &FailNth,
    setup: fn(&Device) -> Result<u32, String>,
    call: &Call,
) -> Result<u32, String> {
    for n in 1..=MAX_SITES {
        // A fresh file per attempt: the state the call starts from is the same every time.
        let d = Device::open().map_err(|e| format!("open: {e}"))?;
        let arg = setup(&d)?;
        let (r, injected) = fi.run(n, || call(&d, arg))?;
        match r {
            Ok(_) | Err(Errno::ENOMEM) => {}
            Err(e) => return Err(format!("site {n}: answered {e}, not ENOMEM")),
        }
        if !injected {
            if r.is_err() {
                return Err(format!(
                    "no fault injected at {n}, yet the call failed: {r:?}"
                ));
            }
            return Ok(n - 1);
        }
        // Closing the file frees whatever the call left (its handles, caches, pools).
        drop(d);
    }
    Err(format!("still reaching allocation sites after {MAX_SITES}"))
}

/// Opening /dev/rkmem under each site.
fn sweep_open(fi: &FailNth) -> Result<u32, String> {
    for n in 1..=MAX_SITES {
        let (r, injected) = fi.run(n, Device::open)?;
        match &r {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {}
            Err(e) => return Err(format!("site {n}: open answered {e}, not ENOMEM")),
        }
        if !injected {
            return r
                .map(|_| n - 1)
                .map_err(|e| format!("open failed without a fault: {e}"));
        }
    }
    Err(format!(
        "open still reaching allocation sites after {MAX_SITES}"
    ))
}

/// Loading the module (`finit_module` of `path`) under each site; every failed load leaves no
/// module behind and every successful one is unloaded again, except the last, which stays.
fn sweep_module(fi: &FailNth, path: &str) -> Result<u32, String> {
    let f = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let load = || finit_module(&f, c"", ModuleInitFlags::empty());
    let unload = || {
        delete_module(c"rkmem", DeleteModuleFlags::O_NONBLOCK)
            .map_err(|e| format!("rmmod rkmem: {e}"))
    };
    let loaded = || {
        std::fs::read_to_string("/proc/modules")
            .map(|m| m.lines().any(|l| l.starts_with("rkmem ")))
            .unwrap_or(false)
    };
    if loaded() {
        return Err("rkmem is loaded: unload it first".into());
    }
    for n in 1..=MAX_SITES {
        let (r, injected) = fi.run(n, load)?;
        match r {
            Ok(()) => {
                if !injected {
                    return Ok(n - 1);
                }
                // A site with a fallback: the load succeeded anyway.
                unload()?;
            }
            Err(Errno::ENOMEM) => {
                if loaded() || std::path::Path::new("/proc/rkmem").exists() {
                    return Err(format!(
                        "site {n}: a failed load left the module or /proc/rkmem behind"
                    ));
                }
                if !injected {
                    return Err(format!("the load failed without a fault: ENOMEM at {n}"));
                }
            }
            Err(e) => return Err(format!("site {n}: the load answered {e}, not ENOMEM")),
        }
    }
    Err(format!(
        "the load still reaches allocation sites after {MAX_SITES}"
    ))
}

/// Runs the sweep and prints its report; `Err` if anything failed.
pub fn run(module: Option<&str>) -> Result<(), String> {
    let fi = FailNth::open()?;
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    let mut total = 0u32;
    if let Some(path) = module {
        let r = sweep_module(&fi, path);
        if let Ok(n) = r {
            println!("# module load: {n} allocation sites failed in turn");
            total += n;
        }
        checks.push((
            "module load: ENOMEM or loaded at every site".into(),
            r.map(|_| ()),
        ));
    }
    let before = Snapshot::take()?;
    let r = sweep_open(&fi);
    if let Ok(n) = r {
        println!("# open: {n} allocation sites failed in turn");
        total += n;
    }
    checks.push(("open: ENOMEM or a file at every site".into(), r.map(|_| ())));
    let bench = bench_points().into_iter().map(|(name, b)| {
        let r = sweep(&fi, no_setup, &move |d, _| {
            let mut b = b;
            d.raw_ioctl(uapi::RKMEM_IOC_BENCH, std::ptr::from_mut(&mut b) as usize)
                .map(|_| None)
        });
        (format!("BENCH {name}"), r)
    });
    let cases = CASES
        .iter()
        .map(|c| (c.name.to_string(), sweep(&fi, c.setup, &c.call)));
    for (name, r) in cases.chain(bench) {
        if let Ok(n) = r {
            println!("# {name}: {n} allocation sites failed in turn");
            total += n;
        }
        checks.push((
            format!("{name}: ENOMEM or success at every site"),
            r.map(|_| ()),
        ));
    }
    checks.push(("the module answers correctly afterwards".into(), sanity()));
    let after = Snapshot::take()?;
    checks.extend(before.compare(&after));
    println!("# {total} faults injected in all");
    let (p, f) = report_checks(&checks);
    println!("failnth: {p} passed, {f} failed");
    if f != 0 {
        return Err(format!("failnth: {f} checks failed"));
    }
    Ok(())
}
