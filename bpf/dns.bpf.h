/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dns: DNS messages over UDP port 53, read from the caller's buffers at the
 * send and receive syscalls (sendto, sendmsg, sendmmsg, recvfrom, recvmsg;
 * connected sockets or not). The entry programs run for every such call on
 * the host, so they decide cheaply (a UDP socket, port 53 on the far end) and
 * stash only candidates; the exit parses the header and the question. A
 * send's message and address are copied at its entry (a copy slot, one chunk
 * per message): parsed from the caller's memory at the exit, they could be
 * what another thread wrote there after the kernel sent the query. A
 * receive's are read at its exit: the reply arrives during the call. The
 * messages themselves (read, copied, parsed) are dns_message.bpf.h's.
 */
#ifndef DS_DNS_BPF_H
#define DS_DNS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "dual_slot.h"
#include "record.bpf.h"
#include "net_events.bpf.h"
#include "dns_message.bpf.h"

#define DS_IPPROTO_UDP 17
#define DS_DNS_PORT 53

enum { DS_SENDTO = 1, DS_SENDMSG, DS_SENDMMSG, DS_RECVFROM, DS_RECVMSG };

/* The UDP socket behind fd, or NULL. */
static __always_inline struct sock *udp_sock(struct task_struct *task, __s64 fd)
{
	struct sock *sk = file_sock(fd_file(fd));

	if (!sk || DS_LOAD(sock, sk, sk_protocol) != DS_IPPROTO_UDP ||
	    !inet_family(DS_LOAD(sock, sk, __sk_common.skc_family)))
		return NULL;
	return sk;
}

/*
 * A port for "not known at entry": what the call was given is not readable
 * there (its page not in memory yet: only the kernel's own copy brings it
 * in). Such a send is kept, and its exit reads what it could not
 * (ds_dns_late()): else it would hide a query.
 */
#define DS_PORT_UNREAD 0x10000

/* The port of a user-space inet sockaddr (host order), 0 if there is none, DS_PORT_UNREAD if not readable. */
static __always_inline __u32 user_port(const void *ua)
{
	__u16 fp[2] = {};

	if (!ua)
		return 0;
	if (bpf_probe_read_user(fp, sizeof(fp), ua))
		return DS_PORT_UNREAD;
	if (!inet_family(fp[0]))
		return 0;
	return bpf_ntohs(fp[1]);
}

static __always_inline int dns_port(__u32 port)
{
	return port == DS_DNS_PORT || port == DS_PORT_UNREAD;
}

/* A receive: a candidate when the socket's peer is port 53, or it has none and the caller asks who sent. */
static __always_inline void dns_recv_enter(struct ds_sys_enter *ctx, const void *from, __u32 kind)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct sock *sk = udp_sock(task, ctx->args[0]);
	__u16 port;

	if (!sk)
		return;
	port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (port == DS_DNS_PORT || (!port && from))
		inflight_save(ctx, kind);
}

