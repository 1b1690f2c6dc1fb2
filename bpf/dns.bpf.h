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
 * receive's are read at its exit: the reply arrives during the call.
 *
 * The name is parsed byte by byte in a bpf_loop step: each label's length
 * byte becomes its '.', and a compression pointer, a reserved label type, a
 * dot inside a label or a name that runs past the bytes read makes the record
 * "malformed" with no name: a shown name is always the name on the wire.
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

#define DS_IPPROTO_UDP 17
#define DS_DNS_PORT 53
#define DS_DNS_HDR 12
#define DS_DNS_READ 320   /* header, a name of at most 255 bytes, type and class */
#define DS_DNS_MASK 511
#define DS_DNS_MMSG 4     /* sendmmsg messages looked at (glibc sends A and AAAA as two) */

enum { DS_SENDTO = 1, DS_SENDMSG, DS_SENDMMSG, DS_RECVFROM, DS_RECVMSG };

/* The parts of struct user_msghdr read here (x86-64 and arm64 layout). */
struct ds_msghdr {
	__u64 name;
	__u32 namelen;
	__u32 pad;
	__u64 iov;
	__u64 iovlen;
};

#define DS_MMSGHDR_SIZE 64 /* struct mmsghdr: user_msghdr (56) + msg_len, padded */

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

/*
 * A message's own address, or NULL when it has none: the kernel ignores
 * msg_name when msg_namelen is 0, so such a pointer must not decide where the
 * message went (a query on a socket connected to port 53, with a decoy
 * address of length 0, was missed).
 */
static __always_inline const void *named(const struct ds_msghdr *m)
{
	return m->namelen ? (void *)m->name : NULL;
}

/* A message's own address; DS_MSG_UNREAD when its header is not readable. */
#define DS_MSG_UNREAD ((const void *)1)

static __always_inline const void *msg_name(const void *msg)
{
	struct ds_msghdr m = {};

	if (bpf_probe_read_user(&m, sizeof(m), msg))
		return DS_MSG_UNREAD;
	return named(&m);
}

enum { DS_MSG_READ, DS_MSG_HDR_UNREAD, DS_MSG_IOV_UNREAD };

/*
 * A message header and its first iovec as far as they can be read at entry:
 * what cannot be is zeroed, and said (DS_MSG_HDR_UNREAD, DS_MSG_IOV_UNREAD).
 */
static __always_inline int msg_read(const void *umsg, struct ds_msghdr *m, __u64 iov[2])
{
	if (bpf_probe_read_user(m, sizeof(*m), umsg)) {
		__builtin_memset(m, 0, sizeof(*m));
		iov[0] = iov[1] = 0;
		return DS_MSG_HDR_UNREAD;
	}
	if (!m->iovlen) {
		iov[0] = iov[1] = 0;
		return DS_MSG_READ;
	}
	if (bpf_probe_read_user(iov, 16, (void *)m->iov)) {
		iov[0] = iov[1] = 0;
		return DS_MSG_IOV_UNREAD;
	}
	return DS_MSG_READ;
}

/* A sent message as its entry copied it: chunk i of a copy slot's area. */
struct ds_dns_copy {
	__s32 len;   /* bytes copied; < 0: none (not readable, or no message) */
	__u32 named; /* it had an address of its own: peer */
	struct ds_sockaddr peer;
	/*
	 * Where the caller had what the entry could not read (0: it read all):
	 * the exit reads it there (ds_dns_late()), flagged DS_F_READ_AT_EXIT.
	 */
	__u64 umsg; /* the msghdr (sendmsg, sendmmsg): all of the message */
	__u64 uiov; /* its iovec array, the header read */
	__u64 ua;   /* its address */
	__u64 ubuf; /* its bytes */
	__u32 ulen, blen; /* the address's and the bytes' lengths */
	__u8 bytes[DS_DNS_MASK + 1]; /* DS_DNS_READ of them used; the mask bounds the parse's read */
};

