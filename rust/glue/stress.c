// SPDX-License-Identifier: GPL-2.0
/*
 * The stress engine's workers (RKMEM_IOC_STRESS, rust/checks/stress.rs): fn(arg) once on every
 * online CPU, each in a work item bound to its CPU, all at the same time; the caller waits for
 * all of them. The workqueue is WQ_CPU_INTENSIVE (a worker runs for up to
 * RKMEM_STRESS_MAX_MS and yields with cond_resched: it must not hold up the CPU's other work
 * items) and made per call, so that the module keeps nothing between calls.
 */
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "glue.h"

struct rkmem_stress_work {
	struct work_struct work;
	rkmem_bench_fn fn;
	void *arg;
	long ret;
};

static void rkmem_stress_work_fn(struct work_struct *w)
{
	struct rkmem_stress_work *sw = container_of(w, struct rkmem_stress_work, work);

	sw->ret = sw->fn(sw->arg);
}

/*
 * Runs fn(arg) on each online CPU; the number of CPUs it ran on, or -ENOMEM. A worker's
 * negative result is its own business (the caller's arg carries the outcome). CPUs cannot go
 * offline meanwhile (cpus_read_lock, as work_on_cpu_safe did).
 */
long rkmem_stress_each_cpu(rkmem_bench_fn fn, void *arg)
{
	struct workqueue_struct *wq;
	struct rkmem_stress_work *works;
	unsigned int cpu;
	long n = 0;

	works = kcalloc(nr_cpu_ids, sizeof(*works), GFP_KERNEL);
	if (!works)
		return -ENOMEM;
	wq = alloc_workqueue("rkmem_stress", WQ_CPU_INTENSIVE | WQ_PERCPU, 0);
	if (!wq) {
		kfree(works);
		return -ENOMEM;
	}
	cpus_read_lock();
	for_each_online_cpu(cpu) {
		INIT_WORK(&works[cpu].work, rkmem_stress_work_fn);
		works[cpu].fn = fn;
		works[cpu].arg = arg;
		queue_work_on(cpu, wq, &works[cpu].work);
		n++;
	}
	/* Waits for every work item queued above. */
	drain_workqueue(wq);
	cpus_read_unlock();
	destroy_workqueue(wq);
	kfree(works);
	return n;
}
