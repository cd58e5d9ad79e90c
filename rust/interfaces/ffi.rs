// SPDX-License-Identifier: GPL-2.0

//! Every C function of the glue (`rust/glue/*.c`) that the Rust side calls, declared once, with
//! the types of `rust/glue/glue.h`. A host test (`tests/host/src/glue_decls.rs`) checks these
//! declarations, and the callbacks the Rust side defines for the glue, against that header:
//! names, argument counts and types.

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// The host kernel's `struct kmem_cache` (opaque).
#[repr(C)]
pub(crate) struct KmemCache {
    _opaque: [u8; 0],
}

/// The host kernel's `struct mempool` (opaque).
#[repr(C)]
pub(crate) struct HostMempool {
    _opaque: [u8; 0],
}

/// glue.h's `rkmem_bench_fn`: work for `rkmem_bench_on_cpu`.
pub(crate) type RkmemBenchFn = Option<unsafe extern "C" fn(*mut c_void) -> c_long>;

/// glue/objs.c's per-CPU array (opaque).
#[repr(C)]
pub(crate) struct RkmemObjs {
    _opaque: [u8; 0],
}

extern "C" {
    // /proc/rkmem (glue/procfs.c)
    pub(crate) fn rkmem_proc_dir_create() -> c_int;
    pub(crate) fn rkmem_proc_file_create(
        name: *const c_char,
        mode: bindings::umode_t,
        id: c_ulong,
    ) -> c_int;
    pub(crate) fn rkmem_proc_dir_remove();

    // Machine facts (glue/machine.c)
    pub(crate) fn rkmem_totalram_pages() -> c_ulong;
    pub(crate) fn rkmem_slab_cpus() -> c_uint;

    // Machine facts and the arena's blocks (glue/machine.c, glue/blocks.c)
    pub(crate) fn rkmem_block_alloc(order: c_uint, may_sleep: bool) -> *mut c_void;
    pub(crate) fn rkmem_block_free(addr: *mut c_void, order: c_uint);
    pub(crate) fn rkmem_pages_set_tag(addr: *mut c_void, npages: c_ulong, tag: c_ulong);
    pub(crate) fn rkmem_page_tag(addr: *const c_void) -> c_ulong;
    pub(crate) fn rkmem_slab_meta_alloc(size: usize, may_sleep: bool) -> *mut c_void;
    pub(crate) fn rkmem_slab_meta_free(meta: *mut c_void);
    pub(crate) fn rkmem_slab_meta_size(size: usize) -> usize;

    // CPU pinning for the self-test (glue/machine.c)
    pub(crate) fn rkmem_pin_cpu() -> c_uint;
    pub(crate) fn rkmem_unpin_cpu();

    // The per-CPU object arrays (glue/objs.c)
    pub(crate) fn rkmem_objs_create(limit: c_uint, cap: c_uint) -> *mut RkmemObjs;
    pub(crate) fn rkmem_objs_destroy(p: *mut RkmemObjs);
    pub(crate) fn rkmem_objs_pop(p: *mut RkmemObjs) -> c_ulong;
    pub(crate) fn rkmem_objs_push(p: *mut RkmemObjs, obj: c_ulong) -> bool;
    pub(crate) fn rkmem_objs_refill(p: *mut RkmemObjs, objs: *const c_ulong, n: c_uint) -> c_uint;
    pub(crate) fn rkmem_objs_drain(p: *mut RkmemObjs, out: *mut c_ulong, n: c_uint) -> c_uint;
    pub(crate) fn rkmem_objs_count(p: *mut RkmemObjs, cpu: c_uint) -> c_uint;
    pub(crate) fn rkmem_objs_take_all(p: *mut RkmemObjs, cpu: c_uint, out: *mut c_ulong) -> c_uint;
    pub(crate) fn rkmem_objs_flush(
        p: *mut RkmemObjs,
        cpu: c_uint,
        try_only: bool,
        out: *mut c_ulong,
    ) -> c_int;

    // Per-CPU counters (glue/counters.c)
    pub(crate) fn rkmem_counters_create(n: c_uint) -> *mut i64;
    pub(crate) fn rkmem_counters_destroy(c: *mut i64);
    pub(crate) fn rkmem_counter_add(c: *mut i64, i: c_uint, delta: i64);
    pub(crate) fn rkmem_counter_sum(c: *mut i64, i: c_uint) -> i64;

    // The background trimmer (glue/reclaim.c)
    pub(crate) fn rkmem_reclaim_kick();
    pub(crate) fn rkmem_reclaim_cancel();

    // The host kernel's side of the benchmarks (glue/bench.c)
    pub(crate) fn rkmem_bench_now_ns() -> u64;
    pub(crate) fn rkmem_bench_resched() -> bool;
    pub(crate) fn rkmem_bench_slub_create(
        name: *const c_char,
        size: c_uint,
        align: c_uint,
    ) -> *mut KmemCache;
    pub(crate) fn rkmem_bench_slub_destroy(s: *mut KmemCache);
    pub(crate) fn rkmem_bench_slub_pairs(s: *mut KmemCache, n: u32) -> i64;
    pub(crate) fn rkmem_bench_slub_batch(
        s: *mut KmemCache,
        buf: *mut *mut c_void,
        batch: u32,
        rounds: u32,
        held: *mut u64,
    ) -> i64;
    pub(crate) fn rkmem_bench_kmalloc_pairs(size: usize, n: u32) -> i64;
    pub(crate) fn rkmem_bench_pages_pairs(order: c_uint, n: u32) -> i64;
    pub(crate) fn rkmem_bench_mempool_create(min_nr: c_uint, size: usize) -> *mut HostMempool;
    pub(crate) fn rkmem_bench_mempool_destroy(pool: *mut HostMempool);
    pub(crate) fn rkmem_bench_mempool_pairs(pool: *mut HostMempool, n: u32) -> i64;
    pub(crate) fn rkmem_bench_slub_layout(
        name: *const c_char,
        size: c_uint,
        align: c_uint,
        buf: *mut *mut c_void,
        max: u32,
        objs: *mut u32,
        order: *mut u32,
    ) -> c_int;
    pub(crate) fn rkmem_bench_other_cpu() -> c_int;
    pub(crate) fn rkmem_bench_on_cpu(cpu: c_int, f: RkmemBenchFn, arg: *mut c_void) -> c_long;
    pub(crate) fn rkmem_mutex_lock_interruptible(m: *mut bindings::mutex) -> c_int;
    pub(crate) fn rkmem_kasan_enabled() -> bool;
    pub(crate) fn rkmem_kasan_poison_pages(addr: *mut c_void, bytes: usize);
    pub(crate) fn rkmem_kasan_unpoison_pages(addr: *mut c_void, bytes: usize);
    pub(crate) fn rkmem_kasan_poison_object(obj: *mut c_void, stride: usize);
    pub(crate) fn rkmem_kasan_unpoison_object(obj: *mut c_void, size: usize, stride: usize);
    pub(crate) fn rkmem_kmemleak_alloc(obj: *const c_void, size: usize);
    pub(crate) fn rkmem_kmemleak_free(obj: *const c_void);
    pub(crate) fn rkmem_kmemleak_enabled() -> bool;
    pub(crate) fn rkmem_kcsan_enabled() -> bool;
    pub(crate) fn rkmem_kcsan_race_check() -> c_long;
    pub(crate) fn rkmem_stress_each_cpu(f: RkmemBenchFn, arg: *mut c_void) -> c_long;
    pub(crate) fn rkmem_bench_slub_remote(
        s: *mut KmemCache,
        buf: *mut *mut c_void,
        batch: u32,
        rounds: u32,
        cpu: c_int,
    ) -> i64;
    pub(crate) fn rkmem_bench_slab_pages() -> u64;
    pub(crate) fn rkmem_bench_slub_alloc(s: *mut KmemCache) -> *mut c_void;
    pub(crate) fn rkmem_bench_slub_free(s: *mut KmemCache, p: *mut c_void);
    pub(crate) fn rkmem_bench_slub_shrink(s: *mut KmemCache);
    pub(crate) fn rkmem_bench_trace_kmalloc(
        ops: *const u32,
        n: u32,
        slots: *mut *mut c_void,
        peak: *mut u64,
    ) -> i64;
    pub(crate) fn rkmem_bench_trace_kfree_all(slots: *mut *mut c_void, nslots: u32);
    pub(crate) fn rkmem_bench_cycles() -> u64;
    pub(crate) fn rkmem_bench_cycles_per_ms() -> u64;
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rkmem_bench_latency(
        kind: c_int,
        s: *mut KmemCache,
        size: usize,
        order: c_uint,
        buf: *mut *mut c_void,
        n: u32,
        alloc_cyc: *mut u32,
        free_cyc: *mut u32,
    ) -> c_int;

    // RKMEM_IOC_ROUTES: the host's allocators, each measured and freed (glue/routes.c)
    pub(crate) fn rkmem_kmalloc_max_cache_size() -> usize;
    pub(crate) fn rkmem_kmalloc_max_size() -> usize;
    pub(crate) fn rkmem_vmalloc_mapped(addr: *const c_void, size: usize, guard: *mut u32) -> u64;
    pub(crate) fn rkmem_route_kmalloc(size: usize, slab: *mut bool, bytes: *mut u64) -> c_int;
    pub(crate) fn rkmem_route_vmalloc(size: usize, bytes: *mut u64, guard: *mut u32) -> c_int;
    pub(crate) fn rkmem_route_kvmalloc(
        size: usize,
        vmalloc: *mut bool,
        slab: *mut bool,
        bytes: *mut u64,
        guard: *mut u32,
    ) -> c_int;
    pub(crate) fn rkmem_route_pages(size: usize, exact: bool, pages: *mut u64) -> c_int;
}
