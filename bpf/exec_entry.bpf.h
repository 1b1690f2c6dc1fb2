/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What an execve's or execveat's entry keeps (bpf/inflight.bpf.h's stash and
 * copy: its creds, filename and argv), and the failed exec's record filled
 * from it at the exit (business_logic in dual_slot.bpf.c).
 */
#ifndef DS_EXEC_ENTRY_BPF_H
#define DS_EXEC_ENTRY_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "inflight.bpf.h"
#include "filter.bpf.h"
#include "record.bpf.h"

/* sys_enter_execve's and sys_enter_execveat's arguments differ: which one a ds_inflight holds. */
enum { DS_EXECVE = 1, DS_EXECVEAT = 2 };

#define DS_FAILED_ARGS_CAP (DS_ARGS_CAP / 2)

/* What an execve or execveat was given: its filename, its argv. */
static __always_inline const void *exec_filename(const struct ds_inflight *in)
{
	return (const void *)(in->kind == DS_EXECVEAT ? in->args[1] : in->args[0]);
}

static __always_inline const char *const *exec_argv(const struct ds_inflight *in)
{
	return (const char *const *)(in->kind == DS_EXECVEAT ? in->args[2] : in->args[1]);
}
_Static_assert(2 * DS_FAILED_ARGS_CAP <= DS_COPY_AREA, "argv_step() reads at < CAP up to CAP bytes");

/* An exec's argv, from the caller's memory: each string with its NUL, as the kernel copies it. */
struct argv_walk {
	const char *const *argv;
	char *buf;
	struct ds_argv_state *st; /* set by the caller */
	__u32 first;              /* the argv index the walk starts at */
	__u32 pad;
};

static long argv_step(__u32 i, struct argv_walk *w)
{
	struct ds_argv_state *st = w->st;
	const char *arg = NULL;
	__u32 at;
	long n;

	i += w->first;
	/* A pointer or a string not readable here (not paged in): cut, and say where. */
	if (bpf_probe_read_user(&arg, sizeof(arg), &w->argv[i])) {
		st->cut = 1;
		st->unreadable = 1;
		st->index = i;
		return 1;
	}
	if (!arg)
		return 1;
	if (st->pos >= ds_cfg.max_arg_bytes || st->pos >= DS_FAILED_ARGS_CAP - 1) {
		st->cut = 1;
		return 1;
	}
	/* at < CAP and CAP - at <= CAP: the read stays inside the args buffer (2 x CAP). */
	at = st->pos & (DS_FAILED_ARGS_CAP - 1);
	n = bpf_probe_read_user_str(w->buf + at, DS_FAILED_ARGS_CAP - at, arg);
	if (n <= 0) {
		st->cut = 1;
		st->unreadable = 1;
		st->index = i;
		return 1;
	}
	st->pos += n;
	if (st->pos >= DS_FAILED_ARGS_CAP - 1)
		st->cut = 1;
	return 0;
}

static __always_inline void argv_walk(const struct ds_inflight *in, char *buf, struct ds_argv_state *st, __u32 first)
{
	struct argv_walk w = { .argv = exec_argv(in), .buf = buf, .st = st, .first = first };

	if (w.argv)
		bpf_loop(4096, argv_step, &w, 0);
}

/* sys_enter_execve(at): claims a slot and reads the filename and argv into it, while the exec record wants them. */
static __noinline void exec_args_save(struct ds_inflight *in)
{
	struct ds_entry_copy *a;
	long ret;

	/* Read only for a record that can be made: a filtered task's exit drops it anyway. */
	if (!in || !selected(DS_EVENT_EXEC) || (filters_on() && filter_task(self(), 1)))
		return;
	if (!(a = entry_copy_claim(in)))
		return;
	a->mm = (__u64)self()->mm;
	ret = bpf_probe_read_user_str(a->filename, sizeof(a->filename), exec_filename(in));
	a->filename_len = ret > 0 ? (ret - 1) & (DS_FILENAME_CAP - 1) : 0;
	a->filename_cut = ret == DS_FILENAME_CAP;
	a->filename_unread = ret <= 0 && exec_filename(in);
	__builtin_memset(&a->argv, 0, sizeof(a->argv));
	argv_walk(in, a->area, &a->argv, 0);
}

/*
 * What an exec that failed was asked to run: its filename and argv as its
 * entry read them. What the entry could not read (a page not in memory yet: a
 * fresh mapping of a file, say) is read now, after the kernel's own copy
 * faulted it in, from where the entry stopped, and flagged DS_F_READ_AT_EXIT:
 * it may be what another thread wrote since. Not when the exec failed after
 * replacing the caller's memory (past its point of no return): that memory is
 * the new program's. Without a copy (none could be allocated, or the agent
 * attached while the exec was in flight) both are empty and flagged
 * truncated: not seen.
 */
static __noinline void failed_exec_fill(struct ds_file_info *info, const struct ds_inflight *in)
{
	const struct ds_entry_copy *a = entry_copy_of(in);
	struct ds_argv_state *st = (void *)info->swap; /* free until the path walks after this */
	int same;
	long ret;
	__u32 n;

	info->res = in->res;
	info->len[DS_STR_FILENAME] = 0;
	info->len[DS_STR_ARGS] = 0;
	info->args_total = 0;
	if (!a) {
		info->flags |= DS_F_FILENAME_TRUNCATED | DS_F_ARGS_TRUNCATED;
		return;
	}
	same = a->mm == (__u64)self()->mm;
	if (a->filename_unread && same) {
		ret = bpf_probe_read_user_str(info->filename, sizeof(info->filename), exec_filename(in));
		info->len[DS_STR_FILENAME] = ret > 0 ? (ret - 1) & (DS_FILENAME_CAP - 1) : 0;
		info->flags |= ret > 0 ? DS_F_READ_AT_EXIT : DS_F_FILENAME_TRUNCATED;
		if (ret == DS_FILENAME_CAP)
			info->flags |= DS_F_FILENAME_TRUNCATED;
	} else {
		n = a->filename_len & (DS_FILENAME_CAP - 1);
		if (n)
			bpf_probe_read_kernel(info->filename, n, a->filename);
		info->len[DS_STR_FILENAME] = n;
		if (a->filename_cut || a->filename_unread)
			info->flags |= DS_F_FILENAME_TRUNCATED;
	}
	n = a->argv.pos;
	if (n > DS_FAILED_ARGS_CAP)
		n = DS_FAILED_ARGS_CAP;
	if (n)
		bpf_probe_read_kernel(info->args, n, a->area);
	st->pos = n;
	st->cut = a->argv.cut;
	st->unreadable = 0;
	st->index = 0;
	if (a->argv.unreadable && same) {
		st->cut = 0;
		argv_walk(in, info->args, st, a->argv.index);
		if (st->pos > n)
			info->flags |= DS_F_READ_AT_EXIT;
	}
	/* pos can be CAP itself: a last string cut at the buffer's end. */
	info->len[DS_STR_ARGS] = st->pos & (DS_ARGS_CAP - 1);
	info->args_total = st->pos;
	if (st->cut)
		info->flags |= DS_F_ARGS_TRUNCATED;
}

#endif /* DS_EXEC_ENTRY_BPF_H */
