// SPDX-License-Identifier: GPL-2.0
/* Machine facts that are static inlines or macros in C, and CPU pinning for the self-test. */
#include <linux/mm.h>
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
