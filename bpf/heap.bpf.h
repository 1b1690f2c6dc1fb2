/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-CPU heap: Elkeid's slots, what each level keeps in them, the load-time
 * configuration that picks the layout, the counters, and the optional guard that
 * catches a helper taking a slot that is still held.
 *
 * BPF headers here belong to one translation unit (dual_slot.bpf.c): they define
 * maps and static functions, and each includes what it uses.
 */
#ifndef DS_HEAP_BPF_H
#define DS_HEAP_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"

/* Written by user space before bpf_object__load (bpf_map__initial_value). */
const volatile struct ds_config ds_cfg = {
	.mode = DS_MODE_DUAL,
	.slots = 2,
	.transport = DS_TRANSPORT_PERF,
	.encoding = DS_ENCODING_COMPACT,
	.max_arg_bytes = 4096,
};

/*
 * The task every level reads is current (exec, exit, fork's parent, a
 * syscall's caller), taken as a BTF pointer: its fields are then plain loads
 * (the JIT's fault-safe BPF_PROBE_MEM, 0 on a fault as a failed probe read
 * gives), not a bpf_probe_read_kernel() call each. What a load cannot do
 * stays a helper: strings, an index the verifier does not know, a pointer
 * read through a pointer to pointers (fdt->fd[i]).
 */
/*
 * Since 6.4 the verifier looks up, for every pointer it sees loaded from a
 * trusted or RCU pointer (task->real_parent, ->cred, ...), whether the field
 * is on its lists of trusted types, and each lookup is a linear search of the
 * kernel's BTF by name: with the loads in every path it explores, that made
 * loading the default set take ~3.5 s (ds_exec 1.8 s, ds_emit 1.4 s on 6.18).
 * A read-only cast (6.2+) makes current an untrusted pointer, whose loads the
 * verifier checks without a lookup: the loads are the same fault-safe
 * PROBE_MEM loads at run time. The loader sets task_cast where the kernel has
 * the kfunc; weak, so an older kernel loads the object and the verifier
 * prunes the call. The type id is the kernel's, from .rodata (ds_cfg.kid_*,
 * a constant to the verifier), not bpf_core_type_id_kernel(): CO-RE resolves
 * against a cut of the kernel's BTF whose ids are its own (src/ebpf/core-btf.ts).
 */
/*
 * The kfunc is called by a raw instruction, not an extern: an extern makes
 * libbpf read and parse the whole kernel BTF at every load (6-20 ms of a
 * start) to find one id, which the loader already has from its per-boot cut.
 * The loader writes that id over DS_KFUNC_RDONLY_CAST in the object's code
 * before libbpf opens it (src/ebpf/kfunc-ids.ts), or 0 where the kernel has
 * no such kfunc: the verifier then prunes the call (task_cast is 0), as it
 * does an unresolved weak kfunc.
 */
static __always_inline void *bpf_rdonly_cast(const void *obj, __u32 btf_id)
{
	register const void *r1 asm("r1") = obj;
	register __u64 r2 asm("r2") = btf_id;
	register void *r0 asm("r0");

	/* call, src_reg BPF_PSEUDO_KFUNC_CALL (2), off 0 (vmlinux), imm: the id. */
	asm volatile(".byte 0x85, 0x20, 0x00, 0x00\n\t.long %[id]"
		     : "=r"(r0), "+r"(r1), "+r"(r2)
		     : [id] "i"(DS_KFUNC_RDONLY_CAST)
		     : "r3", "r4", "r5", "memory");
	return r0;
}

static __always_inline struct task_struct *self(void)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if (ds_cfg.task_cast)
		return bpf_rdonly_cast(t, ds_cfg.kid_task_struct);
	return t;
}

/*
 * A field of any kernel pointer p (of struct type), read the cheapest way the
 * kernel allows: where bpf_rdonly_cast exists (task_cast), p is cast to an
 * untrusted BTF pointer and the field is a plain fault-safe load (the
 * verifier turns the cast into a register move); elsewhere (6.1) it is
 * BPF_CORE_READ, a bpf_probe_read_kernel() call. Same value either way (0
 * when p cannot be read). ds_cfg is read-only data, so the verifier prunes
 * the branch not taken: 6.1 checks and runs exactly the code it did before.
 * A path component cost five helper calls; with the casts it costs one.
 */
#define ds_cast(p, type) ((struct type *)bpf_rdonly_cast((void *)(p), ds_cfg.kid_##type))
#define DS_LOAD(type, p, field) \
	(ds_cfg.task_cast ? ds_cast(p, type)->field : BPF_CORE_READ((struct type *)(p), field))

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

/*
 * The strings every record carries (struct ds_common's), gathered by the
 * business level in slot 1: common_info_fill() in serialize.bpf.h. pid_tree has
 * DS_PID_TREE_ENTRY bytes of slack: each entry is written at a masked offset.
 */
struct ds_common_info {
	__u32 len_nodename;
	__u32 len_pid_tree;
	char nodename[DS_NODENAME_CAP];
	char pid_tree[DS_PID_TREE_CAP + DS_PID_TREE_ENTRY];
};

/*
 * What an exec ran in, gathered by exec_extra() (dual_slot.bpf.c): the
 * terminal, fds 0 and 1, the first inet socket among fds 0-2 (a reverse shell
 * shows here), two environment variables, the executable's identity.
 */
