// SPDX-License-Identifier: GPL-2.0

//! The C header `tests/c/rkmem_uapi.h` against `rust/uapi.rs`: every constant, ioctl number,
//! struct size, field offset and field size must agree.
//!
//! The test compiles a C probe with the system C compiler (`cc`, the linker cargo itself uses)
//! against the header and compares what it prints with the Rust values of the table below. It
//! also scans both source files, so that a constant, struct or field added on one side only
//! fails the test with its name: the table must list everything `rust/uapi.rs` declares, and
//! the header must declare nothing else.

extern crate std;

use crate::uapi::*;
use core::mem::{offset_of, size_of};
use std::collections::{BTreeMap, BTreeSet};
use std::format;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;

/// One struct of the ABI: Rust name, size, and per field (in declaration order) its name,
/// offset and size.
struct StructInfo {
    rust: &'static str,
    size: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

macro_rules! consts {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), $name as u64)),*]
    };
}

macro_rules! structs {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {
        std::vec![$(StructInfo {
            rust: stringify!($ty),
            size: size_of::<$ty>(),
            fields: std::vec![$((
                stringify!($field),
                offset_of!($ty, $field),
                {
                    let v = <$ty>::default();
                    core::mem::size_of_val(&v.$field)
                },
            )),*],
        }),*]
    };
}

/// Every `pub const RKMEM_*` of `rust/uapi.rs` with its value (of several integer types, so
/// `as u64` rather than `From`).
#[allow(clippy::cast_lossless)]
fn rust_consts() -> Vec<(&'static str, u64)> {
    consts![
        RKMEM_IOC_MAGIC,
        RKMEM_ABI_VERSION,
        RKMEM_FEAT_VERSION,
        RKMEM_FEAT_PAGES,
        RKMEM_FEAT_SLAB,
        RKMEM_FEAT_MEMPOOL,
        RKMEM_FEAT_BENCH,
        RKMEM_FEAT_COMPACT,
        RKMEM_FEAT_STRESS,
        RKMEM_FEAT_INSPECT,
        RKMEM_FEAT_SLABS,
        RKMEM_FEAT_ROUTES,
        RKMEM_FEATURES,
        RKMEM_IOC_VERSION,
        RKMEM_MAX_ORDER,
        RKMEM_PAGES_EXACT,
        RKMEM_IOC_PAGES_ALLOC,
        RKMEM_IOC_FREE,
        RKMEM_IOC_WRITE,
        RKMEM_IOC_READ,
        RKMEM_BLOCK_FREE,
        RKMEM_BLOCK_USED,
        RKMEM_BLOCK_EXACT,
        RKMEM_MAP_MAX_ENTRIES,
        RKMEM_IOC_ARENA_MAP,
        RKMEM_TRIM_PCP,
        RKMEM_TRIM_ARENA,
        RKMEM_TRIM_SLABS,
        RKMEM_IOC_TRIM,
        RKMEM_CACHE_NAME_MAX,
        RKMEM_CACHE_SIZE_MAX,
        RKMEM_CACHE_CTOR,
        RKMEM_CACHE_NOCPU,
        RKMEM_IOC_CACHE_CREATE,
        RKMEM_IOC_CACHE_DESTROY,
        RKMEM_RKMALLOC_MAX,
        RKMEM_IOC_OBJ_ALLOC,
        RKMEM_SLAB_FULL,
        RKMEM_SLAB_PARTIAL,
        RKMEM_SLAB_EMPTY,
        RKMEM_SLABS_MAX_ENTRIES,
        RKMEM_IOC_CACHE_SLABS,
        RKMEM_INFO_PAGES,
        RKMEM_INFO_OBJECT,
        RKMEM_INFO_BITMAP_BITS,
        RKMEM_IOC_HANDLE_INFO,
        RKMEM_ROUTE_NONE,
        RKMEM_ROUTE_SLAB,
        RKMEM_ROUTE_PAGES,
        RKMEM_ROUTE_VMALLOC,
        RKMEM_ROUTE_EXACT,
        RKMEM_ROUTES_MAX,
        RKMEM_IOC_ROUTES,
        RKMEM_POOL_SRC_CACHE,
        RKMEM_POOL_SRC_RKMALLOC,
        RKMEM_POOL_SRC_PAGES,
        RKMEM_POOL_FAIL_SOURCE,
        RKMEM_POOL_MAX_MIN,
        RKMEM_IOC_POOL_CREATE,
        RKMEM_POOL_MAY_SLEEP,
        RKMEM_IOC_POOL_ALLOC,
        RKMEM_IOC_POOL_RESIZE,
        RKMEM_IOC_POOL_DESTROY,
        RKMEM_IOC_SELFTEST,
        RKMEM_BENCH_SLAB_PAIR,
        RKMEM_BENCH_SLAB_BATCH,
        RKMEM_BENCH_KMALLOC,
        RKMEM_BENCH_PAGES,
        RKMEM_BENCH_MEMPOOL,
        RKMEM_BENCH_LAYOUT,
        RKMEM_COMPACT_SLABS,
        RKMEM_COMPACT_ARENA,
        RKMEM_IOC_COMPACT,
        RKMEM_BENCH_REMOTE,
        RKMEM_BENCH_FOOTPRINT,
        RKMEM_BENCH_TRACE,
        RKMEM_BENCH_LATENCY,
        RKMEM_BENCH_COMPACT,
        RKMEM_BENCH_TRACE_SLOTS,
        RKMEM_BENCH_TRACE_MAX_SIZE,
        RKMEM_BENCH_BATCH,
        RKMEM_BENCH_POOL_MIN,
        RKMEM_BENCH_MAX_ITERS,
        RKMEM_BENCH_MAX_REPS,
        RKMEM_BENCH_ONLY_RKMEM,
        RKMEM_BENCH_ONLY_HOST,
        RKMEM_BENCH_HOST_FIRST,
        RKMEM_BENCH_KEEP,
        RKMEM_IOC_BENCH,
        RKMEM_STRESS_MAX_OPS,
        RKMEM_STRESS_MAX_MS,
        RKMEM_STRESS_CORRUPT_ONE,
        RKMEM_IOC_STRESS,
    ]
    .to_vec()
}

