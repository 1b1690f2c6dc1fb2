/*
 * io-trigger: does one network or file thing for real, so a kernel test can
 * assert the record the agent built for it. Test-only: not embedded; static,
 * so it runs unchanged in the kernel matrix VMs.
 *
 *   io-trigger connect tcp|udp ADDR PORT   connect(2) to ADDR (IPv4 or IPv6); TCP: blocking
 *   io-trigger connect-moved ADDR PORT JAIL
 *                                          four UDP connects to ADDR: as started, after renaming its own
 *                                          executable to <exe>.moved, after unlinking that, then after
 *                                          chroot(JAIL)
 *   io-trigger connect-relinked ADDR PORT  two UDP connects to ADDR: as started, then after the executable
 *                                          got a second name (a hard link) and lost the one it ran from
 *   io-trigger connect-mixed PORT          an IPv6 TCP socket bound to [::1] connects to 127.0.0.1:PORT with
 *                                          an AF_INET address (refused: EINVAL)
 *   io-trigger bind ADDR                   a UDP socket bound to ADDR, port 0 (the kernel picks)
 *   io-trigger accept                      listen on 127.0.0.1, connect to it, accept(2) once
 *   io-trigger connect-rewritten tcp|udp PORT
 *                                          connect(2) to 127.0.0.1:PORT with a 128-byte address length:
 *                                          the kernel's copy of it faults on a userfaultfd page, where a
 *                                          thread rewrites the address to 127.0.0.2:PORT+1 (TCP: to a
 *                                          closed PORT, refused)
 *   io-trigger connect-mapped tcp|udp|refused DIR PORT
 *                                          connect(2) to 127.0.0.1:PORT with the address on a fresh,
 *                                          untouched mapping of a file in DIR: not in memory at sys_enter
 *                                          (refused: TCP to a closed PORT, ECONNREFUSED)
 *   io-trigger bind-mapped DIR             a UDP socket bound to 127.0.0.1 port 0, the address mapped so
 *   io-trigger connect-changed ADDR PORT   three UDP connects to ADDR: as started, after
 *                                          prctl(PR_SET_NAME, "ds-renamed"), then after setegid(65534)
 *   io-trigger dns connected|connected-recvmsg|sendto|sendmmsg|sendmmsg-mixed|sendmsg-decoy|peek|qr-set ADDR NAME
 *                                          one query for NAME (type A; sendmmsg: A then AAAA) to
 *                                          ADDR port 53 over UDP, then read one reply, as glibc does;
 *                                          sendmmsg-mixed: unconnected, the A query to port 9, AAAA to 53;
 *                                          sendmsg-decoy: connected, msg_name port 9 with msg_namelen 0;
 *                                          connected-recvmsg: the reply read with recvmsg;
 *                                          peek: connected, the reply's header peeked into 12 bytes first
 *                                          (MSG_PEEK | MSG_TRUNC), a stale question past them;
 *                                          qr-set: unconnected, the query's header QR bit set, no reply read
 *   io-trigger dns-rewritten ADDR          sendto(ADDR port 53) of a 400-byte A query for before.example, its
 *                                          last 80 bytes on a userfaultfd page: while the kernel copies the
 *                                          message, its name in memory becomes after0.example (no reply read)
 *   io-trigger dns-mapped to|msghdr|bytes DIR ADDR NAME
 *                                          one A query for NAME to ADDR port 53 on an unconnected UDP socket,
 *                                          with its address (sendto), its msghdr (sendmsg) or its bytes
 *                                          (sendto) on a fresh, untouched mapping of a file in DIR (no reply read)
 *   io-trigger create PATH                 open(PATH, O_CREAT|O_WRONLY) (relative to the cwd)
 *   io-trigger openat2-mapped DIR NAME     openat2(AT_FDCWD, DIR/NAME, O_CREAT|O_WRONLY, 0640) with its struct
 *                                          open_how on a fresh, untouched mapping of a file in DIR
 *   io-trigger tmpfile DIR                 open(DIR, O_TMPFILE|O_WRONLY, 0600): an unnamed file; prints its ino
 *   io-trigger mkfifo PATH                 mknodat(AT_FDCWD, PATH, S_IFIFO|0640)
 *   io-trigger renameat DIR OLD NEW        renameat(dirfd, OLD, dirfd, NEW) with dirfd = open(DIR)
 *   io-trigger rename-mapped DIR           renameat(dirfd, "ds-old", dirfd, NEW) with NEW ("ds-new") on a
 *                                          fresh, untouched mapping of a file: not in memory at sys_enter
 *   io-trigger rename-many DIR N           N threads each renameat(dirfd, "m-I", dirfd, "n-I"), all held inside
 *                                          the call at once as rename-rewritten holds one
 *   io-trigger rename-rewritten DIR        renameat(dirfd, "ds-a", dirfd, "ds-b") held inside the call (a
 *                                          thread's getdents64 of DIR, blocked on a userfaultfd page, holds
 *                                          DIR's lock) while the new name in memory becomes "ds-X"
 *   io-trigger link OLD NEW                link(2), then symlinkat(OLD, AT_FDCWD, NEW.sym)
 *   io-trigger linkat ODIR OLD NDIR NEW    linkat(open(ODIR), OLD, open(NDIR), NEW), then
 *                                          symlinkat(OLD, that NDIR fd, NEW.sym)
 *   io-trigger unlink PATH                 unlink(2)
 *   io-trigger rmdir PATH                  mkdir then rmdir
 *   io-trigger unlinkat-badfd NAME         unlinkat(999, NAME): a dirfd that names no open file (EBADF)
 *   io-trigger linkat-empty NAME           an O_TMPFILE file in the cwd, named NAME by linkat(fd, "", ...,
 *                                          AT_EMPTY_PATH)
 *   io-trigger mount DIR                   mount("ds-tmpfs", DIR, "tmpfs", MS_NOSUID) then umount
 *   io-trigger chroot-create JAIL NAME     chroot(JAIL), then open("/NAME", O_CREAT) and
 *                                          rename("/NAME", "/NAME.moved")
 *   io-trigger finit-module FILE           finit_module(open(FILE), "", 0): fails unless FILE is a module
 *   io-trigger chroot-exec JAIL EXE        open(EXE), chroot(JAIL), then execveat(that fd, "", AT_EMPTY_PATH)
 *   io-trigger chroot-exec-in JAIL NAME    chroot(JAIL), then execve("/NAME")
 *   io-trigger chroot-escape-rename JAIL DIR NAME
 *                                          open(DIR), chroot(JAIL), renameat(that fd, NAME, that fd, NAME.moved)
 *   io-trigger chroot-escape JAIL DIR NAME open(DIR), chroot(JAIL), then openat(that fd, NAME,
 *                                          O_CREAT): a file created outside the process's root
 *
 * Every command prints one JSON line with what a test needs to match the
 * event (pid, fds, ports, ids) and exits 0 when the action happened.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "dns-query.h"
#include "uffd-rewrite.h"

static void die(const char *what)
{
	fprintf(stderr, "io-trigger: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* connect-rewritten: while the kernel copies the address, it becomes 127.0.0.2 and port + 1. */
