/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The sys_enter to sys_exit stash of the syscall records, the two syscall
 * tracepoints' contexts, and what an entry reads of its caller (creds).
 */
#ifndef DS_INFLIGHT_BPF_H
#define DS_INFLIGHT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"

/*
 * A syscall in flight: what its sys_enter program saw, for its sys_exit
 * program (the exit tracepoint carries only the return value).
 */
struct ds_inflight {
	__u64 args[6];
	struct ds_creds creds;
	__u64 cap_effective;
	__u64 comm[2];
	__u32 kind; /* which of the syscalls sharing an exit program */
	__u32 nr;   /* the syscall's number; DS_NR_NONE once its exit has run */
	__s64 res;  /* set at exit: its return value */
	__u32 step; /* an exit that emits several records (sendmmsg): how many it has handled */
	__u32 copy_slot; /* 1 + the ds_entry_copy slot the call holds, 0 for none */
	/*
	 * What the entry read of the caller's memory, for an exit that must not
	 * read it again (another thread can rewrite it meanwhile): connect's and
	 * bind's sockaddr, prctl's name, an open's flags.
	 */
	__u64 user[4];
	__u64 number; /* its own address as a plain number: stash_number() */
};

#define DS_NR_NONE 0xffffffffu

/*
 * A stash's address as a plain number, through its own memory (the verifier
 * does not track pointers stored in a map value; root's programs may store
 * them). An exec's stash is in a copy slot or in the thread's task storage:
 * as a number, the exec record's code is verified once, not once per map.
 */
static __always_inline __u64 stash_number(struct ds_inflight *in)
{
	in->number = (__u64)in;
	asm volatile("" ::: "memory");
	return *(volatile __u64 *)&in->number;
}

/*
 * One per thread, in the task itself (task local storage): created at the
 * thread's first stashed syscall, reused by each one after, freed with the
 * task (a thread killed inside a syscall leaves nothing behind). An LRU hash
 * keyed by thread id did the same for about 400 ns more per record (its update
 * at sys_enter, its lookup and delete at sys_exit: 3.04 against 2.64 µs of BPF
 * per connect, bpf_stats). Needs 5.12+ (task storage from tracing programs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ds_inflight);
} ds_inflight SEC(".maps");

/*
 * The context of a syscalls/sys_{enter,exit}_<name> program: the arguments
 * or the return value at offset 16, whatever the kernel (see sys_nr() for
 * the word before them). Not vmlinux's trace_event_raw_sys_enter (the
 * raw_syscalls event): CO-RE would move its fields with trace_entry, which
 * PREEMPT_RT 6.1 grows from 8 to 12 bytes, and the kernel then refuses the
 * program (EACCES: past the context).
 */
struct ds_sys_enter {
	__u64 entry;
	__u64 nr_word;
	unsigned long args[6];
};

struct ds_sys_exit {
	__u64 entry;
	__u64 nr_word;
	long ret;
};

/*
 * The syscall number, from the task's saved user registers (orig_ax, or
 * arm64's syscallno), not from the context: kernels before the fix that
 * made the BPF context of a syscall tracepoint match its format pass
 * {regs pointer, unsigned long nr, args} (nr at 8), later ones {struct
 * trace_entry, int nr, args} (nr at sizeof(trace_entry), 12 on 6.1's
 * PREEMPT_RT); the arguments and the result are at 16 in both.
 */
static __always_inline __u32 sys_nr(void *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	/* A BTF pointer (the helper's return type): a load, not a read. */
#if defined(__TARGET_ARCH_arm64)
	return regs->syscallno;
#else
	return regs->orig_ax;
#endif
}

/*
 * The numbers of the calls whose sys_enter tracepoints share one program
 * (ds_execve_enter, ds_names_enter), which tells them apart by sys_nr(): one
 * program verified instead of one per call. The ABI's own numbers; x86-64's
 * old path calls (rename, link, ...) have no arm64 counterparts.
 */
