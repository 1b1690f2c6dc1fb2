// SPDX-License-Identifier: GPL-2.0
/*
 * The process records after exec and exit: fork, setsid, prctl PR_SET_NAME,
 * ptrace, memfd_create, kill/tkill/tgkill and privilege_escalation (a set*id
 * call that makes a task root, and an exec that raised its privilege: see
 * exec_privesc below, and ds_exec_privesc in dual_slot.bpf.c). Each syscall
 * record is a pair on the per-syscall tracepoints: sys_enter keeps the
 * arguments (ds_inflight), sys_exit fills slot 1 and jumps to ds_emit
 * (record.bpf.h's rec_submit).
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "record.bpf.h"
#include "filter.bpf.h"

/* A new process: sched_process_fork, when the child is a new thread group. */
SEC("raw_tracepoint/sched_process_fork")
int ds_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0];
	struct task_struct *child = (void *)ctx->args[1];
	struct ds_fork_data *d;
	struct ds_rec_info *info;
	__u64 tag = new_tag();
	__u32 gen = 0;

	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (filtered(parent))
		return 0;
	info = rec_open(parent, tag, &gen);
	if (!info)
		return 0;
	d = (void *)info->data;
	d->child_pid = BPF_CORE_READ(child, tgid);
	d->pad = 0;
	d->child_start_ns = BPF_CORE_READ(child, start_time);
	info->data_len = sizeof(*d);
	info->type = DS_EVENT_FORK;
	info->res = 0;
	info->syscall = 0;
	emit_record(ctx, parent, info, tag);
	sd_put_local(info, gen);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_setsid")
int ds_setsid_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;

	info = rec_begin(task);
	if (!info)
		return 0;
	rec_submit(ctx, info, DS_EVENT_SETSID, ctx->ret, sys_nr(ctx), NULL);
	return 0;
}

#define DS_PR_SET_NAME 15

SEC("tracepoint/syscalls/sys_enter_prctl")
int ds_prctl_enter(struct ds_sys_enter *ctx)
{
	struct ds_inflight *in;

	/* The name as the kernel is about to copy it, in the stash: the exit does not read it again. */
	if (ctx->args[0] == DS_PR_SET_NAME && (in = inflight_save(ctx, 0)))
		in->user[3] = bpf_probe_read_user_str(in->user, DS_COMM_LEN, (void *)in->args[1]);
	return 0;
}

/* prctl(PR_SET_NAME): the name before and the name asked for, both kept at entry. */
static __always_inline __u32 prctl_fill(struct task_struct *task, struct ds_rec_info *info,
					const struct ds_inflight *in)
{
	struct ds_prctl_data *d = (void *)info->data;
	long n;

	d->option = in->args[0];
	d->pad = 0;
	info->data_len = sizeof(*d);
	__builtin_memcpy(info->a, in->comm, DS_COMM_LEN);
	info->len_a = comm_len(in->comm);

	/*
	 * Done: the name is the kernel's own copy, in the task. Else the entry's
	 * (in->user[3]: its read's result); not readable then (not paged in):
	 * read now, and flagged.
	 */
	if (in->res == 0) {
		__builtin_memcpy(info->b, (const void *)self()->comm, DS_COMM_LEN);
		info->len_b = comm_len((const __u64 *)info->b);
	} else if ((long)in->user[3] > 0) {
		info->len_b = copied_str(info->b, DS_COMM_LEN, rec_number(info, in->user), &info->flags);
	} else {
		n = bpf_probe_read_user_str(info->b, DS_COMM_LEN, (void *)in->args[1]);
		info->len_b = n > 1 ? (n - 1) & (DS_COMM_LEN - 1) : 0;
		info->flags |= n > 0 ? DS_F_READ_AT_EXIT : DS_F_STR_TRUNCATED;
		if (n == DS_COMM_LEN)
			info->flags |= DS_F_STR_TRUNCATED;
	}
	return DS_EVENT_PRCTL;
}

SEC("tracepoint/syscalls/sys_exit_prctl")
int ds_prctl_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, prctl_fill);
}