static void rewrite_addr(struct uffd_rewrite *r, char *fill)
{
	struct sockaddr_in *a = r->arg;

	(void)fill;
	a->sin_port = htons(ntohs(a->sin_port) + 1);
	a->sin_addr.s_addr = htonl(0x7f000002);
}

static int cmd_connect_rewritten(const char *proto, int port)
{
	struct uffd_rewrite r = { .rewrite = rewrite_addr };
	struct sockaddr_in *a;
	int tcp = strcmp(proto, "udp") != 0, fd, rc;

	if (uffd_start(&r) < 0)
		die("userfaultfd");
	/* The 28 bytes a tracer reads of an address on the ordinary page, the rest of the kernel's 128 past it. */
	a = (struct sockaddr_in *)(r.first + r.pagesize - 28);
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(0x7f000001);
	r.arg = a;
	fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
	fflush(stdout);
	rc = connect(fd, (struct sockaddr *)a, 128);
	if (tcp ? rc == 0 || errno != ECONNREFUSED : rc != 0)
		die(tcp ? "connect (expected ECONNREFUSED)" : "connect");
	if (!uffd_served(&r)) {
		fprintf(stderr, "io-trigger: the kernel never faulted on the address's second page\n");
		return 1;
	}
	return 0;
}

/*
 * rename-rewritten: once the main thread is inside renameat (its names
 * copied, waiting for DIR's lock, which a getdents64 blocked on the uffd page
 * holds), its new name in memory becomes "ds-X"; the fault is then served,
 * getdents64 ends, and the rename goes on with the name the kernel copied.
 */
struct rename_hold {
	int dfd;
	char *newname; /* rewritten to "ds-X" once they wait; NULL: left alone */
	int waiters;   /* renameat calls to wait for */
	volatile int faulted;
};