#define DS_DNS_CHUNK (DS_COPY_AREA / DS_DNS_MMSG)
_Static_assert(sizeof(struct ds_dns_copy) <= DS_DNS_CHUNK, "a message's copy fits its chunk");

static __always_inline struct ds_dns_copy *dns_chunk(const struct ds_entry_copy *e, __u32 i)
{
	return (void *)(e->area + (i & (DS_DNS_MMSG - 1)) * DS_DNS_CHUNK);
}

static __always_inline struct ds_dns_copy *dns_first(struct ds_entry_copy *e)
{
	return e ? dns_chunk(e, 0) : NULL;
}

/*
 * One message's address (ua, ulen; 0: none of its own) and first bytes, into
 * its chunk c. Global: verified once, not once per message and copy.
 */
__noinline int ds_dns_copy_msg(struct ds_dns_copy *c, __u64 ua, __u64 ulen, __u64 buf, __u64 len)
{
	__u32 n = len > DS_DNS_READ ? DS_DNS_READ : len;

	if (!c)
		return 0;
	c->named = ua != 0;
	c->umsg = 0;
	c->uiov = 0;
	c->ua = sockaddr_read((const void *)ua, ulen, &c->peer) == 2 ? ua : 0;
	c->ulen = ulen;
	c->blen = len;
	asm volatile("" : "+r"(n));
	n &= DS_DNS_MASK;
	c->len = buf && !bpf_probe_read_user(c->bytes, n, (const void *)buf) ? n : -1;
	c->ubuf = c->len < 0 ? buf : 0;
	return 0;
}

/*
 * At the exit: what the entry could not read of a sent message, read now
 * (the kernel's own copy brought it in); 1 when something was. Global:
 * verified once, whatever map the copy is in.
 */
__noinline int ds_dns_late(struct ds_dns_copy *c)
{
	struct ds_msghdr m = {};
	__u64 iov[2] = {};
	__u32 n;
	int got = 0;

	if (!c)
		return 0;
	if (c->umsg) {
		if (bpf_probe_read_user(&m, sizeof(m), (const void *)c->umsg))
			return 0;
		c->umsg = 0;
		c->named = named(&m) != NULL;
		c->ua = (__u64)named(&m);
		c->ulen = m.namelen;
		c->uiov = m.iovlen ? m.iov : 0;
		got = 1;
	}
	if (c->uiov) {
		if (!bpf_probe_read_user(iov, sizeof(iov), (const void *)c->uiov)) {
			c->ubuf = iov[0];
			c->blen = iov[1];
			got = 1;
		}
		c->uiov = 0;
	}
	if (c->ua) {
		got |= sockaddr_read((const void *)c->ua, c->ulen, &c->peer) != 2;
		c->ua = 0;
	}
	if (c->ubuf) {
		n = c->blen > DS_DNS_READ ? DS_DNS_READ : c->blen;
		asm volatile("" : "+r"(n));
		n &= DS_DNS_MASK;
		if (!bpf_probe_read_user(c->bytes, n, (const void *)c->ubuf)) {
			c->len = n;
			got = 1;
		}
		c->ubuf = 0;
	}
	return got;
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
	struct ds_dns_copy *c;
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
	c = dns_first(dns_send_save(ctx, DS_SENDMSG));
	ds_dns_copy_msg(c, (__u64)to, m.namelen, iov[0], iov[1]);
	if (c && st == DS_MSG_HDR_UNREAD)
		c->umsg = ctx->args[1];
	else if (c && st == DS_MSG_IOV_UNREAD)
		c->uiov = m.iov;
	return 0;
}

