/* SPDX-License-Identifier: GPL-2.0 */
/*
 * File events: create_file (an open that created its file, mknod), rename,
 * link and symlink, unlink and rmdir, mount, load_module. Each syscall's
 * entry keeps its arguments (the `kind` says which call, so one exit program
 * serves a family of calls); the exit builds the record with the result.
 *
 * Paths: a created file's comes from the new struct file itself (exact). For
 * the others, the name the caller gave is joined to where it is resolved from
 * (the directory dirfd names, the cwd, or the process's root for an absolute
 * name), each walked with the one path builder (bpf/path.bpf.h); the joined
 * text is not normalized ("a/../b" stays as given).
 */
#ifndef DS_FILE_EVENTS_BPF_H
#define DS_FILE_EVENTS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "record.bpf.h"
#include "net_events.bpf.h"

#define DS_AT_FDCWD -100
#define DS_AT_REMOVEDIR 0x200
#define DS_O_CREAT 0100
#define DS_FMODE_CREATED 0x100000 /* include/linux/fs.h: the open created the file */
#define DS_SOCK_SCAN 16           /* fds looked at for the creating process's socket */

/* Which call an entry program saw, for the exit program a family shares. */
enum {
	DS_OPEN = 1, DS_OPENAT, DS_CREAT, DS_OPENAT2, DS_MKNOD, DS_MKNODAT,
	DS_RENAME, DS_RENAMEAT, DS_RENAMEAT2,
	DS_LINK, DS_LINKAT, DS_SYMLINK, DS_SYMLINKAT,
	DS_UNLINK, DS_UNLINKAT, DS_RMDIR,
	DS_INIT_MODULE, DS_FINIT_MODULE,
};

#define DS_HALF_PATH (DS_PATH_CAP / 2)

/*
 * The path a (dirfd, name) pair names, absolute: the base directory's path,
 * a '/', the name, into string A or B of `info` (the current task's call).
 * An absolute name's base is the process's root (so a chrooted process's
 * "/x" is shown where it is, "/jail/x"). Returns its length; a cut sets
 * DS_F_STR_TRUNCATED.
 */
static __noinline __u32 resolve_at(struct ds_rec_info *info, int into_b, __s64 dfd, const char *uname)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	char *out = into_b ? info->b : info->a;
	__u32 *flags = &info->flags;
	struct dentry *d = NULL;
	struct vfsmount *m = NULL;
	struct file *f;
	char c = 0;
	__u32 len, r;
	long n;

	if (!uname)
		return 0;
	bpf_probe_read_user(&c, 1, uname);
	if (c == '/') {
		d = BPF_CORE_READ(task, fs, root.dentry);
		m = BPF_CORE_READ(task, fs, root.mnt);
	} else if (dfd == DS_AT_FDCWD) {
		d = BPF_CORE_READ(task, fs, pwd.dentry);
		m = BPF_CORE_READ(task, fs, pwd.mnt);
	} else if ((f = fd_file(task, dfd))) {
		d = BPF_CORE_READ(f, f_path.dentry);
		m = BPF_CORE_READ(f, f_path.mnt);
	}
	r = build_path(d, m, out, info->swap);
	len = r & ~DS_PATH_TRUNCATED;
	if (r & DS_PATH_TRUNCATED)
		*flags |= DS_F_STR_TRUNCATED;
	if (len == 1) /* the root: the name brings or gets the only separator */
		len = 0;
	if (c != '/' && len < DS_HALF_PATH)
		out[len++ & (DS_HALF_PATH - 1)] = '/';
	if (len >= DS_HALF_PATH) {
		*flags |= DS_F_STR_TRUNCATED;
		return len & (DS_PATH_CAP - 1);
	}
	n = bpf_probe_read_user_str(out + (len & (DS_HALF_PATH - 1)), DS_HALF_PATH, uname);
	if (n <= 1)
		return len;
	if (n == DS_HALF_PATH)
		*flags |= DS_F_STR_TRUNCATED;
	return (len + n - 1) & (DS_PATH_CAP - 1);
}

/* The first inet socket among the process's fds 0-15 (Elkeid's create_file socket). */
static __noinline void first_socket(struct task_struct *task, struct ds_sock_data *d)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);

	for (int i = 0; i < DS_SOCK_SCAN && i < max; i++) {
		struct file *f = NULL;

		bpf_probe_read_kernel(&f, sizeof(f), &fds[i]);
		if (f && sock_read(file_sock(f), d)) {
			d->fd = i;
			return;
		}
	}
}

/*
 * open(), openat(), creat(), openat2(): kept only when the call may create
 * (O_CREAT); the exit then asks the new file whether it did.
 */
static __always_inline void open_save(struct ds_sys_enter *ctx, __u64 oflags, __u32 kind)
{
	if (oflags & DS_O_CREAT)
		inflight_save(ctx, kind);
}

