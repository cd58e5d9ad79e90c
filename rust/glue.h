/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between rkmem's Rust crate and its C glue (glue.c). The Rust
 * side declares the same functions in `extern "C"` blocks (procfs.rs,
 * rkmem.rs) and defines the callbacks marked "Rust".
 */
#ifndef RKMEM_GLUE_H
#define RKMEM_GLUE_H

#include <linux/types.h>

struct seq_file;

/* procfs (glue.c) */
int rkmem_proc_dir_create(void);
int rkmem_proc_file_create(const char *name, umode_t mode, unsigned long id);
void rkmem_proc_dir_remove(void);

/* Callbacks of /proc/rkmem files (Rust: procfs.rs) */
int rkmem_proc_show(struct seq_file *m, unsigned long id);
ssize_t rkmem_proc_write(unsigned long id, const char *buf, size_t len);

/* Machine facts (glue.c) */
unsigned long rkmem_totalram_pages(void);
unsigned int rkmem_nr_cpu_ids(void);

/* Blocks of the host kernel's page allocator for the arena (glue.c) */
void *rkmem_block_alloc(unsigned int order, bool may_sleep);
void rkmem_block_free(void *addr, unsigned int order);

/* The shrinker (glue.c registers it; the callbacks are Rust: reclaim.rs) */
int rkmem_shrinker_register(void);
void rkmem_shrinker_unregister(void);
unsigned long rkmem_shrink_count(void);
long rkmem_shrink_scan(unsigned long nr_to_scan);

/* The background trimmer (glue.c owns the work item; the work is Rust: reclaim.rs) */
void rkmem_reclaim_kick(void);
void rkmem_reclaim_cancel(void);
void rkmem_reclaim_work(void);

#endif /* RKMEM_GLUE_H */
