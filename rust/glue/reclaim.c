// SPDX-License-Identifier: GPL-2.0
/* The shrinker registered with the host's reclaim, and the background trimmer's work item. */
#include <linux/shrinker.h>
#include <linux/workqueue.h>

#include "glue.h"

static struct shrinker *rkmem_shrinker;

static unsigned long rkmem_count_objects(struct shrinker *s,
					 struct shrink_control *sc)
{
	unsigned long n = rkmem_shrink_count();

	return n ? n : SHRINK_EMPTY;
}

static unsigned long rkmem_scan_objects(struct shrinker *s,
					struct shrink_control *sc)
{
	long freed = rkmem_shrink_scan(sc->nr_to_scan);

	return freed > 0 ? freed : SHRINK_STOP;
}

/* Registers rkmem's shrinker with the host kernel's reclaim. */
int rkmem_shrinker_register(void)
{
	rkmem_shrinker = shrinker_alloc(0, "rkmem");
	if (!rkmem_shrinker)
		return -ENOMEM;
	rkmem_shrinker->count_objects = rkmem_count_objects;
	rkmem_shrinker->scan_objects = rkmem_scan_objects;
	rkmem_shrinker->seeks = DEFAULT_SEEKS;
	shrinker_register(rkmem_shrinker);
	return 0;
}

/* Unregisters and frees it; waits for callbacks in progress. */
void rkmem_shrinker_unregister(void)
{
	shrinker_free(rkmem_shrinker);
	rkmem_shrinker = NULL;
}

static void rkmem_reclaim_fn(struct work_struct *work)
{
	rkmem_reclaim_work();
}

static DECLARE_WORK(rkmem_reclaim, rkmem_reclaim_fn);

/* Queues the background trimmer (no-op while it is queued). */
void rkmem_reclaim_kick(void)
{
	schedule_work(&rkmem_reclaim);
}

/* Cancels it and waits for a run in progress. */
void rkmem_reclaim_cancel(void)
{
	cancel_work_sync(&rkmem_reclaim);
}
