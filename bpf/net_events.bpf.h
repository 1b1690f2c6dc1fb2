/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network events: connect, accept, bind (and dns, bpf/dns.bpf.h), from the
 * syscalls' own tracepoints rather than sock/inet_sock_set_state: those run
 * in the caller's context (the actor is current; state changes for a received
 * SYN-ACK run in softirq, on whatever task the CPU was running), they see UDP
 * as well as TCP, and they carry the call's result. Only inet sockets are
 * reported; the entry programs look at the address family first, so a
 * connect to a unix socket (syslog, D-Bus) stashes nothing.
 */
#ifndef DS_NET_EVENTS_BPF_H
#define DS_NET_EVENTS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "dual_slot.h"
#include "record.bpf.h"
#include "exec_context.bpf.h"

/*
 * The open file behind a descriptor of the current task, or NULL. The fd
 * table through self()'s loads (heap.bpf.h); only the slot, an index the
 * verifier cannot bound, is a read.
 */
static __always_inline struct file *fd_file(__s64 fd)
{
	struct fdtable *fdt = self()->files->fdt;
	struct file **fds = fdt->fd;
	unsigned int max = fdt->max_fds;
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The struct sock behind a socket file, or NULL for any other file. */
static __always_inline struct sock *file_sock(struct file *f)
{
	struct socket *sock;

	struct inode *ino;

	if (!f)
		return NULL;
	ino = DS_LOAD(file, f, f_inode);
	if ((DS_LOAD(inode, ino, i_mode) & DS_S_IFMT) != DS_S_IFSOCK)
		return NULL;
	sock = DS_LOAD(file, f, private_data);
	return DS_LOAD(socket, sock, sk);
}

/* An inet socket's two ends as the kernel holds them; 0 (d untouched) for any other family. */
static __noinline int sock_read(struct sock *sk, struct ds_sock_data *d)
{
	__u16 family;

	if (!sk)
		return 0;
	family = DS_LOAD(sock, sk, __sk_common.skc_family);
	if (family != DS_AF_INET && family != DS_AF_INET6)
		return 0;
	d->family = family;
	d->protocol = DS_LOAD(sock, sk, sk_protocol);
	d->sport = DS_LOAD(sock, sk, __sk_common.skc_num);
	d->dport = bpf_ntohs(DS_LOAD(sock, sk, __sk_common.skc_dport));
	d->sip_1 = 0;
	d->dip_1 = 0;
	if (family == DS_AF_INET) {
		d->sip_0 = DS_LOAD(sock, sk, __sk_common.skc_rcv_saddr);
		d->dip_0 = DS_LOAD(sock, sk, __sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(&d->sip_0, 16, (void *)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_rcv_saddr));
		bpf_probe_read_kernel(&d->dip_0, 16, (void *)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_daddr));
	}
	return 1;
}

/*
 * The inet socket behind an open file (a number: a global function takes no
 * kernel pointers), into d; 0 for any other file. Global: checked once per
 * program, not once per caller state.
 */
__noinline int ds_file_sock(__u64 file, struct ds_sock_data *d)
{
	if (!d)
		return 0;
	return sock_read(file_sock((struct file *)file), d);
}

/* struct sockaddr_in and sockaddr_in6, as one: the v4 address is v6's flowinfo word. */
struct ds_sockaddr {
	__u16 family;
	__u16 port; /* network order */
	__u32 v4;
	__u64 v6_0;
	__u64 v6_1;
	__u32 scope;
};

#define DS_SOCKADDR_MAX 28 /* sizeof(struct sockaddr_in6) */
_Static_assert(sizeof(struct ds_sockaddr) == 32, "a 31 mask bounds reads into ds_sockaddr");

static __always_inline int inet_family(__u16 family)
{
	return family == DS_AF_INET || family == DS_AF_INET6;
}

/* An IPv4 address (its 4 bytes in network order, as the low half of a u64) as ::ffff:a.b.c.d's last 8 bytes. */
static __always_inline __u64 ds_v4_mapped(__u64 v4)
{
	return (v4 & 0xffffffffull) << 32 | 0xffff0000ull;
}