SEC("tracepoint")
int ds_open_enter(struct ds_sys_enter *ctx)
{
	open_save(ctx, ctx->args[1], DS_OPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int ds_openat_enter(struct ds_sys_enter *ctx)
{
	open_save(ctx, ctx->args[2], DS_OPENAT);
	return 0;
}

SEC("tracepoint")
int ds_creat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_CREAT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int ds_openat2_enter(struct ds_sys_enter *ctx)
{
	__u64 oflags = 0;

	bpf_probe_read_user(&oflags, sizeof(oflags), (void *)ctx->args[2]); /* struct open_how's flags */
	open_save(ctx, oflags, DS_OPENAT2);
	return 0;
}

SEC("tracepoint")
int ds_mknod_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_MKNOD);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mknodat")
int ds_mknodat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_MKNODAT);
	return 0;
}

/* Attached to the exits of open, openat, creat, openat2, mknod and mknodat (src/wire/events.ts). */
SEC("tracepoint")
int ds_create_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_create_file_data *d;
	struct ds_rec_info *info;
	struct ds_inflight *in;
	struct inode *ino = NULL;
	struct file *f = NULL;
	__u32 r, kind;

	if (!(in = inflight_get(ctx)))
		return 0;
	kind = in->kind;
	if (in->res < 0)
		goto out;
	if (kind <= DS_OPENAT2) {
		f = fd_file(task, in->res);
		if (!f || !(BPF_CORE_READ(f, f_mode) & DS_FMODE_CREATED))
			goto out;
	} else if (in->res != 0) {
		goto out;
	}
	info = rec_begin(task);
	if (!info)
		goto out;
	d = (void *)info->data;
	__builtin_memset(d, 0, sizeof(*d));
	if (f) {
		r = build_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), info->a, info->swap);
		info->len_a = r & ~DS_PATH_TRUNCATED;
		if (r & DS_PATH_TRUNCATED)
			info->flags |= DS_F_STR_TRUNCATED;
		ino = BPF_CORE_READ(f, f_inode);
		d->mode = BPF_CORE_READ(ino, i_mode);
		d->dev = BPF_CORE_READ(ino, i_sb, s_dev);
		d->ino = BPF_CORE_READ(ino, i_ino);
		d->oflags = kind == DS_OPEN ? in->args[1] : kind == DS_OPENAT ? in->args[2] : kind == DS_CREAT ? 01101 : 0;
		if (kind == DS_OPENAT2)
			bpf_probe_read_user(&d->oflags, sizeof(d->oflags), (void *)in->args[2]);
	} else if (kind == DS_MKNOD) {
		d->mode = in->args[1];
		info->len_a = resolve_at(info, 0, DS_AT_FDCWD, (void *)in->args[0]);
	} else {
		d->mode = in->args[2];
		info->len_a = resolve_at(info, 0, (int)in->args[0], (void *)in->args[1]);
	}
	first_socket(task, &d->sock);
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_CREATE_FILE, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

SEC("tracepoint")
int ds_rename_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_RENAME);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int ds_renameat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_RENAMEAT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int ds_renameat2_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_RENAMEAT2);
	return 0;
}

/*
 * Two (dirfd, name) pairs into strings A and B: rename's and link's old and
 * new. `at`: the call takes dirfds (args olddfd, old, newdfd, new), else the
 * names alone (args old, new). `old_literal`: A is kept as given (a symlink's
 * target is text, resolved only when the link is followed).
 */
static __always_inline void two_paths(struct task_struct *task, struct ds_rec_info *info, struct ds_inflight *in,
				      int at, int old_literal)
{
	__s64 odfd = at ? (int)in->args[0] : DS_AT_FDCWD, ndfd = at ? (int)in->args[2] : DS_AT_FDCWD;
	const char *oname = (void *)(at ? in->args[1] : in->args[0]);
	const char *nname = (void *)(at ? in->args[3] : in->args[1]);

	if (old_literal)
		info->len_a = user_str(info->a, DS_PATH_CAP, oname, &info->flags);
	else
		info->len_a = resolve_at(info, 0, odfd, oname);
	info->len_b = resolve_at(info, 1, ndfd, nname);
}

/* Attached to the exits of rename, renameat and renameat2. */
SEC("tracepoint")
int ds_rename_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rename_data *d;
	struct ds_rec_info *info;
	struct ds_inflight *in;

	if (!(in = inflight_get(ctx)))
		return 0;
	info = rec_begin(task);
	if (!info)
		goto out;
	d = (void *)info->data;
	d->rflags = in->kind == DS_RENAMEAT2 ? in->args[4] : 0;
	d->pad = 0;
	two_paths(task, info, in, in->kind != DS_RENAME, 0);
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_RENAME, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

SEC("tracepoint")
int ds_link_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_LINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_linkat")
int ds_linkat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_LINKAT);
	return 0;
}

