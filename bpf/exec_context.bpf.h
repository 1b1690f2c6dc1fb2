/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The exec's context, gathered by the business level into slot 1 (struct
 * ds_exec_extra): the controlling terminal, what fds 0 and 1 are, the first
 * inet socket among fds 0-2, SSH_CONNECTION and LD_PRELOAD from the new
 * environment, and the executable's identity. exec_extra() is the entry.
 */
#ifndef DS_EXEC_CONTEXT_BPF_H
#define DS_EXEC_CONTEXT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "dual_slot.h"
#include "heap.bpf.h"
#include "format.bpf.h"
#include "path.bpf.h"

/* bpf_snprintf() takes its format from a read-only map: these live in .rodata. */
static const char ds_fmt_ip4[] = "%pI4";
static const char ds_fmt_ip6[] = "%pI6c";
static const char ds_fmt_u64[] = "%llu";

#define DS_S_IFMT 0170000
#define DS_S_IFSOCK 0140000
#define DS_S_IFIFO 0010000
#define DS_S_IFCHR 0020000
#define DS_S_IFREG 0100000
#define DS_S_IFBLK 0060000
#define DS_S_IFDIR 0040000
#define DS_PIPEFS_MAGIC 0x50495045 /* an anonymous pipe's superblock (a named FIFO's is its filesystem's) */
#define DS_AF_INET 2
#define DS_AF_INET6 10
/* fd_text's window in slot 1's swap: the longest text with its spill fits. */
#define DS_FD_SCRATCH 64
#define DS_U64_DIGITS 20

/* Length of what bpf_snprintf wrote into a buffer of cap bytes (it returns the full size, NUL included). */
static __always_inline __u32 snlen(long n, __u32 cap)
{
	if (n <= 1)
		return 0;
	return n > cap ? cap - 1 : n - 1;
}

/*
 * A prefix of at most 8 bytes at s[0], in one store (what follows it is
 * written over it after); returns its length. Byte by byte, the four
 * prefixes were 276 of the instructions ds_exec's verifier went through.
 */
#define PUT_LIT8(s, lit)                                             \
	({                                                           \
		_Static_assert(sizeof(lit) - 1 <= 8, "a prefix of 8"); \
		union {                                              \
			char c[8];                                   \
			__u64 v;                                     \
		} u_ = { .c = lit };                                 \
		*(__u64 *)(s) = u_.v;                                \
		(__u32)(sizeof(lit) - 1);                            \
	})

/*
 * What an fd is, as /proc/PID/fd names it: "pipe:[ino]" (an anonymous
 * pipe), "socket:[ino]", "/dev/pts/N", "inode:ino" for the rest (an
 * anon_inode), and the absolute path of a file, a directory, a device or a
 * named FIFO. Slot 1 has DS_FD_CAP bytes for it: a longer path keeps its
 * end (the file's name and its nearest directories) after a "…", and sets
 * DS_F_STDIO_TRUNCATED. Numbers are written in s (slot 1's swap: the longest,
 * "socket:[" with a 20-digit inode and its NUL, is 29 bytes).
 */

/*
 * The number after an fd's prefix, and its closing ']' when `close`: no
 * branch per kind. Pipes', sockets' and anonymous inodes' numbers and a pty's
 * index are 32-bit (get_next_ino()), written without a branch or a divide
 * (ds_put_u32_swar); a larger one (an O_PATH symlink's, say) by the kernel's
 * printf. The 20 unrolled digits it replaced were 800 of the instructions
 * ds_exec's verifier went through.
 */
__noinline int fd_number(struct ds_file_info *info, __u32 pos, __u64 n, __u32 close)
{
	__u64 d[1] = { n };
	char *s;

	if (!info)
		return 0;
	s = info->swap;
	pos &= DS_FD_SCRATCH - 1;
	if (n >> 32)
		pos += snlen(bpf_snprintf(s + pos, DS_U64_DIGITS + 1, ds_fmt_u64, d, sizeof(d)), DS_U64_DIGITS + 1);
	else
		pos = ds_put_u32_swar(s, pos, (__u32)n, DS_FD_SCRATCH - 1);
	s[pos & (DS_FD_SCRATCH - 1)] = ']';
	return pos + (close & 1);
}

/*
 * A file's path into s[0, DS_FD_CAP - 1): the walk's state in out (the fd's
 * string, written last), its text at swap's end. Returns its length.
 */
