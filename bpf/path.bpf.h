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
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	const unsigned char *name;
	char *swap = w->swap;
	__u32 len, pos;

	if (d == mnt_root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		/* The namespace root (or an internal mount's). */
		if (up == mnt) {
			w->done = 1;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}

	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
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

#endif /* DS_PATH_BPF_H */