/* The requests that attach to a process or change its memory or registers. */
static __always_inline int ptrace_watched(__s64 req)
{
	switch (req) {
	case 4:      /* PTRACE_POKETEXT */
	case 5:      /* PTRACE_POKEDATA */
	case 6:      /* PTRACE_POKEUSR */
	case 13:     /* PTRACE_SETREGS */
	case 16:     /* PTRACE_ATTACH */
	case 0x4205: /* PTRACE_SETREGSET */
	case 0x4206: /* PTRACE_SEIZE */
		return 1;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int ds_ptrace_enter(struct ds_sys_enter *ctx)
{
	if (ptrace_watched(ctx->args[0]))
		inflight_save(ctx, 0);
	return 0;
}

/*
 * The tracee among the caller's (current->ptraced), by the pid the caller gave,
 * as its own pid namespace numbers it: after a successful ATTACH or SEIZE, and
 * for every POKE, the target is on that list. Without kprobes there is no
 * lookup by pid; this list is all a tracepoint can reach.
 */
static __noinline struct task_struct *tracee(struct task_struct *task, __u32 vpid)
{
	unsigned long head = (unsigned long)task + bpf_core_field_offset(struct task_struct, ptraced);
	unsigned long link = bpf_core_field_offset(struct task_struct, ptrace_entry);
	unsigned int level = BPF_CORE_READ(task, thread_pid, level);
	struct list_head *pos = BPF_CORE_READ(task, ptraced.next);

	for (int i = 0; i < 16; i++) {
		struct task_struct *t;

		if (!pos || (unsigned long)pos == head)
			return NULL;
		t = (void *)pos - link;
		if (BPF_CORE_READ(t, thread_pid, numbers[level & 31].nr) == vpid)
			return t;
		pos = BPF_CORE_READ(pos, next);
	}
	return NULL;
}

static __always_inline __u32 ptrace_fill(struct task_struct *task, struct ds_rec_info *info,
					 const struct ds_inflight *in)
{
	struct ds_ptrace_data *d = (void *)info->data;
	struct task_struct *t;
	struct path p;
	__u32 r;

	d->request = in->args[0];
	d->target_pid = in->args[1];
	d->addr = in->args[2];
	d->data = in->args[3];
	d->pad = 0;
	info->data_len = sizeof(*d);
	t = tracee(task, d->target_pid);
	if (t) {
		p = BPF_CORE_READ(t, mm, exe_file, f_path);
		r = build_path(p.dentry, p.mnt, info->a, info->swap);
		info->len_a = DS_PATH_LEN(r);
		if (r & DS_PATH_TRUNCATED)
			info->flags |= DS_F_STR_TRUNCATED;
	}
	return DS_EVENT_PTRACE;
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int ds_ptrace_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, ptrace_fill);
}

static __always_inline __u32 memfd_create_fill(struct task_struct *task, struct ds_rec_info *info,
					       const struct ds_inflight *in)
{
	struct ds_memfd_create_data *d = (void *)info->data;

	d->mflags = in->args[1];
	d->pad = 0;
	info->data_len = sizeof(*d);
	info->len_a = copied_str(info->a, DS_REC_STR_CAP, entry_name(info, in, 0), &info->flags);
	return DS_EVENT_MEMFD_CREATE;
}

SEC("tracepoint/syscalls/sys_exit_memfd_create")
int ds_memfd_create_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, memfd_create_fill);
}

/* kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig): kept as (pid, tid, sig). */
enum { DS_KILL = 1, DS_TKILL = 2, DS_TGKILL = 3 };

SEC("tracepoint/syscalls/sys_enter_kill") DS_STASH(ds_kill_enter, DS_KILL)
SEC("tracepoint/syscalls/sys_enter_tkill") DS_STASH(ds_tkill_enter, DS_TKILL)
SEC("tracepoint/syscalls/sys_enter_tgkill") DS_STASH(ds_tgkill_enter, DS_TGKILL)

