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
