/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rkmem_uapi.h - the ioctl ABI of /dev/rkmem for C programs.
 *
 * A C rendering of rust/uapi.rs, which is the source of truth: the module, rkmemctl and the
 * host tests compile that file. tests/host/src/cabi.rs compiles a probe against this header
 * and checks every number, struct size, field offset and field size against the Rust side,
 * and that neither side has a constant, struct or field the other lacks.
 *
 * Rules: fixed-size structs with explicit padding; reserved fields must be zero (EINVAL
 * otherwise); the struct size is part of each ioctl number. Errors: unknown command ENOTTY,
 * bad argument EINVAL, unknown handle/cache/pool ENOENT, bad user pointer EFAULT, no memory
 * ENOMEM, over the per-file cap (file_max_mb) EDQUOT.
 */
#ifndef _UAPI_RKMEM_H
#define _UAPI_RKMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The ioctl "type" byte of rkmem. */
#define RKMEM_IOC_MAGIC			0xB9
/* Version of this ABI; user space refuses a module whose abi_version differs. */
#define RKMEM_ABI_VERSION		5

/* ---- version ---- */

/* Answer of RKMEM_IOC_VERSION. */
struct rkmem_version {
	__u32 abi_version;	/* RKMEM_ABI_VERSION of the running module */
	__u16 major;		/* module version */
	__u16 minor;
	__u16 patch;
	__u16 pad;		/* zero */
	__u32 features;		/* RKMEM_FEAT_* */
};

#define RKMEM_FEAT_VERSION		(1U << 0)
#define RKMEM_FEAT_PAGES		(1U << 1)
#define RKMEM_FEAT_SLAB			(1U << 2)
#define RKMEM_FEAT_MEMPOOL		(1U << 3)
#define RKMEM_FEAT_BENCH		(1U << 4)
#define RKMEM_FEAT_COMPACT		(1U << 5)
#define RKMEM_FEAT_STRESS		(1U << 6)
#define RKMEM_FEAT_INSPECT		(1U << 7)
#define RKMEM_FEAT_SLABS		(1U << 8)
#define RKMEM_FEAT_ROUTES		(1U << 9)
#define RKMEM_FEATURES	(RKMEM_FEAT_VERSION | RKMEM_FEAT_PAGES | RKMEM_FEAT_SLAB | \
			 RKMEM_FEAT_MEMPOOL | RKMEM_FEAT_BENCH | RKMEM_FEAT_COMPACT | \
			 RKMEM_FEAT_STRESS | RKMEM_FEAT_INSPECT | \
			 RKMEM_FEAT_SLABS | RKMEM_FEAT_ROUTES)

#define RKMEM_IOC_VERSION		_IOR(RKMEM_IOC_MAGIC, 0x00, struct rkmem_version)

/* ---- the buddy allocator ---- */

/* Largest buddy order: blocks of 2^0 .. 2^10 pages of 4 KiB. */
#define RKMEM_MAX_ORDER			10
/* rkmem_pages_alloc.flags: exactly npages pages (like alloc_pages_exact). */
#define RKMEM_PAGES_EXACT		(1U << 0)

/* Argument of RKMEM_IOC_PAGES_ALLOC. */
struct rkmem_pages_alloc {
	__u32 order;		/* in: 0..RKMEM_MAX_ORDER; zero with RKMEM_PAGES_EXACT */
	__u32 flags;		/* in: RKMEM_PAGES_* */
	__u32 npages;		/* in: with RKMEM_PAGES_EXACT 1..1024; otherwise zero */
	__u32 reserved;		/* zero */
	__u64 handle;		/* out: opaque handle, never zero */
	__u64 bytes;		/* out: size of the allocation */
};

#define RKMEM_IOC_PAGES_ALLOC		_IOWR(RKMEM_IOC_MAGIC, 0x10, struct rkmem_pages_alloc)

/* Argument of RKMEM_IOC_FREE. */
struct rkmem_handle {
	__u64 handle;
};

/* Free an allocation of this open file; ENOENT for a handle it does not hold. */
#define RKMEM_IOC_FREE			_IOW(RKMEM_IOC_MAGIC, 0x11, struct rkmem_handle)

/* Argument of RKMEM_IOC_WRITE and RKMEM_IOC_READ. */
struct rkmem_io {
	__u64 handle;
	__u64 offset;		/* byte offset inside the allocation */
	__u64 len;		/* offset + len must not pass the end (EINVAL) */
	__u64 buf;		/* user buffer of len bytes (EFAULT if not accessible) */
};

