/* SPDX-License-Identifier: GPL-2.0 */
/*
 * File events: create_file (an open that created its file, mknod), rename,
 * link and symlink, unlink and rmdir, mount, load_module. Each syscall's
 * entry keeps its arguments (the `kind` says which call, so one exit program
 * serves a family of calls); the exit builds the record with the result.
 *
 * Paths: a created file's comes from the new struct file itself (exact). For
 * the others, the name the caller gave (copied at the call's entry: see
 * names_save()) is joined to where it is resolved from
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
#define DS_O_TMPFILE 020000000 /* __O_TMPFILE: O_TMPFILE without its O_DIRECTORY */
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
 * DS_F_STR_TRUNCATED, and so does a dirfd that names no file (the name is
 * then shown as given, relative); a relative name's base outside the process's root (a
 * dirfd or cwd from before a chroot) sets DS_F_PATH_UNREACHABLE. `name` is
 * the entry's copy, as a number (entry_name()). Global: verified once, not
 * at each of its eleven calls.
 */
__noinline __u32 ds_resolve_at(struct ds_rec_info *info, __u32 into_b, __s64 dfd, __u64 name)
{
	struct fs_struct *fs = self()->fs;
	struct dentry *d = NULL;
	struct vfsmount *m = NULL;
	__u32 *flags, len, r, sep = 0;
	struct file *f;
	char c = 0, *out;
	int based;
	long n;

	if (!info || !name)
		return 0;
	out = into_b ? info->b : info->a;
	flags = &info->flags;
	bpf_probe_read_kernel(&c, 1, (const void *)name);
	if (c == '/') {
		d = fs->root.dentry;
		m = fs->root.mnt;
	} else if (dfd == DS_AT_FDCWD) {
		d = fs->pwd.dentry;
		m = fs->pwd.mnt;
	} else if ((f = fd_file(dfd))) {
		d = DS_LOAD(file, f, f_path.dentry);
		m = DS_LOAD(file, f, f_path.mnt);
	}
	/* No base: a dirfd that names no open file (the call fails, EBADF): the name as given, cut short in front. */
	based = c == '/' || d;
	r = build_path(d, m, out, info->swap);
	len = DS_PATH_LEN(r);
	if ((r & DS_PATH_TRUNCATED) || !based)
		*flags |= DS_F_STR_TRUNCATED;
	if (c != '/' && (r & DS_PATH_UNREACHABLE))
		*flags |= DS_F_PATH_UNREACHABLE;
	if (len == 1) /* the root: the name brings or gets the only separator */
		len = 0;
	if (c != '/' && based && len < DS_HALF_PATH) {
		out[len++ & (DS_HALF_PATH - 1)] = '/';
		sep = 1;
	}
	if (len >= DS_HALF_PATH) {
		*flags |= DS_F_STR_TRUNCATED;
		return len & (DS_PATH_CAP - 1);
	}
	n = bpf_probe_read_kernel_str(out + (len & (DS_HALF_PATH - 1)), DS_HALF_PATH, (const void *)name);
	/* An empty name (AT_EMPTY_PATH: the dirfd's own file) is the base itself, with no separator after it. */
	if (n <= 1)
		return sep && len > 1 ? len - 1 : len;
	if (n == DS_HALF_PATH)
		*flags |= DS_F_STR_TRUNCATED;
	return (len + n - 1) & (DS_PATH_CAP - 1);
}

struct sock_scan {
	struct ds_sock_data *d;
	struct file **fds; /* the first DS_SOCK_SCAN slots, copied */
	__u32 max;
};

static long sock_scan_step(__u32 i, struct sock_scan *s)
{
	struct file *f;

	if (i >= s->max)
		return 1;
	f = s->fds[i & (DS_SOCK_SCAN - 1)];
	if (f && ds_file_sock((__u64)f, s->d)) {
		s->d->fd = i;
		return 1;
	}
	return 0;
}

/*
 * The first inet socket among the process's fds 0-15 (Elkeid's create_file
 * socket). The sixteen slots in one read into `scratch` (slot memory), not one
 * read each: a table has at least BITS_PER_LONG slots, and i < max is still
 * checked per slot. A bpf_loop, whose step the verifier checks once: as a
 * loop it walked all sixteen, each with its branches (half of ds_create_exit's
 * verification).
 */
static __noinline void first_socket(struct ds_sock_data *d, struct file **scratch)
{
	struct fdtable *fdt = self()->files->fdt;
	struct sock_scan s = { .d = d, .fds = scratch, .max = fdt->max_fds };

	if (bpf_probe_read_kernel(scratch, DS_SOCK_SCAN * sizeof(*scratch), fdt->fd))
		return;
	bpf_loop(DS_SOCK_SCAN, sock_scan_step, &s, 0);
}

