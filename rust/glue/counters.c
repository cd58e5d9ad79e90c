// SPDX-License-Identifier: GPL-2.0
/* Per-CPU event counters (a mempool's fast paths count without a shared cache line). */
#include <linux/percpu.h>
#include <linux/preempt.h>

#include "glue.h"

/*
 * n signed 64-bit counters per possible CPU. add changes this CPU's copy with preemption off:
 * no lock, no atomic, no cache line shared with another CPU. Not this_cpu_add: where the arch
 * has no per-CPU instructions (User-Mode Linux, the native benchmark kernel) that saves and
 * restores interrupts, which costs microseconds there; the counters are only changed in task
 * context, so preemption off is enough. sum adds up
 * every possible CPU's copy: exact when the adders are quiescent, otherwise a snapshot that
 * may miss adds in flight, like percpu_counter_sum.
 */
s64 __percpu *rkmem_counters_create(unsigned int n)
{
	if (!n || n > 64)
		return NULL;
	return __alloc_percpu(n * sizeof(s64), __alignof__(s64));
}

void rkmem_counters_destroy(s64 __percpu *c)
{
	free_percpu(c);
}

/* Task context only (see above). */
void rkmem_counter_add(s64 __percpu *c, unsigned int i, s64 delta)
{
	preempt_disable();
	__this_cpu_add(c[i], delta);
	preempt_enable();
}

s64 rkmem_counter_sum(s64 __percpu *c, unsigned int i)
{
	unsigned int cpu;
	s64 sum = 0;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(c, cpu)[i]);
	return sum;
}