static __always_inline __u32 fd_path(struct ds_file_info *info, struct file *f, char *out)
{
	struct path_state *st = (void *)out;
	char *s = info->swap;
	__u32 r, from, n;

	st->d = (__u64)DS_LOAD(file, f, f_path.dentry);
	st->mnt = (__u64)DS_LOAD(file, f, f_path.mnt);
	r = ds_path_walk(st, (struct ds_path_swap *)s);
	from = DS_PATH_LEN(r);
	n = (DS_PATH_CAP - 1 - from) & (DS_PATH_CAP - 1);
	if (r & DS_PATH_TRUNCATED)
		info->flags |= DS_F_STDIO_TRUNCATED;
	if (n < DS_FD_CAP) {
		bpf_probe_read_kernel(s, n & (DS_FD_CAP - 1), s + from);
		return n;
	}
	info->flags |= DS_F_STDIO_TRUNCATED;
	bpf_probe_read_kernel(s + 3, DS_FD_CAP - 4, s + DS_PATH_CAP - 1 - (DS_FD_CAP - 4));
	s[0] = (char)0xe2; /* "…" */
	s[1] = (char)0x80;
	s[2] = (char)0xa6;
	return DS_FD_CAP - 1;
}

/* The magic of an inode's filesystem: a load through the cast where the kernel has it (see DS_LOAD). */
static __always_inline unsigned long sb_magic(struct inode *ino)
{
	if (ds_cfg.task_cast)
		return ds_cast(ino, inode)->i_sb->s_magic;
	return BPF_CORE_READ(ino, i_sb, s_magic);
}

/*
 * Global, not static, so the verifier checks it once, not again at each call
 * in each state: hence the plain types (a global function's pointer arguments
 * are memory of the pointee's size), fd 0 or 1 choosing the string, and the
 * file as a number.
 */
__noinline int fd_text(__u64 file, __u32 mode, struct ds_file_info *info, __u32 fd)
{
	struct file *f = (struct file *)file;
	struct inode *ino = DS_LOAD(file, f, f_inode);
	__u64 n = DS_LOAD(inode, ino, i_ino);
	__u32 dev, pos, close = 0;
	char *s, *out;

	if (!info)
		return 0;
	s = info->swap;
	out = fd ? info->x.stdout : info->x.stdin;

	if (mode == DS_S_IFCHR) {
		dev = DS_LOAD(inode, ino, i_rdev);
		/* Unix98 pty slaves (majors 136-143, 256 minors each): named without a walk. */
		if ((dev >> 20) >= 136 && (dev >> 20) <= 143) {
			pos = PUT_LIT8(s, "/dev/pts");
			s[pos++] = '/';
			n = ((dev >> 20) - 136) * 256 + (dev & 0xfffff);
			pos = fd_number(info, pos, n, 0);
			goto copy;
		}
	}
	if (mode == DS_S_IFREG || mode == DS_S_IFDIR || mode == DS_S_IFCHR || mode == DS_S_IFBLK ||
	    (mode == DS_S_IFIFO && sb_magic(ino) != DS_PIPEFS_MAGIC)) {
		if (file_is_deleted(f))
			info->flags |= DS_F_STDIO_DELETED;
		pos = fd_path(info, f, out);
		goto copy;
	}
	if (mode == DS_S_IFIFO) {
		pos = PUT_LIT8(s, "pipe:[");
		close = 1;
	} else if (mode == DS_S_IFSOCK) {
		pos = PUT_LIT8(s, "socket:[");
		close = 1;
	} else {
		pos = PUT_LIT8(s, "inode:");
	}
	pos = fd_number(info, pos, n, close);
copy:
	/* One helper call, not an inlined copy: the copy was most of ds_exec's verification (once per path here). */
	bpf_probe_read_kernel(out, DS_FD_CAP, s);
	return pos < DS_FD_CAP ? pos : DS_FD_CAP - 1;
}

/* An inet socket's two ends, from the struct sock behind the file. */
static __noinline void sock_fill(struct file *f, struct ds_exec_extra *x)
{
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u64 d[1];

	if (family != DS_AF_INET && family != DS_AF_INET6)
		return;
	x->sa_family = family;
	x->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	x->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* bpf_snprintf reads the address itself (%pI4/%pI6 take a pointer). */
	if (family == DS_AF_INET) {
		d[0] = (__u64)sk + bpf_core_field_offset(struct sock, __sk_common.skc_rcv_saddr);
		x->len[DS_STR_SIP - DS_STR_TTY] = snlen(bpf_snprintf(x->sip, DS_IP_CAP, ds_fmt_ip4, d, 8), DS_IP_CAP);
		d[0] = (__u64)sk + bpf_core_field_offset(struct sock, __sk_common.skc_daddr);
		x->len[DS_STR_DIP - DS_STR_TTY] = snlen(bpf_snprintf(x->dip, DS_IP_CAP, ds_fmt_ip4, d, 8), DS_IP_CAP);
	} else {
		d[0] = (__u64)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_rcv_saddr);
		x->len[DS_STR_SIP - DS_STR_TTY] = snlen(bpf_snprintf(x->sip, DS_IP_CAP, ds_fmt_ip6, d, 8), DS_IP_CAP);
		d[0] = (__u64)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_daddr);
		x->len[DS_STR_DIP - DS_STR_TTY] = snlen(bpf_snprintf(x->dip, DS_IP_CAP, ds_fmt_ip6, d, 8), DS_IP_CAP);
	}
}