#define RKMEM_IOC_WRITE			_IOW(RKMEM_IOC_MAGIC, 0x12, struct rkmem_io)
#define RKMEM_IOC_READ			_IOW(RKMEM_IOC_MAGIC, 0x13, struct rkmem_io)

/* rkmem_block.kind */
#define RKMEM_BLOCK_FREE		0
#define RKMEM_BLOCK_USED		1
#define RKMEM_BLOCK_EXACT		2

/* One block of the arena map. */
struct rkmem_block {
	__u32 start;		/* first page, from the start of the slot */
	__u32 pages;
	__u32 kind;		/* RKMEM_BLOCK_* */
	__u32 reserved;
};

/* Argument of RKMEM_IOC_ARENA_MAP. */
struct rkmem_arena_map {
	__u32 slot;		/* in: 0..slots */
	__u32 max_entries;	/* in: room in entries, at most RKMEM_MAP_MAX_ENTRIES */
	__u64 entries;		/* in: user pointer to max_entries struct rkmem_block */
	__u32 nr_entries;	/* out */
	__u32 slots;		/* out: arena_max_mb / 4 */
	__u32 present;		/* out: 1 if the slot holds memory */
	__u32 slot_pages;	/* out: 1024 */
	__u32 pcp_pages;	/* out: pages in the per-CPU caches */
	__u32 reserved;		/* zero */
};

#define RKMEM_MAP_MAX_ENTRIES		1024
#define RKMEM_IOC_ARENA_MAP		_IOWR(RKMEM_IOC_MAGIC, 0x14, struct rkmem_arena_map)

/* rkmem_trim.flags */
#define RKMEM_TRIM_PCP			(1U << 0)
#define RKMEM_TRIM_ARENA		(1U << 1)
#define RKMEM_TRIM_SLABS		(1U << 2)

/* Argument of RKMEM_IOC_TRIM. */
struct rkmem_trim {
	__u32 flags;		/* in: RKMEM_TRIM_* */
	__u32 reserved;		/* zero */
	__u64 pcp_pages;	/* out: pages moved from the per-CPU caches */
	__u64 released_pages;	/* out: pages given back to the host kernel */
};

#define RKMEM_IOC_TRIM			_IOWR(RKMEM_IOC_MAGIC, 0x15, struct rkmem_trim)

/* ---- slab caches and rkmalloc ---- */

#define RKMEM_CACHE_NAME_MAX		31
#define RKMEM_CACHE_SIZE_MAX		4096
#define RKMEM_CACHE_CTOR		(1U << 0)
#define RKMEM_CACHE_NOCPU		(1U << 1)

/* Argument of RKMEM_IOC_CACHE_CREATE. */
struct rkmem_cache_create {
	__u8 name[32];		/* in: NUL-padded, 1..31 bytes of [A-Za-z0-9_.-] */
	__u32 size;		/* in: 1..RKMEM_CACHE_SIZE_MAX */
	__u32 align;		/* in: power of two up to 4096 */
	__u32 flags;		/* in: RKMEM_CACHE_* */
	__u32 ctor_byte;	/* in: 0..255 with RKMEM_CACHE_CTOR */
	__u32 id;		/* out */
	__u32 objects_per_slab;	/* out */
	__u32 pages_per_slab;	/* out */
	__u32 objsize;		/* out: bytes per object slot */
};

#define RKMEM_IOC_CACHE_CREATE		_IOWR(RKMEM_IOC_MAGIC, 0x30, struct rkmem_cache_create)

/* Argument of RKMEM_IOC_CACHE_DESTROY. */
struct rkmem_cache_id {
	__u32 id;
	__u32 reserved;		/* zero */
};

#define RKMEM_IOC_CACHE_DESTROY		_IOW(RKMEM_IOC_MAGIC, 0x31, struct rkmem_cache_id)

/* Argument of RKMEM_IOC_OBJ_ALLOC. */
struct rkmem_obj_alloc {
	__u32 cache_id;		/* in: a cache of this file, or 0 for rkmalloc by size */
	__u32 flags;		/* zero */
	__u64 size;		/* in: with cache_id 0, 1..RKMEM_RKMALLOC_MAX; otherwise zero */
	__u64 handle;		/* out */
	__u64 bytes;		/* out: usable bytes */
};