#if defined(__TARGET_ARCH_arm64)
#define DS_NR_MKNODAT 33
#define DS_NR_UNLINKAT 35
#define DS_NR_SYMLINKAT 36
#define DS_NR_LINKAT 37
#define DS_NR_RENAMEAT 38
#define DS_NR_MOUNT 40
#define DS_NR_RENAMEAT2 276
#define DS_NR_MEMFD_CREATE 279
#define DS_NR_EXECVEAT 281
#define DS_NR_NAMES_FIRST DS_NR_MKNODAT
#define DS_NR_NAMES_LAST DS_NR_MEMFD_CREATE
#else
#define DS_NR_RENAME 82
#define DS_NR_RMDIR 84
#define DS_NR_CREAT 85
#define DS_NR_LINK 86
#define DS_NR_UNLINK 87
#define DS_NR_SYMLINK 88
#define DS_NR_MKNOD 133
#define DS_NR_MOUNT 165
#define DS_NR_MKNODAT 259
#define DS_NR_UNLINKAT 263
#define DS_NR_RENAMEAT 264
#define DS_NR_LINKAT 265
#define DS_NR_SYMLINKAT 266
#define DS_NR_RENAMEAT2 316
#define DS_NR_MEMFD_CREATE 319
#define DS_NR_EXECVEAT 322
#define DS_NR_NAMES_FIRST DS_NR_RENAME
#define DS_NR_NAMES_LAST DS_NR_MEMFD_CREATE
#endif

static __always_inline void creds_read(const struct cred *cr, struct ds_creds *o)
{
	/* struct cred's eight ids, in its order since 2.6.29: one read, not eight. */
	struct {
		__u32 uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
	} ids = {};

	if (ds_cfg.task_cast) { /* loads, not a read (DS_LOAD, heap.bpf.h) */
		const struct cred *c = ds_cast(cr, cred);

		o->uid = c->uid.val;
		o->euid = c->euid.val;
		o->suid = c->suid.val;
		o->fsuid = c->fsuid.val;
		o->gid = c->gid.val;
		o->egid = c->egid.val;
		o->sgid = c->sgid.val;
		o->fsgid = c->fsgid.val;
		return;
	}
	bpf_core_read(&ids, sizeof(ids), &cr->uid);
	o->uid = ids.uid;
	o->euid = ids.euid;
	o->suid = ids.suid;
	o->fsuid = ids.fsuid;
	o->gid = ids.gid;
	o->egid = ids.egid;
	o->sgid = ids.sgid;
	o->fsgid = ids.fsgid;
}

static __always_inline __u64 cap_effective(const struct cred *cr)
{
	__u64 v = 0;

	/* A u64 since 6.3, two u32 before: 8 bytes either way, read once where they lie. */
	if (ds_cfg.task_cast)
		return *(const __u64 *)&ds_cast(cr, cred)->cap_effective;
	bpf_core_read(&v, sizeof(v), &cr->cap_effective);
	return v;
}

/*
 * What a call's entry copied of the caller's memory that does not fit the
 * stash: an exec's filename and argv, a file event's names. Its exit reads
 * these, not the caller's memory, which another thread can rewrite while the
 * kernel works (a record would then show what the call never did). 9 KiB
 * each: a fixed array of slots, claimed at entry (owner: the task) and
 * given back when the stash is dropped. Task storage made and deleted per
 * call cost 8-29 µs of BPF per exec in an exec storm (its frees wait for an
 * RCU grace period and the allocator's per-CPU cache runs dry); a slot's
 * claim is one lookup and a cmpxchg. Task storage is the spill: when the
 * slots are all held (calls blocked inside the kernel: a slow or hostile
 * filesystem can hold any number), the call's copy goes in its own thread.
 */
#define DS_COPY_SLOTS 64
#define DS_COPY_AREA DS_ARGS_CAP
#define DS_COPY_STR (DS_COPY_AREA / 4) /* a file event's name: area + i * DS_COPY_STR, i < 3 */

/*
 * An argv walk's state (bpf/dual_slot.bpf.c), in map memory: the verifier
 * does not track values there, so each bpf_loop step looks like the last.
 */
struct ds_argv_state {
	__u32 pos;
	__u32 cut;
	__u32 unreadable; /* a pointer or a string could not be read (not paged in): cut there, */
	__u32 index;      /* at this argv index */
};