/* How many of this process's threads are inside renameat (blocked there: /proc shows the call). */
static int renameat_waiting(void)
{
	char path[300], buf[64];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	FILE *f;
	int n = 0;

	if (!dir)
		return 0;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", d->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof(buf), f) && buf[0] != 'r' && atoi(buf) == SYS_renameat)
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

static void rewrite_name(struct uffd_rewrite *r, char *fill)
{
	struct rename_hold *h = r->arg;

	(void)fill;
	h->faulted = 1;
	for (int i = 0; i < 10000 && renameat_waiting() < h->waiters; i++)
		usleep(1000);
	usleep(20000); /* past their sys_enter and getname, into the wait for the lock */
	if (h->newname)
		memcpy(h->newname, "ds-X", 5);
}

static void *getdents_on_uffd(void *p)
{
	struct uffd_rewrite *r = p;
	struct rename_hold *h = r->arg;

	syscall(SYS_getdents64, h->dfd, r->second, r->pagesize);
	return NULL;
}

/* h->dfd's lock held: a getdents64 of it blocked on r's page, which rewrite_name() serves. 0 once it is. */
static int hold_dir(struct uffd_rewrite *r, struct rename_hold *h, pthread_t *reader)
{
	r->rewrite = rewrite_name;
	r->arg = h;
	if (uffd_start(r) < 0)
		die("userfaultfd");
	if (pthread_create(reader, NULL, getdents_on_uffd, r))
		die("pthread_create");
	for (int i = 0; i < 5000 && !h->faulted; i++)
		usleep(1000);
	if (!h->faulted) {
		fprintf(stderr, "io-trigger: getdents64 never faulted on the uffd page\n");
		return 1;
	}
	return 0;
}

static int cmd_rename_rewritten(const char *dir)
{
	struct uffd_rewrite r;
	struct rename_hold h = { .waiters = 1 };
	pthread_t reader;
	int fd;

	h.dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = openat(h.dfd, "ds-a", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (h.dfd < 0 || fd < 0)
		die("open");
	close(fd);
	if (hold_dir(&r, &h, &reader))
		return 1;
	/* Set before the rename that the fault's handler waits for. */
	strcpy(r.first, "ds-b");
	h.newname = r.first;
	printf("{\"pid\":%d,\"dfd\":%d}\n", getpid(), h.dfd);
	fflush(stdout);
	if (renameat(h.dfd, "ds-a", h.dfd, h.newname) < 0)
		die("renameat");
	pthread_join(reader, NULL);
	if (!uffd_served(&r) || faccessat(h.dfd, "ds-b", F_OK, 0) < 0) {
		fprintf(stderr, "io-trigger: the rename did not go as the kernel copied it\n");
		return 1;
	}
	return 0;
}

/* A page of a file in DIR holding `len` bytes of `what`, mapped but never touched: not in memory. */
static void *mapped_copy(const char *dir, const void *what, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	char path[4096];
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/mapped", dir);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, what, len) != (ssize_t)len || ftruncate(fd, page) < 0)
		die("mapped");
	m = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	close(fd);
	return m;
}

/* connect-mapped, bind-mapped: the address on a page only the kernel's own copy of it brings in. */
static int cmd_addr_mapped(const char *how, const char *dir, int port)
{
	int bind_it = !strcmp(how, "bind"), refused = !strcmp(how, "refused");
	int tcp = refused || !strcmp(how, "tcp"), fd, rc;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	const struct sockaddr *m;

	a.sin_addr.s_addr = htonl(0x7f000001);
	m = mapped_copy(dir, &a, sizeof(a));
	fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
	fflush(stdout);
	rc = bind_it ? bind(fd, m, sizeof(a)) : connect(fd, m, sizeof(a));
	if (refused ? rc == 0 || errno != ECONNREFUSED : rc != 0)
		die(bind_it ? "bind" : refused ? "connect (expected ECONNREFUSED)" : "connect");
	return 0;
}

/* rename-mapped: the new name on a page only the kernel's own copy of it brings in. */
static int cmd_rename_mapped(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
	long page = sysconf(_SC_PAGESIZE);
	char *name;

	if (dfd < 0)
		die("open");
	fd = openat(dfd, "ds-old", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		die("openat");
	close(fd);
	fd = openat(dfd, "names", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "ds-new", 7) != 7 || ftruncate(fd, page) < 0)
		die("names");
	name = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
	if (name == MAP_FAILED)
		die("mmap");
	printf("{\"pid\":%d,\"dfd\":%d}\n", getpid(), dfd);
	fflush(stdout);
	if (renameat(dfd, "ds-old", dfd, name) < 0)
		die("renameat");
	return 0;
}

/*
 * rename-many: N threads each renameat(dirfd, "m-I", dirfd, "n-I"), all held
 * inside the call at once (DIR's lock, as rename-rewritten holds it): more
 * calls with copies in flight than the agent has copy slots.
 */
struct many_arg {
	int dfd;
	int i;
	int rc;
};

static void *rename_one(void *p)
{
	struct many_arg *a = p;
	char from[32], to[32];

	snprintf(from, sizeof(from), "m-%d", a->i);
	snprintf(to, sizeof(to), "n-%d", a->i);
	a->rc = renameat(a->dfd, from, a->dfd, to);
	return NULL;
}

static int cmd_rename_many(const char *dir, int n)
{
	struct uffd_rewrite r;
	struct rename_hold h = { .waiters = n };
	struct many_arg *args = calloc(n, sizeof(*args));
	pthread_t *th = calloc(n, sizeof(*th)), reader;
	char name[32];
	int fd, bad = 0;

	h.dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h.dfd < 0 || !args || !th)
		die("open");
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "m-%d", i);
		fd = openat(h.dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			die("openat");
		close(fd);
	}
	if (hold_dir(&r, &h, &reader))
		return 1;
	printf("{\"pid\":%d,\"dfd\":%d,\"n\":%d}\n", getpid(), h.dfd, n);
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		args[i] = (struct many_arg){ .dfd = h.dfd, .i = i };
		if (pthread_create(&th[i], NULL, rename_one, &args[i]))
			die("pthread_create");
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		bad += args[i].rc != 0;
	}
	pthread_join(reader, NULL);
	if (!uffd_served(&r) || bad) {
		fprintf(stderr, "io-trigger: %d of %d renames failed\n", bad, n);
		return 1;
	}
	return 0;
}

