// SPDX-License-Identifier: GPL-2.0
/* The host kernel's side of RKMEM_IOC_BENCH: SLUB, kmalloc, pages, mempools called from C. */
#include <linux/cpu.h>
#include <linux/gfp.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mempool.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmstat.h>
#include <linux/workqueue.h>

#include "glue.h"

/*
 * Benchmarks (RKMEM_IOC_BENCH, Rust: bench.rs): the host kernel's side. Each
 * timed loop is written here in C, so the host allocator is called exactly
 * as a C driver calls it (macros and inlines included); each returns the
 * elapsed nanoseconds of the loop, or a negative errno when an allocation
 * failed (everything allocated so far is freed first).
 */

u64 rkmem_bench_now_ns(void)
{
	return ktime_get_ns();
}

/* Lets others run between repetitions; true if a signal is pending. */
bool rkmem_bench_resched(void)
{
	cond_resched();
	return signal_pending(current);
}

struct kmem_cache *rkmem_bench_slub_create(const char *name, unsigned int size,
					   unsigned int align)
{
	/* SLAB_NO_MERGE: a cache of its own, not an alias of kmalloc-N. */
	return kmem_cache_create(name, size, align, SLAB_NO_MERGE, NULL);
}

void rkmem_bench_slub_destroy(struct kmem_cache *s)
{
	kmem_cache_destroy(s);
}

s64 rkmem_bench_slub_pairs(struct kmem_cache *s, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = kmem_cache_alloc(s, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		kmem_cache_free(s, p);
	}
	return ktime_get_ns() - t0;
}

/* Bytes of the slabs (folios) holding the objects buf[0..n). */
static u64 rkmem_bench_held(void **buf, u32 n)
{
	u64 bytes = 0;
	u32 i, j;

	for (i = 0; i < n; i++) {
		struct folio *f = virt_to_folio(buf[i]);

		for (j = 0; j < i; j++)
			if (virt_to_folio(buf[j]) == f)
				break;
		if (j == i)
			bytes += folio_size(f);
	}
	return bytes;
}

/*
 * rounds x (batch allocations, then batch frees) through buf[batch]. With
 * held != NULL, an untimed round afterwards stores the bytes of the slabs
 * that hold one batch (the memory the cache holds at its peak).
 */
s64 rkmem_bench_slub_batch(struct kmem_cache *s, void **buf, u32 batch,
			   u32 rounds, u64 *held)
{
	u64 t0 = ktime_get_ns();
	u32 r, i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < batch; i++) {
			buf[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!buf[i]) {
				while (i--)
					kmem_cache_free(s, buf[i]);
				return -ENOMEM;
			}
		}
		for (i = 0; i < batch; i++)
			kmem_cache_free(s, buf[i]);
	}
	t0 = ktime_get_ns() - t0;
	if (held) {
		for (i = 0; i < batch; i++) {
			buf[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!buf[i])
				break;
		}
		*held = rkmem_bench_held(buf, i);
		while (i--)
			kmem_cache_free(s, buf[i]);
	}
	return t0;
}

s64 rkmem_bench_kmalloc_pairs(size_t size, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = kmalloc(size, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		kfree(p);
	}
	return ktime_get_ns() - t0;
}

s64 rkmem_bench_pages_pairs(unsigned int order, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		struct page *p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);

		if (!p)
			return -ENOMEM;
		__free_pages(p, order);
	}
	return ktime_get_ns() - t0;
}

struct mempool *rkmem_bench_mempool_create(unsigned int min_nr, size_t size)
{
	return mempool_create_kmalloc_pool(min_nr, size);
}

void rkmem_bench_mempool_destroy(struct mempool *pool)
{
	mempool_destroy(pool);
}

s64 rkmem_bench_mempool_pairs(struct mempool *pool, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = mempool_alloc(pool, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		mempool_free(p, pool);
	}
	return ktime_get_ns() - t0;
}

/*
 * SLUB's slab layout for objects of size/align, measured: a fresh cache of
 * its own hands out objects until they span RKMEM_LAYOUT_SLABS + 1 slabs;
 * the most objects seen in one slab folio is its objects per slab (the first
 * slabs are full by then, even counting the objects a per-CPU sheaf held
 * back), and that folio's order its order. buf holds max objects.
 */
#define RKMEM_LAYOUT_SLABS 16

