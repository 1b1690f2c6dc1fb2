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

/* In build_path's return value: the walk was cut short; it never passed the task's root. */
#define DS_PATH_TRUNCATED (1u << 31)
#define DS_PATH_UNREACHABLE (1u << 30)
/* The length (or position) in it. */
#define DS_PATH_LEN(r) ((r) & (DS_PATH_CAP - 1))

/* path_state.done */
#define DS_WALK_END 1  /* reached the top: the namespace's root, or a pseudo file's own */
#define DS_WALK_ROOT 2 /* passed the current task's root on the way */

/*
 * The path functions are global (not static): the verifier checks each once
 * per program, from its arguments' types alone, instead of once per caller
 * state. A global function takes no kernel pointers as arguments (6.1), so a
 * walk's start goes in through slot memory, and is read back as numbers.
 *
 * The walk's state lives there too, in the head of the output buffer (written
 * only once the walk is over), not on the stack: read back from memory, the
 * position is a number the verifier knows nothing about, so every step looks
 * alike and the loop is checked in one pass, where a tracked position made
 * each step a state of its own.
 */
struct path_state {
	__u64 d;   /* struct dentry * */
	__u64 mnt; /* struct mount *, then struct vfsmount * on the way in */
	__u32 pos; /* first byte written so far; starts at DS_PATH_CAP - 1 */
	__u32 done; /* DS_WALK_* */
};

struct ds_path_buf {
	union {
		char c[DS_PATH_CAP];
		struct path_state walk;
	};
};

/*
 * The swap's tail: a name is written at a masked offset up to DS_PATH_CAP - 1,
 * so its last bytes may land past DS_PATH_CAP (never past where the walk
 * started, which the masks cannot show).
 */
struct ds_path_swap {
	char c[DS_PATH_CAP + DS_NAME_MAX + 1];
};

/*
 * bpf_loop's context: where the state and the names are, and the current
 * task's root (dentry, mount), which a path under it passes on its way up.
 */
struct path_walk {
	struct path_state *st;
	char *swap;
	struct dentry *root_d;
	struct mount *root_mnt;
};

static long path_step(__u32 i, struct path_walk *w)
{
	struct path_state *st = w->st;
	struct dentry *d = (void *)st->d;
	struct mount *mnt = (void *)st->mnt;
	struct dentry *mnt_root = DS_LOAD(mount, mnt, mnt.mnt_root);
	struct dentry *parent = DS_LOAD(dentry, d, d_parent);
	const unsigned char *name;
	char *swap = w->swap;
	__u32 len, pos;

	if (d == w->root_d && mnt == w->root_mnt)
		st->done |= DS_WALK_ROOT;
	if (d == mnt_root) {
		struct mount *up = DS_LOAD(mount, mnt, mnt_parent);

		/* The namespace root (or an internal mount's). */
		if (up == mnt) {
			st->done |= DS_WALK_END;
			return 1;
		}
		st->d = (__u64)DS_LOAD(mount, mnt, mnt_mountpoint);
		st->mnt = (__u64)up;
		return 0;
	}

	len = DS_LOAD(dentry, d, d_name.len);
	name = DS_LOAD(dentry, d, d_name.name);
	if (len > DS_NAME_MAX)
		len = DS_NAME_MAX;
	/* Keep room for the separator and a 3-byte "…" marker. */
	if (st->pos < len + 1 + 3)
		return 1;
	pos = st->pos - len;
	bpf_probe_read_kernel(swap + (pos & (DS_PATH_CAP - 1)), len & DS_NAME_MAX, name);
	pos -= 1;
	swap[pos & (DS_PATH_CAP - 1)] = '/';
	st->pos = pos;
	st->d = (__u64)parent;
	/*
	 * Its own parent but no mount's root: a pseudo file (a memfd is
	 * "memfd:<name>" on an internal mount) or a disconnected dentry. Its
	 * name is all the path there is, as d_path shows it.
	 */
	if (d == parent) {
		st->done |= DS_WALK_END;
		return 1;
	}
	return 0;
}

/*
 * Walks st's start up to the root, writing the path backwards into the end of
 * swap. Returns where it begins there (it runs to DS_PATH_CAP - 1), with
 * DS_PATH_TRUNCATED when the walk was cut short ("…" then leads it), and
 * DS_PATH_UNREACHABLE when it went all the way up without passing the current
 * task's root: a chrooted process's file from outside its root (an fd from
 * before the chroot), which the path shows from the namespace's root. A cut
 * walk cannot tell, and is not flagged.
 */