/* ADDR and PORT as a sockaddr_in or sockaddr_in6; returns its length. */
static socklen_t addr_of(const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return sizeof(*a4);
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return sizeof(*a6);
	}
	fprintf(stderr, "io-trigger: not an address: %s\n", addr);
	exit(2);
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* dns-rewritten: while the kernel copies the message, the query's name becomes after0.example. */
static void rewrite_query(struct uffd_rewrite *r, char *fill)
{
	(void)fill;
	dns_query(r->arg, 0x5257, "after0.example", 1);
}

static int cmd_dns_rewritten(const char *addr)
{
	struct uffd_rewrite r = { .rewrite = rewrite_query };
	struct sockaddr_storage ss;
	socklen_t len = addr_of(addr, 53, &ss);
	unsigned char *msg;
	int fd;

	if (uffd_start(&r) < 0)
		die("userfaultfd");
	/* The 320 bytes a tracer reads of a message on the ordinary page; the kernel's copy of all 400 faults. */
	msg = (unsigned char *)r.first + r.pagesize - 320;
	dns_query(msg, 0x5257, "before.example", 1);
	r.arg = msg;
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
	fflush(stdout);
	if (sendto(fd, msg, 400, 0, (struct sockaddr *)&ss, len) != 400)
		die("sendto");
	if (!uffd_served(&r)) {
		fprintf(stderr, "io-trigger: the kernel never faulted on the message's second page\n");
		return 1;
	}
	return 0;
}