/* One environment variable per step, read into swap; SSH_CONNECTION and LD_PRELOAD are kept. */
struct env_walk {
	unsigned long p;
	unsigned long end;
	struct ds_file_info *info;
	__u32 cont; /* the previous read was cut: this one is the rest of a variable */
	__u32 pad;
};

#define DS_ENV_READ 256

static long env_step(__u32 i, struct env_walk *w)
{
	struct ds_file_info *info = w->info;
	__u64 a, b;
	long n;

	if (w->p >= w->end)
		return 1;
	n = bpf_probe_read_user_str(info->swap, DS_ENV_READ, (void *)w->p);
	if (n <= 0)
		return 1;
	a = *(__u64 *)info->swap;
	b = *(__u64 *)(info->swap + 8);
	/* "SSH_CONN" "ECTION=" and "LD_PRELO" "AD=", little-endian. */
	if (!w->cont && n > 15 && a == 0x4e4e4f435f485353ull && (b & 0x00ffffffffffffffull) == 0x003d4e4f49544345ull)
		info->x.len[DS_STR_SSH - DS_STR_TTY] =
			snlen(bpf_probe_read_user_str(info->x.ssh, DS_SSH_CAP, (void *)(w->p + 15)), DS_SSH_CAP);
	else if (!w->cont && n > 11 && a == 0x4f4c4552505f444cull && (b & 0xffffff) == 0x3d4441)
		info->x.len[DS_STR_LD_PRELOAD - DS_STR_TTY] =
			snlen(bpf_probe_read_user_str(info->x.ld_preload, DS_LD_PRELOAD_CAP, (void *)(w->p + 11)),
			      DS_LD_PRELOAD_CAP);
	w->cont = n == DS_ENV_READ;
	w->p += w->cont ? DS_ENV_READ - 1 : n;
	return 0;
}

/*
 * Business level, a successful exec: the context it ran in (struct
 * ds_exec_extra) and what the agent could not see (a deleted or memfd exe).
 */
static __noinline void exec_extra(struct task_struct *task, struct ds_file_info *info)
{
	struct ds_exec_extra *x = &info->x;
	struct task_struct *t = self(); /* task is current */
	struct tty_struct *tty = t->signal->tty;
	struct file *exe = t->mm->exe_file;
	struct inode *ei = exe->f_inode;
	struct fdtable *fdt = t->files->fdt;
	struct file **fds = fdt->fd;
	unsigned int max_fds = fdt->max_fds;
	struct env_walk w = { .info = info };
	long n;

	if (tty) {
		n = bpf_core_read_str(x->tty, DS_TTY_CAP, &tty->name);
		x->len[0] = n > 1 ? (n - 1) & (DS_TTY_CAP - 1) : 0;
	}
	for (int i = 0; i < 3 && i < max_fds; i++) {
		struct file *f = NULL;
		struct inode *ino;
		__u32 mode;

		/* A pointer read through a pointer to pointers: a scalar, so probe reads from here. */
		bpf_probe_read_kernel(&f, sizeof(f), &fds[i]);
		if (!f)
			continue;
		ino = DS_LOAD(file, f, f_inode);
		mode = DS_LOAD(inode, ino, i_mode) & DS_S_IFMT;
		if (i == 0)
			x->len[DS_STR_STDIN - DS_STR_TTY] = fd_text((__u64)f, mode, info, 0);
		else if (i == 1)
			x->len[DS_STR_STDOUT - DS_STR_TTY] = fd_text((__u64)f, mode, info, 1);
		if (!x->sa_family && mode == DS_S_IFSOCK)
			sock_fill(f, x);
	}

	x->exe_ino = ei->i_ino;
	x->exe_dev = ei->i_sb->s_dev;
	/* DS_F_EXE_UNREACHABLE came with the exe's path (business_logic): a chrooted exec of a file outside the root. */
	if (file_is_memfd(exe)) {
		info->flags = (info->flags | DS_F_EXE_MEMFD) & ~DS_F_EXE_UNREACHABLE;
	} else if (file_is_deleted(exe)) {
		info->flags |= DS_F_EXE_DELETED;
	}

	w.p = t->mm->env_start;
	w.end = t->mm->env_end;
	bpf_loop(DS_ENV_SCAN, env_step, &w, 0);
	if (w.p < w.end)
		info->flags |= DS_F_ENV_TRUNCATED;

	x->total = 0;
	for (int i = 0; i < DS_STR_NR - DS_STR_TTY; i++)
		x->total += x->len[i];
}

#endif /* DS_EXEC_CONTEXT_BPF_H */