/*
 * open(), openat(), creat(), openat2(): kept only when the call may create
 * (O_CREAT, O_TMPFILE); the exit then asks the new file whether it did.
 */
static __always_inline void open_save(struct ds_sys_enter *ctx, __u64 oflags, __u32 kind)
{
	struct ds_inflight *in;

	/* The flags as the entry saw them (openat2's are in the caller's memory): the exit does not read them again. */
	if ((oflags & (DS_O_CREAT | DS_O_TMPFILE)) && (in = inflight_save(ctx, kind)))
		in->user[0] = oflags;
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

/* open's flags in the stash when openat2's open_how could not be read at entry: the exit reads them. */
#define DS_OFLAGS_UNREAD (1ull << 63)

SEC("tracepoint/syscalls/sys_enter_openat2")
int ds_openat2_enter(struct ds_sys_enter *ctx)
{
	__u64 oflags = 0;

	/*
	 * struct open_how's flags. Not readable here (its page not in memory yet:
	 * only the kernel's own copy brings it in): kept as if creating, so such
	 * an open cannot hide a file it creates; the exit asks the file.
	 */
	if (bpf_probe_read_user(&oflags, sizeof(oflags), (void *)ctx->args[2]))
		oflags = DS_OFLAGS_UNREAD | DS_O_CREAT;
	open_save(ctx, oflags, DS_OPENAT2);
	return 0;
}

/* The flags an open was given: as its entry read them, or (openat2's, not readable then) read now and flagged. */
static __always_inline __u64 open_flags(struct ds_rec_info *info, const struct ds_inflight *in)
{
	__u64 v = 0;

	if (in->kind == DS_CREAT)
		return 01101; /* O_CREAT | O_WRONLY | O_TRUNC */
	if (!(in->user[0] & DS_OFLAGS_UNREAD))
		return in->user[0];
	if (bpf_probe_read_user(&v, sizeof(v), (void *)in->args[2]))
		return 0;
	info->flags |= DS_F_READ_AT_EXIT;
	return v;
}

/*
 * An open's new file, when the open created it; NULL otherwise (and for
 * mknod). An O_TMPFILE open always creates one (unnamed, and not marked
 * FMODE_CREATED); the flag stays in the file's f_flags.
 */
static __always_inline struct file *created(struct task_struct *task, const struct ds_inflight *in)
{
	struct file *f;

	if (in->kind > DS_OPENAT2 || in->res < 0)
		return NULL;
	f = fd_file(in->res);
	if (!f)
		return NULL;
	return (DS_LOAD(file, f, f_mode) & DS_FMODE_CREATED) || (DS_LOAD(file, f, f_flags) & DS_O_TMPFILE) ? f : NULL;
}

static __always_inline int create_want(struct task_struct *task, const struct ds_inflight *in)
{
	return in->kind > DS_OPENAT2 ? in->res == 0 : created(task, in) != NULL;
}

static __always_inline __u32 create_fill(struct task_struct *task, struct ds_rec_info *info,
					 const struct ds_inflight *in)
{
	struct ds_create_file_data *d = (void *)info->data;
	struct file *f = created(task, in);
	struct inode *ino;
	__u32 kind = in->kind;

	__builtin_memset(d, 0, sizeof(*d));
	if (f) {
		rec_file_path(task, info, f);
		ino = DS_LOAD(file, f, f_inode);
		d->mode = DS_LOAD(inode, ino, i_mode);
		d->dev = BPF_CORE_READ(ino, i_sb, s_dev);
		d->ino = DS_LOAD(inode, ino, i_ino);
		d->oflags = open_flags(info, in);
	} else if (kind == DS_MKNOD) {
		d->mode = in->args[1];
		info->len_a = ds_resolve_at(info, 0, DS_AT_FDCWD, entry_name(info, in, 0));
	} else {
		d->mode = in->args[2];
		info->len_a = ds_resolve_at(info, 0, (int)in->args[0], entry_name(info, in, 0));
	}
	first_socket(&d->sock, (struct file **)info->swap); /* swap: the paths above are done with it */
	info->data_len = sizeof(*d);
	return DS_EVENT_CREATE_FILE;
}

/* Attached to the exits of open, openat, creat, openat2, mknod and mknodat (src/wire/events.ts). */
SEC("tracepoint")
int ds_create_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, create_want, create_fill);
}

/*
 * Two (dirfd, name) pairs into strings A and B: rename's and link's old and
 * new. `at`: the call takes dirfds (args olddfd, old, newdfd, new), else the
 * names alone (args old, new). `old_literal`: A is kept as given (a symlink's
 * target is text, resolved only when the link is followed).
 */
