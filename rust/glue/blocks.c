// SPDX-License-Identifier: GPL-2.0
/* The arena's 4 MiB blocks from the host kernel's page allocator. */
#include <linux/gfp.h>
#include <linux/mm.h>

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

void rkmem_block_free(void *addr, unsigned int order)
{
	free_pages((unsigned long)addr, order);
}
