// SPDX-License-Identifier: GPL-2.0
/*
 * rkmem's C glue: the few kernel interfaces that the Rust bindings of this
 * kernel do not offer (procfs is not in the generated bindings, and
 * totalram_pages() is a static inline). Everything here is a thin wrapper;
 * the logic and the text of every /proc file live on the Rust side.
 */
#include <linux/mm.h>
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

/*
 * A physically contiguous block of 2^order pages from the host kernel, or
 * NULL. Callers that may sleep let the page allocator reclaim and compact,
 * but never invoke the OOM killer for rkmem (__GFP_RETRY_MAYFAIL); the others
 * only take what is free now. No warning on failure: rkmem reports ENOMEM.
 */
void *rkmem_block_alloc(unsigned int order, bool may_sleep)
{
	gfp_t gfp = may_sleep ? GFP_KERNEL | __GFP_RETRY_MAYFAIL : GFP_NOWAIT;
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