/* An inet sockaddr into the destination (dest) or source end of d; 0 (d untouched) when it is not one. */
static __always_inline int sockaddr_put(const struct ds_sockaddr *sa, struct ds_sock_data *d, int dest)
{
	__u64 a0, a1 = 0;

	if (!inet_family(sa->family))
		return 0;
	if (sa->family == DS_AF_INET) {
		a0 = sa->v4;
	} else {
		a0 = sa->v6_0;
		a1 = sa->v6_1;
	}
	/*
	 * A call's address of the other family than its socket's (a v6 socket
	 * asked for a v4 address, or the reverse; the kernel refuses or maps it):
	 * both ends as IPv6, a v4 one mapped (::ffff:a.b.c.d), so that neither end
	 * is read in the other's layout.
	 */
	if (d->family && d->family != sa->family) {
		if (sa->family == DS_AF_INET) {
			a1 = ds_v4_mapped(a0);
			a0 = 0;
		} else if (dest) {
			d->sip_1 = ds_v4_mapped(d->sip_0);
			d->sip_0 = 0;
		} else {
			d->dip_1 = ds_v4_mapped(d->dip_0);
			d->dip_0 = 0;
		}
		d->family = DS_AF_INET6;
	} else {
		d->family = sa->family;
	}
	if (dest) {
		d->dport = bpf_ntohs(sa->port);
		d->dip_0 = a0;
		d->dip_1 = a1;
	} else {
		d->sport = bpf_ntohs(sa->port);
		d->sip_0 = a0;
		d->sip_1 = a1;
	}
	return 1;
}

/* ds_sockaddr's family when the address could not be read (its page not in memory yet). */
#define DS_SA_UNREAD 0xffff

/*
 * A sockaddr the caller passed, into sa (zeroed first); 1 when it is an inet
 * one, 0 when not. An AF_INET6 shorter than sockaddr_in6 (the kernel refuses
 * it) is kept with family 0: its record has the call's error and no address.
 * 2, with family DS_SA_UNREAD, when it could not be read: a page not in
 * memory yet (a fresh mapping of a file) is brought in only by the kernel's
 * own copy, and such an address must not hide the call.
 */
static __noinline int sockaddr_read(const void *ua, __u64 len, struct ds_sockaddr *sa)
{
	__u32 n = len > DS_SOCKADDR_MAX ? DS_SOCKADDR_MAX : len;

	if (!sa)
		return 0;
	__builtin_memset(sa, 0, sizeof(*sa));
	if (!ua)
		return 0;
	asm volatile("" : "+r"(n)); /* keep the mask: the verifier checks the size against sa */
	n &= 31;
	if (bpf_probe_read_user(sa, n, ua)) {
		__builtin_memset(sa, 0, sizeof(*sa));
		sa->family = DS_SA_UNREAD;
		return 2;
	}
	if (!inet_family(sa->family))
		return 0;
	if (sa->family == DS_AF_INET6 && n < 24)
		sa->family = 0;
	return 1;
}

/*
 * connect's and bind's entry: the address is read here, once, into the
 * stash; the exit takes it from there. Read again at the exit, it would be
 * whatever another thread of the caller wrote after the kernel copied it.
 * Only inet addresses are stashed (a unix socket's connect costs the read),
 * and those not readable here: the exit decides (sockaddr_late()).
 */
static __always_inline void sockaddr_stash(struct ds_sys_enter *ctx)
{
	struct ds_sockaddr sa;
	struct ds_inflight *in;

	if (!sockaddr_read((void *)ctx->args[1], ctx->args[2], &sa))
		return;
	if ((in = inflight_save(ctx, 0)))
		__builtin_memcpy(in->user, &sa, sizeof(sa));
}

_Static_assert(sizeof(struct ds_sockaddr) == sizeof(((struct ds_inflight *)0)->user), "the stash holds a sockaddr");