/* Attached to sys_exit_kill, sys_exit_tkill and sys_exit_tgkill (src/wire/events.ts). */
static __always_inline __u32 kill_fill(struct task_struct *task, struct ds_rec_info *info,
				       const struct ds_inflight *in)
{
	struct ds_kill_data *d = (void *)info->data;

	d->target_pid = in->args[0];
	d->target_tid = in->kind == DS_TGKILL ? in->args[1] : 0;
	d->sig = in->kind == DS_TGKILL ? in->args[2] : in->args[1];
	d->pad = 0;
	info->data_len = sizeof(*d);
	return DS_EVENT_KILL;
}

/* Attached to sys_exit_kill, sys_exit_tkill and sys_exit_tgkill (src/wire/events.ts). */
SEC("tracepoint")
int ds_kill_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, kill_fill);
}

/* Attached to every sys_enter_set*id: the creds before the call. */
SEC("tracepoint") DS_STASH(ds_setid_enter, 0)

static __always_inline int has_root(const struct ds_creds *c)
{
	return !c->uid || !c->euid || !c->suid || !c->fsuid;
}

static __always_inline int has_root_group(const struct ds_creds *c)
{
	return !c->gid || !c->egid || !c->sgid || !c->fsgid;
}

/* The privilege_escalation record's type part, in slot 1: the old creds as kept, the new as they are. */
static __always_inline void privesc_fill(struct task_struct *task, struct ds_rec_info *info, const struct ds_inflight *in,
					 __u32 how)
{
	const struct cred *cr = BPF_CORE_READ(task, cred);
	struct ds_privilege_escalation_data *d = (void *)info->data;

	d->how = how;
	d->pad = 0;
	d->cap_effective_old = in->cap_effective;
	d->cap_effective_new = cap_effective(cr);
	__builtin_memcpy(&d->old, &in->creds, sizeof(d->old));
	creds_read(cr, &d->new);
	info->data_len = sizeof(*d);
}

/*
 * An exec that raised the task's privilege: effective ids that differ from the
 * real ones (a setuid or setgid file), or capabilities the caller did not have
 * (file capabilities). At sched_process_exec, from a tracepoint program
 * (ds_exec_privesc), not from ds_exec, a raw tracepoint that would have to
 * serialize the record in place: from a tracepoint the record goes to
 * ds_emit, and ds_exec does not verify a second serializer (12 of its 33 ms
 * in the default set on this project's host). Not at the execve exit: a
 * 64-bit image's exit is reported as execve's (the kernel rewrites the call's
 * number), so an execveat's stash is not found there, and a 32-bit image's
 * exit is not traced at all. The stash stays for the exit, which drops it.
 */
static __always_inline void exec_privesc(void *ctx, struct ds_inflight *in)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	const struct cred *cr = self()->cred; /* task is current */
	struct ds_rec_info *info;
	struct ds_creds now;

	creds_read(cr, &now);
	if (!(now.euid != now.uid || now.egid != now.gid || (cap_effective(cr) & ~in->cap_effective)))
		return;
	if ((info = rec_begin(task))) {
		privesc_fill(task, info, in, DS_PRIVESC_EXEC);
		rec_submit(ctx, info, DS_EVENT_PRIVILEGE_ESCALATION, in->res, in->nr, NULL);
	}
}

/* Attached to every sys_exit_set*id: a non-root task that made itself root. */
SEC("tracepoint")
int ds_setid_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;
	struct ds_creds now;
	struct ds_inflight *in;

	if (!(in = inflight_get(ctx)))
		return 0;
	creds_read(BPF_CORE_READ(task, cred), &now);
	if ((!has_root(&in->creds) && has_root(&now)) || (!has_root_group(&in->creds) && has_root_group(&now))) {
		/* --uid by the uid the call was made as too: a watched user who made itself root stays watched. */
		info = rec_begin_as(task, in->creds.uid);
		if (info) {
			privesc_fill(task, info, in, DS_PRIVESC_SETID);
			rec_submit(ctx, info, DS_EVENT_PRIVILEGE_ESCALATION, in->res, in->nr, in);
			return 0;
		}
	}
	inflight_drop(in);
	return 0;
}