struct ds_exec_extra {
	__u32 len[DS_STR_NR - DS_STR_TTY]; /* of each string below, in ds_str order */
	__u32 total;                       /* their sum */
	__u32 exe_dev;
	__u32 sa_family;
	__u64 exe_ino;
	__u32 sport;
	__u32 dport;
	char tty[DS_TTY_CAP];
	char stdin[DS_FD_CAP];
	char stdout[DS_FD_CAP];
	char sip[DS_IP_CAP];
	char dip[DS_IP_CAP];
	char ssh[DS_SSH_CAP];
	char ld_preload[DS_LD_PRELOAD_CAP];
};

/* Slot 1 as the business function lays it out: Elkeid's var_exec, in small. */
struct ds_file_info {
	__u64 tag;
	char comm[DS_COMM_LEN];
	__u32 len[DS_STR_TTY];
	__u32 flags;
	__u32 args_total;
	__s32 res;
	__u32 pad;
	char filename[DS_FILENAME_CAP];
	char args[DS_ARGS_CAP];
	char cwd[DS_PATH_CAP];
	char exe[DS_PATH_CAP];
	char swap[DS_PATH_CAP]; /* paths are built backwards here, then copied */
	/* After swap, so that a name written past its end (see below) stays in this struct. */
	struct ds_common_info ci;
	struct ds_exec_extra x;
};

/* Slot 1 for an exit: what the business function gathers before serializing. */
struct ds_exit_info {
	__u64 tag;
	char comm[DS_COMM_LEN];
	__s32 exit_code;
	__u32 flags;   /* the exe's (enum ds_flags) */
	__u64 runtime_ns;
	__u32 len_exe;
	__u32 pad;
	struct ds_common_info ci;
	char exe[DS_PATH_CAP];
	char swap[DS_PATH_CAP];
};

/* The third level's scratch (nest3): the parent's comm and exe path. */
struct ds_enrich {
	__u64 tag;
	char comm[DS_COMM_LEN];
	char path[DS_PATH_CAP];
	char swap[DS_PATH_CAP];
};

/* The verifier bounds swap + pos + name by the value size, so leave that slack. */
_Static_assert(sizeof(struct ds_file_info) <= SD_EVENT_MAX, "slot 1 overflows");
_Static_assert(__builtin_offsetof(struct ds_file_info, swap) + DS_PATH_CAP + DS_NAME_MAX + 1 <= SD_EVENT_MAX,
	       "no room past swap for a path component");
_Static_assert(sizeof(struct ds_enrich) + DS_NAME_MAX + 1 <= SD_EVENT_MAX, "enrich slot overflows");
_Static_assert(sizeof(struct ds_exit_info) + DS_NAME_MAX + 1 <= SD_EVENT_MAX, "exit slot overflows");
/* nest3's parent exe (one more path) fits because that mode caps argv at half (serialize_event). */
_Static_assert(sizeof(struct ds_exec) + DS_COMM_LEN + DS_FILENAME_CAP + DS_ARGS_CAP + 2 * DS_PATH_CAP +
			       DS_NODENAME_MAX + DS_PID_TREE_CAP + sizeof(struct ds_exec_extra)
		       <= SD_EVENT_MAX, "a compact event must always fit slot 0");
_Static_assert(sizeof(struct ds_exec) + DS_COMM_LEN + DS_FILENAME_CAP + DS_ARGS_CAP / 2 + 3 * DS_PATH_CAP +
			       DS_NODENAME_MAX + DS_PID_TREE_CAP + sizeof(struct ds_exec_extra)
		       <= SD_EVENT_MAX, "a compact nest3 event must always fit slot 0");
_Static_assert(sizeof(struct ds_exec_fixed) <= SD_EVENT_MAX, "fixed event overflows slot 0");
_Static_assert(sizeof(struct ds_exit_fixed) <= SD_EVENT_MAX, "fixed exit overflows slot 0");
_Static_assert(DS_FIXED_NODENAME > DS_NODENAME_MAX && DS_FIXED_PID_TREE >= DS_PID_TREE_CAP, "fixed arrays too small");

enum ds_owner {
	OWNER_BUSINESS = 1,
	OWNER_SERIALIZER = 2,
	OWNER_ENRICH = 3,
	OWNER_REFRESH = 4,
	OWNER_IRQ = 5,
};

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
	if (p && ds_cfg.guard)
		*gen = guard_take(id, owner);
	return p;
}

/*
 * A no-op without the guard, as in Elkeid: the array is preallocated and the
 * next lookup simply reuses it. The get/put pair still marks the lifetime.
 */
static __always_inline void sd_put_percpu_data(void *ptr, __u32 id, __u32 owner, __u32 gen, int outermost)
{
	if (ptr && ds_cfg.guard)
		guard_release(id, owner, gen, outermost);
}

static __always_inline __u32 business_slot(void)
{
	return ds_cfg.mode == DS_MODE_SINGLE ? 0 : 1;
}

static __always_inline __u32 enrich_slot(void)
{
	return ds_cfg.slots >= 3 ? 2 : 1;
}

static __always_inline void *sd_get_local(__u32 size, __u32 *gen)
{
	return sd_get_percpu_data(size, business_slot(), OWNER_BUSINESS, gen);
}

static __always_inline void sd_put_local(void *ptr, __u32 gen)
{
	sd_put_percpu_data(ptr, business_slot(), OWNER_BUSINESS, gen, 1);
}

#endif /* DS_HEAP_BPF_H */
