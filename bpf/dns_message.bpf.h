/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A DNS message in BPF: the caller's msghdr read as far as it can be, a
 * send's message copied at its entry into a copy slot chunk (what the entry
 * could not read, read at the exit: ds_dns_late()), and the header and
 * question parsed into a record (ds_dns_parse()). The programs are in
 * dns.bpf.h.
 *
 * The name is parsed byte by byte in a bpf_loop step: each label's length
 * byte becomes its '.', and a compression pointer, a reserved label type, a
 * dot inside a label or a name that runs past the bytes read makes the record
 * "malformed" with no name: a shown name is always the name on the wire.
 */
#ifndef DS_DNS_MESSAGE_BPF_H
#define DS_DNS_MESSAGE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "dual_slot.h"
#include "inflight.bpf.h"
#include "record.bpf.h"
#include "net_events.bpf.h"

#define DS_DNS_HDR 12
#define DS_DNS_READ 320   /* header, a name of at most 255 bytes, type and class */
#define DS_DNS_MASK 511
#define DS_DNS_MMSG 4     /* sendmmsg messages looked at (glibc sends A and AAAA as two) */

/* The parts of struct user_msghdr read here (x86-64 and arm64 layout). */
struct ds_msghdr {
	__u64 name;
	__u32 namelen;
	__u32 pad;
	__u64 iov;
	__u64 iovlen;
};

#define DS_MMSGHDR_SIZE 64 /* struct mmsghdr: user_msghdr (56) + msg_len, padded */

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

/* A message's first bytes into c (len: how many it has); 1 when they could be read. */
static __always_inline int dns_bytes(struct ds_dns_copy *c, __u64 buf, __u64 len)
{
	__u32 n = len > DS_DNS_READ ? DS_DNS_READ : len;

	asm volatile("" : "+r"(n));
	n &= DS_DNS_MASK;
	if (!buf || bpf_probe_read_user(c->bytes, n, (const void *)buf))
		return 0;
	c->len = n;
	return 1;
}

/*
 * One message's address (ua, ulen; 0: none of its own) and first bytes, into
 * its chunk c; what is not readable, marked for the exit. Global: verified
 * once, not once per message and copy.
 */
__noinline int ds_dns_copy_msg(struct ds_dns_copy *c, __u64 ua, __u64 ulen, __u64 buf, __u64 len)
{
	if (!c)
		return 0;
	c->named = ua != 0;
	c->umsg = 0;
	c->uiov = 0;
	c->ua = sockaddr_read((const void *)ua, ulen, &c->peer) == 2 ? ua : 0;
	c->ulen = ulen;
	c->blen = len;
	c->len = -1;
	c->ubuf = dns_bytes(c, buf, len) ? 0 : buf;
	return 0;
}

/*
 * A message by its header (umsg, read as msg_read() says: st) into c, and
 * where what could not be read is, for the exit.
 */
static __always_inline void dns_copy_hdr(struct ds_dns_copy *c, const struct ds_msghdr *m, const __u64 iov[2], int st,
					 __u64 umsg)
{
	if (!c)
		return;
	ds_dns_copy_msg(c, (__u64)named(m), m->namelen, iov[0], iov[1]);
	if (st == DS_MSG_HDR_UNREAD)
		c->umsg = umsg;
	else if (st == DS_MSG_IOV_UNREAD)
		c->uiov = m->iov;
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
	int st, got = 0;

	if (!c)
		return 0;
	if (c->umsg) {
		/* The whole message, as the entry would have copied it. */
		st = msg_read((const void *)c->umsg, &m, iov);
		if (st == DS_MSG_HDR_UNREAD)
			return 0;
		dns_copy_hdr(c, &m, iov, st, c->umsg);
		return 1;
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
		got |= dns_bytes(c, c->ubuf, c->blen);
		c->ubuf = 0;
	}
	return got;
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
 * One message's header and question, from the caller's buffer (a receive:
 * from_user 1) or a send's copy (from_user 0; buf is an address as a number), into the
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
	/*
	 * The direction is the call's (a receive reads a reply), not the header's
	 * QR bit: the sender sets that, and a message too short to parse still
	 * has a direction.
	 */
	d->qr = from_user != 0;
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

#endif /* DS_DNS_MESSAGE_BPF_H */
