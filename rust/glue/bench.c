// SPDX-License-Identifier: GPL-2.0
/* The host kernel's side of RKMEM_IOC_BENCH: SLUB, kmalloc, pages, mempools called from C. */
#include <linux/gfp.h>
#include <linux/ktime.h>
#include <linux/mempool.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

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
