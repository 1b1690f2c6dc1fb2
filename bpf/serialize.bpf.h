/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Level 2, the serializer (Elkeid's xxx_print), and level 3, the nest3
 * enrichment step. Records leave through transport.bpf.h.
 *
 * One encoder serves all three transports: it writes through a bpf_dynptr, which
 * is either slot 0 (perf, ringbuf-output) or a ring buffer record reserved at the
 * event's exact size (ringbuf). The dynptr checks every offset at run time, and
 * every length is also clamped to its buffer here, so a bad length can cut an
 * event short but never write outside it.
 */
#ifndef DS_SERIALIZE_BPF_H
#define DS_SERIALIZE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "path.bpf.h"
#include "format.bpf.h"
#include "transport.bpf.h"

static __always_inline int same16(const void *a, const void *b)
{
	const __u64 *x = a, *y = b;

	return x[0] == y[0] && x[1] == y[1];
}

/*
 * Length of the comm: bpf_get_current_comm() pads with NULs, so it is 16 minus
 * the number of zero bytes. Counted without branches: an unrolled loop with a
 * break gave the verifier one path per possible length, each explored through
 * the rest of the serializer (16x the work, and most of the load time).
 */
static __always_inline __u32 zero_bytes(__u64 x)
{
	const __u64 lo7 = 0x7f7f7f7f7f7f7f7full;
	/* High bit of each byte set where that byte is zero. */
	__u64 m = ~(((x & lo7) + lo7) | x | lo7);

	return ((m >> 7) * 0x0101010101010101ull) >> 56;
}

static __always_inline __u32 comm_len(const __u64 *comm)
{
	return DS_COMM_LEN - zero_bytes(comm[0]) - zero_bytes(comm[1]);
}

/* Index of the first zero byte of x (little-endian), 8 when there is none; no branch. */
static __always_inline __u32 first_zero_byte(__u64 x)
{
	const __u64 lo7 = 0x7f7f7f7f7f7f7f7full;
	__u64 m = ~(((x & lo7) + lo7) | x | lo7);
	/* (lowest zero byte's bit >> 7) - 1: 0xff in each byte below it, so counting those bytes is the index. */
	__u64 below = ((m & -m) >> 7) - 1;

	return ((below & 0x0101010101010101ull) * 0x0101010101010101ull) >> 56;
}

struct tree_walk {
	struct task_struct *t;
	struct ds_common_info *ci;
};

/*
 * One entry of pid_tree per step. Its position is kept in ci (slot memory),
 * not on the stack: read back, it is a number the verifier knows nothing
 * about, so every step looks alike and the loop is checked in one pass, where
 * a position it tracked made each of the eight steps a state of its own.
 */
static long tree_step(__u32 i, struct tree_walk *w)
{
	struct ds_common_info *ci = w->ci;
	struct task_struct *t = w->t;
	__u32 tgid = t->tgid, pos = ci->len_pid_tree & (DS_PID_TREE_CAP - 1), l0, len;
	__u64 c0, c1;

	if (i > 0) {
		if (tgid == 0)
			return 1;
		ci->pid_tree[pos] = '<';
		pos++;
	}
	pos = ds_put_u32_swar(ci->pid_tree, pos & (DS_PID_TREE_CAP - 1), tgid, DS_PID_TREE_CAP - 1);
	ci->pid_tree[pos & (DS_PID_TREE_CAP - 1)] = '.';
	pos++;
	c0 = *(const __u64 *)&t->comm[0];
	c1 = *(const __u64 *)&t->comm[8];
	*(__u64 *)&ci->pid_tree[pos & (DS_PID_TREE_CAP - 1)] = c0;
	*(__u64 *)&ci->pid_tree[(pos & (DS_PID_TREE_CAP - 1)) + 8] = c1;
	/* Past 8 only when the first word has no NUL; 16 (no NUL at all) is cut to 15, as the kernel keeps it. */
	l0 = first_zero_byte(c0);
	len = l0 + (l0 >> 3) * first_zero_byte(c1);
	len -= len >> 4;
	pos += len & (DS_COMM_LEN - 1);
	ci->len_pid_tree = pos < DS_PID_TREE_CAP ? pos : DS_PID_TREE_CAP - 1;
	if (tgid <= 1)
		return 1;
	w->t = t->real_parent;
	return 0;
}

/*
 * Business level, every record: the strings of struct ds_common, in slot 1.
 * nodename, and pid_tree as Elkeid's "pid.comm<ppid.comm<...": the task then
 * its real_parent chain (thread group ids, initial namespace), at most
 * DS_PID_TREE_DEPTH entries, ending after pid 1 or before pid 0 (the idle
 * task, parent of kthreadd). Each entry is at most 10 digits, '.', 16 bytes
 * stored for the comm: it stays inside the DS_PID_TREE_ENTRY bytes of room
 * after pos, the digits' spill (ds_put_u32_swar) included. Global, not
 * static: the verifier checks a global function once per program, on its
 * own, where it walked a static one again for every state it was called in
 * (six times in ds_exec). The task is current (see self(), heap.bpf.h).
 *
 * A comm is two 8-byte loads and stores, its length the first NUL (at most
 * 15), not a bpf_probe_read_kernel_str() per ancestor: a helper call each
 * was a fifth of this function. The text is the same: the bytes up to the
 * NUL, and a comm that cannot be read (a faulting load gives 0) is empty, as
 * %s read it.
 */
__noinline int common_info_fill(struct ds_common_info *ci)
{
	struct task_struct *t = self();
	struct tree_walk w = { .t = t, .ci = ci };
	long n;

	if (!ci)
		return 0;

	n = bpf_probe_read_kernel_str(ci->nodename, DS_NODENAME_MAX + 1, &t->nsproxy->uts_ns->name.nodename);
	ci->len_nodename = n > 1 ? (n - 1) & (DS_NODENAME_CAP - 1) : 0;
	ci->len_pid_tree = 0;
	bpf_loop(DS_PID_TREE_DEPTH, tree_step, &w, 0);
	return 0;
}

/*
 * Serializer, every record: struct ds_common's scalars, read from the task
 * (current, see self(), heap.bpf.h). __noinline: its temporaries get a frame of their
 * own, off the deepest call chain (serialize_event -> enrich -> build_path),
 * which the verifier caps at 512 bytes of stack in total.
 */
static __noinline void common_fill(struct task_struct *task, struct ds_common *c)
{
	struct task_struct *t = self();
	struct task_struct *leader = t->group_leader;
	struct task_struct *parent = t->real_parent->group_leader;
	struct pid *pid = t->thread_pid;
	unsigned int level = pid->level;
	struct pid_namespace *ns = BPF_CORE_READ(pid, numbers[level & 31].ns);
	const struct cred *cr = t->cred;
	struct signal_struct *sig = t->signal;

	c->euid = cr->euid.val;
	c->egid = cr->egid.val;
	c->pgid = sig->pids[PIDTYPE_PGID]->numbers[0].nr;
	c->sid = sig->pids[PIDTYPE_SID]->numbers[0].nr;
	/* As the kernel leaves them when unset (AUDIT_SID_UNSET, INVALID_UID); absent without CONFIG_AUDIT. */
	c->sessionid = 0xffffffff;
	c->auid = 0xffffffff;
	if (bpf_core_field_exists(t->loginuid)) {
		c->sessionid = t->sessionid;
		c->auid = t->loginuid.val;
	}
	c->pidns_id = BPF_CORE_READ(ns, ns.inum);
	c->mntns_id = t->nsproxy->mnt_ns->ns.inum;
	c->start_ns = leader->start_time;
	c->exec_seq = leader->self_exec_id;
	c->pstart_ns = parent->start_time;
	c->pexec_seq = parent->self_exec_id;
}

/* Level 3 (nest3): its own large scratch, taken while levels 1 and 2 hold theirs. */
static __noinline __u32 enrich(struct task_struct *task, __u64 tag, struct ds_level *lv)
{
	__u32 gen = 0, r, id = enrich_slot();
	struct ds_enrich *e = sd_get_percpu_data(sizeof(*e), id, OWNER_ENRICH, &gen);
	struct task_struct *parent;
	struct path p;

	if (!e)
		return 0;
	parent = BPF_CORE_READ(task, real_parent);
	e->tag = tag;
	bpf_core_read(e->comm, sizeof(e->comm), &parent->comm);
	lv->tag_expected = tag;
	__builtin_memcpy(lv->data_expected, e->comm, sizeof(e->comm));

	p = BPF_CORE_READ(parent, mm, exe_file, f_path);
	r = build_path(p.dentry, p.mnt, e->path, e->swap);

	lv->tag_observed = e->tag;
	__builtin_memcpy(lv->data_observed, e->comm, sizeof(e->comm));
	lv->slot = id;
	lv->used = 1;
	lv->intact = e->tag == tag && same16(lv->data_observed, lv->data_expected);
	sd_put_percpu_data(e, id, OWNER_ENRICH, gen, 0);
	return r;
}

/* Appends (compact) or places (fixed) one string and records its descriptor. */
/*
 * len is already clamped; the mask (a power of two minus one) only restates
 * the bound at the call, where 6.1's verifier needs it (see DS_REC_PUT). A
 * mask, not a comparison: a branch per string doubles the paths it explores.
 * For the same reason a failed write (it cannot fail: the sizes fit) empties
 * the string by a mask from the error's sign, not by a branch: with one, the
 * verifier walked the rest of the exec serializer 2^7 times (a third of the
 * exec program's load).
 */
#define PUT_STR(idx, src, len, mask, fixed_field)                                             \
	do {                                                                                  \
		__u32 __len = (len);                                                          \
		asm volatile("" : "+r"(__len));                                               \
		__len &= (mask);                                                              \
		__u32 __off = fixed ? offsetof(struct ds_exec_fixed, fixed_field) : pos;       \
		__u64 __bad = (__u64)bpf_dynptr_write(&dp, __off & SD_EVENT_MASK, (void *)(src), __len, 0) >> 63; \
		asm volatile("" : "+r"(__bad)); /* no select: BPF would branch */             \
		__len &= (__u32)(__bad - 1);                                                  \
		ev->str[idx] = (__len << 16) | (__off & SD_EVENT_MASK);                       \
		pos += __len;                                                                 \
	} while (0)

/* min(v, max), and `flag` when v was cut; no branch (see ds_min), one comparison for both. */
static __always_inline __u32 clamp(__u32 v, __u32 max, __u32 *flags, __u32 flag)
{
	__u64 over = ds_lt(max, v);

	*flags |= (__u32)over * flag;
	return ds_pick(v, max, over);
}

/*
 * The exec's context (struct ds_exec_extra): its scalars, and its strings
 * after the others. A function of its own: serialize_event's frame is what
 * 6.1's 512-byte limit on a call chain is spent on.
 */
static __noinline __u32 put_extra(struct bpf_dynptr *dp, struct ds_exec *ev, struct ds_exec_extra *x, __u32 pos)
{
	const int fixed = ds_cfg.encoding == DS_ENCODING_FIXED;
	long err = 0;

#define PUT_X(idx, field, mask)                                                                \
	do {                                                                                  \
		__u32 __len = x->len[(idx) - DS_STR_TTY];                                     \
		__u32 __off = fixed ? offsetof(struct ds_exec_fixed, field) : pos;             \
		asm volatile("" : "+r"(__len));                                               \
		__len &= (mask);                                                              \
		/* No branch on the result: 2^7 verifier paths otherwise. */               \
		err |= bpf_dynptr_write(dp, __off & SD_EVENT_MASK, x->field, __len, 0);       \
		ev->str[idx] = (__len << 16) | (__off & SD_EVENT_MASK);                       \
		pos += __len;                                                                 \
	} while (0)
	/* Lengths are below each cap (exec_extra); a mask past a cap stays inside slot 1. */
	PUT_X(DS_STR_TTY, tty, DS_TTY_CAP - 1);
	PUT_X(DS_STR_STDIN, stdin, DS_FD_CAP - 1);
	PUT_X(DS_STR_STDOUT, stdout, DS_FD_CAP - 1);
	PUT_X(DS_STR_SIP, sip, 63);
	PUT_X(DS_STR_DIP, dip, 63);
	PUT_X(DS_STR_SSH, ssh, 127);
	PUT_X(DS_STR_LD_PRELOAD, ld_preload, DS_LD_PRELOAD_CAP - 1);
#undef PUT_X
	ev->exe_dev = x->exe_dev;
	ev->exe_ino = x->exe_ino;
	ev->sa_family = x->sa_family;
	ev->sport = x->sport;
	ev->dport = x->dport;
	/* Cannot happen (the sizes above fit the record); if it did, say so rather than send holes. */
	if (err)
		ev->flags |= DS_F_CORRUPT;
	return pos;
}

static __noinline int serialize_event(void *ctx, struct ds_file_info *info, __u64 tag, const __u64 *comm, __u32 type)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_counters *c = counters();
	const int fixed = ds_cfg.encoding == DS_ENCODING_FIXED;
	const int ring = ds_cfg.transport == DS_TRANSPORT_RINGBUF;
	__u32 l_fn, l_args, l_cwd, l_exe, l_comm, flags, args_total, size, pos, gen0 = 0, pexe = 0, l_pexe = 0;
	__u32 l_node, l_tree;
	__s32 res;
	__u64 mark[2];
	struct bpf_dynptr dp;
	struct ds_exec *ev;
	void *s0 = NULL;
	int intact1, intact2;

	if (!c)
		return 0;

	/* Read every scalar first: in mode single the header below lands on top of them. */
	flags = info->flags;
	args_total = info->args_total;
	res = info->res;
	l_comm = comm_len(comm);
	l_fn = clamp(info->len[DS_STR_FILENAME], fixed ? DS_FIXED_FILENAME - 1 : DS_FILENAME_CAP - 1, &flags,
		     DS_F_FILENAME_TRUNCATED);
	l_args = clamp(info->len[DS_STR_ARGS],
		       fixed			       ? DS_FIXED_ARGS - 1
		       : ds_cfg.mode == DS_MODE_NEST3 ? DS_ARGS_CAP / 2 - 1
						       : DS_ARGS_CAP - 1,
		       &flags, DS_F_ARGS_TRUNCATED);
	l_cwd = clamp(info->len[DS_STR_CWD], fixed ? DS_FIXED_PATH - 1 : DS_PATH_CAP - 1, &flags, DS_F_CWD_TRUNCATED);
	l_exe = clamp(info->len[DS_STR_EXE], fixed ? DS_FIXED_PATH - 1 : DS_PATH_CAP - 1, &flags, DS_F_EXE_TRUNCATED);
	l_node = ds_min(info->ci.len_nodename, DS_NODENAME_MAX);
	l_tree = ds_min(info->ci.len_pid_tree, DS_PID_TREE_CAP - 1);

	if (fixed)
		size = sizeof(struct ds_exec_fixed);
	else
		size = sizeof(struct ds_exec) + l_comm + l_fn + l_args + l_cwd + l_exe + l_node + l_tree +
		       ds_min(info->x.total, sizeof(info->x)) +
		       (ds_cfg.mode == DS_MODE_NEST3 ? DS_PATH_CAP - 1 : 0);

	ev = record_begin(&dp, &s0, &gen0, size, sizeof(*ev), c);
	if (!ev)
		return 0;

	ev->hdr.tag = tag + 1;
	mark[0] = 0x3a3073ull | (comm[0] << 24); /* "s0:" + comm */
	mark[1] = (comm[0] >> 40) | (comm[1] << 24);
	__builtin_memcpy(ev->mark, mark, sizeof(mark));
	hdr_fill(&ev->hdr, c, type);
	ev->pid = bpf_get_current_pid_tgid() >> 32;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->ppid = self()->real_parent->tgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->gid = bpf_get_current_uid_gid() >> 32;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	common_fill(task, &ev->common);
	ev->args_total = args_total;
	ev->res = res;
	ev->pad = 0;
	__builtin_memset(&ev->level[2], 0, sizeof(ev->level[2]));

	if (ds_cfg.mode == DS_MODE_NEST3) {
		pexe = enrich(task, tag + 2, &ev->level[2]);
		l_pexe = clamp(DS_PATH_LEN(pexe), fixed ? DS_FIXED_PATH - 1 : DS_PATH_CAP - 1, &flags,
			       DS_F_PEXE_TRUNCATED);
		if (pexe & DS_PATH_TRUNCATED)
			flags |= DS_F_PEXE_TRUNCATED;
	}

	/* Both levels above are checked only now, after everything below them ran. */
	ev->level[0].tag_expected = tag;
	ev->level[0].tag_observed = info->tag;
	__builtin_memcpy(ev->level[0].data_expected, comm, DS_COMM_LEN);
	__builtin_memcpy(ev->level[0].data_observed, info->comm, DS_COMM_LEN);
	intact1 = ev->level[0].tag_observed == tag && same16(ev->level[0].data_observed, comm);
	ev->level[0].slot = business_slot();
	ev->level[0].used = 1;
	ev->level[0].intact = intact1;

	ev->level[1].tag_expected = tag + 1;
	ev->level[1].tag_observed = ev->hdr.tag;
	__builtin_memcpy(ev->level[1].data_expected, mark, sizeof(mark));
	__builtin_memcpy(ev->level[1].data_observed, ev->mark, sizeof(mark));
	intact2 = ev->hdr.tag == tag + 1 && same16(ev->mark, mark);
	ev->level[1].slot = ring ? DS_SLOT_NONE : 0;
	ev->level[1].used = 1;
	ev->level[1].intact = intact2;

	if (intact1)
		flags |= DS_F_SLOT1_INTACT;
	if (!intact1 || !intact2 || (ds_cfg.mode == DS_MODE_NEST3 && !ev->level[2].intact)) {
		flags |= DS_F_CORRUPT;
		c->corrupt++;
	}
	if (ds_cfg.guard && guard_clobbered(business_slot()))
		flags |= DS_F_CLOBBERED;

	pos = sizeof(struct ds_exec);
	PUT_STR(DS_STR_COMM, comm, l_comm, DS_COMM_LEN - 1, comm); /* a comm is at most 15 bytes */
	PUT_STR(DS_STR_FILENAME, info->filename, l_fn, DS_FILENAME_CAP - 1, filename);
	PUT_STR(DS_STR_ARGS, info->args, l_args, DS_ARGS_CAP - 1, args);
	PUT_STR(DS_STR_CWD, info->cwd, l_cwd, DS_PATH_CAP - 1, cwd);
	PUT_STR(DS_STR_EXE, info->exe, l_exe, DS_PATH_CAP - 1, exe);
	PUT_STR(DS_STR_NODENAME, info->ci.nodename, l_node, DS_NODENAME_CAP - 1, nodename);
	PUT_STR(DS_STR_PID_TREE, info->ci.pid_tree, l_tree, DS_PID_TREE_CAP - 1, pid_tree);
	ev->flags = 0;
	pos = put_extra(&dp, ev, &info->x, pos);
	ev->str[DS_STR_PEXE] = 0;
	if (ds_cfg.mode == DS_MODE_NEST3) {
		__u32 id = enrich_slot();
		struct ds_enrich *e = bpf_map_lookup_elem(&g_percpu_data, &id);

		if (e)
			PUT_STR(DS_STR_PEXE, e->path, l_pexe, DS_PATH_CAP - 1, pexe);
	}
	ev->flags |= flags; /* put_extra may have set DS_F_CORRUPT */
	if (!fixed)
		size = pos;
	ev->hdr.size = size;

	record_submit(ctx, &dp, s0, size, c);
	if (ring)
		return 0;
	sd_put_percpu_data(s0, 0, OWNER_SERIALIZER, gen0, 1);
	return 0;
}

