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

/*
 * min(v, max) without a branch. A record's clamps as branches gave the
 * verifier one path per combination (2^7 in emit_record, walked through the
 * rest of the serializer each); every use of the result is masked again.
 */
static __always_inline __u32 ds_pick(__u32 v, __u32 max, __u64 over)
{
	return v ^ ((v ^ max) & (__u32)-over); /* over (0 or 1): max, else v */
}

/*
 * v & mask, kept even where clang proves v already fits: the verifier of 6.1
 * loses a length's bound when it is spilled to the stack and read back.
 */
static __always_inline __u32 ds_mask(__u32 v, __u32 mask)
{
	asm volatile("" : "+r"(v));
	return v & mask;
}

static __always_inline __u32 ds_min(__u32 v, __u32 max)
{
	return ds_pick(v, max, ds_lt(max, v));
}

/*
 * The 8 digits of v < 10^8, zero-padded, as values 0-9 with the most
 * significant in the lowest byte (the text's order in memory, little-endian),
 * in a few multiplies (Lemire's fixed-width SWAR conversion: two 4-digit
 * lanes split by 100, then by 10). Division-free: BPF has no multiply-high,
 * so clang leaves v / 10 a real divide.
 */
static __always_inline __u64 ds_digits8(__u64 v)
{
	__u64 hi = (v * 109951163ull) >> 40; /* v / 10000, exact below 10^8 */
	__u64 merged = hi | ((v - hi * 10000) << 32);
	__u64 top = ((merged * 10486ull) >> 20) & 0x7f0000007full;
	__u64 hundreds = ((merged - 100 * top) << 16) + top;
	__u64 tens = ((hundreds * 103ull) >> 10) & 0x000f000f000f000full;

	return tens + ((hundreds - 10 * tens) << 8);
}

/*
 * v at buf[pos & mask] as %u prints it; returns pos plus its digits. Stores
 * land in [pos & mask, (pos & mask) + 10), contiguous (not wrapped by mask):
 * the caller has 10 bytes of room there and writes what follows the number
 * afterwards. No branch, no division: pid_tree formats eight of these per
 * record, and the byte-per-digit form (ten divides) was the hottest code of
 * every record; fd_number writes an fd's inode number with it.
 */
static __always_inline __u32 ds_put_u32_swar(char *buf, __u32 pos, __u32 v, const __u32 mask)
{
	const __u64 lo7 = 0x7f7f7f7f7f7f7f7full;
	__u64 hi = ((__u64)v * 0x55e63b89ull) >> 57; /* v / 10^8: 0-42, exact for any u32 */
	__u64 d = ds_digits8(v - hi * 100000000);
	__u64 tens = (hi * 103) >> 10;                /* hi / 10 */
	__u64 two = ds_lt(9, hi);                     /* hi has two digits */
	__u32 nh = ds_lt(0, hi) + two;                /* hi's digits: 0, 1 or 2 */
	/* hi's text: "T" "U" when two digits, else "U" (the byte after it is overwritten below). */
	__u64 th = ('0' + hi - tens * 10) + two * (('0' + tens) + (('0' + hi - tens * 10) << 8) - ('0' + hi - tens * 10));
	/* d's leading zero digits: the index of its first nonzero byte, at most 7 (0 is "0"), none after hi. */
	__u64 nz = (((d & lo7) + lo7) | d) & ~lo7;
	__u64 lz = ((((nz & -nz) >> 7) - 1) & 0x0101010101010101ull) * 0x0101010101010101ull >> 56;
	char *at;

	asm volatile("" : "+r"(pos)); /* keep the mask: clang drops one it proves redundant, 6.1's verifier cannot */
	at = buf + (pos & mask);
	lz -= lz >> 3;
	lz *= 1 - ds_lt(0, hi);
	*(__u16 *)at = th;
	*(__u64 *)(at + nh) = (d + 0x3030303030303030ull) >> (8 * lz);
	return pos + nh + 8 - lz;
}

#endif /* DS_FORMAT_BPF_H */