static __always_inline __u32 path_walk(struct path_state *st, char *swap)
{
	struct fs_struct *fs = self()->fs;
	struct path_walk w = { .swap = swap, .st = st };
	__u32 pos, truncated, unreachable;

	if (!st->d || !st->mnt)
		return DS_PATH_CAP - 1;
	st->mnt -= bpf_core_field_offset(struct mount, mnt);
	st->pos = DS_PATH_CAP - 1;
	st->done = 0;
	if (fs) {
		w.root_d = fs->root.dentry;
		w.root_mnt = (void *)fs->root.mnt - bpf_core_field_offset(struct mount, mnt);
	} else {
		st->done = DS_WALK_ROOT; /* no root to be outside of */
	}
	bpf_loop(DS_PATH_DEPTH, path_step, &w, 0);
	truncated = !(st->done & DS_WALK_END);
	unreachable = st->done == DS_WALK_END;
	pos = st->pos & (DS_PATH_CAP - 1);
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
	return pos | (truncated ? DS_PATH_TRUNCATED : 0) | (unreachable ? DS_PATH_UNREACHABLE : 0);
}

/* The walk alone, the path left at the end of swap: for a caller with no room for a whole path. */
__noinline __u32 ds_path_walk(struct path_state *st, struct ds_path_swap *swap)
{
	if (!st || !swap)
		return DS_PATH_CAP - 1;
	return path_walk(st, (char *)swap);
}

/* The walk, then the path copied to the front of out (over the state); returns its length and flags. */
__noinline __u32 ds_build_path(struct ds_path_buf *out, struct ds_path_swap *swap)
{
	__u32 r, pos, len;

	if (!out || !swap)
		return 0;
	r = path_walk(&out->walk, (char *)swap);
	pos = DS_PATH_LEN(r);
	len = (DS_PATH_CAP - 1 - pos) & (DS_PATH_CAP - 1);
	bpf_probe_read_kernel(out, len, (char *)swap + pos);
	return len | (r & (DS_PATH_TRUNCATED | DS_PATH_UNREACHABLE));
}

/*
 * The absolute path of (d, vmnt) into out; returns its length (DS_PATH_LEN)
 * and path_walk's flags. out and swap: DS_PATH_CAP bytes each in slot
 * memory, swap with DS_NAME_MAX + 1 more behind it.
 */
static __always_inline __u32 build_path(struct dentry *d, struct vfsmount *vmnt, char *out, char *swap)
{
	struct ds_path_buf *o = (void *)out;

	o->walk.d = (__u64)d;
	o->walk.mnt = (__u64)vmnt;
	return ds_build_path(o, (struct ds_path_swap *)swap);
}

/*
 * What a path cannot show: DS_F_EXE_MEMFD or DS_F_EXE_DELETED for an
 * executable, DS_F_PATH_* for a record's file. A memfd's dentry is
 * "memfd:<name>", a pseudo dentry (its own parent) on an internal mount: a
 * file on disk may have that name too, and is no memfd.
 */
static __always_inline int file_is_memfd(struct file *f)
{
	__u64 name = 0;

	struct dentry *d = DS_LOAD(file, f, f_path.dentry);

	bpf_probe_read_kernel(&name, 6, DS_LOAD(dentry, d, d_name.name));
	return name == 0x3a64666d656dull /* "memfd:", little-endian */ && DS_LOAD(dentry, d, d_parent) == d;
}

/*
 * The name the path shows is gone, as d_path's "(deleted)" says it: no links
 * left, or the dentry unlinked (unhashed, and not a root): a file that still
 * has another name (a hard link elsewhere) keeps its links when the name it
 * was opened by is removed.
 */
static __always_inline int file_is_deleted(struct file *f)
{
	struct inode *ino = DS_LOAD(file, f, f_inode);
	struct dentry *d = DS_LOAD(file, f, f_path.dentry);

	return DS_LOAD(inode, ino, __i_nlink) == 0 ||
	       (!DS_LOAD(dentry, d, d_hash.pprev) && DS_LOAD(dentry, d, d_parent) != d);
}

/*
 * An executable's absolute path into `out` (built in `swap`), its length
 * returned, and into *flags what that path cannot show: cut, a memfd,
 * unlinked, or outside the task's root. A NULL exe (a kernel thread, an exit
 * before 6.16) is empty.
 */
static __always_inline __u32 exe_path(struct file *exe, char *out, char *swap, __u32 *flags)
{
	struct path p = BPF_CORE_READ(exe, f_path);
	__u32 r = build_path(p.dentry, p.mnt, out, swap);

	if (r & DS_PATH_TRUNCATED)
		*flags |= DS_F_EXE_TRUNCATED;
	if (exe && file_is_memfd(exe)) {
		*flags |= DS_F_EXE_MEMFD;
	} else {
		if (exe && file_is_deleted(exe))
			*flags |= DS_F_EXE_DELETED;
		if (r & DS_PATH_UNREACHABLE)
			*flags |= DS_F_EXE_UNREACHABLE;
	}
	return DS_PATH_LEN(r);
}

#endif /* DS_PATH_BPF_H */
