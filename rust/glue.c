// SPDX-License-Identifier: GPL-2.0
/*
 * rkmem's C glue: the few kernel interfaces that the Rust bindings of this
 * kernel do not offer (procfs is not in the generated bindings, and
 * totalram_pages() is a static inline). Everything here is a thin wrapper;
 * the logic and the text of every /proc file live on the Rust side.
 */
#include <linux/cpu.h>
#include <linux/local_lock.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/shrinker.h>
#include <linux/workqueue.h>
#include <linux/uaccess.h>

#include "glue.h"

/* Longest text a /proc/rkmem file accepts in one write. */
#define RKMEM_PROC_WRITE_MAX 256

static struct proc_dir_entry *rkmem_dir;

static int rkmem_seq_show(struct seq_file *m, void *v)
{
	return rkmem_proc_show(m, (unsigned long)m->private);
}

static int rkmem_proc_open(struct inode *inode, struct file *file)
{
	return single_open(file, rkmem_seq_show, pde_data(inode));
}

static ssize_t rkmem_proc_write_op(struct file *file, const char __user *ubuf,
				   size_t len, loff_t *ppos)
{
	struct seq_file *m = file->private_data;
	char buf[RKMEM_PROC_WRITE_MAX + 1];
	ssize_t ret;

	if (len > RKMEM_PROC_WRITE_MAX)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	ret = rkmem_proc_write((unsigned long)m->private, buf, len);
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static const struct proc_ops rkmem_proc_ops = {
	.proc_open = rkmem_proc_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = rkmem_proc_write_op,
};

/* Creates /proc/rkmem. Returns 0 or -ENOMEM. */
int rkmem_proc_dir_create(void)
{
	rkmem_dir = proc_mkdir("rkmem", NULL);
	return rkmem_dir ? 0 : -ENOMEM;
}

/*
 * Creates /proc/rkmem/<name>; reads call rkmem_proc_show(m, id), writes (if
 * mode has a write bit) rkmem_proc_write(id, ...).
 */
int rkmem_proc_file_create(const char *name, umode_t mode, unsigned long id)
{
	if (!rkmem_dir)
		return -ENOENT;
	if (!proc_create_data(name, mode, rkmem_dir, &rkmem_proc_ops, (void *)id))
		return -ENOMEM;
	return 0;
}

/*
 * Removes /proc/rkmem and everything in it. Waits for readers and writers
 * that are inside a callback to leave it (remove_proc_subtree drains them).
 */
void rkmem_proc_dir_remove(void)
{
	if (rkmem_dir)
		remove_proc_subtree("rkmem", NULL);
	rkmem_dir = NULL;
}

unsigned long rkmem_totalram_pages(void)
{
	return totalram_pages();
}

unsigned int rkmem_nr_cpu_ids(void)
{
	return nr_cpu_ids;
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
 * Per-CPU object caches of rkmem's slab caches (cache.rs), the same scheme as SLUB's per-CPU
 * sheaves: each possible CPU has an array of free objects behind a local_trylock_t. The
 * owning CPU pops and pushes with the lock taken, which on !RT only disables preemption: no
 * atomic instruction, no shared cache line, one call from Rust. Refills and drains move
 * batches (the Rust side talks to the slabs). Another CPU empties a CPU's array only by an
 * IPI to that CPU, where a try-lock refuses to interrupt the owner's critical section, or
 * directly while that CPU is offline (kept so by the hotplug lock) or when the cache is being
 * destroyed (nobody else holds it). `count` is written with WRITE_ONCE so that other CPUs may
 * read it for statistics.
 */
#define RKMEM_OBJS_CAP 64

struct rkmem_objs {
	local_trylock_t lock;
	unsigned int count;
	unsigned int limit;
	unsigned long objs[RKMEM_OBJS_CAP];
};

struct rkmem_objs __percpu *rkmem_objs_create(unsigned int limit)
{
	struct rkmem_objs __percpu *p;
	unsigned int cpu;

	if (!limit || limit > RKMEM_OBJS_CAP)
		return NULL;
	p = alloc_percpu(struct rkmem_objs);
	if (!p)
		return NULL;
	for_each_possible_cpu(cpu) {
		struct rkmem_objs *c = per_cpu_ptr(p, cpu);

		local_trylock_init(&c->lock);
		c->limit = limit;
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
	return rkmem_objs_take(per_cpu_ptr(p, cpu), out, RKMEM_OBJS_CAP);
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
	f->ret = rkmem_objs_take(this_cpu_ptr(f->p), f->out, RKMEM_OBJS_CAP);
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
		f.ret = rkmem_objs_take(per_cpu_ptr(p, cpu), out, RKMEM_OBJS_CAP);
	}
	cpus_read_unlock();
	return f.ret;
}

/*
 * A physically contiguous block of 2^order pages from the host kernel, or
 * NULL. Callers that may sleep let the page allocator reclaim and compact,
 * but never invoke the OOM killer for rkmem (__GFP_RETRY_MAYFAIL); the others
 * only take what is free now. No warning on failure: rkmem reports ENOMEM.
 */
void *rkmem_block_alloc(unsigned int order, bool may_sleep)
{
	gfp_t gfp = may_sleep ? GFP_KERNEL | __GFP_RETRY_MAYFAIL : GFP_NOWAIT;

	/*
	 * The block is charged to the memory cgroup of the task whose allocation
	 * made the arena grow (__GFP_ACCOUNT), so /dev/rkmem cannot be used to
	 * take memory past a cgroup's limit; freeing the block uncharges it.
	 */
	gfp |= __GFP_ACCOUNT;
	struct page *page = alloc_pages(gfp | __GFP_NOWARN, order);

	return page ? page_address(page) : NULL;
}

void rkmem_block_free(void *addr, unsigned int order)
{
	free_pages((unsigned long)addr, order);
}

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

/*
 * Benchmarks (RKMEM_IOC_BENCH, Rust: bench.rs): the host kernel's side. Each
 * timed loop is written here in C, so the host allocator is called exactly
 * as a C driver calls it (macros and inlines included); each returns the
 * elapsed nanoseconds of the loop, or a negative errno when an allocation
 * failed (everything allocated so far is freed first).
 */
#include <linux/ktime.h>
#include <linux/mempool.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

u64 rkmem_bench_now_ns(void)
{
	return ktime_get_ns();
}

/* Lets others run between repetitions; true if a signal is pending. */
bool rkmem_bench_resched(void)
{
	cond_resched();
	return signal_pending(current);
}

struct kmem_cache *rkmem_bench_slub_create(const char *name, unsigned int size,
					   unsigned int align)
{
	/* SLAB_NO_MERGE: a cache of its own, not an alias of kmalloc-N. */
	return kmem_cache_create(name, size, align, SLAB_NO_MERGE, NULL);
}

void rkmem_bench_slub_destroy(struct kmem_cache *s)
{
	kmem_cache_destroy(s);
}

s64 rkmem_bench_slub_pairs(struct kmem_cache *s, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = kmem_cache_alloc(s, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		kmem_cache_free(s, p);
	}
	return ktime_get_ns() - t0;
}

/* Bytes of the slabs (folios) holding the objects buf[0..n). */
static u64 rkmem_bench_held(void **buf, u32 n)
{
	u64 bytes = 0;
	u32 i, j;

	for (i = 0; i < n; i++) {
		struct folio *f = virt_to_folio(buf[i]);

		for (j = 0; j < i; j++)
			if (virt_to_folio(buf[j]) == f)
				break;
		if (j == i)
			bytes += folio_size(f);
	}
	return bytes;
}

/*
 * rounds x (batch allocations, then batch frees) through buf[batch]. With
 * held != NULL, an untimed round afterwards stores the bytes of the slabs
 * that hold one batch (the memory the cache holds at its peak).
 */
s64 rkmem_bench_slub_batch(struct kmem_cache *s, void **buf, u32 batch,
			   u32 rounds, u64 *held)
{
	u64 t0 = ktime_get_ns();
	u32 r, i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < batch; i++) {
			buf[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!buf[i]) {
				while (i--)
					kmem_cache_free(s, buf[i]);
				return -ENOMEM;
			}
		}
		for (i = 0; i < batch; i++)
			kmem_cache_free(s, buf[i]);
	}
	t0 = ktime_get_ns() - t0;
	if (held) {
		for (i = 0; i < batch; i++) {
			buf[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!buf[i])
				break;
		}
		*held = rkmem_bench_held(buf, i);
		while (i--)
			kmem_cache_free(s, buf[i]);
	}
	return t0;
}