#define RKMEM_RKMALLOC_MAX		(64ULL << 20)
#define RKMEM_IOC_OBJ_ALLOC		_IOWR(RKMEM_IOC_MAGIC, 0x32, struct rkmem_obj_alloc)

/* rkmem_slab_entry.list */
#define RKMEM_SLAB_FULL			1
#define RKMEM_SLAB_PARTIAL		2
#define RKMEM_SLAB_EMPTY		3
#define RKMEM_SLABS_MAX_ENTRIES		1024

/* One slab in the answer of RKMEM_IOC_CACHE_SLABS: a position in the arena, never an address. */
struct rkmem_slab_entry {
	__u32 slot;		/* slot (4 MiB block) of the slab */
	__u32 page;		/* first page of the slab in the slot */
	__u32 list;		/* RKMEM_SLAB_* */
	__u32 in_use;		/* objects in use in the slab */
};

/* Argument of RKMEM_IOC_CACHE_SLABS: a cache's lists (full, partial, empty; each front to back). */
struct rkmem_cache_slabs {
	__u32 cache_id;		/* in: a cache of this file */
	__u32 max_entries;	/* in: room in entries, <= RKMEM_SLABS_MAX_ENTRIES */
	__u64 entries;		/* in: user pointer to struct rkmem_slab_entry[max_entries] */
	__u32 nr_entries;	/* out: entries written */
	__u32 full;		/* out: slabs on the full list */
	__u32 partial;		/* out: slabs on the partial list */
	__u32 empty;		/* out: slabs on the empty list */
	__u32 objects;		/* out: objects per slab */
	__u32 pages;		/* out: pages per slab */
	__u32 keep_empty;	/* out: empty slabs the cache keeps */
	__u32 reserved;		/* zero */
	__u64 in_use;		/* out: objects in use */
};

#define RKMEM_IOC_CACHE_SLABS		_IOWR(RKMEM_IOC_MAGIC, 0x33, struct rkmem_cache_slabs)

/* rkmem_handle_info.kind */
#define RKMEM_INFO_PAGES		1
#define RKMEM_INFO_OBJECT		2
#define RKMEM_INFO_BITMAP_BITS		512

/* Argument of RKMEM_IOC_HANDLE_INFO: positions inside the arena, never addresses. */
struct rkmem_handle_info {
	__u64 handle;		/* in: a handle of this file */
	__u32 kind;		/* out: RKMEM_INFO_* */
	__u32 slot;		/* out: slot of the block or slab */
	__u32 page;		/* out: first page of the block or slab in the slot */
	__u32 pages;		/* out: pages of the block or slab */
	__u32 offset;		/* out: object: bytes from the slab start */
	__u32 index;		/* out: object: index (bit) in its slab */
	__u32 objects;		/* out: objects per slab */
	__u32 in_use;		/* out: objects in use in the slab */
	__u32 color;		/* out: the slab's color */
	__u32 reserved;		/* zero */
	__u64 bitmap[8];	/* out: the slab's bitmap, first 512 objects */
};

#define RKMEM_IOC_HANDLE_INFO		_IOWR(RKMEM_IOC_MAGIC, 0x16, struct rkmem_handle_info)

/* rkmem_route.kind and .flags */
#define RKMEM_ROUTE_NONE		0	/* not taken: beyond what the route serves */
#define RKMEM_ROUTE_SLAB		1	/* an object of a slab cache */
#define RKMEM_ROUTE_PAGES		2	/* whole pages of a page allocator */
#define RKMEM_ROUTE_VMALLOC		3	/* vmalloc */
#define RKMEM_ROUTE_EXACT		(1U << 0)	/* pages: exactly as many as needed */
#define RKMEM_ROUTES_MAX		(8ULL << 20)

/* One route of RKMEM_IOC_ROUTES. */
struct rkmem_route {
	__u32 kind;		/* RKMEM_ROUTE_* */
	__u32 flags;		/* RKMEM_ROUTE_EXACT or 0 */
	__u64 bytes;		/* bytes held: ksize(), the block's pages, vmalloc's mapped pages */
	__u32 guard;		/* bytes of unmapped guard after it (vmalloc) */
	__u32 reserved;		/* zero */
};

