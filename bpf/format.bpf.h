/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Decimal numbers as text, written by hand: bpf_snprintf() costs far more per
 * call (its format is parsed, its arguments copied, each time) than the few
 * arithmetic instructions a number needs, and an exec made ten such calls.
 *
 * Nothing here branches on a value: BPF has no conditional set, so a compare
 * is a jump, and each jump whose outcome the rest depends on gives the
 * verifier another path to explore through everything after it. Compares are
 * borrow arithmetic instead, behind an empty asm so clang does not fold them
 * back into jumps.
 *
 * Plain C on __u32/__u64, no helper: test/unit/format-c.test.ts compiles this
 * file natively and checks it against the C library's printf.
 */
#ifndef DS_FORMAT_BPF_H
#define DS_FORMAT_BPF_H

/* 1 when a < b (unsigned, all 64 bits): the borrow out of a - b. */
static __always_inline __u64 ds_lt(__u64 a, __u64 b)
{
	__u64 d = a - b;

	asm volatile("" : "+r"(d));
	return ((~a & b) | ((~a | b) & d)) >> 63;
}

/* Digits of v in decimal (1 for 0); max is the most v can have (10 for a u32, 20 for a u64). */
static __always_inline __u32 ds_dec_len(__u64 v, const int max)
{
	__u64 p = 10;
	__u32 n = 1;

#pragma unroll
	for (int k = 1; k < max; k++, p *= 10)
		n += 1 - ds_lt(v, p);
	return n;
}

/*
 * Writes the n = ds_dec_len(v, max) digits of v at buf[pos], masked by mask
 * (2^k - 1). Always max stores: a store for a digit v does not have goes max
 * bytes further, after the number (within buf[pos + n .. pos + max)), so the
 * caller needs that room and writes what follows the number afterwards.
 */
static __always_inline void ds_put_dec(char *buf, __u32 pos, __u64 v, __u32 n, const int max, const __u32 mask)
{
#pragma unroll
	for (int j = 0; j < max; j++) {
		__u64 q = v / 10;
		__u64 past = 1 - ds_lt(j, n); /* j >= n: not a digit of v */
		__u32 off = pos + n - 1 - j + (__u32)past * max;

		buf[off & mask] = '0' + (char)(v - q * 10);
		v = q;
	}
}

/* v at buf[pos] as the kernel's %u or %lu would print it; returns the new pos. */
static __always_inline __u32 ds_put_u64(char *buf, __u32 pos, __u64 v, const __u32 mask)
{
	__u32 n = ds_dec_len(v, 20);

	ds_put_dec(buf, pos, v, n, 20, mask);
	return pos + n;
}

static __always_inline __u32 ds_put_u32(char *buf, __u32 pos, __u32 v, const __u32 mask)
{
	__u32 n = ds_dec_len(v, 10);

	ds_put_dec(buf, pos, v, n, 10, mask);
	return pos + n;
}

#endif /* DS_FORMAT_BPF_H */