static __always_inline void two_paths(struct ds_rec_info *info, const struct ds_inflight *in, int at, int old_literal)
{
	__s64 odfd = at ? (int)in->args[0] : DS_AT_FDCWD, ndfd = at ? (int)in->args[2] : DS_AT_FDCWD;
	__u64 oname = entry_name(info, in, 0);
	__u64 nname = entry_name(info, in, 1);

	if (old_literal)
		info->len_a = copied_str(info->a, DS_PATH_CAP, oname, &info->flags);
	else
		info->len_a = ds_resolve_at(info, 0, odfd, oname);
	info->len_b = ds_resolve_at(info, 1, ndfd, nname);
}

static __always_inline __u32 rename_fill(struct task_struct *task, struct ds_rec_info *info,
					 const struct ds_inflight *in)
{
	struct ds_rename_data *d = (void *)info->data;

	d->rflags = in->kind == DS_RENAMEAT2 ? in->args[4] : 0;
	d->pad = 0;
	two_paths(info, in, in->kind != DS_RENAME, 0);
	info->data_len = sizeof(*d);
	return DS_EVENT_RENAME;
}

/* Attached to the exits of rename, renameat and renameat2. */
SEC("tracepoint")
int ds_rename_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, rename_fill);
}

static __always_inline __u32 link_fill(struct task_struct *task, struct ds_rec_info *info,
				       const struct ds_inflight *in)
{
	struct ds_link_data *d = (void *)info->data;
	__u32 kind = in->kind;

	d->kind = kind == DS_LINK || kind == DS_LINKAT ? DS_LINK_HARD : DS_LINK_SYMBOLIC;
	d->lflags = kind == DS_LINKAT ? in->args[4] : 0;
	if (kind == DS_SYMLINKAT) {
		/* symlinkat(target, newdirfd, linkpath): the target is text; only the link is resolved. */
		info->len_a = copied_str(info->a, DS_PATH_CAP, entry_name(info, in, 0), &info->flags);
		info->len_b = ds_resolve_at(info, 1, (int)in->args[1], entry_name(info, in, 1));
	} else {
		two_paths(info, in, kind == DS_LINKAT, kind == DS_SYMLINK);
	}
	info->data_len = sizeof(*d);
	return DS_EVENT_LINK;
}

/* Attached to the exits of link, linkat, symlink and symlinkat. */
SEC("tracepoint")
int ds_link_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, link_fill);
}

/* unlink or rmdir: what the call removed (unlinkat says with AT_REMOVEDIR). */
static __always_inline __u32 unlink_type(const struct ds_inflight *in)
{
	if (in->kind == DS_RMDIR || (in->kind == DS_UNLINKAT && (in->args[2] & DS_AT_REMOVEDIR)))
		return DS_EVENT_RMDIR;
	return DS_EVENT_UNLINK;
}

static __always_inline int unlink_want(struct task_struct *task, const struct ds_inflight *in)
{
	return selected(unlink_type(in));
}

static __always_inline __u32 unlink_fill(struct task_struct *task, struct ds_rec_info *info,
					 const struct ds_inflight *in)
{
	info->len_a = ds_resolve_at(info, 0, in->kind == DS_UNLINKAT ? (int)in->args[0] : DS_AT_FDCWD,
				 entry_name(info, in, 0));
	return unlink_type(in);
}

/* Attached to the exits of unlink, unlinkat and rmdir: unlink or rmdir, whichever is selected. */
SEC("tracepoint")
int ds_unlink_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, unlink_want, unlink_fill);
}

/* mount(source, target, fstype, flags, data): a new mount, a bind, a remount or a propagation change. */
static __always_inline __u32 mount_fill(struct task_struct *task, struct ds_rec_info *info,
					const struct ds_inflight *in)
{
	struct ds_mount_data *d = (void *)info->data;

	d->mflags = in->args[3];
	info->len_a = copied_str(info->a, DS_PATH_CAP, entry_name(info, in, 0), &info->flags);
	info->len_b = ds_resolve_at(info, 1, DS_AT_FDCWD, entry_name(info, in, 1));
	info->len_c = copied_str(info->c, DS_REC_C_CAP, entry_name(info, in, 2), &info->flags);
	info->data_len = sizeof(*d);
	return DS_EVENT_MOUNT;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int ds_mount_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, mount_fill);
}

/*
 * Modules: these tracepoints exist only where the kernel has modules
 * (CONFIG_MODULES); elsewhere load_module is reported unavailable and these
 * programs are never loaded.
 */
SEC("tracepoint/syscalls/sys_enter_init_module") DS_STASH(ds_init_module_enter, DS_INIT_MODULE)
SEC("tracepoint/syscalls/sys_enter_finit_module") DS_STASH(ds_finit_module_enter, DS_FINIT_MODULE)

