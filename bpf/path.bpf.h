/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Absolute paths from a (dentry, vfsmount) pair, built in slot memory.
 *
 * Like the kernel's d_path and Elkeid's dentry_path, the walk goes up d_parent and
 * hops to the parent mount at each mount root, writing names backwards into a
 * swap buffer; the result is then copied to the front of its own buffer so the
 * encoder can read it at a constant offset. bpf_loop keeps the verifier's work to
 * one pass over the step, whatever the depth bound.
 */
#ifndef DS_PATH_BPF_H
#define DS_PATH_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"

/* Set in build_path's return value when the walk was cut short. */
#define DS_PATH_TRUNCATED (1u << 31)

struct path_walk {
	struct dentry *d;
	struct mount *mnt;
	char *swap;
	__u32 pos;  /* first byte written so far; starts at DS_PATH_CAP - 1 */
	__u32 done; /* 1: reached the root, 0: still walking or cut short */
};

static long path_step(__u32 i, struct path_walk *w)
{
	struct dentry *d = w->d;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = DS_LOAD(mount, mnt, mnt.mnt_root);
	struct dentry *parent = DS_LOAD(dentry, d, d_parent);
	const unsigned char *name;
	char *swap = w->swap;
	__u32 len, pos;

	if (d == mnt_root) {
		struct mount *up = DS_LOAD(mount, mnt, mnt_parent);

		/* The namespace root (or an internal mount's). */
		if (up == mnt) {
			w->done = 1;
			return 1;
		}
		w->d = DS_LOAD(mount, mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}

	len = DS_LOAD(dentry, d, d_name.len);
	name = DS_LOAD(dentry, d, d_name.name);
	if (len > DS_NAME_MAX)
		len = DS_NAME_MAX;
	/* Keep room for the separator and a 3-byte "…" marker. */
	if (w->pos < len + 1 + 3)
		return 1;
	pos = w->pos - len;
	bpf_probe_read_kernel(swap + (pos & (DS_PATH_CAP - 1)), len & DS_NAME_MAX, name);
	pos -= 1;
	swap[pos & (DS_PATH_CAP - 1)] = '/';
	w->pos = pos;
	w->d = parent;
	/*
	 * Its own parent but no mount's root: a pseudo file (a memfd is
	 * "memfd:<name>" on an internal mount) or a disconnected dentry. Its
	 * name is all the path there is, as d_path shows it.
	 */
	if (d == parent) {
		w->done = 1;
		return 1;
	}
	return 0;
}

/* Returns the length written to out, with DS_PATH_TRUNCATED when the bound was hit. */
static __noinline __u32 build_path(struct dentry *d, struct vfsmount *vmnt, char *out, char *swap)
{
	struct path_walk w = {
		.d = d,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.swap = swap,
		.pos = DS_PATH_CAP - 1,
	};
	__u32 pos, len, truncated;

	if (!d || !vmnt)
		return 0;
	bpf_loop(DS_PATH_DEPTH, path_step, &w, 0);
	truncated = !w.done;
	pos = w.pos & (DS_PATH_CAP - 1);
	if (pos >= DS_PATH_CAP - 1) {
		pos = DS_PATH_CAP - 2;
		swap[pos] = '/';
	}
	if (truncated && pos >= 3) {
		pos -= 3;
		swap[pos & (DS_PATH_CAP - 1)] = (char)0xe2;
		swap[(pos + 1) & (DS_PATH_CAP - 1)] = (char)0x80;
		swap[(pos + 2) & (DS_PATH_CAP - 1)] = (char)0xa6;
	}
	len = (DS_PATH_CAP - 1 - pos) & (DS_PATH_CAP - 1);
	bpf_probe_read_kernel(out, len, swap + pos);
	return len | (truncated ? DS_PATH_TRUNCATED : 0);
}

/*
 * What a path cannot show: DS_F_EXE_MEMFD or DS_F_EXE_DELETED for an
 * executable, DS_F_PATH_* for a record's file. A memfd's dentry is
 * "memfd:<name>" on an internal mount; an unlinked file has no links left.
 */
static __always_inline int file_is_memfd(struct file *f)
{
	__u64 name = 0;

	struct dentry *d = DS_LOAD(file, f, f_path.dentry);

	bpf_probe_read_kernel(&name, 6, DS_LOAD(dentry, d, d_name.name));
	return name == 0x3a64666d656dull; /* "memfd:", little-endian */
}

static __always_inline int file_is_deleted(struct file *f)
{
	struct inode *ino = DS_LOAD(file, f, f_inode);

	return DS_LOAD(inode, ino, __i_nlink) == 0;
}

/*
 * An executable's absolute path into `out` (built in `swap`), its length
 * returned, and into *flags what that path cannot show: cut, a memfd, or
 * unlinked. A NULL exe (a kernel thread, an exit before 6.16) is empty.
 */
static __always_inline __u32 exe_path(struct file *exe, char *out, char *swap, __u32 *flags)
{
	struct path p = BPF_CORE_READ(exe, f_path);
	__u32 r = build_path(p.dentry, p.mnt, out, swap);

	if (r & DS_PATH_TRUNCATED)
		*flags |= DS_F_EXE_TRUNCATED;
	if (exe && file_is_memfd(exe))
		*flags |= DS_F_EXE_MEMFD;
	else if (exe && file_is_deleted(exe))
		*flags |= DS_F_EXE_DELETED;
	return r & ~DS_PATH_TRUNCATED;
}

struct root_walk {
	struct dentry *d;
	struct mount *mnt;
	struct dentry *root_d;
	struct mount *root_mnt;
	__u32 found;
	__u32 pad;
};

static long root_step(__u32 i, struct root_walk *w)
{
	/* Locals: BPF_CORE_READ on w->... would relocate our own struct too. */
	struct dentry *d = w->d, *parent;
	struct mount *mnt = w->mnt;

	if (d == w->root_d && mnt == w->root_mnt) {
		w->found = 1;
		return 1;
	}
	if (d == DS_LOAD(mount, mnt, mnt.mnt_root)) {
		struct mount *up = DS_LOAD(mount, mnt, mnt_parent);

		if (up == mnt)
			return 1;
		w->d = DS_LOAD(mount, mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	parent = DS_LOAD(dentry, d, d_parent);
	if (parent == d)
		return 1;
	w->d = parent;
	return 0;
}

/*
 * Whether (d, vmnt) lies under the task's root: a chrooted process can hold a
 * file outside its root (an fd from before the chroot), which build_path
 * shows from the namespace's root. Walked as far as build_path walks.
 */
static __noinline int under_root(struct task_struct *task, struct dentry *d, struct vfsmount *vmnt)
{
	struct root_walk w = {
		.d = d,
		.mnt = (void *)vmnt - bpf_core_field_offset(struct mount, mnt),
		.root_d = BPF_CORE_READ(task, fs, root.dentry),
	};
	struct vfsmount *rm = BPF_CORE_READ(task, fs, root.mnt);

	if (!d || !vmnt || !rm)
		return 1;
	w.root_mnt = (void *)rm - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(DS_PATH_DEPTH, root_step, &w, 0);
	return w.found;
}

#endif /* DS_PATH_BPF_H */
