// SPDX-License-Identifier: GPL-2.0

//! The module's C glue interface, `rust/glue/glue.h`, against its Rust side: the declarations of
//! `rust/interfaces/ffi.rs` (functions the glue defines and Rust calls) and the `#[no_mangle] extern "C"`
//! callbacks the Rust modules define for the glue. Every function of the header must appear on
//! exactly one side, with the same number of arguments and matching types (C type to Rust type
//! by the table in [`rust_of_c`]); nothing may be declared on the Rust side that the header
//! lacks. This is the build-time check that replaces hand copies kept in step by comments.

extern crate std;

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

const HEADER: &str = include_str!("../../../rust/glue/glue.h");
const FFI: &str = include_str!("../../../rust/interfaces/ffi.rs");
const TRACE_HEADER: &str = include_str!("../../../rust/glue/rkmem_trace.h");
const TRACE_RS: &str = include_str!("../../../rust/interfaces/trace.rs");
/// The Rust modules that define callbacks for the glue.
const CALLBACK_SOURCES: [(&str, &str); 2] = [
    (
        "procfs.rs",
        include_str!("../../../rust/interfaces/procfs.rs"),
    ),
    (
        "reclaim.rs",
        include_str!("../../../rust/allocators/reclaim.rs"),
    ),
];

/// A function: name, argument types, return type (normalised spellings).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sig {
    args: Vec<String>,
    ret: String,
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops C comments.
fn strip_c_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out
}

/// The Rust spelling of a C type of the header.
fn rust_of_c(c: &str) -> String {
    let c = squash(&c.replace("__percpu", "").replace('*', " * "));
    let ptrs = c.matches('*').count();
    let base = squash(&c.replace('*', ""));
    let (konst, base) = match base.strip_prefix("const ") {
        Some(b) => (true, b.to_string()),
        None => (false, base),
    };
    let mapped = match base.as_str() {
        "void" => "c_void",
        "bool" => "bool",
        "char" => "c_char",
        "int" => "c_int",
        "unsigned int" => "c_uint",
        "long" => "c_long",
        "unsigned long" => "c_ulong",
        "size_t" => "usize",
        "ssize_t" => "isize",
        "u32" => "u32",
        "u64" => "u64",
        "s64" => "i64",
        "umode_t" => "umode_t",
        "struct seq_file" => "seq_file",
        "struct kmem_cache" => "KmemCache",
        "struct mempool" => "HostMempool",
        "struct mutex" => "mutex",
        "struct rkmem_objs" => "RkmemObjs",
        "rkmem_bench_fn" => "RkmemBenchFn",
        other => return format!("<unmapped C type '{other}'>"),
    };
    if ptrs == 0 {
        return if mapped == "c_void" {
            "()".into()
        } else {
            mapped.into()
        };
    }
    // The outermost pointer carries the const of the pointee (`const char *`).
    let mut t = mapped.to_string();
    for i in 0..ptrs {
        let kind = if konst && i == 0 { "*const" } else { "*mut" };
        t = format!("{kind} {t}");
    }
    t
}

/// Normalises a Rust type: paths and spacing dropped.
fn norm_rust(t: &str) -> String {
    let t = squash(t);
    let t = t
        .replace("kernel::ffi::", "")
        .replace("core::ffi::", "")
        .replace("bindings::", "");
    if t.is_empty() {
        "()".into()
    } else {
        t
    }
}

/// Every prototype of the header: name -> signature.
fn header_sigs() -> BTreeMap<String, Sig> {
    let text = strip_c_comments(HEADER);
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let stmt = squash(
            stmt.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join(" ")
                .as_str(),
        );
        let Some(open) = stmt.find('(') else { continue };
        let Some(close) = stmt.rfind(')') else {
            continue;
        };
        let head = &stmt[..open];
        let Some(name_at) = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')) else {
            continue;
        };
        let name = head[name_at + 1..].to_string();
        if !name.starts_with("rkmem_") {
            continue;
        }
        let ret = rust_of_c(&head[..=name_at]);
        let params = &stmt[open + 1..close];
        let args = if params.trim() == "void" {
            Vec::new()
        } else {
            params
                .split(',')
                .map(|p| {
                    // The type is everything but the trailing parameter name.
                    let p = squash(p);
                    let cut = p
                        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .map_or(0, |i| i + 1);
                    rust_of_c(&p[..cut])
                })
                .collect()
        };
        out.insert(name, Sig { args, ret });
    }
    out
}

/// Parses `fn NAME(ARGS) -> RET` at the start of `s` (after `fn `).
fn rust_sig(s: &str) -> Option<(String, Sig)> {
    let open = s.find('(')?;
    let name = s[..open].trim().to_string();
    // Find the matching close paren (argument types hold no parentheses but `()`).
    let mut depth = 0;
    let mut close = None;
    for (i, c) in s.char_indices().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let args = s[open + 1..close]
        .split(',')
        .filter(|a| !a.trim().is_empty())
        .map(|a| norm_rust(a.split_once(':').map_or(a, |(_, t)| t)))
        .collect();
    let after = &s[close + 1..];
    let end = after.find(['{', ';']).unwrap_or(after.len());
    let ret = after[..end]
        .trim()
        .strip_prefix("->")
        .map_or("()".into(), norm_rust);
    Some((name, Sig { args, ret }))
}

/// The functions `rust/interfaces/ffi.rs` declares.
fn ffi_sigs() -> BTreeMap<String, Sig> {
    let mut out = BTreeMap::new();
    let text = squash(FFI);
    for part in text.split("pub(crate) fn ").skip(1) {
        if let Some((name, sig)) = rust_sig(part) {
            out.insert(name, sig);
        }
    }
    out
}