int rkmem_bench_slub_layout(const char *name, unsigned int size,
			    unsigned int align, void **buf, u32 max,
			    u32 *objs, u32 *order)
{
	struct kmem_cache *s = rkmem_bench_slub_create(name, size, align);
	struct folio *seen[RKMEM_LAYOUT_SLABS] = {};
	u32 count[RKMEM_LAYOUT_SLABS] = {};
	u32 n, k;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	*objs = 0;
	*order = 0;
	for (n = 0; n < max; n++) {
		struct folio *f;

		buf[n] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!buf[n]) {
			ret = -ENOMEM;
			break;
		}
		f = virt_to_folio(buf[n]);
		for (k = 0; k < RKMEM_LAYOUT_SLABS && seen[k] && seen[k] != f; k++)
			;
		if (k == RKMEM_LAYOUT_SLABS)
			break;	/* one slab more: the first ones are full */
		seen[k] = f;
		count[k]++;
		if (count[k] > *objs) {
			*objs = count[k];
			*order = folio_order(f);
		}
	}
	if (n == max)
		ret = -E2BIG;
	if (n < max && buf[n])
		n++;
	while (n--)
		kmem_cache_free(s, buf[n]);
	kmem_cache_destroy(s);
	return ret;
}

/*
 * Remote frees (RKMEM_BENCH_REMOTE). rkmem_bench_other_cpu: an online CPU other than this
 * one, or -ENODEV. rkmem_bench_on_cpu runs fn(arg) in a work item on cpu and waits for it
 * (work_on_cpu, which may sleep; -ENODEV without running fn if cpu went offline): the
 * consumer side of both allocators' benchmarks.
 */
int rkmem_bench_other_cpu(void)
{
	unsigned int me = raw_smp_processor_id(), cpu;

	for_each_online_cpu(cpu)
		if (cpu != me)
			return cpu;
	return -ENODEV;
}

long rkmem_bench_on_cpu(int cpu, rkmem_bench_fn fn, void *arg)
{
	long ret = -ENODEV;

	/* As the former work_on_cpu_safe: the CPU cannot go offline meanwhile. */
	cpus_read_lock();
	if (cpu_online(cpu))
		ret = work_on_cpu(cpu, fn, arg);
	cpus_read_unlock();
	return ret;
}

struct rkmem_bench_remote {
	struct kmem_cache *s;
	void **buf;
	u32 n;
};

/* The consumer: frees buf[0..n) on the CPU it runs on; its own time in ns. */
static long rkmem_bench_slub_consume(void *arg)
{
	struct rkmem_bench_remote *r = arg;
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < r->n; i++)
		kmem_cache_free(r->s, r->buf[i]);
	return ktime_get_ns() - t0;
}

/*
 * rounds x (batch allocations here, then their frees on cpu): the allocations' time plus the
 * frees' time, each measured on its own CPU. The caller keeps this task on its CPU.
 */
s64 rkmem_bench_slub_remote(struct kmem_cache *s, void **buf, u32 batch, u32 rounds, int cpu)
{
	struct rkmem_bench_remote r = { .s = s, .buf = buf, .n = batch };
	u64 total = 0;
	u32 k, i;

	for (k = 0; k < rounds; k++) {
		u64 t0 = ktime_get_ns();
		long t;

		for (i = 0; i < batch; i++) {
			buf[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!buf[i]) {
				while (i--)
					kmem_cache_free(s, buf[i]);
				return -ENOMEM;
			}
		}
		total += ktime_get_ns() - t0;
		t = rkmem_bench_on_cpu(cpu, rkmem_bench_slub_consume, &r);
		if (t < 0) {
			/* The CPU went offline: the consumer did not run. */
			rkmem_bench_slub_consume(&r);
			return t;
		}
		total += t;
	}
	return total;
}

/*
 * The exact count of NR_SLAB_UNRECLAIMABLE_B in pages: the global counter plus every CPU's
 * not yet folded difference on every node (SLUB's own accounting of its slabs and of large
 * kmalloc pages, without the vmstat threshold's drift; byte items are kept in pages).
 * Footprint and trace benchmarks.
 */
u64 rkmem_bench_slab_pages(void)
{
	long pages = atomic_long_read(&vm_node_stat[NR_SLAB_UNRECLAIMABLE_B]);
	unsigned int cpu;
	int nid;

	for_each_online_node(nid) {
		struct pglist_data *pgdat = NODE_DATA(nid);

		for_each_online_cpu(cpu)
			pages += per_cpu_ptr(pgdat->per_cpu_nodestats, cpu)
					 ->vm_node_stat_diff[NR_SLAB_UNRECLAIMABLE_B];
	}
	return pages > 0 ? pages : 0;
}

/* Footprint (RKMEM_BENCH_FOOTPRINT): kmem_cache_alloc into buf[i], or kmem_cache_free it. */
void *rkmem_bench_slub_alloc(struct kmem_cache *s)
{
	return kmem_cache_alloc(s, GFP_KERNEL);
}