struct ds_entry_copy {
	/*
	 * The task whose call holds the slot (its task_struct's address; 0: free).
	 * Not its thread id: a thread that execs takes its leader's id on the way.
	 */
	__u64 owner;
	__s32 n[3];       /* a file event's names: bytes as read, NUL included; 0: none; < 0: not readable */
	__u64 uname[3];   /* and where they were: one not readable at entry is read at the exit (flagged) */
	__u32 filename_len, filename_cut, filename_unread, copied; /* an exec's; copied: the entry read them */
	__u64 mm;                         /* the caller's memory then: a late failure leaves another */
	struct ds_argv_state argv;        /* and its argv's: bytes, cut, not readable */
	char filename[DS_FILENAME_CAP];
	char area[DS_COPY_AREA] __attribute__((aligned(8))); /* an exec's argv, or a file event's names */
	/*
	 * An exec's stash lives here, not in task storage: each exec of a new
	 * process would make the task's storage, 1.3 µs of BPF per exec in an
	 * exec storm (allocation), and free it at its exit (bpf/exec_entry.bpf.h).
	 */
	struct ds_inflight in;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DS_COPY_SLOTS);
	__type(key, __u32);
	__type(value, struct ds_entry_copy);
} ds_entry_copy SEC(".maps");

/* in->copy_slot for a copy in the thread's own task storage. */
#define DS_COPY_SPILL 0xffffffffu

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ds_entry_copy);
} ds_entry_spill SEC(".maps");

/* The call's copy, if it has one: the stash says where, a slot's owner that it is still this task's. */
static __always_inline struct ds_entry_copy *entry_copy_of(const struct ds_inflight *in)
{
	__u32 idx = in->copy_slot - 1;
	struct ds_entry_copy *e;

	if (!in->copy_slot)
		return NULL;
	if (in->copy_slot == DS_COPY_SPILL)
		return bpf_task_storage_get(&ds_entry_spill, bpf_get_current_task_btf(), 0, 0);
	if (!(e = bpf_map_lookup_elem(&ds_entry_copy, &idx)))
		return NULL;
	return e->owner == bpf_get_current_task() ? e : NULL;
}

/* The slots a task's call may take: DS_COPY_PROBES from a hash of the task, so that its exit finds them again. */
#define DS_COPY_PROBES 4

static __always_inline __u32 copy_slot_index(__u64 task, __u32 i)
{
	return ((__u32)((task * 0x9E3779B97F4A7C15ull) >> 58) + i) & (DS_COPY_SLOTS - 1);
}

struct slot_probe {
	__u64 me;
	__u32 idx;
	__u32 found;
};

/* One probe: the slot at index i of the task's, found (its owner) or taken (free, claimed for it). */
static __always_inline long slot_step(__u32 i, struct slot_probe *p, const int take)
{
	__u32 idx = copy_slot_index(p->me, i);
	struct ds_entry_copy *e = bpf_map_lookup_elem(&ds_entry_copy, &idx);

	if (!e || (take ? __sync_val_compare_and_swap(&e->owner, 0, p->me) != 0 : e->owner != p->me))
		return 0;
	p->idx = idx;
	p->found = 1;
	return 1;
}

static long slot_find_step(__u32 i, struct slot_probe *p)
{
	return slot_step(i, p, 0);
}

static long slot_take_step(__u32 i, struct slot_probe *p)
{
	return slot_step(i, p, 1);
}

/*
 * Among the task's probes (*at: the index found): `take`, a free slot,
 * taken for it (NULL when all are held); else the first it owns already.
 * Each probe is a bpf_loop step, which the verifier checks once: inlined as
 * a loop, all four were walked with their branches wherever a program
 * probes (the execve entry twice).
 */
static __always_inline struct ds_entry_copy *copy_slot_probe(__u64 me, __u32 *at, const int take)
{
	struct slot_probe p = { .me = me };

	bpf_loop(DS_COPY_PROBES, take ? slot_take_step : slot_find_step, &p, 0);
	if (!p.found)
		return NULL;
	*at = p.idx;
	return bpf_map_lookup_elem(&ds_entry_copy, &p.idx);
}

