// SPDX-License-Identifier: GPL-2.0
/*
 * dual-slot: Elkeid's two-slot per-CPU heap, on live exec events.
 *
 * The BPF stack is 512 bytes; an exec event with its argument list and paths is
 * kilobytes. Like Elkeid's hids.c we borrow a BPF_MAP_TYPE_PERCPU_ARRAY as heap:
 * slot 1 holds the business function's temporaries, slot 0 the event being
 * serialized. Two slots, because the serializer runs while the business data it
 * reads is still held: with one slot it would overwrite its own input.
 *
 * The same object also runs the experiments that show why (mode single, nest3),
 * a guard that catches a helper grabbing a held slot, three transports and two
 * encodings. All are chosen at load time through .rodata, so the verifier prunes
 * what a run does not use.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "path.bpf.h"
#include "serialize.bpf.h"
#include "record.bpf.h"
#include "exec_context.bpf.h"
#include "filter.bpf.h"
#include "net_events.bpf.h"
#include "dns.bpf.h"
#include "file_events.bpf.h"
#include "process_events.bpf.h"
#include "exec_entry.bpf.h"

char LICENSE[] SEC("license") = "GPL";


struct ds_bss ds_bss;
/* Never set; see struct ds_wire_types. */
struct ds_wire_types *ds_wire_anchor __attribute__((unused));

/*
 * The misbehaving helper for --inject-clobber: like Elkeid's refresh_tid(), it
 * uses slot 1 for its own scratch while the business function still holds it.
 */
static __noinline void refresh_tid(__u64 tag)
{
	__u32 gen = 0;
	struct ds_file_info *scratch = sd_get_percpu_data(sizeof(*scratch), business_slot(), OWNER_REFRESH, &gen);

	if (!scratch)
		return;
	scratch->tag = ~tag;
	__builtin_memcpy(scratch->comm, "refresh_tid()\0\0", DS_COMM_LEN);
	sd_put_percpu_data(scratch, business_slot(), OWNER_REFRESH, gen, 0);
}

/*
 * The lab's interrupt-context level (experiments "irq"): programs on the
 * timer tick's hrtimer (hardirq) and on softirq_entry, which can land inside
 * any of our programs on the same CPU, each taking a business slot (and
 * writing it) and then a serializer slot, as a record built there would.
 * irq_slots 1: Elkeid's layout, every context on slots 1 and 0; 2: a pair
 * per context (softirq 3 and 2, hardirq 5 and 4), as the kernel keeps a
 * perf sample buffer per nesting level for bpf_perf_event_output. Our own
 * events never run in interrupt context (see bpf/net_events.bpf.h).
 */
static __always_inline int irq_level(__u32 own_pair)
{
	__u32 biz = ds_cfg.irq_slots == 2 ? own_pair + 1 : 1, g1 = 0, g0 = 0;
	struct ds_file_info *s = sd_get_percpu_data(sizeof(*s), biz, OWNER_IRQ, &g1);
	void *out;

	if (!s)
		return 0;
	s->tag = ~s->tag;
	out = sd_get_percpu_data(sizeof(__u64), biz - 1, OWNER_IRQ, &g0);
	sd_put_percpu_data(out, biz - 1, OWNER_IRQ, g0, 0);
	sd_put_percpu_data(s, biz, OWNER_IRQ, g1, 0);
	return 0;
}

SEC("raw_tracepoint/softirq_entry")
int ds_irq_softirq(void *ctx)
{
	return irq_level(2);
}

SEC("raw_tracepoint/hrtimer_expire_entry")
int ds_irq_hardirq(void *ctx)
{
	return irq_level(4);
}

/*
 * Level 1: everything the event needs that does not fit the stack, in slot 1.
 * The image is the new one (bprm, at sched_process_exec), the caller's own
 * (flood), or an exec that failed (stash: what sys_enter_execve kept, at
 * this address: stash_number()).
 */
