// SPDX-License-Identifier: GPL-2.0
/*
 * rkmem's objects as kmemleak sees them (CONFIG_DEBUG_KMEMLEAK; without it these do nothing).
 * SLUB registers every object it hands out and unregisters it on free; rkmem does the same
 * for the objects of its caches (user caches and rkmalloc's size classes), whose slabs are
 * arena pages that kmemleak does not track. Two things follow, as for SLUB's objects: an rkmem
 * object that nothing points to any more is reported as a leak, and the pointers stored in a
 * live rkmem object are seen by kmemleak's scan (a kmalloc'd buffer referenced only from one
 * is not a false leak).
 */
#include <linux/gfp.h>
#include <linux/kmemleak.h>
#include <linux/types.h>

#include "glue.h"

/*
 * An object of size bytes at obj was handed out. min_count 1: a leak when no pointer to it
 * is found. GFP_NOWAIT: callers may hold spinlocks; kmemleak falls back to its own pool.
 */
void rkmem_kmemleak_alloc(const void *obj, size_t size)
{
	kmemleak_alloc(obj, size, 1, GFP_NOWAIT | __GFP_NOWARN);
}

/* The object at obj (one rkmem_kmemleak_alloc registered) is being freed. */
void rkmem_kmemleak_free(const void *obj)
{
	kmemleak_free(obj);
}

bool rkmem_kmemleak_enabled(void)
{
	return IS_ENABLED(CONFIG_DEBUG_KMEMLEAK);
}
