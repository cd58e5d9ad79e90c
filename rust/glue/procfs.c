// SPDX-License-Identifier: GPL-2.0
/* /proc/rkmem: the procfs calls the Rust bindings lack (the text is rendered in Rust). */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
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