static __always_inline __u32 load_module_fill(struct task_struct *task, struct ds_rec_info *info,
					      const struct ds_inflight *in)
{
	struct ds_load_module_data *d = (void *)info->data;
	struct file *f;

	d->fd = -1;
	d->mflags = 0;
	if (in->kind == DS_FINIT_MODULE) {
		d->fd = in->args[0];
		d->mflags = in->args[2];
		f = fd_file(d->fd);
		if (f)
			rec_file_path(task, info, f);
	}
	info->data_len = sizeof(*d);
	return DS_EVENT_LOAD_MODULE;
}

/* Attached to the exits of init_module and finit_module. */
SEC("tracepoint")
int ds_load_module_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, load_module_fill);
}

/*
 * What a call's entry keeps when its exit needs only the arguments and the
 * names it was given (the file events' calls but open's, and memfd_create),
 * by the call's number from DS_NR_NAMES_FIRST: its kind, and the argument
 * indexes of its names, each plus one (0: none; no names: no copy is
 * claimed); 0 for a call this program is not on. In .data, not .rodata:
 * values the verifier does not know make one path for every call, where
 * constants (a switch, or read-only data) made one path each.
 */
#define DS_NAMES_CALL(kind, n0, n1, n2) ((kind) | ((n0) + 1) << 8 | ((n1) + 1) << 16 | ((n2) + 1) << 24)
#define DS_NAMES_AT(nr) [(nr) - DS_NR_NAMES_FIRST]
__u32 ds_names_calls[DS_NR_NAMES_LAST - DS_NR_NAMES_FIRST + 1] = {
#if !defined(__TARGET_ARCH_arm64)
	DS_NAMES_AT(DS_NR_CREAT) = DS_NAMES_CALL(DS_CREAT, -1, -1, -1),
	DS_NAMES_AT(DS_NR_MKNOD) = DS_NAMES_CALL(DS_MKNOD, 0, -1, -1),
	DS_NAMES_AT(DS_NR_RENAME) = DS_NAMES_CALL(DS_RENAME, 0, 1, -1),
	DS_NAMES_AT(DS_NR_LINK) = DS_NAMES_CALL(DS_LINK, 0, 1, -1),
	DS_NAMES_AT(DS_NR_SYMLINK) = DS_NAMES_CALL(DS_SYMLINK, 0, 1, -1),
	DS_NAMES_AT(DS_NR_UNLINK) = DS_NAMES_CALL(DS_UNLINK, 0, -1, -1),
	DS_NAMES_AT(DS_NR_RMDIR) = DS_NAMES_CALL(DS_RMDIR, 0, -1, -1),
#endif
	DS_NAMES_AT(DS_NR_MKNODAT) = DS_NAMES_CALL(DS_MKNODAT, 1, -1, -1),
	DS_NAMES_AT(DS_NR_RENAMEAT) = DS_NAMES_CALL(DS_RENAMEAT, 1, 3, -1),
	DS_NAMES_AT(DS_NR_RENAMEAT2) = DS_NAMES_CALL(DS_RENAMEAT2, 1, 3, -1),
	DS_NAMES_AT(DS_NR_LINKAT) = DS_NAMES_CALL(DS_LINKAT, 1, 3, -1),
	DS_NAMES_AT(DS_NR_SYMLINKAT) = DS_NAMES_CALL(DS_SYMLINKAT, 0, 2, -1),
	DS_NAMES_AT(DS_NR_UNLINKAT) = DS_NAMES_CALL(DS_UNLINKAT, 1, -1, -1),
	/* Their event's only call: kind 0. mount(source, target, fstype, ...). */
	DS_NAMES_AT(DS_NR_MOUNT) = DS_NAMES_CALL(0, 0, 1, 2),
	DS_NAMES_AT(DS_NR_MEMFD_CREATE) = DS_NAMES_CALL(0, 0, -1, -1),
};

/* The argument a name's index (plus one) points at, 0 for none. */
static __always_inline __u64 names_arg(const struct ds_inflight *in, __u32 at)
{
	return at - 1 < 6 ? in->args[(at - 1) & 7] : 0;
}

/*
 * The sys_enter program of every call in ds_names_calls, on each one's
 * tracepoint (src/wire/events.ts): one program for the verifier to check,
 * not fourteen that differ only in constants.
 */
SEC("tracepoint")
int ds_names_enter(struct ds_sys_enter *ctx)
{
	__u32 at = sys_nr(ctx) - DS_NR_NAMES_FIRST, call;
	struct ds_inflight *in;

	if (at > DS_NR_NAMES_LAST - DS_NR_NAMES_FIRST)
		return 0;
	call = ds_names_calls[at];
	if (!call)
		return 0;
	in = inflight_save(ctx, call & 0xff);
	if (in && (call >> 8 & 0xff))
		names_save(in, names_arg(in, call >> 8 & 0xff), names_arg(in, call >> 16 & 0xff), names_arg(in, call >> 24));
	return 0;
}

#endif /* DS_FILE_EVENTS_BPF_H */
