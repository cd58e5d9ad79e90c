// SPDX-License-Identifier: GPL-2.0
/* The slab caches' per-CPU object arrays (local_trylock_t) and the IPI that empties one. */
#include <linux/cpu.h>
#include <linux/local_lock.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/string.h>

#include "glue.h"

/*
 * Per-CPU object caches of rkmem's slab caches (allocators/slab.rs), the same scheme as SLUB's per-CPU
 * sheaves: each possible CPU has an array of free objects behind a local_trylock_t. The
 * owning CPU pops and pushes with the lock taken, which on !RT only disables preemption: no
 * atomic instruction, no shared cache line, one call from Rust. Refills and drains move
 * batches (the Rust side talks to the slabs). Another CPU empties a CPU's array only by an
 * IPI to that CPU, where a try-lock refuses to interrupt the owner's critical section, or
 * directly while that CPU is offline (kept so by the hotplug lock) or when the cache is being
 * destroyed (nobody else holds it). `count` is written with WRITE_ONCE so that other CPUs may
 * read it for statistics. The capacity has one source, allocators/percpu.rs's CAP, which sizes the
 * Rust side's buffers and is passed to rkmem_objs_create.
 */
struct rkmem_objs {
	local_trylock_t lock;
	unsigned int count;
	unsigned int limit;
	unsigned int cap;
	unsigned long objs[];
};

struct rkmem_objs __percpu *rkmem_objs_create(unsigned int limit, unsigned int cap)
{
	struct rkmem_objs __percpu *p;
	unsigned int cpu;

	if (!limit || limit > cap || cap > 4096)
		return NULL;
	p = __alloc_percpu(struct_size_t(struct rkmem_objs, objs, cap),
			   __alignof__(struct rkmem_objs));
	if (!p)
		return NULL;
	for_each_possible_cpu(cpu) {
		struct rkmem_objs *c = per_cpu_ptr(p, cpu);

		local_trylock_init(&c->lock);
		c->limit = limit;
		c->cap = cap;
	}
	return p;
}

void rkmem_objs_destroy(struct rkmem_objs __percpu *p)
{
	free_percpu(p);
}

unsigned long rkmem_objs_pop(struct rkmem_objs __percpu *p)
{
	struct rkmem_objs *c;
	unsigned long obj = 0;

	if (!local_trylock(&p->lock))
		return 0;
	c = this_cpu_ptr(p);
	if (c->count) {
		obj = c->objs[c->count - 1];
		WRITE_ONCE(c->count, c->count - 1);
	}
	local_unlock(&p->lock);
	return obj;
}

bool rkmem_objs_push(struct rkmem_objs __percpu *p, unsigned long obj)
{
	struct rkmem_objs *c;
	bool ok = false;

	if (!local_trylock(&p->lock))
		return false;
	c = this_cpu_ptr(p);
	if (c->count < c->limit) {
		c->objs[c->count] = obj;
		WRITE_ONCE(c->count, c->count + 1);
		ok = true;
	}
	local_unlock(&p->lock);
	return ok;
}

unsigned int rkmem_objs_refill(struct rkmem_objs __percpu *p, const unsigned long *objs,
			       unsigned int n)
{
	struct rkmem_objs *c;

	if (!local_trylock(&p->lock))
		return 0;
	c = this_cpu_ptr(p);
	n = min(n, c->limit - c->count);
	memcpy(&c->objs[c->count], objs, n * sizeof(*objs));
	WRITE_ONCE(c->count, c->count + n);
	local_unlock(&p->lock);
	return n;
}

/* Moves the n oldest objects of c to out. */
static unsigned int rkmem_objs_take(struct rkmem_objs *c, unsigned long *out, unsigned int n)
{
	n = min(n, c->count);
	memcpy(out, c->objs, n * sizeof(*out));
	memmove(c->objs, &c->objs[n], (c->count - n) * sizeof(*out));
	WRITE_ONCE(c->count, c->count - n);
	return n;
}

unsigned int rkmem_objs_drain(struct rkmem_objs __percpu *p, unsigned long *out, unsigned int n)
{
	if (!local_trylock(&p->lock))
		return 0;
	n = rkmem_objs_take(this_cpu_ptr(p), out, n);
	local_unlock(&p->lock);
	return n;
}

unsigned int rkmem_objs_count(struct rkmem_objs __percpu *p, unsigned int cpu)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return 0;
	return READ_ONCE(per_cpu_ptr(p, cpu)->count);
}

unsigned int rkmem_objs_take_all(struct rkmem_objs __percpu *p, unsigned int cpu,
				 unsigned long *out)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return 0;
	return rkmem_objs_take(per_cpu_ptr(p, cpu), out, per_cpu_ptr(p, cpu)->cap);
}

struct rkmem_objs_flush {
	struct rkmem_objs __percpu *p;
	unsigned long *out;
	int ret;
};

/* On the owning CPU, in the IPI (hard interrupt) or with interrupts off. */
static void rkmem_objs_flush_ipi(void *info)
{
	struct rkmem_objs_flush *f = info;

	if (!local_trylock(&f->p->lock)) {
		f->ret = -EBUSY;
		return;
	}
	f->ret = rkmem_objs_take(this_cpu_ptr(f->p), f->out, this_cpu_ptr(f->p)->cap);
	local_unlock(&f->p->lock);
}

int rkmem_objs_flush(struct rkmem_objs __percpu *p, unsigned int cpu, bool try_only,
		     unsigned long *out)
{
	struct rkmem_objs_flush f = { .p = p, .out = out, .ret = -EBUSY };
	int err;

	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -EINVAL;
	if (try_only) {
		if (!cpus_read_trylock())
			return -EBUSY;
	} else {
		cpus_read_lock();
	}
	if (cpu_online(cpu)) {
		err = smp_call_function_single(cpu, rkmem_objs_flush_ipi, &f, 1);
		if (err)
			f.ret = err;
	} else {
		/* Offline, and kept so by the hotplug lock: nobody uses its array. */
		f.ret = rkmem_objs_take(per_cpu_ptr(p, cpu), out, per_cpu_ptr(p, cpu)->cap);
	}
	cpus_read_unlock();
	return f.ret;
}
