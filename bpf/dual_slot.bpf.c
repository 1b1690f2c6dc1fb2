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

char LICENSE[] SEC("license") = "GPL";

/* Load-time configuration, written by user space before bpf_object__load. */
const volatile __u32 cfg_mode = DS_MODE_DUAL;
const volatile __u32 cfg_slots = 2;
const volatile __u32 cfg_transport = DS_TRANSPORT_PERF;
const volatile __u32 cfg_encoding = DS_ENCODING_COMPACT;
const volatile __u32 cfg_guard = 0;
const volatile __u32 cfg_inject_clobber = 0;
const volatile __u32 cfg_max_arg_bytes = 4096;

/* The flood target only exists after load, so it lives in .bss. */
__u32 flood_tgid = 0;
__u32 flood_nr = 0;

struct sd_percpu_data {
	__u8 data[SD_EVENT_MAX];
};

/* max_entries is rewritten from user space: 1 (single), 2 (dual), 3 (nest3). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sd_percpu_data);
	__uint(max_entries, 2);
} g_percpu_data SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ds_events SEC(".maps");

/* Resized from user space; shrunk to one page when the perf transport runs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ds_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ds_counters);
	__uint(max_entries, 1);
} ds_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ds_slot_state);
	__uint(max_entries, DS_MAX_SLOTS);
} ds_slot_state SEC(".maps");

/* Slot 1 as the business function lays it out: Elkeid's var_exec, in small. */
struct ds_file_info {
	__u64 tag;
	char comm[DS_COMM_LEN];
	__u32 len[DS_STR_NR];
	__u32 flags;
	__u32 args_total;
	char filename[DS_FILENAME_CAP];
	char args[DS_ARGS_CAP];
	char cwd[DS_PATH_CAP];
	char exe[DS_PATH_CAP];
	char swap[DS_PATH_CAP]; /* paths are built backwards here, then copied */
};

/* The third level's scratch (nest3): the parent's comm and exe path. */
struct ds_enrich {
	__u64 tag;
	char comm[DS_COMM_LEN];
	char path[DS_PATH_CAP];
	char swap[DS_PATH_CAP];
};

/* The verifier bounds swap + pos + name by the value size, so leave that slack. */
_Static_assert(sizeof(struct ds_file_info) + DS_NAME_MAX + 1 <= SD_EVENT_MAX, "slot 1 overflows");
_Static_assert(sizeof(struct ds_enrich) + DS_NAME_MAX + 1 <= SD_EVENT_MAX, "enrich slot overflows");
_Static_assert(sizeof(struct ds_exec) + DS_COMM_LEN + DS_FILENAME_CAP + DS_ARGS_CAP + 3 * DS_PATH_CAP
		       <= SD_EVENT_MAX, "a compact event must always fit slot 0");
_Static_assert(sizeof(struct ds_exec_fixed) <= SD_EVENT_MAX, "fixed event overflows slot 0");

/* Keep the wire types in the object's BTF, so tests can check offsets against it. */
struct ds_exec_fixed *unused_ds_exec_fixed __attribute__((unused));
struct ds_counters *unused_ds_counters __attribute__((unused));

enum ds_owner {
	OWNER_BUSINESS = 1,
	OWNER_SERIALIZER = 2,
	OWNER_ENRICH = 3,
	OWNER_REFRESH = 4,
};

#define DS_PATH_TRUNCATED (1u << 31)

static __always_inline struct ds_counters *counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ds_counters, &zero);
}

/*
 * Guard: a slot has one owner at a time. A get on a held slot, or a put whose
 * generation no longer matches, means a same-level helper took the slot in the
 * middle, which is exactly what Elkeid's refresh_tid() warning is about.
 */
static __always_inline __u32 guard_take(__u32 id, __u32 owner)
{
	struct ds_slot_state *st = bpf_map_lookup_elem(&ds_slot_state, &id);
	struct ds_counters *c;

	if (!st)
		return 0;
	if (st->owner && st->owner != owner) {
		if (!st->clobbered && (c = counters()))
			c->clobbers++;
		st->clobbered = 1;
	}
	st->owner = owner;
	st->gen++;
	return st->gen;
}

static __always_inline void guard_release(__u32 id, __u32 owner, __u32 gen, int outermost)
{
	struct ds_slot_state *st = bpf_map_lookup_elem(&ds_slot_state, &id);
	struct ds_counters *c;

	if (!st)
		return;
	if (st->owner != owner || st->gen != gen) {
		if (!st->clobbered && (c = counters()))
			c->clobbers++;
		st->clobbered = 1;
	}
	st->owner = 0;
	if (outermost)
		st->clobbered = 0;
}

static __always_inline int guard_clobbered(__u32 id)
{
	struct ds_slot_state *st = bpf_map_lookup_elem(&ds_slot_state, &id);

	return st && st->clobbered;
}

/* Elkeid's sd_get_percpu_data, plus the optional guard. */
static __always_inline void *sd_get_percpu_data(__u32 size, __u32 id, __u32 owner, __u32 *gen)
{
	struct ds_counters *c;
	void *p;

	if (size > SD_EVENT_MAX)
		return NULL;
	p = bpf_map_lookup_elem(&g_percpu_data, &id);
	c = counters();
	if (c) {
		if (!p)
			c->lookup_fail++;
		else if (id < DS_MAX_SLOTS)
			c->slot_gets[id]++;
	}
	if (p && cfg_guard)
		*gen = guard_take(id, owner);
	return p;
}

/*
 * A no-op without the guard, as in Elkeid: the array is preallocated and the
 * next lookup simply reuses it. The get/put pair still marks the lifetime.
 */
static __always_inline void sd_put_percpu_data(void *ptr, __u32 id, __u32 owner, __u32 gen, int outermost)
{
	if (ptr && cfg_guard)
		guard_release(id, owner, gen, outermost);
}

static __always_inline __u32 business_slot(void)
{
	return cfg_mode == DS_MODE_SINGLE ? 0 : 1;
}

static __always_inline __u32 enrich_slot(void)
{
	return cfg_slots >= 3 ? 2 : 1;
}

static __always_inline void *sd_get_local(__u32 size, __u32 *gen)
{
	return sd_get_percpu_data(size, business_slot(), OWNER_BUSINESS, gen);
}

static __always_inline void sd_put_local(void *ptr, __u32 gen)
{
	sd_put_percpu_data(ptr, business_slot(), OWNER_BUSINESS, gen, 1);
}

#include "path.bpf.h"
#include "serialize.bpf.h"

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
	if (n > cfg_max_arg_bytes)
		n = cfg_max_arg_bytes;
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

	if (cfg_inject_clobber)
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
	if ((bpf_get_current_pid_tgid() >> 32) != flood_tgid || ctx->args[1] != flood_nr)
		return 0;
	return business_logic(ctx, (void *)bpf_get_current_task(), NULL, DS_EVENT_FLOOD);
}
