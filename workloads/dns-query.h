/*
 * A DNS query message for the test tools (io-trigger, iostorm): header with
 * RD set and one question, NAME in labels, QTYPE, class IN. buf needs
 * 12 + strlen(NAME) + 6 bytes. Returns the message's length.
 */
#ifndef DS_DNS_QUERY_H
#define DS_DNS_QUERY_H

#include <string.h>

static int dns_query(unsigned char *buf, unsigned id, const char *name, unsigned qtype)
{
	int n = 12;
	const char *p = name;

	memset(buf, 0, 12);
	buf[0] = id >> 8;
	buf[1] = id & 0xff;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* QDCOUNT */
	while (*p) {
		const char *dot = strchr(p, '.');
		int len = dot ? (int)(dot - p) : (int)strlen(p);

		buf[n++] = len;
		memcpy(buf + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	buf[n++] = 0;
	buf[n++] = qtype >> 8;
	buf[n++] = qtype & 0xff;
	buf[n++] = 0;
	buf[n++] = 1; /* IN */
	return n;
}

#endif /* DS_DNS_QUERY_H */
