/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The actor's executable path for the syscall records, resolved once per
 * thread and process image, then kept in the thread's task storage. The walk
 * up the executable's dentries was a quarter of a connect record's BPF time
 * (0.55 of 2.35 µs, bpf_stats, 2026-12-06), and a thread that connects or
 * creates files does so many times under one executable.
 *
 * What the record then says is the path as the thread's first record after
 * its exec resolved it, as Tetragon's process cache keeps the exec's: moving
 * or renaming the file later does not change it (a process that renames its
 * own binary to look like another keeps its first name). What can change
 * under the same image is checked on every record: unlinked (DS_F_EXE_DELETED,
 * read live), a chroot (the root is in the key: the path is resolved again
 * against the new root, and DS_F_EXE_UNREACHABLE with it), a new executable
 * (exec, or prctl(PR_SET_MM_EXE_FILE): the file, its dentry and mount are in
 * the key, with the thread's self_exec_id, which every exec increments, so a
 * file freed and allocated again at the same address under a later exec
 * never matches an old entry).
 *
 * Per thread, not per process: only the thread itself reads or writes its
 * entry (its own syscall's programs, which never run on two CPUs at once), so
 * no entry is ever read while another CPU rewrites it. Each thread that makes
 * a syscall record costs one entry (~300 bytes, freed with the thread) and
 * one walk; a path longer than the cache holds is walked every time.
 */
#ifndef DS_EXE_CACHE_BPF_H
#define DS_EXE_CACHE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "path.bpf.h"

#define DS_EXE_CACHE_CAP 256 /* a power of two: paths up to 255 bytes are kept */

struct ds_exe_cache {
	__u64 file; /* mm->exe_file */
	__u64 dentry;
	__u64 mnt;
	__u64 root_dentry; /* fs->root */
	__u64 root_mnt;
	__u64 exec_id; /* the thread's self_exec_id */
	__u32 len;
	__u32 flags; /* DS_F_EXE_TRUNCATED, _MEMFD, _UNREACHABLE: what the path itself cannot show */
	char path[DS_EXE_CACHE_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ds_exe_cache);
} ds_exe_cache SEC(".maps");

/*
 * exe_path() for the current thread's executable (`exe`, its mm->exe_file),
 * from the cache when the key still holds; `out`, `swap` and the result as
 * exe_path()'s. No cache entry (the kernel could not allocate one): the walk.
 */
static __always_inline __u32 cached_exe_path(struct file *exe, char *out, char *swap, __u32 *flags)
{
	struct task_struct *t = self();
	struct fs_struct *fs = t->fs;
	__u64 dentry, mnt, root_dentry = 0, root_mnt = 0, exec_id = t->self_exec_id;
	struct ds_exe_cache *c;
	__u32 len, f = 0;

	if (!exe)
		return exe_path(exe, out, swap, flags);
	dentry = (__u64)DS_LOAD(file, exe, f_path.dentry);
	mnt = (__u64)DS_LOAD(file, exe, f_path.mnt);
	if (fs) {
		root_dentry = (__u64)fs->root.dentry;
		root_mnt = (__u64)fs->root.mnt;
	}
	c = bpf_task_storage_get(&ds_exe_cache, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return exe_path(exe, out, swap, flags);
	if (c->file == (__u64)exe && c->dentry == dentry && c->mnt == mnt && c->exec_id == exec_id &&
	    c->root_dentry == root_dentry && c->root_mnt == root_mnt) {
		len = c->len & (DS_EXE_CACHE_CAP - 1);
		bpf_probe_read_kernel(out, len, c->path);
		*flags |= c->flags;
		if (!(c->flags & DS_F_EXE_MEMFD) && file_is_deleted(exe))
			*flags |= DS_F_EXE_DELETED;
		return len;
	}
	len = exe_path(exe, out, swap, &f);
	*flags |= f;
	c->file = 0; /* no entry until it is whole */
	if (len >= DS_EXE_CACHE_CAP)
		return len;
	bpf_probe_read_kernel(c->path, len & (DS_EXE_CACHE_CAP - 1), out);
	c->len = len;
	c->flags = f & ~DS_F_EXE_DELETED;
	c->dentry = dentry;
	c->mnt = mnt;
	c->root_dentry = root_dentry;
	c->root_mnt = root_mnt;
	c->exec_id = exec_id;
	c->file = (__u64)exe;
	return len;
}

#endif /* DS_EXE_CACHE_BPF_H */