/* Argument of RKMEM_IOC_ROUTES: one size through every route, each allocation freed. */
struct rkmem_routes {
	__u64 size;		/* in: 1..RKMEM_ROUTES_MAX */
	__u64 reserved;		/* zero */
	struct rkmem_route kmalloc;	/* out: the host's kmalloc */
	struct rkmem_route vmalloc;	/* out: the host's vmalloc */
	struct rkmem_route kvmalloc;	/* out: the host's kvmalloc */
	struct rkmem_route rkmalloc;	/* out: rkmem's rkmalloc */
	struct rkmem_route exact;	/* out: alloc_pages_exact */
	struct rkmem_route order;	/* out: alloc_pages(get_order(size)) */
	__u32 kmalloc_max_cache_size;	/* out: the host's KMALLOC_MAX_CACHE_SIZE */
	__u32 page_size;	/* out: the host's PAGE_SIZE */
	__u64 kmalloc_max_size;	/* out: the host's KMALLOC_MAX_SIZE */
};

#define RKMEM_IOC_ROUTES		_IOWR(RKMEM_IOC_MAGIC, 0x17, struct rkmem_routes)

/* ---- mempools ---- */

#define RKMEM_POOL_SRC_CACHE		1
#define RKMEM_POOL_SRC_RKMALLOC		2
#define RKMEM_POOL_SRC_PAGES		3
#define RKMEM_POOL_FAIL_SOURCE		(1U << 0)
#define RKMEM_POOL_MAX_MIN		4096

/* Argument of RKMEM_IOC_POOL_CREATE. */
struct rkmem_pool_create {
	__u32 source;		/* in: RKMEM_POOL_SRC_* */
	__u32 cache_id;		/* in: with RKMEM_POOL_SRC_CACHE; otherwise zero */
	__u64 size;		/* in: with RKMEM_POOL_SRC_RKMALLOC; otherwise zero */
	__u32 order;		/* in: with RKMEM_POOL_SRC_PAGES 0..10; otherwise zero */
	__u32 min_nr;		/* in: 1..RKMEM_POOL_MAX_MIN elements reserved */
	__u32 flags;		/* in: RKMEM_POOL_* */
	__u32 id;		/* out */
};

#define RKMEM_IOC_POOL_CREATE		_IOWR(RKMEM_IOC_MAGIC, 0x40, struct rkmem_pool_create)

#define RKMEM_POOL_MAY_SLEEP		(1U << 0)

/* Argument of RKMEM_IOC_POOL_ALLOC. */
struct rkmem_pool_alloc {
	__u32 pool_id;		/* in */
	__u32 flags;		/* in: RKMEM_POOL_MAY_SLEEP or 0 */
	__u64 handle;		/* out: free it with RKMEM_IOC_FREE */
	__u64 bytes;		/* out */
};

#define RKMEM_IOC_POOL_ALLOC		_IOWR(RKMEM_IOC_MAGIC, 0x41, struct rkmem_pool_alloc)

/* Argument of RKMEM_IOC_POOL_RESIZE and RKMEM_IOC_POOL_DESTROY. */
struct rkmem_pool_id {
	__u32 pool_id;
	__u32 min_nr;		/* resize: 1..RKMEM_POOL_MAX_MIN; destroy: zero */
};

#define RKMEM_IOC_POOL_RESIZE		_IOW(RKMEM_IOC_MAGIC, 0x42, struct rkmem_pool_id)
#define RKMEM_IOC_POOL_DESTROY		_IOW(RKMEM_IOC_MAGIC, 0x43, struct rkmem_pool_id)

/* ---- in-kernel checks ---- */

/* Answer of RKMEM_IOC_SELFTEST. */
struct rkmem_selftest {
	__u32 passed;
	__u32 failed;
	__u64 arena_bad_frees;	/* refused bad frees of this call: its share of bad_free_* */
};

#define RKMEM_IOC_SELFTEST		_IOR(RKMEM_IOC_MAGIC, 0x20, struct rkmem_selftest)

/* ---- benchmarks against the host kernel's allocators ---- */

#define RKMEM_COMPACT_SLABS		(1U << 0)
#define RKMEM_COMPACT_ARENA		(1U << 1)

/* Argument of RKMEM_IOC_COMPACT (ABI 3). */
struct rkmem_compact {
	__u32 flags;		/* in: RKMEM_COMPACT_* */
	__u32 reserved;		/* zero */
	__u64 objects_moved;	/* out */
	__u64 slabs_freed;
	__u64 pages_freed;
	__u64 pinned_skips;
	__u32 caches;
	__u32 pad;
	__u64 pages_moved;	/* out, arena */
	__u64 blocks_freed;
	__u64 host_pages;
	__u64 pinned_slots;
	__u64 blocks_failed;
};