/* dns-mapped: what the send is given, on a page only the kernel's own copy of it brings in. */
static int cmd_dns_mapped(const char *what, const char *dir, const char *addr, const char *name)
{
	unsigned char q[512];
	struct sockaddr_storage ss;
	socklen_t len = addr_of(addr, 53, &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0), n = dns_query(q, 0x4d55, name, 1);
	struct iovec iov = { q, n };
	struct msghdr mh = { .msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t sent;

	if (fd < 0)
		die("socket");
	printf("{\"pid\":%d,\"fd\":%d,\"id\":%d}\n", getpid(), fd, 0x4d55);
	fflush(stdout);
	if (!strcmp(what, "to"))
		sent = sendto(fd, q, n, 0, mapped_copy(dir, &ss, len), len);
	else if (!strcmp(what, "msghdr"))
		sent = sendmsg(fd, mapped_copy(dir, &mh, sizeof(mh)), 0);
	else
		sent = sendto(fd, mapped_copy(dir, q, n), n, 0, (struct sockaddr *)&ss, len);
	if (sent != n)
		die("send");
	return 0;
}

static int cmd_dns(const char *mode, const char *addr, const char *name)
{
	unsigned char q[512], q2[512], reply[512];
	struct sockaddr_storage ss, from;
	socklen_t len = addr_of(addr, 53, &ss), flen = sizeof(from);
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0), n, n2;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (fd < 0)
		die("socket");
	n = dns_query(q, 0x4d53, name, 1);
	if (!strcmp(mode, "qr-set")) {
		/* A query whose header says "response" (QR): the sender chooses that bit, not its direction. */
		q[2] |= 0x80;
		printf("{\"pid\":%d,\"fd\":%d,\"id\":%d}\n", getpid(), fd, 0x4d53);
		fflush(stdout);
		if (sendto(fd, q, n, 0, (struct sockaddr *)&ss, len) != n)
			die("sendto");
		return 0;
	}
	if (!strcmp(mode, "sendto")) {
		printf("{\"pid\":%d,\"fd\":%d,\"id\":%d}\n", getpid(), fd, 0x4d53);
		fflush(stdout);
		if (sendto(fd, q, n, 0, (struct sockaddr *)&ss, len) != n)
			die("sendto");
	} else if (!strcmp(mode, "sendmmsg-mixed")) {
		/* Unconnected: the A query to port 9 (not DNS: no record), the AAAA query to port 53. */
		struct sockaddr_storage other;
		socklen_t olen = addr_of(addr, 9, &other);
		struct iovec iov[2] = { { q, n }, { q2, 0 } };
		struct mmsghdr m[2];

		n2 = dns_query(q2, 0x4d54, name, 28);
		iov[1].iov_len = n2;
		memset(m, 0, sizeof(m));
		m[0].msg_hdr.msg_name = &other;
		m[0].msg_hdr.msg_namelen = olen;
		m[0].msg_hdr.msg_iov = &iov[0];
		m[0].msg_hdr.msg_iovlen = 1;
		m[1].msg_hdr.msg_name = &ss;
		m[1].msg_hdr.msg_namelen = len;
		m[1].msg_hdr.msg_iov = &iov[1];
		m[1].msg_hdr.msg_iovlen = 1;
		printf("{\"pid\":%d,\"fd\":%d,\"id\":%d}\n", getpid(), fd, 0x4d54);
		fflush(stdout);
		if (sendmmsg(fd, m, 2, 0) != 2)
			die("sendmmsg");
	} else {
		if (connect(fd, (struct sockaddr *)&ss, len) < 0)
			die("connect");
		printf("{\"pid\":%d,\"fd\":%d,\"id\":%d,\"sport\":%d}\n", getpid(), fd, 0x4d53, local_port(fd));
		fflush(stdout);
		if (!strcmp(mode, "sendmsg-decoy")) {
			/* An address the kernel ignores (length 0): the query goes to the connected port 53. */
			struct sockaddr_storage decoy;
			struct iovec iov = { q, n };
			struct msghdr mh;

			addr_of(addr, 9, &decoy);
			memset(&mh, 0, sizeof(mh));
			mh.msg_name = &decoy;
			mh.msg_namelen = 0;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			if (sendmsg(fd, &mh, 0) != n)
				die("sendmsg");
		} else if (!strcmp(mode, "sendmmsg")) {
			struct iovec iov[2] = { { q, n }, { q2, 0 } };
			struct mmsghdr m[2];

			n2 = dns_query(q2, 0x4d54, name, 28);
			iov[1].iov_len = n2;
			memset(m, 0, sizeof(m));
			m[0].msg_hdr.msg_iov = &iov[0];
			m[0].msg_hdr.msg_iovlen = 1;
			m[1].msg_hdr.msg_iov = &iov[1];
			m[1].msg_hdr.msg_iovlen = 1;
			if (sendmmsg(fd, m, 2, 0) != 2)
				die("sendmmsg");
		} else if (send(fd, q, n, 0) != n) {
			die("send");
		}
	}
	if (poll(&pfd, 1, 3000) != 1)
		die("no reply");
	if (!strcmp(mode, "connected-recvmsg")) {
		/* The reply read as resolvers that use msghdrs read it. */
		struct iovec riov = { reply, sizeof(reply) };
		struct msghdr rh;

		memset(&rh, 0, sizeof(rh));
		rh.msg_iov = &riov;
		rh.msg_iovlen = 1;
		if (recvmsg(fd, &rh, 0) < 12)
			die("recvmsg");
		return 0;
	}
	if (!strcmp(mode, "peek")) {
		/*
		 * The reply's size first, as resolvers ask it: its header into 12 bytes
		 * (MSG_TRUNC: the result is the whole datagram's length). What lies past
		 * those 12 bytes in the buffer is a stale question, never the reply's.
		 */
		dns_query(reply, 0x5354, "st.ex", 1); /* shorter than any reply here: it fits the datagram's length */
		reply[2] |= 0x80;
		if (recvfrom(fd, reply, 12, MSG_PEEK | MSG_TRUNC, (struct sockaddr *)&from, &flen) <= 12)
			die("peek");
		flen = sizeof(from);
	}
	if (recvfrom(fd, reply, sizeof(reply), 0, (struct sockaddr *)&from, &flen) < 12)
		die("recvfrom");
	return 0;
}