/// Every `pub struct Rkmem*` of `rust/uapi.rs` with every field.
fn rust_structs() -> Vec<StructInfo> {
    structs! {
        RkmemVersion { abi_version, major, minor, patch, pad, features }
        RkmemPagesAlloc { order, flags, npages, reserved, handle, bytes }
        RkmemHandle { handle }
        RkmemIo { handle, offset, len, buf }
        RkmemBlock { start, pages, kind, reserved }
        RkmemArenaMap {
            slot, max_entries, entries, nr_entries, slots, present, slot_pages, pcp_pages,
            reserved,
        }
        RkmemTrim { flags, reserved, pcp_pages, released_pages }
        RkmemCacheCreate {
            name, size, align, flags, ctor_byte, id, objects_per_slab, pages_per_slab, objsize,
        }
        RkmemCacheId { id, reserved }
        RkmemObjAlloc { cache_id, flags, size, handle, bytes }
        RkmemSlabEntry { slot, page, list, in_use }
        RkmemCacheSlabs {
            cache_id, max_entries, entries, nr_entries, full, partial, empty, objects, pages,
            keep_empty, reserved, in_use,
        }
        RkmemHandleInfo {
            handle, kind, slot, page, pages, offset, index, objects, in_use, color, reserved,
            bitmap,
        }
        RkmemRoute { kind, flags, bytes, guard, reserved }
        RkmemRoutes {
            size, reserved, kmalloc, vmalloc, kvmalloc, rkmalloc, exact, order,
            kmalloc_max_cache_size, page_size, kmalloc_max_size,
        }
        RkmemPoolCreate { source, cache_id, size, order, min_nr, flags, id }
        RkmemPoolAlloc { pool_id, flags, handle, bytes }
        RkmemPoolId { pool_id, min_nr }
        RkmemSelftest { passed, failed, arena_bad_frees }
        RkmemCompact {
            flags, reserved, objects_moved, slabs_freed, pages_freed, pinned_skips, caches, pad,
            pages_moved, blocks_freed, host_pages, pinned_slots, blocks_failed,
        }
        RkmemBench {
            kind, flags, size, align, order, iters, reps, cpu, rkmem_ps, host_ps, rkmem_min_ps,
            host_min_ps, rkmem_bytes, host_bytes, rkmem_objs, rkmem_pages, host_objs,
            host_pages, seed, rkmem_lat_ns, host_lat_ns, rkmem_pages_held, host_pages_held,
            reserved,
        }
        RkmemStress {
            seed, ops, ms, flags, cpus, pad, done_ops, allocs, frees, remote_frees,
            bytes_verified, enomem, failures, reserved,
        }
    }
}

