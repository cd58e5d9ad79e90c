// SPDX-License-Identifier: GPL-2.0
/*
 * The kcsan_check module parameter (race kernel, CONFIG_KCSAN): proof that KCSAN watches
 * rkmem's code in the kernel the race tests run on. At load every online CPU increments one
 * shared counter with plain, unlocked accesses for half a second (on rkmem's per-CPU stress
 * workqueue): a data race on purpose, which KCSAN must report, on that counter, in the
 * module. Only the C glue is instrumented: KCSAN has no Rust instrumentation, so
 * a race inside the Rust code is seen only where a C access of the glue (the per-CPU arrays,
 * the stress and bench workers, the page tags) meets it, as a race of unknown origin.
 */
#define pr_fmt(fmt) "rkmem: " fmt

#include <linux/jiffies.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/types.h>

#include "glue.h"

#ifdef CONFIG_KCSAN
/* Written by every CPU at once without a lock or READ_ONCE/WRITE_ONCE: the race. */
static unsigned long rkmem_kcsan_racy;

static noinline long rkmem_kcsan_race_fn(void *arg)
{
	unsigned long end = jiffies + msecs_to_jiffies(500);
	long n = 0;

	while (time_before(jiffies, end)) {
		rkmem_kcsan_racy++;
		/* A memory access per iteration, not one kept in a register. */
		barrier();
		if (!(++n & 1023))
			cond_resched();
	}
	return n;
}

long rkmem_kcsan_race_check(void)
{
	/* The report names this address (its frames may show only the work item's caller). */
	pr_info("kcsan_check=1: racing on the counter at %px\n", &rkmem_kcsan_racy);
	return rkmem_stress_each_cpu(rkmem_kcsan_race_fn, NULL);
}

bool rkmem_kcsan_enabled(void)
{
	return true;
}
#else
long rkmem_kcsan_race_check(void)
{
	return -EOPNOTSUPP;
}

bool rkmem_kcsan_enabled(void)
{
	return false;
}
#endif
