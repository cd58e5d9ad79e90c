// SPDX-License-Identifier: GPL-2.0
/*
 * RKMEM_IOC_ROUTES, the host kernel's side: one size through kmalloc, vmalloc, kvmalloc,
 * alloc_pages and alloc_pages_exact, each allocation measured from the kernel's own records
 * and freed before the function returns. Every allocation is charged to the caller's memory
 * cgroup and warns of no failure (rkmem answers ENOMEM).
 */
#include <linux/gfp.h>
#include <linux/kfence.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "glue.h"

#define RKMEM_ROUTES_GFP (GFP_KERNEL_ACCOUNT | __GFP_NOWARN)

size_t rkmem_kmalloc_max_cache_size(void)
{
	return KMALLOC_MAX_CACHE_SIZE;
}

size_t rkmem_kmalloc_max_size(void)
{
	return KMALLOC_MAX_SIZE;
}

/*
 * The bytes vmalloc mapped at addr, an area vmalloc returned for size bytes: its pages up to
 * the first unmapped one. find_vm_area() and get_vm_area_size(), which read the area's size,
 * are not exported to modules; vmalloc_to_page() is. Every vmalloc area ends with a guard page
 * (no VM_NO_GUARD here), reserved address space that is never mapped: the walk stops there,
 * and *guard is PAGE_SIZE when it did. The walk looks no further than size rounded up to a
 * PMD (a huge mapping's pages) and one page.
 */
u64 rkmem_vmalloc_mapped(const void *addr, size_t size, u32 *guard)
{
	unsigned long p = (unsigned long)addr;
	unsigned long end = p + ALIGN(size, PMD_SIZE) + PAGE_SIZE;
	u64 bytes = 0;

	*guard = 0;
	for (; p < end; p += PAGE_SIZE) {
		if (!vmalloc_to_page((void *)p)) {
			*guard = PAGE_SIZE;
			break;
		}
		bytes += PAGE_SIZE;
	}
	return bytes;
}

/*
 * kmalloc(size) as a caller gets it from the slab path. KFENCE (the debug kernel) hands out a
 * sampled allocation from its own pool now and then, sized to the byte asked for: such an
 * object is kept aside and kmalloc asked again (a few times), then the kept ones are freed.
 */
static void *rkmem_kmalloc_unsampled(size_t size, bool kv)
{
	void *kept[4];
	unsigned int n = 0;
	void *p;

	for (;;) {
		p = kv ? kvmalloc(size, RKMEM_ROUTES_GFP) : kmalloc(size, RKMEM_ROUTES_GFP);
		if (!p || !is_kfence_address(p) || n == ARRAY_SIZE(kept))
			break;
		kept[n++] = p;
	}
	while (n)
		kvfree(kept[--n]);
	return p;
}

/*
 * kmalloc(size): *slab if a kmalloc-N slab cache holds it (else whole pages: a large kmalloc,
 * above KMALLOC_MAX_CACHE_SIZE), *bytes its ksize(), the size of the object or of the block.
 * The slab type is the folio's (its head page's): an object past a multi-page slab's first
 * page lies in a tail page, which carries no type.
 */
int rkmem_route_kmalloc(size_t size, bool *slab, u64 *bytes)
{
	void *p = rkmem_kmalloc_unsampled(size, false);

	if (!p)
		return -ENOMEM;
	*slab = folio_test_slab(virt_to_folio(p));
	*bytes = ksize(p);
	kfree(p);
	return 0;
}

/* vmalloc(size): the bytes it mapped and its guard (rkmem_vmalloc_mapped). */
int rkmem_route_vmalloc(size_t size, u64 *bytes, u32 *guard)
{
	void *p = __vmalloc(size, RKMEM_ROUTES_GFP);

	if (!p)
		return -ENOMEM;
	*bytes = rkmem_vmalloc_mapped(p, size, guard);
	vfree(p);
	return 0;
}

/*
 * kvmalloc(size): kmalloc first (above a page without direct reclaim), vmalloc if that fails.
 * *vmalloc if it took vmalloc (is_vmalloc_addr); then *bytes and *guard as vmalloc's, else
 * *slab and *bytes as kmalloc's.
 */
int rkmem_route_kvmalloc(size_t size, bool *vmalloc, bool *slab, u64 *bytes, u32 *guard)
{
	void *p = rkmem_kmalloc_unsampled(size, true);

	if (!p)
		return -ENOMEM;
	*vmalloc = is_vmalloc_addr(p);
	*slab = false;
	*guard = 0;
	if (*vmalloc) {
		*bytes = rkmem_vmalloc_mapped(p, size, guard);
	} else {
		*slab = folio_test_slab(virt_to_folio(p));
		*bytes = ksize(p);
	}
	kvfree(p);
	return 0;
}

/*
 * The pages a page allocation of size bytes holds. exact: alloc_pages_exact(size), which takes
 * a block of get_order(size), splits it into single pages and frees those past the size: the
 * pages it kept are counted as those of the block still referenced, from the first (the
 * freed ones have no reference until someone allocates them again, which the moment between
 * the free and the count leaves little room for). Otherwise alloc_pages(get_order(size)) as
 * a compound block, whose pages the kernel records in the block's head (compound_nr).
 * size must be at most KMALLOC_MAX_SIZE (a block of MAX_PAGE_ORDER).
 */
int rkmem_route_pages(size_t size, bool exact, u64 *pages)
{
	unsigned int order = get_order(size);
	struct page *page;
	unsigned long i;

	if (order > MAX_PAGE_ORDER)
		return -EINVAL;
	if (exact) {
		void *p = alloc_pages_exact(size, RKMEM_ROUTES_GFP);

		if (!p)
			return -ENOMEM;
		page = virt_to_page(p);
		for (i = 0; i < (1UL << order) && page_ref_count(page + i); i++)
			;
		*pages = i;
		free_pages_exact(p, size);
		return 0;
	}
	page = alloc_pages(RKMEM_ROUTES_GFP | __GFP_COMP, order);
	if (!page)
		return -ENOMEM;
	*pages = compound_nr(page);
	__free_pages(page, order);
	return 0;
}
