// SPDX-License-Identifier: GPL-2.0
/*
 * rkmem's memory as KASAN sees it (generic KASAN; without it these do nothing). SLUB and the
 * page allocator poison what is free and unpoison what they hand out; rkmem does the same for
 * its own slabs and arena pages, through kasan_poison (exported to GPL modules; its
 * declaration and the shadow values are in mm/kasan/kasan.h, which is private to mm/, so they
 * are repeated here). Shadow byte 0: the 8-byte granule is accessible; 1..7: that many of its
 * first bytes are; the values below mark the granule bad and name why in the report.
 */
#include <linux/kernel.h>
#include <linux/types.h>

#include "glue.h"

#ifdef CONFIG_KASAN_GENERIC
#define RKMEM_KASAN_GRANULE	8UL
#define RKMEM_KASAN_PAGE_FREE	0xFF	/* KASAN_PAGE_FREE: "use-after-free" of a page */
#define RKMEM_KASAN_SLAB_REDZONE 0xFC	/* KASAN_SLAB_REDZONE: "slab-out-of-bounds" */
#define RKMEM_KASAN_SLAB_FREE	0xFB	/* KASAN_SLAB_FREE: "slab-use-after-free" */

void kasan_poison(const void *addr, size_t size, u8 value, bool init);

/* A free page block (or a free block of the arena): any access is a use after free. */
void rkmem_kasan_poison_pages(void *addr, size_t bytes)
{
	kasan_poison(addr, bytes, RKMEM_KASAN_PAGE_FREE, false);
}

/* Pages handed out, or given back to the host kernel: accessible. */
void rkmem_kasan_unpoison_pages(void *addr, size_t bytes)
{
	kasan_poison(addr, bytes, 0, false);
}

/* A free object's slot (stride bytes, granule-aligned): any access is a use after free. */
void rkmem_kasan_poison_object(void *obj, size_t stride)
{
	kasan_poison(obj, stride, RKMEM_KASAN_SLAB_FREE, false);
}

/*
 * An object handed out: its size bytes accessible (the last granule partly), the rest of the
 * slot red zone.
 */
void rkmem_kasan_unpoison_object(void *obj, size_t size, size_t stride)
{
	size_t full = size & ~(RKMEM_KASAN_GRANULE - 1);
	size_t used = ALIGN(size, RKMEM_KASAN_GRANULE);

	if (full)
		kasan_poison(obj, full, 0, false);
	if (used != full)
		kasan_poison(obj + full, RKMEM_KASAN_GRANULE, size - full, false);
	if (stride > used)
		kasan_poison(obj + used, stride - used, RKMEM_KASAN_SLAB_REDZONE, false);
}

bool rkmem_kasan_enabled(void)
{
	return true;
}
#else
void rkmem_kasan_poison_pages(void *addr, size_t bytes) {}
void rkmem_kasan_unpoison_pages(void *addr, size_t bytes) {}
void rkmem_kasan_poison_object(void *obj, size_t stride) {}
void rkmem_kasan_unpoison_object(void *obj, size_t size, size_t stride) {}
bool rkmem_kasan_enabled(void)
{
	return false;
}
#endif
