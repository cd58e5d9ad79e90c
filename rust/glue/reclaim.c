// SPDX-License-Identifier: GPL-2.0
/* The background trimmer's work item (the shrinker is registered from Rust: reclaim.rs). */
#include <linux/workqueue.h>

#include "glue.h"

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