/* A send that is a candidate: its stash, and a copy for its messages (none: counted, no record). */
static __always_inline struct ds_entry_copy *dns_send_save(struct ds_sys_enter *ctx, __u32 kind)
{
	struct ds_inflight *in = inflight_save(ctx, kind);
	struct ds_entry_copy *e;
	struct ds_counters *c;

	if (!in)
		return NULL;
	if (!(e = entry_copy_claim(in))) {
		inflight_drop(in);
		if ((c = counters()))
			c->output_fail++;
	}
	return e;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int ds_sendto_enter(struct ds_sys_enter *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct sock *sk = udp_sock(task, ctx->args[0]);
	const void *to = (void *)ctx->args[4];
	__u32 port;

	if (!sk)
		return 0;
	port = to ? user_port(to) : bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (dns_port(port))
		ds_dns_copy_msg(dns_first(dns_send_save(ctx, DS_SENDTO)), (__u64)to, ctx->args[5], ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int ds_sendmsg_enter(struct ds_sys_enter *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct sock *sk = udp_sock(task, ctx->args[0]);
	struct ds_msghdr m = {};
	__u64 iov[2] = {};
	const void *to;
	__u32 port;
	int st;

	if (!sk)
		return 0;
	/* What is not readable here is read at the exit (ds_dns_late()): a header not readable decides nothing yet. */
	st = msg_read((void *)ctx->args[1], &m, iov);
	to = named(&m);
	port = st == DS_MSG_HDR_UNREAD ? DS_PORT_UNREAD
	       : to			? user_port(to)
				       : bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!dns_port(port))
		return 0;
	dns_copy_hdr(dns_first(dns_send_save(ctx, DS_SENDMSG)), &m, iov, st, ctx->args[1]);
	return 0;
}

/* Each of a sendmmsg's first messages into its chunk. */
static __noinline void dns_mmsg_copy(struct ds_sys_enter *ctx, struct ds_entry_copy *e)
{
	struct ds_msghdr m;
	__u64 iov[2];
	const void *msgs = (void *)ctx->args[1];
	__u64 vlen = ctx->args[2];
	int st;

	if (!e)
		return;
	for (__u32 i = 0; i < DS_DNS_MMSG; i++) {
		__builtin_memset(&m, 0, sizeof(m));
		iov[0] = iov[1] = 0;
		/* No message: no address, len -1. Not readable: read at the exit. */
		st = i < vlen ? msg_read(msgs + i * DS_MMSGHDR_SIZE, &m, iov) : DS_MSG_READ;
		dns_copy_hdr(dns_chunk(e, i), &m, iov, st, (__u64)(msgs + i * DS_MMSGHDR_SIZE));
	}
}

/*
 * Each message of a sendmmsg may have an address of its own: a candidate when
 * any of those the exit looks at goes to port 53, not only the first (a query
 * behind a first message to another port was missed).
 */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int ds_sendmmsg_enter(struct ds_sys_enter *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct sock *sk = udp_sock(task, ctx->args[0]);
	__u32 peer, port;
	const void *to;

	if (!sk)
		return 0;
	peer = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	for (__u32 i = 0; i < DS_DNS_MMSG; i++) {
		if (i >= ctx->args[2])
			break;
		to = msg_name((void *)ctx->args[1] + i * DS_MMSGHDR_SIZE);
		port = to == DS_MSG_UNREAD ? DS_PORT_UNREAD : to ? user_port(to) : peer;
		if (dns_port(port)) {
			dns_mmsg_copy(ctx, dns_send_save(ctx, DS_SENDMMSG));
			break;
		}
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int ds_recvfrom_enter(struct ds_sys_enter *ctx)
{
	dns_recv_enter(ctx, (void *)ctx->args[4], DS_RECVFROM);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int ds_recvmsg_enter(struct ds_sys_enter *ctx)
{
	dns_recv_enter(ctx, msg_name((void *)ctx->args[1]), DS_RECVMSG);
	return 0;
}

/*
 * One DNS record's type part in slot 1, but the message (ds_dns_parse() after):
 * the socket's ends, the peer from `peer` when given (a kernel copy). 0: not a
 * DNS message after all (an unconnected socket's datagram from another port).
 */
static __noinline int dns_fill(struct ds_rec_info *info, __s64 fd, const struct ds_sockaddr *peer)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_dns_data *d = (void *)info->data;

	__builtin_memset(d, 0, sizeof(*d));
	d->sock.fd = fd;
	sock_read(udp_sock(task, fd), &d->sock);
	if (peer)
		sockaddr_put(peer, &d->sock, 1);
	if (d->sock.dport != DS_DNS_PORT)
		return 0;
	info->data_len = sizeof(*d);
	return 1;
}

/*
 * Message i of a send, as its entry copied it: its own address into *sa
 * (family 0: none), its length into *len (< 0: not copied), and its bytes'
 * address as a number (rec_number()); 0 when the send has no copy.
 */
static __noinline __u64 dns_sent(struct ds_rec_info *info, const struct ds_inflight *in, __u32 i,
				 struct ds_sockaddr *sa, __s64 *len)
{
	const struct ds_entry_copy *e = entry_copy_of(in);
	const struct ds_dns_copy *c;

	if (!e)
		return 0;
	c = dns_chunk(e, i);
	if (ds_dns_late((struct ds_dns_copy *)c))
		info->flags |= DS_F_READ_AT_EXIT;
	__builtin_memcpy(sa, &c->peer, sizeof(*sa));
	if (!c->named)
		sa->family = 0;
	*len = c->len;
	return rec_number(info, c->bytes);
}

/* Attached to the exits of sendto, sendmsg, recvfrom and recvmsg: one message, the first iovec's. */
SEC("tracepoint")
int ds_dns_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;
	struct ds_inflight *in;
	struct ds_handoff *h;
	struct ds_msghdr m = {};
	__u64 iov[2] = {};
	struct ds_sockaddr sa = {};
	const void *from;
	__s64 len = 0;
	__u64 buf;
	__u32 kind;

	if (!(in = inflight_get(ctx)))
		return 0;
	kind = in->kind;
	if (kind >= DS_RECVFROM && in->res <= 0)
		goto out;
	info = rec_begin(task);
	if (!info)
		goto out;
	if (kind == DS_SENDTO || kind == DS_SENDMSG) {
		/* What the entry copied: never re-read here. */
		buf = dns_sent(info, in, 0, &sa, &len);
	} else {
		if (kind == DS_RECVFROM) {
			from = (void *)in->args[4];
			buf = in->args[1];
			/* With MSG_TRUNC the result is the datagram's length, past the buffer (a 12-byte peek, say). */
			len = in->res < in->args[2] ? in->res : in->args[2];
		} else if (msg_read((void *)in->args[1], &m, iov) != DS_MSG_READ || !iov[0]) {
			from = NULL;
			buf = 0;
		} else {
			/* Resolvers send and read a message in one buffer. */
			from = named(&m);
			buf = iov[0];
			len = in->res < iov[1] ? in->res : iov[1];
		}
		/* The sender's address, which the kernel wrote during the call. */
		if (from)
			sockaddr_read(from, DS_SOCKADDR_MAX, &sa);
	}
	if (!buf || !dns_fill(info, in->args[0], &sa)) {
		if ((h = handoff()))
			sd_put_local(info, h->gen);
		goto out;
	}
	ds_dns_parse(info, buf, len, kind >= DS_RECVFROM);
	rec_submit(ctx, info, DS_EVENT_DNS, in->res, in->nr, in);
	return 0;
out:
	inflight_drop(in);
	return 0;
}

/*
 * sendmmsg: one record per message that went out (glibc sends the A and AAAA
 * queries as two), one message per run. A record goes to ds_emit like any
 * other, which jumps back here (ds_handoff.resume); a message that is not DNS
 * jumps back here at once. The stash keeps how far it got, and is dropped once
 * every message is handled. One message per run, not a loop over them: the
 * verifier walked the message's parse once per iteration (73 ms of the load).
 */
SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int ds_sendmmsg_exit(struct ds_sys_exit *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ds_rec_info *info;
	struct ds_inflight *in;
	struct ds_handoff *h;
	struct ds_sockaddr sa;
	__s64 len = 0;
	__u64 buf;
	__u32 i;

	if (!(in = inflight_get(ctx)))
		return 0;
	i = in->step;
	if (i >= DS_DNS_MMSG || i >= in->res)
		goto out;
	info = rec_begin(task);
	h = handoff();
	if (!info || !h)
		goto out;
	if (!(buf = dns_sent(info, in, i, &sa, &len))) {
		sd_put_local(info, h->gen);
		goto out;
	}
	in->step = i + 1;
	if (!dns_fill(info, in->args[0], &sa)) {
		sd_put_local(info, h->gen);
		bpf_tail_call(ctx, &ds_emitter, DS_TAIL_RESUME_MMSG);
		goto out;
	}
	ds_dns_parse(info, buf, len, 0);
	h->resume = 1;
	rec_submit(ctx, info, DS_EVENT_DNS, in->res, in->nr, NULL);
	return 0;
out:
	inflight_drop(in);
	return 0;
}

#endif /* DS_DNS_BPF_H */
