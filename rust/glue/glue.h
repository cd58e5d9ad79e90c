/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between rkmem's Rust crate and its C glue (the .c files here, one
 * file per concern). The Rust side declares the same functions in
 * `extern "C"` blocks and defines the callbacks marked "Rust".
 */
#ifndef RKMEM_GLUE_H
#define RKMEM_GLUE_H

#include <linux/types.h>

struct seq_file;

/* procfs (procfs.c) */
int rkmem_proc_dir_create(void);
int rkmem_proc_file_create(const char *name, umode_t mode, unsigned long id);
void rkmem_proc_dir_remove(void);

/* Callbacks of /proc/rkmem files (Rust: procfs.rs) */
int rkmem_proc_show(struct seq_file *m, unsigned long id);
ssize_t rkmem_proc_write(unsigned long id, const char *buf, size_t len);

/* Machine facts (machine.c) */
unsigned long rkmem_totalram_pages(void);
unsigned int rkmem_slab_cpus(void);
unsigned int rkmem_pin_cpu(void);
void rkmem_unpin_cpu(void);

/*
 * Per-CPU object caches (objs.c; used by allocators/slab.rs through allocators/percpu.rs): arrays of up to `cap`
 * object addresses per CPU behind a local lock. pop returns 0 and push false when the array
 * is empty or full (or its lock is held: the caller takes its slow path). flush empties
 * `cpu`'s array into out[cap] in an IPI to it (directly if it is offline): the count, -EBUSY
 * (its lock or, with try_only, the hotplug lock busy) or -EINVAL (no such CPU). take_all does
 * the same directly, for a cache nobody else holds.
 */
struct rkmem_objs;
struct rkmem_objs __percpu *rkmem_objs_create(unsigned int limit, unsigned int cap);
void rkmem_objs_destroy(struct rkmem_objs __percpu *p);
unsigned long rkmem_objs_pop(struct rkmem_objs __percpu *p);
bool rkmem_objs_push(struct rkmem_objs __percpu *p, unsigned long obj);
unsigned int rkmem_objs_refill(struct rkmem_objs __percpu *p, const unsigned long *objs,
			       unsigned int n);
unsigned int rkmem_objs_drain(struct rkmem_objs __percpu *p, unsigned long *out, unsigned int n);
unsigned int rkmem_objs_count(struct rkmem_objs __percpu *p, unsigned int cpu);
unsigned int rkmem_objs_take_all(struct rkmem_objs __percpu *p, unsigned int cpu,
				 unsigned long *out);
int rkmem_objs_flush(struct rkmem_objs __percpu *p, unsigned int cpu, bool try_only,
		     unsigned long *out);

/*
 * Per-CPU counters (counters.c; used through allocators/percpu.rs): n s64 counters per CPU;
 * add works on this CPU's copy, sum adds up every possible CPU's.
 */
s64 __percpu *rkmem_counters_create(unsigned int n);
void rkmem_counters_destroy(s64 __percpu *c);
void rkmem_counter_add(s64 __percpu *c, unsigned int i, s64 delta);
s64 rkmem_counter_sum(s64 __percpu *c, unsigned int i);

/* Blocks of the host kernel's page allocator for the arena (blocks.c) */
void *rkmem_block_alloc(unsigned int order, bool may_sleep);
void rkmem_block_free(void *addr, unsigned int order);
void rkmem_pages_set_tag(void *addr, unsigned long npages, unsigned long tag);
unsigned long rkmem_page_tag(const void *addr);
void *rkmem_slab_meta_alloc(size_t size, bool may_sleep);
void rkmem_slab_meta_free(void *meta);
size_t rkmem_slab_meta_size(size_t size);

/* The background trimmer (reclaim.c owns the work item; the work is Rust: reclaim.rs) */
void rkmem_reclaim_kick(void);
void rkmem_reclaim_cancel(void);
void rkmem_reclaim_work(void);

/* Benchmarks: the host kernel's side (bench.c; the ioctl is Rust: bench.rs) */
struct mutex;
int rkmem_mutex_lock_interruptible(struct mutex *m);
struct kmem_cache;
struct mempool;
u64 rkmem_bench_now_ns(void);
bool rkmem_bench_resched(void);
struct kmem_cache *rkmem_bench_slub_create(const char *name, unsigned int size,
					   unsigned int align);