/* The path this process runs from, as /proc/self/exe names it. */
static void self_exe(char *exe, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", exe, cap - 1);

	if (n <= 0)
		die("readlink /proc/self/exe");
	exe[n] = 0;
}

/* A UDP socket connected to ss: the connect a record is made of. */
static int udp_connected(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_DGRAM, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len) < 0)
		die("connect");
	return fd;
}

static int cmd_net(int argc, char **argv)
{
	const char *cmd = argv[1];
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (!strcmp(cmd, "connect") && argc == 5) {
		len = addr_of(argv[3], atoi(argv[4]), &ss);
		fd = socket(ss.ss_family, strcmp(argv[2], "udp") ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
			die("connect");
		printf("{\"pid\":%d,\"fd\":%d,\"sport\":%d}\n", getpid(), fd, local_port(fd));
		return 0;
	}
	if (!strcmp(cmd, "connect-rewritten") && argc == 4)
		return cmd_connect_rewritten(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "connect-mapped") && argc == 5)
		return cmd_addr_mapped(argv[2], argv[3], atoi(argv[4]));
	if (!strcmp(cmd, "bind-mapped") && argc == 3)
		return cmd_addr_mapped("bind", argv[2], 0);
	if (!strcmp(cmd, "connect-changed") && argc == 4) {
		/* What the agent's renderer keeps per process must follow what changes in it. */
		int fds[3];

		len = addr_of(argv[2], atoi(argv[3]), &ss);
		for (int i = 0; i < 3; i++) {
			if (i == 1 && prctl(PR_SET_NAME, "ds-renamed") < 0)
				die("prctl");
			if (i == 2 && setegid(65534) < 0)
				die("setegid");
			fds[i] = udp_connected(&ss, len);
		}
		printf("{\"pid\":%d,\"fd0\":%d,\"fd1\":%d,\"fd2\":%d}\n", getpid(), fds[0], fds[1], fds[2]);
		return 0;
	}
	if (!strcmp(cmd, "connect-moved") && argc == 5) {
		/* What the agent keeps of a process's executable path must follow what can change under it. */
		char exe[4096], moved[4096 + 8];
		int fds[4];

		self_exe(exe, sizeof(exe));
		snprintf(moved, sizeof(moved), "%s.moved", exe);
		len = addr_of(argv[2], atoi(argv[3]), &ss);
		for (int i = 0; i < 4; i++) {
			if (i == 1 && rename(exe, moved) < 0)
				die("rename the executable");
			if (i == 2 && unlink(moved) < 0)
				die("unlink the executable");
			if (i == 3 && (chroot(argv[4]) < 0 || chdir("/") < 0))
				die("chroot");
			fds[i] = udp_connected(&ss, len);
		}
		printf("{\"pid\":%d,\"exe\":\"%s\",\"fd0\":%d,\"fd1\":%d,\"fd2\":%d,\"fd3\":%d}\n", getpid(), exe,
		       fds[0], fds[1], fds[2], fds[3]);
		return 0;
	}
	if (!strcmp(cmd, "connect-relinked") && argc == 4) {
		/* The name this process runs from removed while the file keeps another (a hard link). */
		char exe[4096], other[4096 + 8];
		int fds[2];

		self_exe(exe, sizeof(exe));
		snprintf(other, sizeof(other), "%s.link", exe);
		len = addr_of(argv[2], atoi(argv[3]), &ss);
		for (int i = 0; i < 2; i++) {
			if (i == 1 && (link(exe, other) < 0 || unlink(exe) < 0))
				die("link and unlink the executable");
			fds[i] = udp_connected(&ss, len);
		}
		printf("{\"pid\":%d,\"exe\":\"%s\",\"fd0\":%d,\"fd1\":%d}\n", getpid(), exe, fds[0], fds[1]);
		return 0;
	}
	if (!strcmp(cmd, "connect-mixed") && argc == 3) {
		/* An IPv6 TCP socket bound to [::1] asked to connect to 127.0.0.1 by an AF_INET address: refused. */
		struct sockaddr_storage v4;
		socklen_t v4len = addr_of("127.0.0.1", atoi(argv[2]), &v4);
		int e;

		len = addr_of("::1", 0, &ss);
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0)
			die("bind");
		e = connect(fd, (struct sockaddr *)&v4, v4len) < 0 ? -errno : 0;
		printf("{\"pid\":%d,\"fd\":%d,\"sport\":%d,\"res\":%d}\n", getpid(), fd, local_port(fd), e);
		return 0;
	}
	if (!strcmp(cmd, "bind") && argc == 3) {
		len = addr_of(argv[2], 0, &ss);
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0)
			die("bind");
		printf("{\"pid\":%d,\"fd\":%d,\"sport\":%d}\n", getpid(), fd, local_port(fd));
		return 0;
	}
	if (!strcmp(cmd, "accept") && argc == 2) {
		int l = socket(AF_INET, SOCK_STREAM, 0), c, a;

		len = addr_of("127.0.0.1", 0, &ss);
		if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0)
			die("listen");
		((struct sockaddr_in *)&ss)->sin_port = htons(local_port(l));
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0)
			die("connect");
		a = accept(l, NULL, NULL);
		if (a < 0)
			die("accept");
		printf("{\"pid\":%d,\"fd\":%d,\"sport\":%d,\"dport\":%d}\n", getpid(), a, local_port(l), local_port(c));
		return 0;
	}
	if (!strcmp(cmd, "dns-rewritten") && argc == 3)
		return cmd_dns_rewritten(argv[2]);
	if (!strcmp(cmd, "dns") && argc == 5)
		return cmd_dns(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "dns-mapped") && argc == 6)
		return cmd_dns_mapped(argv[2], argv[3], argv[4], argv[5]);
	return -1;
}

