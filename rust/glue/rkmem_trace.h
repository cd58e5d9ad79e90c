/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rkmem's tracepoints, in the manner of include/trace/events/kmem.h: object and page
 * allocations and frees, slab and arena growth and release, the shrinker's calls, reclaim
 * runs and compaction moves. Defined once here (trace.c creates them); fired from Rust through
 * rust/interfaces/trace.rs, which tests each event's static key inline, so a disabled event
 * costs a patched no-op branch (JUMP_LABEL) or one load.
 *
 * Strings come from Rust as (pointer, length), not NUL-terminated: __string_len. A call
 * site is the Rust source location of the caller (#[track_caller]), as file:line.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM rkmem

#if !defined(_RKMEM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RKMEM_TRACE_H

#include <linux/mm.h>
#include <linux/tracepoint.h>

/* The pfn of an address of the arena (direct map), or -1 for none. */
#define rkmem_trace_pfn(addr) ((addr) ? page_to_pfn(virt_to_page(addr)) : -1UL)

TRACE_EVENT(rkmem_cache_alloc,
	TP_PROTO(const char *site, u32 site_len, u32 line, const void *ptr, size_t bytes_req,
		 size_t bytes_alloc, const char *cache, u32 cache_len),
	TP_ARGS(site, site_len, line, ptr, bytes_req, bytes_alloc, cache, cache_len),
	TP_STRUCT__entry(
		__string_len(site, site, site_len)
		__field(u32, line)
		__field(const void *, ptr)
		__field(size_t, bytes_req)
		__field(size_t, bytes_alloc)
		__string_len(cache, cache, cache_len)
	),
	TP_fast_assign(
		__assign_str(site);
		__entry->line = line;
		__entry->ptr = ptr;
		__entry->bytes_req = bytes_req;
		__entry->bytes_alloc = bytes_alloc;
		__assign_str(cache);
	),
	TP_printk("call_site=%s:%u ptr=%p bytes_req=%zu bytes_alloc=%zu cache=%s",
		  __get_str(site), __entry->line, __entry->ptr, __entry->bytes_req,
		  __entry->bytes_alloc, __get_str(cache))
);

TRACE_EVENT(rkmem_cache_free,
	TP_PROTO(const char *site, u32 site_len, u32 line, const void *ptr, const char *cache,
		 u32 cache_len),
	TP_ARGS(site, site_len, line, ptr, cache, cache_len),
	TP_STRUCT__entry(
		__string_len(site, site, site_len)
		__field(u32, line)
		__field(const void *, ptr)
		__string_len(cache, cache, cache_len)
	),
	TP_fast_assign(
		__assign_str(site);
		__entry->line = line;
		__entry->ptr = ptr;
		__assign_str(cache);
	),
	TP_printk("call_site=%s:%u ptr=%p cache=%s", __get_str(site), __entry->line,
		  __entry->ptr, __get_str(cache))
);

/* rkmalloc's route: a size class, a power-of-two block, exact pages, vmalloc. */
#define rkmem_trace_routes \
	{ 0, "class" }, { 1, "order" }, { 2, "exact" }, { 3, "vmalloc" }

TRACE_EVENT(rkmem_kmalloc,
	TP_PROTO(const char *site, u32 site_len, u32 line, const void *ptr, size_t bytes_req,
		 size_t bytes_alloc, u32 route),
	TP_ARGS(site, site_len, line, ptr, bytes_req, bytes_alloc, route),
	TP_STRUCT__entry(
		__string_len(site, site, site_len)
		__field(u32, line)
		__field(const void *, ptr)
		__field(size_t, bytes_req)
		__field(size_t, bytes_alloc)
		__field(u32, route)
	),
	TP_fast_assign(
		__assign_str(site);
		__entry->line = line;
		__entry->ptr = ptr;
		__entry->bytes_req = bytes_req;
		__entry->bytes_alloc = bytes_alloc;
		__entry->route = route;
	),
	TP_printk("call_site=%s:%u ptr=%p bytes_req=%zu bytes_alloc=%zu route=%s",
		  __get_str(site), __entry->line, __entry->ptr, __entry->bytes_req,
		  __entry->bytes_alloc, __print_symbolic(__entry->route, rkmem_trace_routes))
);

TRACE_EVENT(rkmem_kfree,
	TP_PROTO(const char *site, u32 site_len, u32 line, const void *ptr, u32 route),
	TP_ARGS(site, site_len, line, ptr, route),
	TP_STRUCT__entry(
		__string_len(site, site, site_len)
		__field(u32, line)
		__field(const void *, ptr)
		__field(u32, route)
	),
	TP_fast_assign(
		__assign_str(site);
		__entry->line = line;
		__entry->ptr = ptr;
		__entry->route = route;
	),
	TP_printk("call_site=%s:%u ptr=%p route=%s", __get_str(site), __entry->line,
		  __entry->ptr, __print_symbolic(__entry->route, rkmem_trace_routes))
);

/* A block of the arena: order >= 0 for 2^order pages, -1 for an exact run of pages. */
DECLARE_EVENT_CLASS(rkmem_page,
	TP_PROTO(const void *addr, int order, u32 pages),
	TP_ARGS(addr, order, pages),
	TP_STRUCT__entry(
		__field(unsigned long, pfn)
		__field(int, order)
		__field(u32, pages)
	),
	TP_fast_assign(
		__entry->pfn = rkmem_trace_pfn(addr);
		__entry->order = order;
		__entry->pages = pages;
	),
	TP_printk("pfn=0x%lx order=%d pages=%u", __entry->pfn, __entry->order, __entry->pages)
);

DEFINE_EVENT(rkmem_page, rkmem_page_alloc,
	TP_PROTO(const void *addr, int order, u32 pages),
	TP_ARGS(addr, order, pages)
);

DEFINE_EVENT(rkmem_page, rkmem_page_free,
	TP_PROTO(const void *addr, int order, u32 pages),
	TP_ARGS(addr, order, pages)
);

DECLARE_EVENT_CLASS(rkmem_slab,
	TP_PROTO(const char *cache, u32 cache_len, const void *addr, u32 pages),
	TP_ARGS(cache, cache_len, addr, pages),
	TP_STRUCT__entry(
		__string_len(cache, cache, cache_len)
		__field(unsigned long, pfn)
		__field(u32, pages)
	),
	TP_fast_assign(
		__assign_str(cache);
		__entry->pfn = rkmem_trace_pfn(addr);
		__entry->pages = pages;
	),
	TP_printk("cache=%s pfn=0x%lx pages=%u", __get_str(cache), __entry->pfn, __entry->pages)
);

DEFINE_EVENT(rkmem_slab, rkmem_slab_grow,
	TP_PROTO(const char *cache, u32 cache_len, const void *addr, u32 pages),
	TP_ARGS(cache, cache_len, addr, pages)
);

DEFINE_EVENT(rkmem_slab, rkmem_slab_release,
	TP_PROTO(const char *cache, u32 cache_len, const void *addr, u32 pages),
	TP_ARGS(cache, cache_len, addr, pages)
);

/* A 4 MiB block of the host kernel's entering (grow) or leaving (release) the arena. */
DECLARE_EVENT_CLASS(rkmem_arena,
	TP_PROTO(u32 slot, const void *addr),
	TP_ARGS(slot, addr),
	TP_STRUCT__entry(
		__field(u32, slot)
		__field(unsigned long, pfn)
	),
	TP_fast_assign(
		__entry->slot = slot;
		__entry->pfn = rkmem_trace_pfn(addr);
	),
	TP_printk("slot=%u pfn=0x%lx", __entry->slot, __entry->pfn)
);

DEFINE_EVENT(rkmem_arena, rkmem_arena_grow,
	TP_PROTO(u32 slot, const void *addr),
	TP_ARGS(slot, addr)
);

DEFINE_EVENT(rkmem_arena, rkmem_arena_release,
	TP_PROTO(u32 slot, const void *addr),
	TP_ARGS(slot, addr)
);

/* The shrinker's count_objects answer (0 for SHRINK_EMPTY). */
TRACE_EVENT(rkmem_shrink_count,
	TP_PROTO(unsigned long count),
	TP_ARGS(count),
	TP_STRUCT__entry(
		__field(unsigned long, count)
	),
	TP_fast_assign(
		__entry->count = count;
	),
	TP_printk("count=%lu", __entry->count)
);

/* A scan_objects call: what reclaim asked for and the pages the host got (-1: SHRINK_STOP). */
TRACE_EVENT(rkmem_shrink_scan,
	TP_PROTO(unsigned long nr_to_scan, long freed),
	TP_ARGS(nr_to_scan, freed),
	TP_STRUCT__entry(
		__field(unsigned long, nr_to_scan)
		__field(long, freed)
	),
	TP_fast_assign(
		__entry->nr_to_scan = nr_to_scan;
		__entry->freed = freed;
	),
	TP_printk("nr_to_scan=%lu freed=%ld", __entry->nr_to_scan, __entry->freed)
);

/* A watermark reclaim run: by the allocating task (sync) or the background worker (async). */
TRACE_EVENT(rkmem_reclaim,
	TP_PROTO(bool sync, u64 pages),
	TP_ARGS(sync, pages),
	TP_STRUCT__entry(
		__field(bool, sync)
		__field(u64, pages)
	),
	TP_fast_assign(
		__entry->sync = sync;
		__entry->pages = pages;
	),
	TP_printk("%s pages=%llu", __entry->sync ? "sync" : "async", __entry->pages)
);

/* A compaction move: an object (pages 0) or a page allocation, copied from one place to another. */
TRACE_EVENT(rkmem_compact_move,
	TP_PROTO(const void *from, const void *to, u32 bytes, u32 pages),
	TP_ARGS(from, to, bytes, pages),
	TP_STRUCT__entry(
		__field(const void *, from)
		__field(const void *, to)
		__field(u32, bytes)
		__field(u32, pages)
	),
	TP_fast_assign(
		__entry->from = from;
		__entry->to = to;
		__entry->bytes = bytes;
		__entry->pages = pages;
	),
	TP_printk("%s from=%p to=%p bytes=%u", __entry->pages ? "pages" : "object",
		  __entry->from, __entry->to, __entry->bytes)
);

#endif /* _RKMEM_TRACE_H */

/* This part must be outside protection. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE rkmem_trace
#include <trace/define_trace.h>