/*
 * A free slot for the current thread's call, four tries; else the spill.
 * NULL only when the kernel cannot allocate that: the record then says what
 * it could not see.
 */
static __always_inline struct ds_entry_copy *entry_copy_claim(struct ds_inflight *in)
{
	struct ds_entry_copy *e;
	__u32 idx = 0;

	if ((e = copy_slot_probe(bpf_get_current_task(), &idx, 1))) {
		in->copy_slot = idx + 1;
		return e;
	}
	e = bpf_task_storage_get(&ds_entry_spill, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (e)
		in->copy_slot = DS_COPY_SPILL;
	return e;
}

static __always_inline void entry_copy_release(struct ds_inflight *in)
{
	struct ds_entry_copy *e;

	if (in->copy_slot == DS_COPY_SPILL) {
		in->copy_slot = 0;
		bpf_task_storage_delete(&ds_entry_spill, bpf_get_current_task_btf());
	} else if ((e = entry_copy_of(in))) {
		/* Before the release: an exec's stash is in the slot, which the next owner may fill at once. */
		in->copy_slot = 0;
		__sync_lock_test_and_set(&e->owner, 0); /* an xchg: ordered after the exit's reads */
	} else {
		in->copy_slot = 0;
	}
}

/* The current thread's stash; `create`: make it at the thread's first use. */
static __always_inline struct ds_inflight *inflight_of_current(int create)
{
	return bpf_task_storage_get(&ds_inflight, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Keeps the arguments, the creds and the comm in a stash, for the matching sys_exit. */
static __always_inline void inflight_fill(struct ds_sys_enter *ctx, struct ds_inflight *in, __u32 kind)
{
	const struct cred *cr = self()->cred;

	/*
	 * Not a memcpy: the verifier refuses a derived ctx pointer. Not six
	 * loads either: a context load raises the program's max_ctx_offset, and
	 * 6.1 then refuses to attach it to a syscall with fewer arguments (EACCES).
	 */
	bpf_probe_read_kernel(in->args, sizeof(in->args), ctx->args);
	creds_read(cr, &in->creds);
	in->cap_effective = cap_effective(cr);
	/*
	 * Loads, not bpf_get_current_comm(): the kernel keeps comm NUL-padded
	 * (every writer is strscpy_pad), which comm_len() counts on.
	 */
	in->comm[0] = *(const __u64 *)&self()->comm[0];
	in->comm[1] = *(const __u64 *)&self()->comm[8];
	in->kind = kind;
	in->step = 0;
	in->res = 0;
	in->nr = sys_nr(ctx);
}

/* sys_enter: the thread's stash (task storage), filled; or NULL. */
static __always_inline struct ds_inflight *inflight_save(struct ds_sys_enter *ctx, __u32 kind)
{
	struct ds_inflight *in = inflight_of_current(1);
	struct ds_counters *c;

	/* No memory for the thread's stash: its record is lost in the kernel, and counted as such. */
	if (!in) {
		if ((c = counters()))
			c->output_fail++;
		return NULL;
	}
	if (in->copy_slot) /* an earlier call's whose exit this program never saw */
		entry_copy_release(in);
	inflight_fill(ctx, in, kind);
	return in;
}

/*
 * sys_exit: what the matching sys_enter kept, with the result filled in; NULL
 * when there is none (or it is a stale one of another syscall: a sys_enter
 * whose program was attached after the call began). The caller ends with
 * inflight_drop().
 */
static __always_inline struct ds_inflight *inflight_get(struct ds_sys_exit *ctx)
{
	struct ds_inflight *in = inflight_of_current(0);

	if (!in || in->nr != sys_nr(ctx))
		return NULL;
	in->res = ctx->ret;
	return in;
}

/* The exit has used it (inflight_get's): no later exit of the same syscall number may take it for its own. */
static __always_inline void inflight_drop(struct ds_inflight *in)
{
	in->nr = DS_NR_NONE;
	if (in->copy_slot)
		entry_copy_release(in);
}

#endif /* DS_INFLIGHT_BPF_H */