static int cmd_file(int argc, char **argv)
{
	const char *cmd = argv[1];
	int fd;

	if (!strcmp(cmd, "create") && argc == 3) {
		fd = open(argv[2], O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
		if (fd < 0)
			die("open");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	if (!strcmp(cmd, "openat2-mapped") && argc == 4) {
		struct open_how how = { .flags = O_CREAT | O_WRONLY | O_CLOEXEC, .mode = 0640 };
		const struct open_how *m = mapped_copy(argv[2], &how, sizeof(how));
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", argv[2], argv[3]);
		fd = syscall(SYS_openat2, AT_FDCWD, path, m, sizeof(how));
		if (fd < 0)
			die("openat2");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	if (!strcmp(cmd, "tmpfile") && argc == 3) {
		struct stat st;

		fd = open(argv[2], O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || fstat(fd, &st) < 0)
			die("open O_TMPFILE");
		printf("{\"pid\":%d,\"fd\":%d,\"ino\":\"%llu\"}\n", getpid(), fd, (unsigned long long)st.st_ino);
		return 0;
	}
	if (!strcmp(cmd, "mkfifo") && argc == 3) {
		if (mknodat(AT_FDCWD, argv[2], S_IFIFO | 0640, 0) < 0)
			die("mknodat");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "rename-mapped") && argc == 3)
		return cmd_rename_mapped(argv[2]);
	if (!strcmp(cmd, "rename-many") && argc == 4)
		return cmd_rename_many(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "rename-rewritten") && argc == 3)
		return cmd_rename_rewritten(argv[2]);
	if (!strcmp(cmd, "renameat") && argc == 5) {
		int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0 || renameat(dfd, argv[3], dfd, argv[4]) < 0)
			die("renameat");
		printf("{\"pid\":%d,\"dirfd\":%d}\n", getpid(), dfd);
		return 0;
	}
	if (!strcmp(cmd, "link") && argc == 4) {
		char sym[4096];

		snprintf(sym, sizeof(sym), "%s.sym", argv[3]);
		if (link(argv[2], argv[3]) < 0 || symlinkat(argv[2], AT_FDCWD, sym) < 0)
			die("link");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "linkat") && argc == 6) {
		/* linkat(old dirfd, OLD, new dirfd, NEW), then symlinkat(OLD, new dirfd, NEW.sym): two directories. */
		char sym[4096];
		int odfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int ndfd = open(argv[4], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		snprintf(sym, sizeof(sym), "%s.sym", argv[5]);
		if (odfd < 0 || ndfd < 0 || linkat(odfd, argv[3], ndfd, argv[5], 0) < 0 ||
		    symlinkat(argv[3], ndfd, sym) < 0)
			die("linkat");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "unlink") && argc == 3) {
		if (unlink(argv[2]) < 0)
			die("unlink");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "unlinkat-badfd") && argc == 3) {
		/* A dirfd that names no open file: the call fails (EBADF), and its name has no base. */
		int e = unlinkat(999, argv[2], 0) < 0 ? -errno : 0;

		printf("{\"pid\":%d,\"res\":%d}\n", getpid(), e);
		return 0;
	}
	if (!strcmp(cmd, "linkat-empty") && argc == 3) {
		/* An O_TMPFILE file given a name by linkat(fd, "", ..., AT_EMPTY_PATH): the old name is the fd's own. */
		int fd = open(".", O_TMPFILE | O_WRONLY, 0600);

		if (fd < 0 || linkat(fd, "", AT_FDCWD, argv[2], AT_EMPTY_PATH) < 0)
			die("linkat AT_EMPTY_PATH");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	if (!strcmp(cmd, "rmdir") && argc == 3) {
		if (mkdir(argv[2], 0700) < 0 || rmdir(argv[2]) < 0)
			die("rmdir");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "mount") && argc == 3) {
		if (mount("ds-tmpfs", argv[2], "tmpfs", MS_NOSUID, "size=1m") < 0)
			die("mount");
		if (umount(argv[2]) < 0)
			die("umount");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "chroot-create") && argc == 4) {
		char path[4096], moved[4096];

		snprintf(path, sizeof(path), "/%s", argv[3]);
		snprintf(moved, sizeof(moved), "/%s.moved", argv[3]);
		if (chroot(argv[2]) < 0 || chdir("/") < 0)
			die("chroot");
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || rename(path, moved) < 0)
			die("create in the chroot");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	if (!strcmp(cmd, "finit-module") && argc == 3) {
		/* A file that is not a module: the kernel refuses it (ENOEXEC), and the record says so. */
		long r;

		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open");
		r = syscall(SYS_finit_module, fd, "", 0);
		printf("{\"pid\":%d,\"fd\":%d,\"res\":%ld}\n", getpid(), fd, r < 0 ? (long)-errno : r);
		return 0;
	}
	if (!strcmp(cmd, "chroot-exec") && argc == 4) {
		/* EXE opened before chroot(JAIL), run from that fd: a program from outside the new root. */
		char *const av[] = { "from-outside", NULL };
		char *const ev[] = { NULL };
		int efd = open(argv[3], O_RDONLY | O_CLOEXEC);

		if (efd < 0 || chroot(argv[2]) < 0 || chdir("/") < 0)
			die("chroot");
		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		syscall(SYS_execveat, efd, "", av, ev, AT_EMPTY_PATH);
		die("execveat");
	}
	if (!strcmp(cmd, "chroot-exec-in") && argc == 4) {
		/* chroot(JAIL), then execve("/NAME"): a program inside the new root. */
		char path[4096];
		char *const av[] = { "from-inside", NULL };
		char *const ev[] = { NULL };

		snprintf(path, sizeof(path), "/%s", argv[3]);
		if (chroot(argv[2]) < 0 || chdir("/") < 0)
			die("chroot");
		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		execve(path, av, ev);
		die("execve");
	}
	if (!strcmp(cmd, "chroot-escape-rename") && argc == 5) {
		/* renameat on a dirfd from before chroot(JAIL): names resolved outside the new root. */
		char moved[4096];
		int dfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		snprintf(moved, sizeof(moved), "%s.moved", argv[4]);
		if (dfd < 0 || chroot(argv[2]) < 0 || chdir("/") < 0)
			die("chroot");
		if (renameat(dfd, argv[4], dfd, moved) < 0)
			die("renameat outside the root");
		printf("{\"pid\":%d}\n", getpid());
		return 0;
	}
	if (!strcmp(cmd, "chroot-escape") && argc == 5) {
		int dfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0 || chroot(argv[2]) < 0 || chdir("/") < 0)
			die("chroot");
		fd = openat(dfd, argv[4], O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			die("openat outside the root");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	int r;

	if (argc > 1 && ((r = cmd_net(argc, argv)) >= 0 || (r = cmd_file(argc, argv)) >= 0))
		return r;
	fprintf(stderr, "io-trigger: unknown command or arguments: %s\n", argc > 1 ? argv[1] : "");
	return 2;
}