/// The callbacks the Rust modules define: (file, name) -> signature.
fn callback_sigs() -> BTreeMap<String, (String, Sig)> {
    let mut out = BTreeMap::new();
    for (file, src) in CALLBACK_SOURCES {
        let text = squash(src);
        for part in text.split("extern \"C\" fn ").skip(1) {
            if let Some((name, sig)) = rust_sig(part) {
                // Only the glue's callbacks: kernel callbacks (the shrinker's) are typed by
                // the kernel's bindings, not by glue.h.
                if name.starts_with("rkmem_") {
                    out.insert(name, (file.to_string(), sig));
                }
            }
        }
    }
    out
}

#[test]
fn the_type_table_reads_the_header_s_spellings() {
    assert_eq!(rust_of_c("const char *"), "*const c_char");
    assert_eq!(rust_of_c("void **"), "*mut *mut c_void");
    assert_eq!(rust_of_c("struct rkmem_objs __percpu *"), "*mut RkmemObjs");
    assert_eq!(rust_of_c("const unsigned long *"), "*const c_ulong");
    assert_eq!(rust_of_c("void"), "()");
    assert!(rust_of_c("float").starts_with("<unmapped"));
    let (name, sig) =
        rust_sig("rkmem_x(a: *mut c_void, b: kernel::ffi::c_uint) -> c_int;").unwrap();
    assert_eq!(name, "rkmem_x");
    assert_eq!(sig.args, ["*mut c_void", "c_uint"]);
    assert_eq!(sig.ret, "c_int");
}

#[test]
fn every_glue_function_is_declared_once_with_the_header_s_types() {
    let header = header_sigs();
    let ffi = ffi_sigs();
    let callbacks = callback_sigs();
    assert!(
        header.len() >= 30,
        "only {} prototypes read from glue.h",
        header.len()
    );
    let mut problems = Vec::new();
    for (name, want) in &header {
        let got = match (ffi.get(name), callbacks.get(name)) {
            (Some(_), Some((file, _))) => {
                problems.push(format!("{name}: declared in ffi.rs and defined in {file}"));
                continue;
            }
            (Some(s), None) => s,
            (None, Some((_, s))) => s,
            (None, None) => {
                problems.push(format!(
                    "{name}: in glue.h, but neither in ffi.rs nor a Rust callback"
                ));
                continue;
            }
        };
        if got != want {
            problems.push(format!("{name}: glue.h says {want:?}, Rust says {got:?}"));
        }
    }
    for name in ffi.keys().chain(callbacks.keys()) {
        if !header.contains_key(name) {
            problems.push(format!(
                "{name}: declared on the Rust side but not in glue.h"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "glue.h and the Rust side disagree:\n{}",
        problems.join("\n")
    );
}

/// The events of `rkmem_trace.h`: name -> the argument types of its `TP_PROTO` (a
/// `DEFINE_EVENT` gives its own prototype, as the kernel's macros require).
fn trace_event_protos() -> BTreeMap<String, Vec<String>> {
    let text = squash(&strip_c_comments(TRACE_HEADER));
    let mut out = BTreeMap::new();
    for (kw, name_field) in [("TRACE_EVENT(", 0), ("DEFINE_EVENT(", 1)] {
        for part in text.split(kw).skip(1) {
            let name = part
                .split(',')
                .nth(name_field)
                .unwrap_or("")
                .trim()
                .to_string();
            let Some(proto) = part.split_once("TP_PROTO(").map(|(_, p)| p) else {
                continue;
            };
            let Some(end) = proto.find(')') else { continue };
            let args = proto[..end]
                .split(',')
                .map(|p| {
                    let p = squash(p);
                    let cut = p
                        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .map_or(0, |i| i + 1);
                    rust_of_c(&p[..cut])
                })
                .collect();
            out.insert(name, args);
        }
    }
    out
}

#[test]
fn every_tracepoint_is_declared_in_rust_with_its_prototype() {
    let events = trace_event_protos();
    assert!(
        events.len() >= 14,
        "only {} events read from rkmem_trace.h",
        events.len()
    );
    let text = squash(TRACE_RS);
    let mut fns = BTreeMap::new();
    for part in text.split("pub(super) fn rust_do_trace_").skip(1) {
        if let Some((name, sig)) = rust_sig(part) {
            assert_eq!(sig.ret, "()", "rust_do_trace_{name} returns nothing");
            fns.insert(name, sig.args);
        }
    }
    let statics: Vec<String> = text
        .split("pub(super) static __tracepoint_")
        .skip(1)
        .map(|p| p.split(':').next().unwrap_or("").trim().to_string())
        .collect();
    let mut problems = Vec::new();
    for (name, want) in &events {
        match fns.get(name) {
            None => problems.push(format!("{name}: no rust_do_trace_{name} in trace.rs")),
            Some(got) if got != want => problems.push(format!(
                "{name}: rkmem_trace.h says {want:?}, trace.rs {got:?}"
            )),
            Some(_) => {}
        }
        if !statics.contains(name) {
            problems.push(format!("{name}: no __tracepoint_{name} static in trace.rs"));
        }
    }
    for name in fns.keys().chain(statics.iter()) {
        if !events.contains_key(name) {
            problems.push(format!(
                "{name}: declared in trace.rs, not an event of rkmem_trace.h"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "rkmem_trace.h and trace.rs disagree:\n{}",
        problems.join("\n")
    );
}