/* Each of a sendmmsg's first messages into its chunk. */
static __noinline void dns_mmsg_copy(struct ds_sys_enter *ctx, struct ds_entry_copy *e)
{
	struct ds_msghdr m;
	__u64 iov[2];
	const void *msgs = (void *)ctx->args[1];
	__u64 vlen = ctx->args[2];

	struct ds_dns_copy *c;
	int st;

	if (!e)
		return;
	for (__u32 i = 0; i < DS_DNS_MMSG; i++) {
		__builtin_memset(&m, 0, sizeof(m));
		iov[0] = iov[1] = 0;
		st = i < vlen ? msg_read(msgs + i * DS_MMSGHDR_SIZE, &m, iov) : DS_MSG_READ;
		/* No message: no address, len -1. Not readable: read at the exit. */
		c = dns_chunk(e, i);
		ds_dns_copy_msg(c, (__u64)named(&m), m.namelen, iov[0], iov[1]);
		if (st == DS_MSG_HDR_UNREAD)
			c->umsg = (__u64)(msgs + i * DS_MMSGHDR_SIZE);
		else if (st == DS_MSG_IOV_UNREAD)
			c->uiov = m.iov;
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

struct dns_walk {
	__u8 *p;     /* the name's first byte, in slot 1 */
	__u32 avail; /* bytes read from there on */
	__u32 left;  /* bytes left in the current label; 0: at a length byte */
	__u32 end;   /* the terminating zero's index */
	__u32 done;  /* it was found */
	__u32 bad;
	__u32 pad;
};

static long dns_step(__u32 i, struct dns_walk *w)
{
	__u8 c;

	if (i >= w->avail) {
		w->bad = 1;
		return 1;
	}
	c = w->p[i & DS_DNS_MASK];
	if (w->left) {
		if (c == '.') {
			w->bad = 1;
			return 1;
		}
		w->left--;
		return 0;
	}
	if (!c) {
		w->end = i;
		w->done = 1;
		return 1;
	}
	if (c & 0xc0) { /* a compression pointer, or a reserved label type */
		w->bad = 1;
		return 1;
	}
	w->left = c;
	w->p[i & DS_DNS_MASK] = '.';
	return 0;
}

/*
 * One message's header and question, from the caller's buffer (a receive)
 * or a send's copy (from_user 0; buf is an address as a number), into the
 * record in slot 1: the name as string A, the rest into d. Sets
 * DS_F_MALFORMED when the question cannot be read exactly. Global: verified
 * once, not once per caller and copy.
 */
__noinline int ds_dns_parse(struct ds_rec_info *info, __u64 buf, __s64 len, __u32 from_user)
{
	struct ds_dns_data *d;
	struct dns_walk w = {};
	__u8 *h;
	__u32 n = len < 0 ? 0 : len > DS_DNS_READ ? DS_DNS_READ : len, q; /* < 0: the entry could not copy it */

	if (!info)
		return 0;
	d = (void *)info->data;
	h = (__u8 *)info->swap;
	w.p = h + DS_DNS_HDR;
	asm volatile("" : "+r"(n));
	n &= DS_DNS_MASK;
	if (n < DS_DNS_HDR + 5 || (from_user ? bpf_probe_read_user(h, n, (const void *)buf) : bpf_probe_read_kernel(h, n, (const void *)buf))) {
		info->flags |= DS_F_MALFORMED;
		return 0;
	}
	d->id = h[0] << 8 | h[1];
	d->dflags = h[2] << 8 | h[3];
	d->qdcount = h[4] << 8 | h[5];
	d->qr = d->dflags >> 15;
	d->rcode = d->dflags & 0xf;
	w.avail = n - DS_DNS_HDR;
	if (!d->qdcount) {
		info->flags |= DS_F_MALFORMED;
		return 0;
	}
	bpf_loop(256, dns_step, &w, 0);
	q = w.end + 1;
	if (w.bad || !w.done || q + 4 > w.avail) {
		info->flags |= DS_F_MALFORMED;
		return 0;
	}
	d->qtype = w.p[q & DS_DNS_MASK] << 8 | w.p[(q + 1) & DS_DNS_MASK];
	d->qclass = w.p[(q + 2) & DS_DNS_MASK] << 8 | w.p[(q + 3) & DS_DNS_MASK];
	if (w.end > 1) {
		/* Past the first label's length byte (now a leading '.'). */
		bpf_probe_read_kernel(info->a, (w.end - 1) & 255, w.p + 1);
		info->len_a = (w.end - 1) & 255;
	}
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
			len = in->res;
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