#define RKMEM_IOC_COMPACT		_IOWR(RKMEM_IOC_MAGIC, 0x60, struct rkmem_compact)

#define RKMEM_BENCH_SLAB_PAIR		1
#define RKMEM_BENCH_SLAB_BATCH		2
#define RKMEM_BENCH_KMALLOC		3
#define RKMEM_BENCH_PAGES		4
#define RKMEM_BENCH_MEMPOOL		5
#define RKMEM_BENCH_LAYOUT		6
#define RKMEM_BENCH_REMOTE		7
#define RKMEM_BENCH_FOOTPRINT		8
#define RKMEM_BENCH_TRACE		9
#define RKMEM_BENCH_LATENCY		10
#define RKMEM_BENCH_COMPACT		11
#define RKMEM_BENCH_TRACE_SLOTS		1024
#define RKMEM_BENCH_TRACE_MAX_SIZE	65536
#define RKMEM_BENCH_BATCH		1000
#define RKMEM_BENCH_POOL_MIN		16
#define RKMEM_BENCH_MAX_ITERS		1000000
#define RKMEM_BENCH_MAX_REPS		31
#define RKMEM_BENCH_ONLY_RKMEM		(1U << 0)
#define RKMEM_BENCH_ONLY_HOST		(1U << 1)
#define RKMEM_BENCH_HOST_FIRST		(1U << 2)
#define RKMEM_BENCH_KEEP		(1U << 3)

/* Argument of RKMEM_IOC_BENCH; times in picoseconds per alloc+free. */
struct rkmem_bench {
	__u32 kind;		/* in: RKMEM_BENCH_* */
	__u32 flags;		/* in: RKMEM_BENCH_ONLY_* (not both), _HOST_FIRST, _KEEP */
	__u32 size;		/* in */
	__u32 align;		/* in */
	__u32 order;		/* in */
	__u32 iters;		/* in: 1..RKMEM_BENCH_MAX_ITERS (zero for layout) */
	__u32 reps;		/* in: 1..RKMEM_BENCH_MAX_REPS (zero for layout) */
	__u32 cpu;		/* out */
	__u64 rkmem_ps;		/* out: median */
	__u64 host_ps;
	__u64 rkmem_min_ps;	/* out: fastest repetition */
	__u64 host_min_ps;
	__u64 rkmem_bytes;	/* out: slab batch */
	__u64 host_bytes;
	__u32 rkmem_objs;	/* out: slab kinds and layout */
	__u32 rkmem_pages;
	__u32 host_objs;
	__u32 host_pages;
	__u64 seed;		/* in: trace, footprint */
	__u64 rkmem_lat_ns[6];	/* out: latency: alloc p50, p99, max, free p50, p99, max */
	__u64 host_lat_ns[6];
	__u64 rkmem_pages_held;	/* out: footprint: held; trace: peak */
	__u64 host_pages_held;
	__u64 reserved;		/* zero */
};

#define RKMEM_IOC_BENCH			_IOWR(RKMEM_IOC_MAGIC, 0x50, struct rkmem_bench)

#define RKMEM_STRESS_MAX_OPS		(1ULL << 32)
#define RKMEM_STRESS_MAX_MS		10000
#define RKMEM_STRESS_CORRUPT_ONE	(1U << 0)

/* Argument of RKMEM_IOC_STRESS: the in-kernel stress engine, one worker per online CPU. */
struct rkmem_stress {
	__u64 seed;		/* in */
	__u64 ops;		/* in: most operations per CPU, 1..RKMEM_STRESS_MAX_OPS */
	__u32 ms;		/* in: time limit, 1..RKMEM_STRESS_MAX_MS */
	__u32 flags;		/* in: RKMEM_STRESS_* */
	__u32 cpus;		/* out: workers run */
	__u32 pad;		/* zero */
	__u64 done_ops;		/* out: allocations + frees */
	__u64 allocs[5];	/* out: objects, rkmalloc, pages, exact pages, mempool */
	__u64 frees;		/* out */
	__u64 remote_frees;	/* out: freed on another CPU than allocated */
	__u64 bytes_verified;	/* out */
	__u64 enomem;		/* out: refused allocations (not failures) */
	__u64 failures;		/* out: changed patterns, refused frees */
	__u64 reserved;		/* zero */
};

#define RKMEM_IOC_STRESS		_IOWR(RKMEM_IOC_MAGIC, 0x70, struct rkmem_stress)

#endif /* _UAPI_RKMEM_H */