s64 rkmem_bench_kmalloc_pairs(size_t size, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = kmalloc(size, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		kfree(p);
	}
	return ktime_get_ns() - t0;
}

s64 rkmem_bench_pages_pairs(unsigned int order, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		struct page *p = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);

		if (!p)
			return -ENOMEM;
		__free_pages(p, order);
	}
	return ktime_get_ns() - t0;
}

struct mempool *rkmem_bench_mempool_create(unsigned int min_nr, size_t size)
{
	return mempool_create_kmalloc_pool(min_nr, size);
}

void rkmem_bench_mempool_destroy(struct mempool *pool)
{
	mempool_destroy(pool);
}

s64 rkmem_bench_mempool_pairs(struct mempool *pool, u32 n)
{
	u64 t0 = ktime_get_ns();
	u32 i;

	for (i = 0; i < n; i++) {
		void *p = mempool_alloc(pool, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		mempool_free(p, pool);
	}
	return ktime_get_ns() - t0;
}

/*
 * SLUB's slab layout for objects of size/align, measured: a fresh cache of
 * its own hands out objects until they span RKMEM_LAYOUT_SLABS + 1 slabs;
 * the most objects seen in one slab folio is its objects per slab (the first
 * slabs are full by then, even counting the objects a per-CPU sheaf held
 * back), and that folio's order its order. buf holds max objects.
 */
#define RKMEM_LAYOUT_SLABS 16

int rkmem_bench_slub_layout(const char *name, unsigned int size,
			    unsigned int align, void **buf, u32 max,
			    u32 *objs, u32 *order)
{
	struct kmem_cache *s = rkmem_bench_slub_create(name, size, align);
	struct folio *seen[RKMEM_LAYOUT_SLABS] = {};
	u32 count[RKMEM_LAYOUT_SLABS] = {};
	u32 n, k;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	*objs = 0;
	*order = 0;
	for (n = 0; n < max; n++) {
		struct folio *f;

		buf[n] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!buf[n]) {
			ret = -ENOMEM;
			break;
		}
		f = virt_to_folio(buf[n]);
		for (k = 0; k < RKMEM_LAYOUT_SLABS && seen[k] && seen[k] != f; k++)
			;
		if (k == RKMEM_LAYOUT_SLABS)
			break;	/* one slab more: the first ones are full */
		seen[k] = f;
		count[k]++;
		if (count[k] > *objs) {
			*objs = count[k];
			*order = folio_order(f);
		}
	}
	if (n == max)
		ret = -E2BIG;
	if (n < max && buf[n])
		n++;
	while (n--)
		kmem_cache_free(s, buf[n]);
	kmem_cache_destroy(s);
	return ret;
}