/* Attached to sys_enter_connect and sys_enter_bind (src/wire/events.ts): the same (fd, address, length). */
SEC("tracepoint")
int ds_sockaddr_enter(struct ds_sys_enter *ctx)
{
	sockaddr_stash(ctx);
	return 0;
}

#define DS_EINPROGRESS 115

/*
 * The address the call asked for, as its entry read it; one the entry could
 * not read is read now (the kernel's copy brought its page in) and flagged
 * DS_F_READ_AT_EXIT: another thread may have changed it since.
 */
static __always_inline const struct ds_sockaddr *sockaddr_late(struct ds_rec_info *info, const struct ds_inflight *in)
{
	struct ds_sockaddr *sa = (void *)in->user;

	if (sa->family == DS_SA_UNREAD && sockaddr_read((const void *)in->args[1], in->args[2], sa) == 1)
		info->flags |= DS_F_READ_AT_EXIT;
	return sa;
}

/*
 * A connect's or bind's record: the socket's two ends, and the address the
 * call asked for (dest: connect's far end; else bind's own) where the socket
 * cannot show it (`asked`, decided from what the socket showed). An address
 * the entry could not read makes a record only if the socket or that
 * address, read now, is inet.
 */
static __always_inline __u32 sock_call_fill(struct ds_rec_info *info, const struct ds_inflight *in, int dest,
					    __u32 type)
{
	struct ds_sock_data *d = (void *)info->data;
	int unread = ((const struct ds_sockaddr *)in->user)->family == DS_SA_UNREAD;
	int asked;

	__builtin_memset(d, 0, sizeof(*d));
	d->fd = in->args[0];
	ds_file_sock((__u64)fd_file(d->fd), d);
	asked = dest ? (in->res != 0 && in->res != -DS_EINPROGRESS) || !d->dport : in->res || !d->sport;
	if (asked)
		sockaddr_put(sockaddr_late(info, in), d, dest);
	if (unread && !inet_family(d->family))
		return 0;
	info->data_len = sizeof(*d);
	return type;
}

/*
 * connect(): the source the socket got; the destination the socket is
 * connected to when the call succeeded or is under way (the kernel's own:
 * 0.0.0.0 shows as 127.0.0.1), else the one the call asked for (all a failed
 * connect has; the socket may still hold an earlier peer).
 */
static __always_inline __u32 connect_fill(struct task_struct *task, struct ds_rec_info *info,
					  const struct ds_inflight *in)
{
	return sock_call_fill(info, in, 1, DS_EVENT_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int ds_connect_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, connect_fill);
}

/*
 * accept(), accept4(): only the connections accepted (a non-blocking server's
 * EAGAIN is no event), from the new socket itself. No entry program: the
 * result is the new fd.
 */
SEC("tracepoint")
int ds_accept_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_sock_data *d;
	struct ds_rec_info *info;
	struct sock *sk;

	if (ctx->ret < 0)
		return 0;
	sk = file_sock(fd_file(ctx->ret));
	if (!sk || !inet_family(DS_LOAD(sock, sk, __sk_common.skc_family)))
		return 0;
	info = rec_begin(task);
	if (!info)
		return 0;
	d = (void *)info->data;
	__builtin_memset(d, 0, sizeof(*d));
	d->fd = ctx->ret;
	sock_read(sk, d);
	info->data_len = sizeof(*d);
	rec_submit(ctx, info, DS_EVENT_ACCEPT, ctx->ret, sys_nr(ctx), NULL);
	return 0;
}

/* bind(): the local address asked for (port 0: the kernel picks one, shown as the socket got it). */
static __always_inline __u32 bind_fill(struct task_struct *task, struct ds_rec_info *info,
				       const struct ds_inflight *in)
{
	return sock_call_fill(info, in, 0, DS_EVENT_BIND);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int ds_bind_exit(struct ds_sys_exit *ctx)
{
	return rec_exit(ctx, NULL, bind_fill);
}

#endif /* DS_NET_EVENTS_BPF_H */