/* Level 2 for an exit: the record in slot 0 (or the ring), from slot 1's info. */
static __noinline int serialize_exit(void *ctx, struct task_struct *task, struct ds_exit_info *info, __u64 tag)
{
	struct ds_counters *c = counters();
	const int fixed = ds_cfg.encoding == DS_ENCODING_FIXED;
	const int ring = ds_cfg.transport == DS_TRANSPORT_RINGBUF;
	__u64 comm[2];
	__u32 size, l_comm, l_node, l_tree, l_exe, flags, off, gen0 = 0;
	struct bpf_dynptr dp;
	struct ds_exit *ev;
	void *s0 = NULL;

	if (!c)
		return 0;
	__builtin_memcpy(comm, info->comm, DS_COMM_LEN);
	l_comm = comm_len(comm);
	if (l_comm > DS_COMM_LEN)
		l_comm = DS_COMM_LEN;
	l_node = info->ci.len_nodename > DS_NODENAME_MAX ? DS_NODENAME_MAX : info->ci.len_nodename;
	l_tree = info->ci.len_pid_tree > DS_PID_TREE_CAP - 1 ? DS_PID_TREE_CAP - 1 : info->ci.len_pid_tree;
	flags = info->flags & (DS_F_EXE_TRUNCATED | DS_F_EXE_DELETED | DS_F_EXE_MEMFD);
	l_exe = clamp(info->len_exe, fixed ? DS_FIXED_PATH - 1 : DS_PATH_CAP - 1, &flags, DS_F_EXE_TRUNCATED);
	size = fixed ? sizeof(struct ds_exit_fixed) : sizeof(struct ds_exit) + l_comm + l_node + l_tree + l_exe;
	ev = record_begin(&dp, &s0, &gen0, size, sizeof(*ev), c);
	if (!ev)
		return 0;
	ev->hdr.tag = tag + 1;
	hdr_fill(&ev->hdr, c, DS_EVENT_EXIT);
	ev->pid = BPF_CORE_READ(task, tgid);
	ev->tid = BPF_CORE_READ(task, pid);
	ev->ppid = self()->real_parent->tgid;
	ev->uid = BPF_CORE_READ(task, cred, uid.val);
	ev->gid = BPF_CORE_READ(task, cred, gid.val);
	ev->exit_code = info->exit_code;
	ev->runtime_ns = info->runtime_ns;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	common_fill(task, &ev->common);
	ev->flags = (info->tag == tag ? DS_F_SLOT1_INTACT : DS_F_CORRUPT) | flags;
	if (info->tag != tag)
		c->corrupt++;
	off = fixed ? offsetof(struct ds_exit_fixed, comm) : sizeof(struct ds_exit);
	if (bpf_dynptr_write(&dp, off, comm, l_comm, 0))
		l_comm = 0;
	ev->str[DS_EXIT_STR_COMM] = (l_comm << 16) | off;
	off = fixed ? offsetof(struct ds_exit_fixed, nodename) : off + l_comm;
	if (bpf_dynptr_write(&dp, off, info->ci.nodename, ds_mask(l_node, DS_NODENAME_CAP - 1), 0))
		l_node = 0;
	ev->str[DS_EXIT_STR_NODENAME] = (l_node << 16) | off;
	off = fixed ? offsetof(struct ds_exit_fixed, pid_tree) : off + l_node;
	if (bpf_dynptr_write(&dp, off, info->ci.pid_tree, ds_mask(l_tree, DS_PID_TREE_CAP - 1), 0))
		l_tree = 0;
	ev->str[DS_EXIT_STR_PID_TREE] = (l_tree << 16) | off;
	off = fixed ? offsetof(struct ds_exit_fixed, exe) : off + l_tree;
	if (bpf_dynptr_write(&dp, off, info->exe, ds_mask(l_exe, DS_PATH_CAP - 1), 0))
		l_exe = 0;
	ev->str[DS_EXIT_STR_EXE] = (l_exe << 16) | off;
	ev->hdr.size = size;
	record_submit(ctx, &dp, s0, size, c);
	if (!ring)
		sd_put_percpu_data(s0, 0, OWNER_SERIALIZER, gen0, 1);
	return 0;
}

#endif /* DS_SERIALIZE_BPF_H */
