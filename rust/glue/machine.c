// SPDX-License-Identifier: GPL-2.0
/* Machine facts that are static inlines or macros in C, and CPU pinning for the self-test. */
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/cpumask.h>
#include <linux/sched.h>
#include <linux/smp.h>

#include "glue.h"

unsigned long rkmem_totalram_pages(void)
{
	return totalram_pages();
}

/* The CPU count SLUB sizes its slabs by (calculate_order: present CPUs, or nr_cpu_ids if 1). */
unsigned int rkmem_slab_cpus(void)
{
	unsigned int n = num_present_cpus();

	return n <= 1 ? nr_cpu_ids : n;
}

/* For the self-test of the per-CPU object arrays: stay on this CPU (may still sleep). */
unsigned int rkmem_pin_cpu(void)
{
	migrate_disable();
	return raw_smp_processor_id();
}

void rkmem_unpin_cpu(void)
{
	migrate_enable();
}

/*
 * mutex_lock_interruptible (a macro with lockdep: mutex_lock_interruptible_nested), for the
 * waits of ioctls that another caller can make long (a running benchmark, a compaction): the
 * waiter sleeps interruptibly, so it is no hung task, and a signal ends the wait (-EINTR).
 */
int rkmem_mutex_lock_interruptible(struct mutex *m)
{
	return mutex_lock_interruptible(m);
}