SEC("tracepoint")
int ds_symlink_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_SYMLINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_symlinkat")
int ds_symlinkat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_SYMLINKAT);
	return 0;
}

/* Attached to the exits of link, linkat, symlink and symlinkat. */
SEC("tracepoint")
int ds_link_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_link_data *d;
	struct ds_rec_info *info;
	struct ds_inflight *in;
	__u32 kind;

	if (!(in = inflight_get(ctx)))
		return 0;
	info = rec_begin(task);
	if (!info)
		goto out;
	kind = in->kind;
	d = (void *)info->data;
	d->kind = kind == DS_LINK || kind == DS_LINKAT ? DS_LINK_HARD : DS_LINK_SYMBOLIC;
	d->lflags = kind == DS_LINKAT ? in->args[4] : 0;
	if (kind == DS_SYMLINKAT) {
		/* symlinkat(target, newdirfd, linkpath): the target is text; only the link is resolved. */
		info->len_a = user_str(info->a, DS_PATH_CAP, (void *)in->args[0], &info->flags);
		info->len_b = resolve_at(info, 1, (int)in->args[1], (void *)in->args[2]);
	} else {
		two_paths(task, info, in, kind == DS_LINKAT, kind == DS_SYMLINK);
	}
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_LINK, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

SEC("tracepoint")
int ds_unlink_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_UNLINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int ds_unlinkat_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_UNLINKAT);
	return 0;
}

SEC("tracepoint")
int ds_rmdir_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_RMDIR);
	return 0;
}

/* Attached to the exits of unlink, unlinkat and rmdir: unlink or rmdir, whichever is selected. */
SEC("tracepoint")
int ds_unlink_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;
	struct ds_inflight *in;
	__u32 type, kind;
	__s64 dfd = DS_AT_FDCWD;
	const char *name;

	if (!(in = inflight_get(ctx)))
		return 0;
	kind = in->kind;
	name = (void *)in->args[0];
	type = kind == DS_RMDIR ? DS_EVENT_RMDIR : DS_EVENT_UNLINK;
	if (kind == DS_UNLINKAT) {
		dfd = (int)in->args[0];
		name = (void *)in->args[1];
		if (in->args[2] & DS_AT_REMOVEDIR)
			type = DS_EVENT_RMDIR;
	}
	if (!selected(type))
		goto out;
	info = rec_begin(task);
	if (!info)
		goto out;
	info->len_a = resolve_at(info, 0, dfd, name);
	rec_submit(ctx, info, type, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int ds_mount_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, 0);
	return 0;
}

/* mount(source, target, fstype, flags, data): a new mount, a bind, a remount or a propagation change. */
SEC("tracepoint/syscalls/sys_exit_mount")
int ds_mount_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_mount_data *d;
	struct ds_rec_info *info;
	struct ds_inflight *in;

	if (!(in = inflight_get(ctx)))
		return 0;
	info = rec_begin(task);
	if (!info)
		goto out;
	d = (void *)info->data;
	d->mflags = in->args[3];
	info->len_a = user_str(info->a, DS_PATH_CAP, (void *)in->args[0], &info->flags);
	info->len_b = resolve_at(info, 1, DS_AT_FDCWD, (void *)in->args[1]);
	info->len_c = user_str(info->c, DS_REC_C_CAP, (void *)in->args[2], &info->flags);
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_MOUNT, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

/*
 * Modules: these tracepoints exist only where the kernel has modules
 * (CONFIG_MODULES); elsewhere load_module is reported unavailable and these
 * programs are never loaded.
 */
SEC("tracepoint/syscalls/sys_enter_init_module")
int ds_init_module_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_INIT_MODULE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_finit_module")
int ds_finit_module_enter(struct ds_sys_enter *ctx)
{
	inflight_save(ctx, DS_FINIT_MODULE);
	return 0;
}

/* Attached to the exits of init_module and finit_module. */
SEC("tracepoint")
int ds_load_module_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_load_module_data *d;
	struct ds_rec_info *info;
	struct ds_inflight *in;
	struct file *f;
	__u32 r;

	if (!(in = inflight_get(ctx)))
		return 0;
	info = rec_begin(task);
	if (!info)
		goto out;
	d = (void *)info->data;
	d->fd = -1;
	d->mflags = 0;
	if (in->kind == DS_FINIT_MODULE) {
		d->fd = in->args[0];
		d->mflags = in->args[2];
		f = fd_file(task, d->fd);
		if (f) {
			r = build_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), info->a, info->swap);
			info->len_a = r & ~DS_PATH_TRUNCATED;
			if (r & DS_PATH_TRUNCATED)
				info->flags |= DS_F_STR_TRUNCATED;
		}
	}
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_LOAD_MODULE, in->res, in->nr, 1);
	return 0;
out:
	inflight_drop();
	return 0;
}

#endif /* DS_FILE_EVENTS_BPF_H */
