/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-side filters, as Elkeid's driver filter: records that an operator
 * does not want are dropped before the business level takes slot 1, so they
 * cost a few map lookups instead of path walks, copies and a trip through the
 * buffer. Each drop is counted (ds_counters.filtered_kernel).
 *
 * --uid and --cgroup select ("only these"); --allow-exe and --allow-argv drop
 * trusted work. The maps are filled by user space after load; a .rodata flag
 * per map says whether it is in use, so with a filter off the verifier prunes
 * its lookup and the programs are what they were without filters.
 *
 * The task a record describes is always current in our programs (exec: the
 * new image; fork: the parent; exit: the exiting task; a syscall: its caller),
 * so bpf_get_current_cgroup_id() is that task's cgroup.
 */
#ifndef DS_FILTER_BPF_H
#define DS_FILTER_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"

/* Real uids to report (--uid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, DS_FILTER_MAX);
} ds_filter_uid SEC(".maps");

/* cgroup v2 ids to report (--cgroup). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u8);
	__uint(max_entries, DS_FILTER_MAX);
} ds_filter_cgroup SEC(".maps");

/*
 * Trusted executables (--allow-exe), by identity: the (device, inode) of the
 * task's mm->exe_file. No path walk, and a copy of the binary elsewhere (or a
 * new file at the same path) is not trusted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct ds_exe_key);
	__type(value, __u8);
	__uint(max_entries, DS_FILTER_MAX);
} ds_allow_exe SEC(".maps");

/* Trusted command lines (--allow-argv): the seeded FNV-1a hash of the argv bytes -> their length. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, DS_FILTER_MAX);
} ds_allow_argv SEC(".maps");

static __always_inline int filters_on(void)
{
	return ds_cfg.filter_uid || ds_cfg.filter_cgroup || ds_cfg.filter_exe;
}

static __always_inline void count_filtered(void)
{
	struct ds_counters *c = counters();

	if (c)
		c->filtered_kernel++;
}

/* (uid_t)-1: no task has it (--uid refuses it). */
#define DS_NO_UID 0xffffffffu

/*
 * 1 when a filter excludes `task`'s records; --uid keeps them for its real uid
 * or for `also_uid` (the uid a set*id call was made as). __noinline: the
 * verifier walks these branches once, not in every program that calls it.
 */
static __noinline int filter_task_as(struct task_struct *task, int by_exe, __u32 also_uid)
{
	struct ds_exe_key k = {};
	struct inode *inode;
	__u64 cgid;
	__u32 uid;

	if (ds_cfg.filter_uid) {
		uid = BPF_CORE_READ(task, cred, uid.val);
		if (!bpf_map_lookup_elem(&ds_filter_uid, &uid) &&
		    (also_uid == DS_NO_UID || !bpf_map_lookup_elem(&ds_filter_uid, &also_uid)))
			return 1;
	}
	if (ds_cfg.filter_cgroup) {
		cgid = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&ds_filter_cgroup, &cgid))
			return 1;
	}
	if (ds_cfg.filter_exe && by_exe) {
		/* NULL for a kernel thread. */
		inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
		if (inode) {
			k.ino = BPF_CORE_READ(inode, i_ino);
			k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
			if (bpf_map_lookup_elem(&ds_allow_exe, &k))
				return 1;
		}
	}
	return 0;
}

static __always_inline int filter_task(struct task_struct *task, int by_exe)
{
	return filter_task_as(task, by_exe, DS_NO_UID);
}

/*
 * For a program about to build a record of `task`: 1 (and counted) when a
 * filter drops it; `by_exe` 0 leaves --allow-exe out (the exit's, see ds_exit);
 * `also_uid`, another uid --uid may keep it for (DS_NO_UID: none).
 */
static __always_inline int filtered_as(struct task_struct *task, int by_exe, __u32 also_uid)
{
	if (!filters_on() || !filter_task_as(task, by_exe, also_uid))
		return 0;
	count_filtered();
	return 1;
}

static __always_inline int filtered_by(struct task_struct *task, int by_exe)
{
	return filtered_as(task, by_exe, DS_NO_UID);
}

static __always_inline int filtered(struct task_struct *task)
{
	return filtered_by(task, 1);
}

#define DS_FNV_OFFSET 0xcbf29ce484222325ull
#define DS_FNV_PRIME 0x100000001b3ull

struct argv_hash {
	const __u8 *buf;
	__u64 h;
	__u32 n;
};

/* Eight bytes a step: one bpf_loop iteration per byte would cost more in calls than in hashing. */
static long argv_hash_step(__u32 i, struct argv_hash *a)
{
	__u32 at = i * 8;
	const __u8 *p = a->buf + (at & (DS_ARGS_CAP - 1));

#pragma unroll
	for (int j = 0; j < 8; j++) {
		if (at + j >= a->n)
			return 1;
		a->h = (a->h ^ p[j]) * DS_FNV_PRIME;
	}
	return 0;
}

/*
 * 1 when the argv bytes buf[0, n) are a trusted command line: FNV-1a over
 * them, seeded per run (src/filters/argv-hash.ts computes the same), found in
 * ds_allow_argv with the same length.
 */
static __noinline int argv_allowed(const char *buf, __u32 n)
{
	struct argv_hash a = {
		.buf = (const __u8 *)buf,
		.h = DS_FNV_OFFSET ^ ((__u64)ds_cfg.argv_seed_hi << 32 | ds_cfg.argv_seed_lo),
		.n = n,
	};
	__u32 *len;

	if (!n || n > DS_ARGS_CAP - 1)
		return 0;
	bpf_loop((n + 7) / 8, argv_hash_step, &a, 0);
	len = bpf_map_lookup_elem(&ds_allow_argv, &a.h);
	return len && *len == n;
}

#endif /* DS_FILTER_BPF_H */