/// `RkmemPagesAlloc` -> `rkmem_pages_alloc`.
fn c_name(rust: &str) -> String {
    let mut s = String::new();
    for (i, c) in rust.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i != 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// What one source file declares: constant names, and struct names with their field names.
#[derive(Default)]
struct Declared {
    consts: BTreeSet<String>,
    structs: BTreeMap<String, Vec<String>>,
}

/// Scans `rust/uapi.rs`: `pub const RKMEM_*`, `pub struct Rkmem* { pub field: ... }`.
fn scan_rust(text: &str) -> Declared {
    let mut d = Declared::default();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("pub const RKMEM_") {
            d.consts.insert(format!("RKMEM_{}", ident(rest)));
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = ident(rest).to_string();
            d.structs.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if line.starts_with('}') {
            current = None;
        } else if let (Some(s), Some(rest)) = (&current, line.strip_prefix("pub ")) {
            d.structs.get_mut(s).unwrap().push(ident(rest).to_string());
        }
    }
    d
}

/// Scans the C header: `#define RKMEM_*`, `struct rkmem_* { __uNN field[...]; }`.
fn scan_c(text: &str) -> Declared {
    let mut d = Declared::default();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#define RKMEM_") {
            d.consts.insert(format!("RKMEM_{}", ident(rest)));
        } else if let Some(rest) = line.strip_prefix("struct ") {
            if line.ends_with('{') {
                let name = ident(rest).to_string();
                d.structs.insert(name.clone(), Vec::new());
                current = Some(name);
            } else if let Some(s) = &current {
                // A field of struct type: "struct rkmem_route kmalloc;".
                let after_type = rest.split_whitespace().nth(1).unwrap_or("");
                d.structs
                    .get_mut(s)
                    .unwrap()
                    .push(ident(after_type).to_string());
            }
        } else if line.starts_with('}') {
            current = None;
        } else if let (Some(s), Some(rest)) = (&current, line.strip_prefix("__")) {
            // "__u32 name;" or "__u8 name[32];"
            let after_type = rest.split_whitespace().nth(1).unwrap_or("");
            d.structs
                .get_mut(s)
                .unwrap()
                .push(ident(after_type).to_string());
        }
    }
    d
}

#[test]
fn table_lists_everything_rust_uapi_declares() {
    let rust = scan_rust(&read("rust/uapi.rs"));
    assert!(
        rust.consts.len() >= 50 && rust.structs.len() >= 15,
        "scanner found too little"
    );
    let table: BTreeSet<String> = rust_consts().iter().map(|c| c.0.to_string()).collect();
    let missing: Vec<_> = rust.consts.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "constants of rust/uapi.rs missing from the table of tests/host/src/cabi.rs (and maybe \
         from tests/c/rkmem_uapi.h): {missing:?}"
    );
    let structs = rust_structs();
    for (name, fields) in &rust.structs {
        let s = structs.iter().find(|s| s.rust == name).unwrap_or_else(|| {
            panic!("struct {name} of rust/uapi.rs is missing from the table of cabi.rs")
        });
        let listed: Vec<&str> = s.fields.iter().map(|f| f.0).collect();
        assert_eq!(&listed, fields, "fields of {name}: table vs rust/uapi.rs");
    }
    assert_eq!(
        structs.len(),
        rust.structs.len(),
        "structs: table vs rust/uapi.rs"
    );
}

