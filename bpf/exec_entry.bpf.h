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

/*
 * An exec's argv, from the caller's memory: each string with its NUL, as the
 * kernel copies it. The pointers are read DS_ARGV_BATCH at a time: a helper
 * call to read user memory is about 100 ns here (the fault guard and the
 * usercopy checks), as much as the string it reads, and one read per pointer
 * was a third of the entry's reads for a short command line. A batch that
 * cannot be read whole (the array ends at an unmapped page, say) falls back
 * to one pointer at a time, as before; what lies past argv's NULL is read
 * but never used.
 */
#define DS_ARGV_BATCH 8
struct argv_walk {
	const char *const *argv;
	char *buf;
	struct ds_argv_state *st; /* set by the caller */
	__u32 first;              /* the argv index the walk starts at */
	__u32 batch_at;           /* the argv index ptrs[0] holds */
	__u32 batch_len;          /* pointers held in ptrs: DS_ARGV_BATCH, or 0 */
	__u32 pad;
	__u64 ptrs[DS_ARGV_BATCH];
};

static long argv_step(__u32 i, struct argv_walk *w)
{
	struct ds_argv_state *st = w->st;
	const char *arg = NULL;
	__u32 at;
	long n;

	i += w->first;
	if (i - w->batch_at >= w->batch_len) {
		w->batch_at = i;
		w->batch_len = bpf_probe_read_user(w->ptrs, sizeof(w->ptrs), &w->argv[i]) ? 0 : DS_ARGV_BATCH;
	}
	if (w->batch_len) {
		arg = (const char *)w->ptrs[(i - w->batch_at) & (DS_ARGV_BATCH - 1)];
	} else if (bpf_probe_read_user(&arg, sizeof(arg), &w->argv[i])) {
		/* A pointer or a string not readable here (not paged in): cut, and say where. */
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

static __always_inline void argv_walk(const char *const *argv, char *buf, struct ds_argv_state *st, __u32 first)
{
	struct argv_walk w = { .argv = argv, .buf = buf, .st = st, .first = first };

	if (w.argv)
		bpf_loop(4096, argv_step, &w, 0);
}

/* sys_enter_execve(at): reads the filename and argv into the call's copy, while the exec record wants them. */
static __noinline void exec_args_save(struct ds_entry_copy *a, const void *filename, const char *const *argv)
{
	long ret;

	if (!a)
		return;
	a->mm = (__u64)self()->mm;
	ret = bpf_probe_read_user_str(a->filename, sizeof(a->filename), filename);
	a->filename_len = ret > 0 ? (ret - 1) & (DS_FILENAME_CAP - 1) : 0;
	a->filename_cut = ret == DS_FILENAME_CAP;
	a->filename_unread = ret <= 0 && filename;
	__builtin_memset(&a->argv, 0, sizeof(a->argv));
	argv_walk(argv, a->area, &a->argv, 0);
	a->copied = 1;
}

/*
 * An exec's stash is in its copy slot (struct ds_entry_copy's `in`), found
 * again by the task from the same probes: at sched_process_exec and at the
 * exit. In the thread's task storage instead, each exec of a new process
 * made that storage (1.3 µs of BPF per exec in an exec storm) and its exit
 * freed it. A slot the task already owns is one whose exit no program saw
 * (a thread is in one call at a time): it is taken again first, so the
 * stash is always in the first slot the task owns.
 */
static __always_inline struct ds_entry_copy *exec_slot_claim(__u64 me, __u32 *at)
{
	struct ds_entry_copy *e = copy_slot_probe(me, at, 0);

	return e ? e : copy_slot_probe(me, at, 1);
}

/* The current task's exec stash: in a slot (its copy_slot names that slot), else in its task storage. */
static __always_inline struct ds_inflight *exec_stash(void)
{
	__u32 idx = 0;
	struct ds_entry_copy *e = copy_slot_probe(bpf_get_current_task(), &idx, 0);

	if (e && e->in.copy_slot == idx + 1)
		return &e->in;
	return inflight_of_current(0);
}

static __noinline void exec_enter(struct ds_sys_enter *ctx, __u32 kind)
{
	/* Read only for a record that can be made: a filtered task's exit drops it anyway. */
	int copy = selected(DS_EVENT_EXEC) && !(filters_on() && filter_task(self(), 1));
	struct ds_entry_copy *e;
	struct ds_inflight *in;
	__u32 idx = 0;

	if ((e = exec_slot_claim(bpf_get_current_task(), &idx))) {
		in = &e->in;
		inflight_fill(ctx, in, kind);
		in->copy_slot = idx + 1;
		e->copied = 0;
	} else {
		/* All four held: the stash in the thread, the copy in a slot or the spill. */
		if (!(in = inflight_save(ctx, kind)) || !copy)
			return;
		e = entry_copy_claim(in);
	}
	/* As numbers: the stash is in one of two maps, and this is verified once. */
	if (copy)
		exec_args_save(e, exec_filename(in), exec_argv(in));
}

/* sys_exit_execve(at): the stash its entry kept, with the result; NULL if none. Ends with inflight_drop(). */
static __always_inline struct ds_inflight *exec_stash_get(struct ds_sys_exit *ctx)
{
	struct ds_inflight *in = exec_stash();

	if (!in || in->nr != sys_nr(ctx))
		return NULL;
	in->res = ctx->ret;
	return in;
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
#define DS_STASH_AT 64 /* where in slot 1's swap the stash is copied: after the argv walk's state */
_Static_assert(sizeof(struct ds_argv_state) <= DS_STASH_AT && DS_STASH_AT + sizeof(struct ds_inflight) <= DS_PATH_CAP,
	       "the stash's copy fits swap");

static __noinline void failed_exec_fill(struct ds_file_info *info, __u64 stash)
{
	/* swap is free until the path walks after this: the argv walk's state, and the stash (stash_number()). */
	struct ds_argv_state *st = (void *)info->swap;
	struct ds_inflight *in = (void *)&info->swap[DS_STASH_AT];
	const struct ds_entry_copy *a = NULL;
	int same;
	long ret;
	__u32 n;

	info->len[DS_STR_FILENAME] = 0;
	info->len[DS_STR_ARGS] = 0;
	info->args_total = 0;
	info->res = 0;
	if (!bpf_probe_read_kernel(in, sizeof(*in), (const void *)stash)) {
		info->res = in->res;
		a = entry_copy_of(in);
	}
	if (!a || !a->copied) {
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
		argv_walk(exec_argv(in), info->args, st, a->argv.index);
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