void rkmem_bench_slub_destroy(struct kmem_cache *s);
s64 rkmem_bench_slub_pairs(struct kmem_cache *s, u32 n);
s64 rkmem_bench_slub_batch(struct kmem_cache *s, void **buf, u32 batch,
			   u32 rounds, u64 *held);
s64 rkmem_bench_kmalloc_pairs(size_t size, u32 n);
s64 rkmem_bench_pages_pairs(unsigned int order, u32 n);
struct mempool *rkmem_bench_mempool_create(unsigned int min_nr, size_t size);
void rkmem_bench_mempool_destroy(struct mempool *pool);
s64 rkmem_bench_mempool_pairs(struct mempool *pool, u32 n);
int rkmem_bench_slub_layout(const char *name, unsigned int size,
			    unsigned int align, void **buf, u32 max,
			    u32 *objs, u32 *order);
/* Work run on another CPU by rkmem_bench_on_cpu (Rust: bench.rs's consumer). */
typedef long (*rkmem_bench_fn)(void *arg);
int rkmem_bench_other_cpu(void);
long rkmem_bench_on_cpu(int cpu, rkmem_bench_fn fn, void *arg);
/* kasan.c: rkmem's free memory poisoned for KASAN (no-ops without CONFIG_KASAN_GENERIC). */
bool rkmem_kasan_enabled(void);
void rkmem_kasan_poison_pages(void *addr, size_t bytes);
void rkmem_kasan_unpoison_pages(void *addr, size_t bytes);
void rkmem_kasan_poison_object(void *obj, size_t stride);
void rkmem_kasan_unpoison_object(void *obj, size_t size, size_t stride);
/* kmemleak.c: rkmem's cache objects registered with kmemleak (no-ops without it). */
void rkmem_kmemleak_alloc(const void *obj, size_t size);
void rkmem_kmemleak_free(const void *obj);
bool rkmem_kmemleak_enabled(void);
/* kcsan.c: the kcsan_check race (-EOPNOTSUPP without CONFIG_KCSAN). */
bool rkmem_kcsan_enabled(void);
long rkmem_kcsan_race_check(void);
/* stress.c: fn(arg) on every online CPU at once (RKMEM_IOC_STRESS's workers). */
long rkmem_stress_each_cpu(rkmem_bench_fn fn, void *arg);
s64 rkmem_bench_slub_remote(struct kmem_cache *s, void **buf, u32 batch, u32 rounds, int cpu);
u64 rkmem_bench_slab_pages(void);
void *rkmem_bench_slub_alloc(struct kmem_cache *s);
void rkmem_bench_slub_free(struct kmem_cache *s, void *p);
void rkmem_bench_slub_shrink(struct kmem_cache *s);
s64 rkmem_bench_trace_kmalloc(const u32 *ops, u32 n, void **slots, u64 *peak);
void rkmem_bench_trace_kfree_all(void **slots, u32 nslots);
u64 rkmem_bench_cycles(void);
u64 rkmem_bench_cycles_per_ms(void);
int rkmem_bench_latency(int kind, struct kmem_cache *s, size_t size, unsigned int order,
			void **buf, u32 n, u32 *alloc_cyc, u32 *free_cyc);
/*
 * RKMEM_IOC_ROUTES (routes.c): one size through the host's kmalloc, vmalloc, kvmalloc,
 * alloc_pages and alloc_pages_exact, each measured and freed at once: 0 or -ENOMEM.
 * rkmem_vmalloc_mapped: the bytes mapped at a vmalloc address of size bytes, and its guard.
 */
size_t rkmem_kmalloc_max_cache_size(void);
size_t rkmem_kmalloc_max_size(void);
u64 rkmem_vmalloc_mapped(const void *addr, size_t size, u32 *guard);
int rkmem_route_kmalloc(size_t size, bool *slab, u64 *bytes);
int rkmem_route_vmalloc(size_t size, u64 *bytes, u32 *guard);
int rkmem_route_kvmalloc(size_t size, bool *vmalloc, bool *slab, u64 *bytes, u32 *guard);
int rkmem_route_pages(size_t size, bool exact, u64 *pages);

#endif /* RKMEM_GLUE_H */