#[test]
fn header_declares_exactly_what_rust_uapi_declares() {
    let rust = scan_rust(&read("rust/uapi.rs"));
    let c = scan_c(&read("tests/c/rkmem_uapi.h"));
    let only_rust: Vec<_> = rust.consts.difference(&c.consts).collect();
    let only_c: Vec<_> = c.consts.difference(&rust.consts).collect();
    assert!(
        only_rust.is_empty() && only_c.is_empty(),
        "constants only in rust/uapi.rs: {only_rust:?}; only in tests/c/rkmem_uapi.h: {only_c:?}"
    );
    let rust_structs: BTreeMap<String, &Vec<String>> =
        rust.structs.iter().map(|(k, v)| (c_name(k), v)).collect();
    let only_rust: Vec<_> = rust_structs
        .keys()
        .filter(|k| !c.structs.contains_key(*k))
        .collect();
    let only_c: Vec<_> = c
        .structs
        .keys()
        .filter(|k| !rust_structs.contains_key(*k))
        .collect();
    assert!(
        only_rust.is_empty() && only_c.is_empty(),
        "structs only in rust/uapi.rs: {only_rust:?}; only in tests/c/rkmem_uapi.h: {only_c:?}"
    );
    for (name, fields) in &rust_structs {
        assert_eq!(
            &c.structs[name], *fields,
            "fields of struct {name}: tests/c/rkmem_uapi.h vs rust/uapi.rs"
        );
    }
}

#[test]
fn header_has_the_uapi_spdx_line() {
    let h = read("tests/c/rkmem_uapi.h");
    assert!(
        h.starts_with("/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */\n"),
        "first line of tests/c/rkmem_uapi.h"
    );
}

/// The C source of the probe: one line per constant, struct size and field.
fn probe_source(consts: &[(&str, u64)], structs: &[StructInfo]) -> String {
    let mut s = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"rkmem_uapi.h\"\n\nint main(void)\n{\n",
    );
    for (name, _) in consts {
        s += &format!("\tprintf(\"const {name} %llu\\n\", (unsigned long long)({name}));\n");
    }
    for st in structs {
        let c = c_name(st.rust);
        s += &format!("\tprintf(\"size {c} %zu\\n\", sizeof(struct {c}));\n");
        for (f, _, _) in &st.fields {
            s += &format!(
                "\tprintf(\"field {c}.{f} %zu %zu\\n\", offsetof(struct {c}, {f}), \
                 sizeof(((struct {c} *)0)->{f}));\n"
            );
        }
    }
    s += "\treturn 0;\n}\n";
    s
}

/// Compiles and runs the probe; its output lines.
fn run_probe(src: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("rkmem-cabi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&c, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-I",
        ])
        .arg(repo().join("tests/c"))
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "the C probe against tests/c/rkmem_uapi.h does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "the C probe failed");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn c_header_agrees_with_rust_on_every_number_size_and_offset() {
    let consts = rust_consts();
    let structs = rust_structs();
    let lines = run_probe(&probe_source(&consts, &structs));
    let mut want = Vec::new();
    for (name, v) in &consts {
        want.push(format!("const {name} {v}"));
    }
    for st in &structs {
        let c = c_name(st.rust);
        want.push(format!("size {c} {}", st.size));
        for (f, off, size) in &st.fields {
            want.push(format!("field {c}.{f} {off} {size}"));
        }
    }
    let bad: Vec<String> = want
        .iter()
        .zip(lines.iter())
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("rust: {w:<50} C: {g}"))
        .collect();
    assert!(bad.is_empty(), "C and Rust disagree:\n{}", bad.join("\n"));
    assert_eq!(
        lines.len(),
        want.len(),
        "probe printed {} lines",
        lines.len()
    );
    // Not vacuous: every struct is covered with at least one field.
    assert!(structs.iter().all(|s| !s.fields.is_empty()));
}

#[test]
fn c_names_are_snake_case() {
    assert_eq!(c_name("RkmemPagesAlloc"), "rkmem_pages_alloc");
    assert_eq!(c_name("RkmemIo"), "rkmem_io");
}