static __noinline int business_logic(void *ctx, struct task_struct *task, struct linux_binprm *bprm, __u64 stash,
				     __u32 type)
{
	__u64 comm[2] = {}; /* u64s: the serializer compares it 8 bytes at a time */
	struct ds_file_info *info;
	struct mm_struct *mm;
	__u64 tag = new_tag();
	__u32 gen = 0, n, r;
	unsigned long start, end;

	info = sd_get_local(sizeof(*info), &gen);
	if (!info)
		return 0;

	info->tag = tag;
	bpf_get_current_comm(comm, sizeof(comm));
	__builtin_memcpy(info->comm, comm, DS_COMM_LEN);
	info->flags = 0;
	info->res = 0;

	info->len[DS_STR_FILENAME] = 0;
	if (bprm) {
		long ret = bpf_probe_read_kernel_str(info->filename, sizeof(info->filename), BPF_CORE_READ(bprm, filename));

		if (ret > 0) {
			info->len[DS_STR_FILENAME] = (ret - 1) & (DS_FILENAME_CAP - 1);
			if (ret == DS_FILENAME_CAP)
				info->flags |= DS_F_FILENAME_TRUNCATED;
		}
	}

	/* task is current: its fields are loads through self() (heap.bpf.h), not a helper call each. */
	mm = self()->mm;
	if (stash) {
		failed_exec_fill(info, stash);
	} else {
		/* argv is in the new mm at sched_process_exec, already faulted in by exec. */
		start = mm->arg_start;
		end = mm->arg_end;
		n = end > start ? end - start : 0;
		info->args_total = n;
		if (n > ds_cfg.max_arg_bytes)
			n = ds_cfg.max_arg_bytes;
		if (n > DS_ARGS_CAP - 1)
			n = DS_ARGS_CAP - 1;
		if (n && bpf_probe_read_user(info->args, n & (DS_ARGS_CAP - 1), (void *)start))
			n = 0;
		info->len[DS_STR_ARGS] = n;
		if (n < info->args_total)
			info->flags |= DS_F_ARGS_TRUNCATED;
	}

	/* --allow-argv: only a whole argv can match, and before the path walks below. */
	if (ds_cfg.filter_argv && type == DS_EVENT_EXEC && info->len[DS_STR_ARGS] == info->args_total &&
	    !(info->flags & DS_F_ARGS_TRUNCATED) &&
	    argv_allowed(info->args, info->len[DS_STR_ARGS])) {
		count_filtered();
		sd_put_local(info, gen);
		return 0;
	}

	/* Field by field, not a struct path copy: 6.1 counts every byte of this frame (512 for the chain). */
	r = build_path(self()->fs->pwd.dentry, self()->fs->pwd.mnt, info->cwd, info->swap);
	info->len[DS_STR_CWD] = DS_PATH_LEN(r);
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_CWD_TRUNCATED;

	r = build_path(mm->exe_file->f_path.dentry, mm->exe_file->f_path.mnt, info->exe, info->swap);
	info->len[DS_STR_EXE] = DS_PATH_LEN(r);
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_EXE_TRUNCATED;
	/* exec_extra() clears it for a memfd, whose own name is all its path. */
	if (r & DS_PATH_UNREACHABLE)
		info->flags |= DS_F_EXE_UNREACHABLE;

	common_info_fill(&info->ci);

	for (int i = 0; i < DS_STR_NR - DS_STR_TTY; i++)
		info->x.len[i] = 0;
	info->x.total = 0;
	info->x.exe_dev = 0;
	info->x.exe_ino = 0;
	info->x.sa_family = 0;
	info->x.sport = 0;
	info->x.dport = 0;
	if (bprm)
		exec_extra(task, info);

	if (ds_cfg.inject_clobber)
		refresh_tid(tag);

	serialize_event(ctx, info, tag, comm, type);

	sd_put_local(info, gen);
	return 0;
}

#define DS_PF_KTHREAD 0x00200000

SEC("raw_tracepoint/sched_process_exec")
int ds_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];
	__u32 type = DS_EVENT_EXEC;

	/*
	 * The kernel's own helpers (call_usermodehelper) are children of kernel
	 * threads (kthreadd's). Not PID 1, whose parent is the idle task (pid 0,
	 * a kernel thread too): its re-exec (systemctl daemon-reexec) is an exec.
	 */
	if (selected(DS_EVENT_USERMODE_HELPER) && (self()->real_parent->flags & DS_PF_KTHREAD) &&
	    self()->real_parent->pid != 0)
		type = DS_EVENT_USERMODE_HELPER;
	if (!selected(type) || filtered(task))
		return 0;
	return business_logic(ctx, task, bprm, 0, type);
}

/* Attached to sys_enter_execve and sys_enter_execveat: which one, by the call's number (where its arguments are). */
SEC("tracepoint")
int ds_execve_enter(struct ds_sys_enter *ctx)
{
	exec_enter(ctx, sys_nr(ctx) == DS_NR_EXECVEAT ? DS_EXECVEAT : DS_EXECVE);
	return 0;
}

/* An exec's privilege escalation (exec_privesc): the stash sys_enter_execve(at) kept, found by the task. */
SEC("tracepoint/sched/sched_process_exec")
int ds_exec_privesc(void *ctx)
{
	struct ds_inflight *in = exec_stash();

	if (in && in->nr != DS_NR_NONE)
		exec_privesc(ctx, in);
	return 0;
}

