// SPDX-License-Identifier: GPL-2.0
/* The arena's 4 MiB blocks from the host kernel's page allocator. */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "glue.h"

/*
 * A physically contiguous block of 2^order pages from the host kernel, or
 * NULL. Callers that may sleep let the page allocator reclaim and compact,
 * but never invoke the OOM killer for rkmem (__GFP_RETRY_MAYFAIL); the others
 * only take what is free now. No warning on failure: rkmem reports ENOMEM.
 */
void *rkmem_block_alloc(unsigned int order, bool may_sleep)
{
	gfp_t gfp = may_sleep ? GFP_KERNEL | __GFP_RETRY_MAYFAIL : GFP_NOWAIT;

	/*
	 * The block is charged to the memory cgroup of the task whose allocation
	 * made the arena grow (__GFP_ACCOUNT), so /dev/rkmem cannot be used to
	 * take memory past a cgroup's limit; freeing the block uncharges it.
	 */
	gfp |= __GFP_ACCOUNT;
	struct page *page = alloc_pages(gfp | __GFP_NOWARN, order);

	return page ? page_address(page) : NULL;
}

/*
 * The tag of the npages pages from addr (a range of one of the arena's blocks) mirrored into
 * their struct pages (page->private, which the owner of a non-compound block may use): the
 * arena's tag array stays the record, this copy lets a free find a slab's cache from an address
 * in one load, as kfree finds it from the slab's struct page. 0 clears (before a block goes back).
 */
void rkmem_pages_set_tag(void *addr, unsigned long npages, unsigned long tag)
{
	struct page *page = virt_to_page(addr);
	unsigned long i;

	for (i = 0; i < npages; i++)
		set_page_private(page + i, tag);
}

/* The tag rkmem_pages_set_tag gave the page holding addr, an address rkmem handed out. */
unsigned long rkmem_page_tag(const void *addr)
{
	return page_private(virt_to_page(addr));
}

void rkmem_block_free(void *addr, unsigned int order)
{
	/* The page allocator refuses tail pages with a nonzero private (rkmem_pages_set_tag's). */
	rkmem_pages_set_tag(addr, 1UL << order, 0);
	free_pages((unsigned long)addr, order);
}

/*
 * The header and bitmap of an off-slab slab (a layout whose header inside would cost objects):
 * zeroed, from the host's kmalloc, as the classic SLAB took OFF_SLAB management from a kmalloc
 * cache. Freed when the slab goes back to the arena.
 */
void *rkmem_slab_meta_alloc(size_t size, bool may_sleep)
{
	return kzalloc(size, (may_sleep ? GFP_KERNEL : GFP_NOWAIT) | __GFP_NOWARN);
}

void rkmem_slab_meta_free(void *meta)
{
	kfree(meta);
}

/* What rkmem_slab_meta_alloc(size) takes from the host: the size of its kmalloc bucket. */
size_t rkmem_slab_meta_size(size_t size)
{
	return kmalloc_size_roundup(size);
}
