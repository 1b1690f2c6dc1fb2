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

static __always_inline __u64 new_tag(void)
{
	return ((__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32()) & ~3ull;
}

/* Level 1: everything the event needs that does not fit the stack, in slot 1. */
static __noinline int business_logic(void *ctx, struct task_struct *task, struct linux_binprm *bprm, __u32 type)
{
	__u64 comm[2] = {}; /* u64s: the serializer compares it 8 bytes at a time */
	struct ds_file_info *info;
	struct mm_struct *mm;
	struct path p;
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

	info->len[DS_STR_FILENAME] = 0;
	if (bprm) {
		long ret = bpf_probe_read_kernel_str(info->filename, sizeof(info->filename), BPF_CORE_READ(bprm, filename));

		if (ret > 0) {
			info->len[DS_STR_FILENAME] = (ret - 1) & (DS_FILENAME_CAP - 1);
			if (ret == DS_FILENAME_CAP)
				info->flags |= DS_F_FILENAME_TRUNCATED;
		}
	}

	/* argv is in the new mm at sched_process_exec, already faulted in by exec. */
	mm = BPF_CORE_READ(task, mm);
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
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

	p = BPF_CORE_READ(task, fs, pwd);
	r = build_path(p.dentry, p.mnt, info->cwd, info->swap);
	info->len[DS_STR_CWD] = r & ~DS_PATH_TRUNCATED;
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_CWD_TRUNCATED;

	p = BPF_CORE_READ(mm, exe_file, f_path);
	r = build_path(p.dentry, p.mnt, info->exe, info->swap);
	info->len[DS_STR_EXE] = r & ~DS_PATH_TRUNCATED;
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_EXE_TRUNCATED;

	common_info_fill(task, &info->ci);

	if (ds_cfg.inject_clobber)
		refresh_tid(tag);

	serialize_event(ctx, info, tag, comm, type);

	sd_put_local(info, gen);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int ds_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];

	return business_logic(ctx, task, bprm, DS_EVENT_EXEC);
}

/* The flood workload: one process's cheap syscall, through the same two levels. */
SEC("raw_tracepoint/sys_enter")
int ds_flood(struct bpf_raw_tracepoint_args *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != ds_bss.flood_tgid || ctx->args[1] != ds_bss.flood_nr)
		return 0;
	return business_logic(ctx, (void *)bpf_get_current_task(), NULL, DS_EVENT_FLOOD);
}

/* Level 1 for an exit: a process's main thread leaves (threads are not processes). */
SEC("raw_tracepoint/sched_process_exit")
int ds_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct ds_exit_info *info;
	__u64 tag = new_tag();
	__u32 gen = 0;

	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0;
	info = sd_get_local(sizeof(*info), &gen);
	if (!info)
		return 0;
	info->tag = tag;
	bpf_probe_read_kernel(info->comm, sizeof(info->comm), &task->comm);
	info->exit_code = BPF_CORE_READ(task, exit_code);
	info->runtime_ns = bpf_ktime_get_ns() - BPF_CORE_READ(task, start_time);
	common_info_fill(task, &info->ci);
	serialize_exit(ctx, task, info, tag);
	sd_put_local(info, gen);
	return 0;
}