/* Attached to sys_exit_execve and sys_exit_execveat: an exec that failed, as an exec record with its error. */
SEC("tracepoint")
int ds_execve_exit(struct ds_sys_exit *ctx)
{
	struct ds_inflight *in;

	if (!(in = exec_stash_get(ctx)))
		return 0;
	if (in->res >= 0 || !selected(DS_EVENT_EXEC) || filtered((void *)bpf_get_current_task())) {
		inflight_drop(in); /* and the slot with it */
		return 0;
	}
	business_logic(ctx, (void *)bpf_get_current_task(), NULL, stash_number(in), DS_EVENT_EXEC);
	/*
	 * Found again, not kept across the call: the stash is in one of two maps,
	 * and a pointer kept would have the record's code verified once for each.
	 */
	if ((in = exec_stash()))
		inflight_drop(in);
	return 0;
}

/*
 * The benchmark's floor (bench --workload syscall): nothing, on the same
 * syscall tracepoints as an event set. What it costs an unrelated syscall is
 * the kernel's syscall tracing itself; what the event set costs beyond it is
 * ours. "?": loaded only when asked for.
 */
SEC("?tracepoint")
int ds_nop(void *ctx)
{
	return 0;
}

/* The flood workload: one process's cheap syscall, through the same two levels. */
SEC("raw_tracepoint/sys_enter")
int ds_flood(struct bpf_raw_tracepoint_args *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != ds_bss.flood_tgid || ctx->args[1] != ds_bss.flood_nr)
		return 0;
	return business_logic(ctx, (void *)bpf_get_current_task(), NULL, 0, DS_EVENT_FLOOD);
}

/*
 * The exiting process's executable. Since Linux 6.16 the tracepoint fires
 * before exit_mm(); before, the task has no mm any more and exe stays empty
 * (documented: the kernel, not the agent, lost it). `current` is the task.
 */
static __noinline void exit_exe(struct ds_exit_info *info)
{
	struct task_struct *t = self();

	info->flags = 0;
	/* A load through a NULL mm reads NULL: an empty exe. */
	info->len_exe = exe_path(t->mm->exe_file, info->exe, info->swap, &info->flags);
}

/*
 * Level 1 for an exit: a process ends with its last thread (threads are not
 * processes). do_exit() counts the thread out of signal->live before this
 * tracepoint. Not its main thread: that one may leave first (pthread_exit), or
 * be ended by another thread's exec (de_thread), with code 0, while the
 * process goes on.
 */
SEC("raw_tracepoint/sched_process_exit")
int ds_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct ds_exit_info *info;
	__u64 tag = new_tag();
	__u32 gen = 0;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	/* Not by --allow-exe: before 6.16 the exe is gone here, and an exit is kept on every kernel alike. */
	if (filtered_by(task, 0))
		return 0;
	info = sd_get_local(sizeof(*info), &gen);
	if (!info)
		return 0;
	info->tag = tag;
	bpf_probe_read_kernel(info->comm, sizeof(info->comm), &task->comm);
	info->exit_code = BPF_CORE_READ(task, exit_code);
	/* The process's: its leader's start (a thread that execs takes it over), whichever thread is last. */
	info->runtime_ns = bpf_ktime_get_ns() - BPF_CORE_READ(task, group_leader, start_time);
	common_info_fill(&info->ci);
	exit_exe(info);
	serialize_exit(ctx, task, info, tag);
	sd_put_local(info, gen);
	return 0;
}

/*
 * The records after exec and exit. Each syscall event is a pair: sys_enter
 * keeps the arguments (ds_inflight), sys_exit builds the record with the
 * result. Only the per-syscall tracepoints: the kernel filters by syscall
 * number before any program runs, so an unrelated syscall costs nothing here
 * (a generic sys_enter would run on every one).
 */

/*
 * The syscall records' serializer (rec_submit jumps here): the actor's part,
 * then the record from slot 1 into slot 0 or the ring, slot 1 given back.
 */
SEC("tracepoint")
int ds_emit(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_handoff *h = handoff();
	__u32 id = business_slot();
	struct ds_rec_info *info = bpf_map_lookup_elem(&g_percpu_data, &id);

	if (!info || !h)
		return 0;
	rec_common(task, info);
	/* --inject-clobber: the misbehaving helper strikes syscall records too, between their two levels. */
	if (ds_cfg.inject_clobber)
		refresh_tid(h->tag);
	emit_record(ctx, task, info, h->tag);
	sd_put_local(info, h->gen);
	if (h->resume) {
		h->resume = 0;
		bpf_tail_call(ctx, &ds_emitter, DS_TAIL_RESUME_MMSG);
	}
	return 0;
}
