/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records after exec and exit (fork, setsid, prctl, ptrace, memfd_create,
 * kill, privilege_escalation): one business layout in slot 1 for all of them,
 * one serializer into slot 0 (reached by tail call), and the shape of the exit
 * programs that build them. A syscall's arguments reach its exit program in
 * the stash of inflight.bpf.h.
 *
 * Each record is struct ds_<type> in dual_slot.h: DS_RECORD_HEAD, the type's
 * own struct, the string descriptors. The business level fills rec_info (the
 * type's struct as bytes in `data`, its strings in a and b); emit_record()
 * then writes the head, copies `data` behind it and appends the strings.
 */
#ifndef DS_RECORD_BPF_H
#define DS_RECORD_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "path.bpf.h"
#include "serialize.bpf.h"
#include "filter.bpf.h"
#include "inflight.bpf.h"
#include "exe_cache.bpf.h"

#define DS_REC_DATA_MAX 96  /* the largest type struct (privilege_escalation's is 88) */
#define DS_REC_STR_CAP 256  /* a type's own short string: a name */
#define DS_REC_C_CAP 64     /* its third string: an fs type */

/* A fresh slot-1 tag: the serializer finds it intact, or knows the slot was taken. */
static __always_inline __u64 new_tag(void)
{
	return ((__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32()) & ~3ull;
}

/* Slot 1 for a DS_RECORD_HEAD record. */
struct ds_rec_info {
	__u64 tag;
	__u64 comm[2];
	__s64 res;     /* the record's head: res, syscall, type */
	__u32 syscall;
	__u32 type;
	__u32 data_len;
	__u32 flags;
	__u32 len_exe;
	__u32 len_a;
	__u32 len_b;
	__u32 len_c;
	__u8 data[DS_REC_DATA_MAX];
	struct ds_common_info ci;
	char exe[DS_PATH_CAP];
	char a[DS_PATH_CAP];
	char b[DS_PATH_CAP];
	char c[DS_REC_C_CAP];
	__u64 number; /* a pointer on its way to being a plain number: rec_number() */
	char swap[DS_PATH_CAP];
	/* A walk writes a name's length past swap (struct ds_path_swap): in this struct, for ds_resolve_at(). */
	char swap_tail[DS_NAME_MAX + 1];
};

_Static_assert(sizeof(struct ds_rec_info) + DS_NAME_MAX + 1 <= SD_EVENT_MAX, "record info overflows slot 1");

/*
 * A pointer as a plain number, through slot memory (which the verifier does
 * not track pointers in; root's programs may store them there). A copy's
 * pointer is to one of two maps (a slot, or the spill): as a number, what
 * follows is verified once, not once per map, and a global function takes it.
 */
static __always_inline __u64 rec_number(struct ds_rec_info *info, const void *p)
{
	info->number = (__u64)p;
	asm volatile("" ::: "memory");
	return *(volatile __u64 *)&info->number;
}
_Static_assert(sizeof(struct ds_record) % 8 == 0, "the type's struct must start 8-aligned");
_Static_assert(sizeof(struct ds_privilege_escalation_data) <= DS_REC_DATA_MAX && DS_REC_DATA_MAX <= 128, "type data too large");
_Static_assert(sizeof(struct ds_record) + DS_REC_DATA_MAX + 4 * DS_REC_STR_NR + DS_COMM_LEN + DS_NODENAME_MAX +
			       DS_PID_TREE_CAP + 3 * DS_PATH_CAP + DS_REC_C_CAP
		       <= SD_EVENT_MAX, "a record must always fit slot 0");
/* The descriptors as the structs hold them: 8-aligned (the next u64 member, or the end). */
#define DS_REC_STR_BYTES ((4 * DS_REC_STR_NR + 7) & ~7)
_Static_assert(DS_REC_STR_BYTES <= 4 * (DS_REC_STR_NR + 1), "descriptor padding");
_Static_assert(sizeof(struct ds_setsid) == sizeof(struct ds_record) + DS_REC_STR_BYTES, "descriptor padding");
/* Each type's strings sit right after its data: what emit_record assumes. */
#define DS_REC_LAYOUT(t)                                                                                  \
	_Static_assert(__builtin_offsetof(struct ds_##t, str) == sizeof(struct ds_record) + sizeof(struct ds_##t##_data), \
		       #t " layout")
DS_REC_LAYOUT(fork);
DS_REC_LAYOUT(prctl);
DS_REC_LAYOUT(ptrace);
DS_REC_LAYOUT(memfd_create);
DS_REC_LAYOUT(kill);
DS_REC_LAYOUT(privilege_escalation);
_Static_assert(__builtin_offsetof(struct ds_connect, str) == sizeof(struct ds_record) + sizeof(struct ds_sock_data), "connect layout");
_Static_assert(__builtin_offsetof(struct ds_accept, str) == sizeof(struct ds_record) + sizeof(struct ds_sock_data), "accept layout");
_Static_assert(__builtin_offsetof(struct ds_bind, str) == sizeof(struct ds_record) + sizeof(struct ds_sock_data), "bind layout");
DS_REC_LAYOUT(dns);
DS_REC_LAYOUT(create_file);
DS_REC_LAYOUT(rename);
DS_REC_LAYOUT(link);
DS_REC_LAYOUT(mount);
DS_REC_LAYOUT(load_module);
_Static_assert(__builtin_offsetof(struct ds_setsid, str) == sizeof(struct ds_record), "setsid layout");
_Static_assert(__builtin_offsetof(struct ds_unlink, str) == sizeof(struct ds_record), "unlink layout");
_Static_assert(__builtin_offsetof(struct ds_rmdir, str) == sizeof(struct ds_record), "rmdir layout");

static __always_inline int selected(__u32 type)
{
	return (ds_cfg.events >> type) & 1;
}

/* Business level: slot 1, its head cleared (the type fills the rest). */
static __always_inline struct ds_rec_info *rec_init(__u64 tag, __u32 *gen)
{
	struct ds_rec_info *info = sd_get_local(sizeof(*info), gen);

	if (!info)
		return NULL;
	info->tag = tag;
	info->res = 0;
	info->syscall = 0;
	info->type = 0;
	info->data_len = 0;
	info->flags = 0;
	info->len_a = 0;
	info->len_b = 0;
	info->len_c = 0;
	return info;
}

/* The actor's part of the record: its comm, the common strings, its exe. */
static __noinline void rec_common(struct task_struct *task, struct ds_rec_info *info)
{
	struct task_struct *t = self(); /* task is current: loads, not reads (heap.bpf.h) */

	info->comm[0] = *(const __u64 *)&t->comm[0];
	info->comm[1] = *(const __u64 *)&t->comm[8];
	common_info_fill(&info->ci);
	info->len_exe = cached_exe_path(t->mm->exe_file, info->exe, info->swap, &info->flags);
}

/* A record's own file into string A: its absolute path, and what that path cannot show. */
static __noinline void rec_file_path(struct task_struct *task, struct ds_rec_info *info, struct file *f)
{
	struct dentry *d = DS_LOAD(file, f, f_path.dentry);
	struct vfsmount *m = DS_LOAD(file, f, f_path.mnt);
	__u32 r = build_path(d, m, info->a, info->swap);

	info->len_a = DS_PATH_LEN(r);
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_STR_TRUNCATED;
	if (file_is_deleted(f))
		info->flags |= DS_F_PATH_DELETED;
	/* A memfd's path is its name alone, under no root (a module loaded from one): nothing to be outside of. */
	if ((r & DS_PATH_UNREACHABLE) && !file_is_memfd(f))
		info->flags |= DS_F_PATH_UNREACHABLE;
}

/* Slot 1 with the actor's part filled: for the programs that serialize in place (raw tracepoints). */
static __noinline struct ds_rec_info *rec_open(struct task_struct *task, __u64 tag, __u32 *gen)
{
	struct ds_rec_info *info = rec_init(tag, gen);

	if (info)
		rec_common(task, info);
	return info;
}

/* Level 2: the record in slot 0 (or the ring), from slot 1. `task` is the actor. */
static __noinline int emit_record(void *ctx, struct task_struct *task, struct ds_rec_info *info, __u64 tag)
{
	struct ds_counters *c = counters();
	const int ring = ds_cfg.transport == DS_TRANSPORT_RINGBUF;
	__u32 str[DS_REC_STR_NR + 1] = {}; /* + 1: zeros for the struct's tail padding */
	__u32 l_comm, l_node, l_tree, l_exe, l_a, l_b, l_c, dlen, dmask, head, size, off, gen0 = 0;
	struct bpf_dynptr dp;
	struct ds_record *ev;
	__u64 pid_tgid, uid_gid;
	void *s0 = NULL;

	if (!c)
		return 0;
	dlen = info->data_len;
	if (dlen > DS_REC_DATA_MAX)
		return 0;
	l_comm = ds_min(comm_len(info->comm), DS_COMM_LEN);
	l_node = ds_min(info->ci.len_nodename, DS_NODENAME_MAX);
	l_tree = ds_min(info->ci.len_pid_tree, DS_PID_TREE_CAP - 1);
	l_exe = ds_min(info->len_exe, DS_PATH_CAP - 1);
	l_a = ds_min(info->len_a, DS_PATH_CAP - 1);
	l_b = ds_min(info->len_b, DS_PATH_CAP - 1);
	l_c = ds_min(info->len_c, DS_REC_C_CAP - 1);
	head = sizeof(struct ds_record) + dlen + DS_REC_STR_BYTES;
	size = head + l_comm + l_node + l_tree + l_exe + l_a + l_b + l_c;

	ev = record_begin(&dp, &s0, &gen0, size, sizeof(*ev), c);
	if (!ev)
		return 0;
	ev->hdr.tag = tag + 1;
	hdr_fill(&ev->hdr, c, info->type);
	ev->hdr.encoding = DS_ENCODING_COMPACT;
	/*
	 * The actor is current in every caller (a syscall's, sched_process_fork's
	 * parent, exec's task): its ids from the helpers and self()'s loads, not
	 * eight bpf_probe_read_kernel() calls through task.
	 */
	pid_tgid = bpf_get_current_pid_tgid();
	uid_gid = bpf_get_current_uid_gid();
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->ppid = self()->real_parent->tgid;
	ev->uid = (__u32)uid_gid;
	ev->gid = uid_gid >> 32;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->res = info->res;
	ev->syscall = info->syscall;
	ev->pad0 = 0;
	common_fill(task, &ev->common);
	ev->flags = info->flags | (info->tag == tag ? DS_F_SLOT1_INTACT : DS_F_CORRUPT);
	if (info->tag != tag)
		c->corrupt++; /* as the exec serializer counts it: `dual-slot stats` sees every record's */

	off = sizeof(struct ds_record);
	/*
	 * 127: a mask, for the verifier (dlen <= DS_REC_DATA_MAX <= 128 is checked
	 * above), made right at the call as DS_REC_PUT's below: masked earlier and
	 * spilled, 6.1's verifier lost its bound (ds_emit refused there).
	 */
	dmask = dlen;
	asm volatile("" : "+r"(dmask));
	dmask &= 127;
	if (bpf_dynptr_write(&dp, off, info->data, dmask, 0))
		goto fail;
	off = head;
/*
 * The length is bounded again right at the call (cap: a power of two): 6.1's
 * verifier forgets a 32-bit bound when the compiler spills the value, and the
 * empty asm stops the compiler from dropping a mask it knows to be redundant.
 */
#define DS_REC_PUT(i, src, len, cap)                                                  \
	do {                                                                          \
		__u32 __l = (len);                                                    \
		asm volatile("" : "+r"(__l)); /* keep the mask below */               \
		__l &= (cap) - 1;                                                     \
		if (bpf_dynptr_write(&dp, off & SD_EVENT_MASK, (void *)(src), __l, 0)) \
			goto fail;                                                    \
		str[i] = __l << 16 | (off & SD_EVENT_MASK);                           \
		off += __l;                                                           \
	} while (0)
	DS_REC_PUT(DS_REC_STR_COMM, info->comm, l_comm, 2 * DS_COMM_LEN);
	DS_REC_PUT(DS_REC_STR_NODENAME, info->ci.nodename, l_node, DS_NODENAME_CAP);
	DS_REC_PUT(DS_REC_STR_PID_TREE, info->ci.pid_tree, l_tree, DS_PID_TREE_CAP);
	DS_REC_PUT(DS_REC_STR_EXE, info->exe, l_exe, DS_PATH_CAP);
	DS_REC_PUT(DS_REC_STR_A, info->a, l_a, DS_PATH_CAP);
	DS_REC_PUT(DS_REC_STR_B, info->b, l_b, DS_PATH_CAP);
	DS_REC_PUT(DS_REC_STR_C, info->c, l_c, DS_REC_C_CAP);
#undef DS_REC_PUT
	if (bpf_dynptr_write(&dp, sizeof(struct ds_record) + dlen, str, DS_REC_STR_BYTES, 0))
		goto fail;
	ev->hdr.size = off;
	record_submit(ctx, &dp, s0, off, c);
	if (!ring)
		sd_put_percpu_data(s0, 0, OWNER_SERIALIZER, gen0, 1);
	return 0;
fail:
	/* Cannot happen with the sizes above; never send a record with holes. */
	if (ring)
		bpf_ringbuf_discard_dynptr(&dp, 0);
	else
		sd_put_percpu_data(s0, 0, OWNER_SERIALIZER, gen0, 1);
	c->output_fail++;
	return 0;
}

/*
 * The serializer as a program of its own, reached by tail call: every
 * syscall record program fills slot 1 with its type's part and jumps here,
 * so the verifier checks emit_record (and the actor's part) once, not once
 * per program: loading the default set took seconds before. Tail calls keep
 * the CPU and the context, so slot 1 is still this record's.
 */
/* ds_emitter's entries: the serializer, and where a program that emits several records resumes. */
enum { DS_TAIL_EMIT = 0, DS_TAIL_RESUME_MMSG = 1, DS_TAIL_NR = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, DS_TAIL_NR);
	__type(key, __u32);
	__type(value, __u32);
} ds_emitter SEC(".maps");

/*
 * What the jump carries besides the context, kept outside slot 1 so the
 * serializer can still tell whether slot 1 was taken in between: the tag it
 * must find there, and the guard's generation to give the slot back with.
 */
struct ds_handoff {
	__u64 tag;
	__u32 gen;
	__u32 resume; /* after this record, jump back to DS_TAIL_RESUME_MMSG */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ds_handoff);
} ds_handoff SEC(".maps");

static __always_inline struct ds_handoff *handoff(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ds_handoff, &zero);
}

/*
 * The shape every sys_exit program shares: the actor filtered before any heap
 * work, then slot 1 opened (NULL: nothing to report); rec_submit() hands it
 * to the serializer.
 */
static __always_inline struct ds_rec_info *rec_begin_as(struct task_struct *task, __u32 also_uid)
{
	struct ds_handoff *h = handoff();
	struct ds_rec_info *info;
	__u32 gen = 0;

	if (!h || filtered_as(task, 1, also_uid))
		return NULL;
	h->tag = new_tag();
	h->resume = 0;
	info = rec_init(h->tag, &gen);
	h->gen = gen;
	return info;
}

static __always_inline struct ds_rec_info *rec_begin(struct task_struct *task)
{
	return rec_begin_as(task, DS_NO_UID);
}

/*
 * Ends the program: the record's head set, the syscall's stash `in` dropped
 * (NULL: it has none), then the jump to ds_emit. Falling through means the
 * emitter is missing, which the loader never allows; counted all the same.
 */
static __always_inline void rec_submit(void *ctx, struct ds_rec_info *info, __u32 type, __s64 res, __u32 nr,
				       struct ds_inflight *in)
{
	struct ds_handoff *h = handoff();
	struct ds_counters *c;

	info->type = type;
	info->res = res;
	info->syscall = nr;
	if (in)
		inflight_drop(in);
	bpf_tail_call(ctx, &ds_emitter, DS_TAIL_EMIT);
	if ((c = counters()))
		c->output_fail++;
	if (h)
		sd_put_local(info, h->gen);
}

/* A sys_enter program that only keeps the call's arguments for its exit. */
#define DS_STASH(fn, kind)                             \
	int fn(struct ds_sys_enter *ctx)               \
	{                                              \
		inflight_save(ctx, kind);              \
		return 0;                              \
	}

/*
 * The names a file event's call was given, read at entry into a copy slot
 * (bpf/inflight.bpf.h): pointers of the caller's, 0 for none. Its exit reads
 * them there (entry_name()), never again from the caller.
 */
static __noinline void names_save(struct ds_inflight *in, __u64 p0, __u64 p1, __u64 p2)
{
	struct ds_entry_copy *e;

	if (!in || !(e = entry_copy_claim(in)))
		return;
	e->uname[0] = p0;
	e->uname[1] = p1;
	e->uname[2] = p2;
	e->n[0] = p0 ? bpf_probe_read_user_str(e->area, DS_COPY_STR, (void *)p0) : 0;
	e->n[1] = p1 ? bpf_probe_read_user_str(e->area + DS_COPY_STR, DS_COPY_STR, (void *)p1) : 0;
	e->n[2] = p2 ? bpf_probe_read_user_str(e->area + 2 * DS_COPY_STR, DS_COPY_STR, (void *)p2) : 0;
}

/*
 * The i-th name its entry copied (as a number, rec_number()), or 0: none
 * given. A name the entry could not read (its page not in memory yet: a
 * fresh mapping of a file, say) is read now, after the kernel's own copy
 * faulted it in, and flagged DS_F_READ_AT_EXIT: it may be what another thread
 * wrote since. A call without a copy (the kernel could not allocate one, or
 * the agent attached while it ran) is flagged too: the record cannot show
 * its names.
 */
static __noinline __u64 entry_name(struct ds_rec_info *info, const struct ds_inflight *in, __u32 i)
{
	struct ds_entry_copy *e = entry_copy_of(in);
	char *dst;

	if (!info)
		return 0;
	if (!e) {
		info->flags |= DS_F_STR_TRUNCATED;
		return 0;
	}
	i &= 3;
	if (i > 2)
		return 0;
	dst = e->area + i * DS_COPY_STR;
	if (e->n[i] < 0 && e->uname[i]) {
		e->n[i] = bpf_probe_read_user_str(dst, DS_COPY_STR, (void *)e->uname[i]);
		info->flags |= e->n[i] > 0 ? DS_F_READ_AT_EXIT : DS_F_STR_TRUNCATED;
	}
	return e->n[i] > 0 ? rec_number(info, dst) : 0;
}

/* A name its entry copied (src, a number: entry_name()) into the record's string A or B (cut at `cap`). */
static __always_inline __u32 copied_str(char *dst, __u32 cap, __u64 src, __u32 *flags)
{
	long n;

	if (!src)
		return 0;
	n = bpf_probe_read_kernel_str(dst, cap, (const void *)src);
	if (n <= 1)
		return 0;
	if (n == cap)
		*flags |= DS_F_STR_TRUNCATED;
	return (n - 1) & (DS_PATH_CAP - 1);
}

/* Whether a finished call is worth a record at all, before any heap work (NULL: always). */
typedef int (*rec_want_t)(struct task_struct *task, const struct ds_inflight *in);
/* The type's part of the record into slot 1; returns the record's type, or 0 for none after all. */
typedef __u32 (*rec_fill_t)(struct task_struct *task, struct ds_rec_info *info, const struct ds_inflight *in);

/*
 * A syscall record's exit program: the stash its entry kept, the type's part
 * filled by `fill`, then ds_emit. `want` and `fill` are __always_inline
 * functions passed as constants, so each program compiles to one straight body.
 */
static __always_inline int rec_exit(struct ds_sys_exit *ctx, rec_want_t want, rec_fill_t fill)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;
	struct ds_inflight *in;
	struct ds_handoff *h;
	__u32 type;

	if (!(in = inflight_get(ctx)))
		return 0;
	if ((!want || want(task, in)) && (info = rec_begin(task))) {
		type = fill(task, info, in);
		if (type) {
			rec_submit(ctx, info, type, in->res, in->nr, in);
			return 0;
		}
		if ((h = handoff()))
			sd_put_local(info, h->gen);
	}
	inflight_drop(in);
	return 0;
}

/* In-place serialization, for raw tracepoint programs (they cannot tail-call a tracepoint program). */
static __always_inline void rec_finish(void *ctx, struct task_struct *task, struct ds_rec_info *info, __u64 tag,
				       __u32 gen, __u32 type, __s64 res, __u32 nr)
{
	info->type = type;
	info->res = res;
	info->syscall = nr;
	emit_record(ctx, task, info, tag);
	sd_put_local(info, gen);
}

#endif /* DS_RECORD_BPF_H */