void rkmem_bench_slub_free(struct kmem_cache *s, void *p)
{
	kmem_cache_free(s, p);
}

/* Compaction benchmark: SLUB's own way back to a small footprint (its empty slabs go). */
void rkmem_bench_slub_shrink(struct kmem_cache *s)
{
	kmem_cache_shrink(s);
}

/*
 * The mixed trace (RKMEM_BENCH_TRACE): ops[i] = size << 10 | slot; each op frees the slot's
 * allocation (if any) and kmallocs size bytes into it. The time of the n ops; the slots stay
 * allocated (rkmem_bench_trace_kfree_all frees them). With peak != NULL (an untimed run),
 * the largest growth of rkmem_bench_slab_pages() over its value at the start, sampled every
 * 64 ops.
 */
s64 rkmem_bench_trace_kmalloc(const u32 *ops, u32 n, void **slots, u64 *peak)
{
	u64 base = peak ? rkmem_bench_slab_pages() : 0;
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		u32 slot = ops[i] & 1023, size = ops[i] >> 10;

		kfree(slots[slot]);
		slots[slot] = kmalloc(size, GFP_KERNEL);
		if (!slots[slot])
			return -ENOMEM;
		if (peak && i % 64 == 63) {
			u64 now = rkmem_bench_slab_pages();

			if (now > base && now - base > *peak)
				*peak = now - base;
		}
	}
	return ktime_get_ns() - t0;
}

void rkmem_bench_trace_kfree_all(void **slots, u32 nslots)
{
	u32 i;

	for (i = 0; i < nslots; i++) {
		kfree(slots[i]);
		slots[i] = NULL;
	}
}

/*
 * The CPU's cycle counter for timing single operations (on UML the clock's resolution is far
 * coarser than one allocation): rdtsc after an lfence, so earlier instructions have finished.
 * Elsewhere the clock in nanoseconds. rkmem_bench_cycles_per_ms calibrates it against the
 * clock over 2 ms.
 */
u64 rkmem_bench_cycles(void)
{
#if defined(__x86_64__)
	u32 lo, hi;

	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
#else
	return ktime_get_ns();
#endif
}

u64 rkmem_bench_cycles_per_ms(void)
{
	u64 t0 = ktime_get_ns(), c0 = rkmem_bench_cycles(), t, c;

	do {
		cpu_relax();
		t = ktime_get_ns();
	} while (t - t0 < 2 * NSEC_PER_MSEC);
	c = rkmem_bench_cycles();
	return div64_u64((c - c0) * NSEC_PER_MSEC, t - t0);
}

/*
 * Latency (RKMEM_BENCH_LATENCY): n allocations into buf, each timed alone in cycles
 * (alloc_cyc[i]), then n frees, each timed alone (free_cyc[i]). kind 0: SLUB cache s; 1: kmalloc(size); 2: pages of
 * order. 0 or -ENOMEM (everything allocated so far freed).
 */
static void *rkmem_bench_lat_alloc(int kind, struct kmem_cache *s, size_t size,
				   unsigned int order)
{
	struct page *page;

	switch (kind) {
	case 0:
		return kmem_cache_alloc(s, GFP_KERNEL);
	case 1:
		return kmalloc(size, GFP_KERNEL);
	default:
		page = alloc_pages(GFP_KERNEL, order);
		return page ? page_address(page) : NULL;
	}
}

static void rkmem_bench_lat_free(int kind, struct kmem_cache *s, void *p, unsigned int order)
{
	switch (kind) {
	case 0:
		kmem_cache_free(s, p);
		break;
	case 1:
		kfree(p);
		break;
	default:
		free_pages((unsigned long)p, order);
	}
}

int rkmem_bench_latency(int kind, struct kmem_cache *s, size_t size, unsigned int order,
			void **buf, u32 n, u32 *alloc_cyc, u32 *free_cyc)
{
	u32 i;

	for (i = 0; i < n; i++) {
		u64 t0 = rkmem_bench_cycles();

		buf[i] = rkmem_bench_lat_alloc(kind, s, size, order);
		alloc_cyc[i] = min_t(u64, rkmem_bench_cycles() - t0, U32_MAX);
		if (!buf[i]) {
			while (i--)
				rkmem_bench_lat_free(kind, s, buf[i], order);
			return -ENOMEM;
		}
	}
	for (i = 0; i < n; i++) {
		u64 t0 = rkmem_bench_cycles();

		rkmem_bench_lat_free(kind, s, buf[i], order);
		free_cyc[i] = min_t(u64, rkmem_bench_cycles() - t0, U32_MAX);
	}
	return 0;
}
