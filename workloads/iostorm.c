/*
 * iostorm: connect and file-create storms for the network and file events'
 * benchmark (benchmarks/io.ts). Test/bench-only: not embedded; static, like
 * the other tools, so it runs unchanged in the kernel matrix VMs.
 *
 *   iostorm connect --ops N --workers P ADDR PORT
 *       N TCP connect+close cycles to ADDR:PORT in total, split over P
 *       workers. PORT 0: iostorm forks its own listener on ADDR, port 0 (the
 *       kernel picks), that accepts and closes in a loop until the storm ends.
 *   iostorm create --ops N --workers P DIR
 *       N open(O_CREAT|O_EXCL) + close + unlink cycles of unique names in DIR.
 *   iostorm rename --ops N --workers P DIR
 *       N renameat(2)s: each worker moves one file of its own back and forth.
 *   iostorm link --ops N --workers P DIR
 *       N linkat(2)s of one file of each worker's to a new name, each unlinked.
 *   iostorm bind --ops N --workers P ADDR
 *       N UDP sockets bound to ADDR, port 0, and closed.
 *   iostorm dns --ops N --workers P ADDR
 *       N DNS queries (type A) sent with sendto(2) to ADDR port 53, one
 *       socket per worker; no reply is awaited (none need come).
 *   iostorm accept --ops N --workers P ADDR
 *       N TCP connections to a listener iostorm forks on ADDR, port 0, which
 *       accepts each one (accept4) and resets it; each worker waits for its
 *       connection's reset before the next, so the listener accepts all N.
 *   iostorm unlink --ops N --workers P DIR
 *       N files made (open O_CREAT|O_EXCL, close) and unlinked.
 *   iostorm rmdir --ops N --workers P DIR
 *       N directories made (mkdir) and removed.
 *   iostorm mount --ops N --workers P DIR
 *       N tmpfs mounts on a directory of each worker's in DIR, each unmounted,
 *       in a mount namespace of iostorm's own (nothing reaches the host's).
 *
 * --rate R (any command) paces the ops to ~R/s in total (each worker R/P,
 * sleeping until its next op is due); 0 or absent: as fast as possible.
 *
 * Prints one JSON line, like storm:
 *   {"ops":N,"workers":P,"failed":F,"elapsed_ns":T,"rate_per_s":R}
 * Exit status 1 if any op failed (one line on stderr says why), 2 on a usage
 * or setup error (no JSON then).
 *
 * What the tracer sees, per op: one event of the command's type (connect,
 * create_file, rename, link, bind, dns, accept, unlink, rmdir, mount), from
 * processes with comm "iostorm" (accept's from the listener). unlink's and
 * rmdir's ops also make a file or directory, and accept's a connect: select
 * the event alone (--events) to count that type's cost.
 * create's openat is AT_FDCWD, "DIR/iostorm-<pid>-<worker>-<i>", O_CREAT|O_EXCL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "dns-query.h"

/* One slot per worker in a MAP_SHARED page, so the parent can read it. */
struct result {
	long done, failed;
	int first_errno;
	const char *first_what;	/* a string literal: same address in every fork */
};

enum cmd { C_CONNECT, C_CREATE, C_RENAME, C_LINK, C_BIND, C_DNS, C_ACCEPT, C_UNLINK, C_RMDIR, C_MOUNT, C_COUNT };

static const char *const CMD_NAMES[C_COUNT] = {
	[C_CONNECT] = "connect", [C_CREATE] = "create", [C_RENAME] = "rename", [C_LINK] = "link",
	[C_BIND] = "bind",	 [C_DNS] = "dns",	[C_ACCEPT] = "accept", [C_UNLINK] = "unlink",
	[C_RMDIR] = "rmdir",	 [C_MOUNT] = "mount",
};

static enum cmd cmd;
static struct sockaddr_storage peer;
static socklen_t peer_len;
static const char *dir;
static pid_t main_pid;
static double rate;	/* ops/s in total; 0: unpaced */
static long nworkers = 1;
static long long worker_t0;	/* this worker's start, once past the gate */
/* Children so far (listener, workers), killed if setup fails half-way. */
static pid_t children[1025];
static int nchildren;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Paced: sleep until op i of this worker is due (t0 + i / per-worker rate).
 * Behind schedule it does not sleep, so a slow stretch is caught up after.
 */
static void pace(long i)
{
	if (rate <= 0)
		return;
	long long due = worker_t0 + (long long)(i * 1e9 * nworkers / rate);
	struct timespec ts = { .tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void usage(void)
{
	fputs("usage: iostorm connect --ops N --workers P [--rate R] ADDR PORT\n"
	      "       iostorm create|rename|link|unlink|rmdir|mount --ops N --workers P [--rate R] DIR\n"
	      "       iostorm bind|dns|accept --ops N --workers P [--rate R] ADDR\n", stderr);
	exit(2);
}

static long parse_count(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s ? s : "", &end, 10);
	if (!s || errno || *end || end == s || v < min || v > max)
		usage();
	return v;
}

static void setup_fail(const char *what)
{
	fprintf(stderr, "iostorm: %s: %s\n", what, strerror(errno));
	/* Ours only, not the process group: that may be the caller's. */
	for (int c = 0; c < nchildren; c++)
		kill(children[c], SIGKILL);
	exit(2);
}

static void note_failure(struct result *r, const char *what)
{
	if (r->failed++ == 0) {
		r->first_errno = errno;
		r->first_what = what;
	}
}

static int set_addr(const char *addr, int port)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&peer;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&peer;

	memset(&peer, 0, sizeof(peer));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		peer_len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		peer_len = sizeof(*a6);
		return 0;
	}
	return -1;
}

/* SO_LINGER 0: close sends a reset and leaves no TIME_WAIT behind. */
static const struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

/*
 * Bind a listener to peer's address, port 0, and fork a process that accepts
 * and closes until it is killed; peer then names the port it got. Listening
 * happens before the fork, so the storm never races the listener's start.
 */
static pid_t start_listener(void)
{
	int one = 1;
	int l = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		setup_fail("listener socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The accept queue must outlast a burst: a full one drops SYNs and costs 1 s retries. */
	if (bind(l, (struct sockaddr *)&peer, peer_len) < 0 || listen(l, 4096) < 0)
		setup_fail("listener bind/listen");
	socklen_t len = peer_len;
	if (getsockname(l, (struct sockaddr *)&peer, &len) < 0)
		setup_fail("listener getsockname");

	pid_t pid = fork();
	if (pid < 0)
		setup_fail("fork listener");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != main_pid)
			_exit(1);
		for (;;) {
			int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (a < 0)
				continue;
			/* accept's peers wait for this reset: no TIME_WAIT on either side. */
			if (cmd == C_ACCEPT)
				setsockopt(a, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
			close(a);
		}
	}
	children[nchildren++] = pid;
	close(l);
	return pid;
}

static void connect_op(struct result *r)
{
	/*
	 * Linger 0: close sends a reset and leaves no TIME_WAIT, so storm after
	 * storm never runs out of local ports (~28k, each held 60 s otherwise).
	 * The tracer sees the same connect(2) either way.
	 */
	int s = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0) {
		note_failure(r, "socket");
		return;
	}
	setsockopt(s, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
	while (connect(s, (struct sockaddr *)&peer, peer_len) < 0) {
		/* accept's listener may reset the connection before connect() returns: accepted all the same. */
		if (errno == ECONNRESET && cmd == C_ACCEPT)
			break;
		if (errno != EINTR) {
			note_failure(r, "connect");
			close(s);
			return;
		}
	}
	if (cmd == C_ACCEPT) {
		/* Until the listener has accepted it and reset it (EOF or ECONNRESET). */
		char c;
		while (read(s, &c, 1) < 0 && errno == EINTR)
			;
	}
	close(s);
}

/* Each op's own name in DIR: "DIR/iostorm-<pid>-<worker>-<i>". */
static int op_path(struct result *r, char *path, size_t size, long w, long i)
{
	if (snprintf(path, size, "%s/iostorm-%d-%ld-%ld", dir, (int)main_pid, w, i) < (int)size)
		return 0;
	errno = ENAMETOOLONG;
	note_failure(r, "path");
	return -1;
}

/* rmdir: a directory made (not an event of the selected type), then removed. */
static void rmdir_op(struct result *r, long w, long i)
{
	char path[PATH_MAX];

	if (op_path(r, path, sizeof(path), w, i) < 0)
		return;
	if (mkdir(path, 0700) < 0)
		note_failure(r, "mkdir");
	else if (rmdir(path) < 0)
		note_failure(r, "rmdir");
}

/* create and unlink: a file made and removed (the benchmark selects one of the two events). */
static void create_op(struct result *r, long w, long i)
{
	char path[PATH_MAX];

	if (op_path(r, path, sizeof(path), w, i) < 0)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		note_failure(r, "open");
		return;
	}
	close(fd);
	if (unlink(path) < 0)
		note_failure(r, "unlink");
}

static int worker_path(char *buf, size_t size, long w, const char *suffix)
{
	return snprintf(buf, size, "%s/iostorm-%d-%ld%s", dir, (int)main_pid, w, suffix) < (int)size ? 0 : -1;
}

static void mount_ops(struct result *r, long w, long n)
{
	char at[PATH_MAX];

	if (worker_path(at, sizeof(at), w, ".mnt") < 0 || mkdir(at, 0700) < 0) {
		note_failure(r, "mkdir");
		return;
	}
	for (long i = 0; i < n; i++, r->done++) {
		pace(i);
		if (mount("iostorm", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k") < 0)
			note_failure(r, "mount");
		else if (umount2(at, MNT_DETACH) < 0)
			note_failure(r, "umount2");
	}
	rmdir(at);
}

/* rename and link work on one file per worker, made before the gate opens. */
static int worker_file(struct result *r, long w, char *path, size_t size)
{
	int fd;

	if (worker_path(path, size, w, "") < 0 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		note_failure(r, "open");
		return -1;
	}
	close(fd);
	return 0;
}

static void rename_ops(struct result *r, long w, long n)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (worker_file(r, w, a, sizeof(a)) < 0 || worker_path(b, sizeof(b), w, ".moved") < 0)
		return;
	for (long i = 0; i < n; i++, r->done++) {
		pace(i);
		/* Back and forth: odd ops move it back. */
		const char *from = i % 2 ? b : a, *to = i % 2 ? a : b;
		if (renameat(AT_FDCWD, from, AT_FDCWD, to) < 0)
			note_failure(r, "renameat");
	}
	unlink(n % 2 ? b : a);
}

static void link_ops(struct result *r, long w, long n)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (worker_file(r, w, a, sizeof(a)) < 0 || worker_path(b, sizeof(b), w, ".link") < 0)
		return;
	for (long i = 0; i < n; i++, r->done++) {
		pace(i);
		if (linkat(AT_FDCWD, a, AT_FDCWD, b, 0) < 0)
			note_failure(r, "linkat");
		else if (unlink(b) < 0)
			note_failure(r, "unlink");
	}
	unlink(a);
}

static void bind_op(struct result *r)
{
	struct sockaddr_storage ss = peer;
	int s = socket(peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0) {
		note_failure(r, "socket");
		return;
	}
	if (bind(s, (struct sockaddr *)&ss, peer_len) < 0)
		note_failure(r, "bind");
	close(s);
}

static void dns_ops(struct result *r, long n)
{
	unsigned char q[512];
	/*
	 * Unconnected: the port-unreachable a host with no resolver on ADDR
	 * answers with is not reported to an unconnected UDP socket.
	 */
	int s = socket(peer.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0) {
		note_failure(r, "socket");
		return;
	}
	for (long i = 0; i < n; i++, r->done++) {
		pace(i);
		int len = dns_query(q, (unsigned)i & 0xffff, "iostorm.example.com", 1);
		if (sendto(s, q, len, 0, (struct sockaddr *)&peer, peer_len) != len)
			note_failure(r, "sendto");
	}
	close(s);
}

static void worker(struct result *r, long w, long n)
{
	worker_t0 = now_ns();
	switch (cmd) {
	case C_RENAME:
		rename_ops(r, w, n);
		return;
	case C_LINK:
		link_ops(r, w, n);
		return;
	case C_DNS:
		dns_ops(r, n);
		return;
	case C_MOUNT:
		mount_ops(r, w, n);
		return;
	default:
		break;
	}
	for (long i = 0; i < n; i++, r->done++) {
		pace(i);
		if (cmd == C_CONNECT || cmd == C_ACCEPT)
			connect_op(r);
		else if (cmd == C_RMDIR)
			rmdir_op(r, w, i);
		else if (cmd == C_BIND)
			bind_op(r);
		else
			create_op(r, w, i);
	}
}

int main(int argc, char **argv)
{
	long ops = -1, workers = 1;
	const char *pos[2];
	int npos = 0, want, i;

	main_pid = getpid();
	if (argc < 2)
		usage();
	for (cmd = 0; cmd < C_COUNT && strcmp(argv[1], CMD_NAMES[cmd]); cmd++)
		;
	if (cmd == C_COUNT)
		usage();
	want = cmd == C_CONNECT ? 2 : 1;
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--ops"))
			ops = parse_count(argv[++i], 0, LONG_MAX);
		else if (!strcmp(argv[i], "--workers"))
			workers = parse_count(argv[++i], 1, 1024);
		else if (!strcmp(argv[i], "--rate"))
			rate = (double)parse_count(argv[++i], 0, 100000000);
		else if (argv[i][0] == '-' || npos == want)
			usage();
		else
			pos[npos++] = argv[i];
	}
	if (ops < 0 || npos != want)
		usage();
	nworkers = workers;

	pid_t listener = 0;
	if (cmd == C_CONNECT) {
		long port = parse_count(pos[1], 0, 65535);
		if (set_addr(pos[0], (int)port) < 0) {
			fprintf(stderr, "iostorm: not an address: %s\n", pos[0]);
			return 2;
		}
		if (port == 0)
			listener = start_listener();
	} else if (cmd == C_BIND || cmd == C_DNS || cmd == C_ACCEPT) {
		if (set_addr(pos[0], cmd == C_DNS ? 53 : 0) < 0) {
			fprintf(stderr, "iostorm: not an address: %s\n", pos[0]);
			return 2;
		}
		if (cmd == C_ACCEPT)
			listener = start_listener();
	} else {
		dir = pos[0];
		if (access(dir, W_OK | X_OK) < 0)
			setup_fail(dir);
		/*
		 * Mounts in a namespace of our own, private: none propagates to the
		 * host's. Under another name: the make-private is a mount(2) too, and
		 * the benchmark counts the storm's mounts by comm.
		 */
		if (cmd == C_MOUNT) {
			prctl(PR_SET_NAME, "iostorm-setup");
			if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
				setup_fail("mount namespace");
			prctl(PR_SET_NAME, "iostorm");
		}
	}

	size_t len = sizeof(struct result) * (size_t)workers;
	struct result *res = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int gate[2];
	pid_t *wpid = calloc((size_t)workers, sizeof(pid_t));
	long *share = calloc((size_t)workers, sizeof(long));
	if (res == MAP_FAILED || pipe2(gate, O_CLOEXEC) < 0 || !wpid || !share)
		setup_fail("setup");

	/*
	 * Fork all workers first and hold them at a gate (EOF on a pipe), so
	 * the timed interval covers the ops, not the worker start-up.
	 */
	for (long w = 0; w < workers; w++) {
		share[w] = ops / workers + (w < ops % workers);
		wpid[w] = fork();
		if (wpid[w] < 0)
			setup_fail("fork");
		if (wpid[w] == 0) {
			char c;
			/* A killed iostorm must not leave workers storming. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != main_pid)
				_exit(1);
			close(gate[1]);
			while (read(gate[0], &c, 1) < 0 && errno == EINTR)
				;
			worker(&res[w], w, share[w]);
			_exit(0);
		}
		children[nchildren++] = wpid[w];
	}
	close(gate[0]);
	long long t0 = now_ns();
	close(gate[1]);

	long failed = 0;
	int first_errno = 0, wstat;
	const char *first_what = NULL;
	for (long w = 0; w < workers; w++) {
		while (waitpid(wpid[w], &wstat, 0) < 0 && errno == EINTR)
			;
		struct result *r = &res[w];
		/* A worker that died early failed every op it didn't run. */
		long lost = share[w] - r->done;
		if (!WIFEXITED(wstat) || WEXITSTATUS(wstat) != 0)
			lost = lost > 0 ? lost : 1;
		failed += r->failed + lost;
		if (!first_what && (r->failed || lost)) {
			first_what = r->failed ? r->first_what : "worker died";
			first_errno = r->failed ? r->first_errno : 0;
		}
	}
	long long elapsed = now_ns() - t0;
	if (listener > 0) {
		kill(listener, SIGKILL);
		waitpid(listener, NULL, 0);
	}

	printf("{\"ops\":%ld,\"workers\":%ld,\"failed\":%ld,"
	       "\"elapsed_ns\":%lld,\"rate_per_s\":%.1f}\n",
	       ops, workers, failed, elapsed,
	       elapsed > 0 ? ops * 1e9 / (double)elapsed : 0.0);
	fflush(stdout);
	if (!failed)
		return 0;
	fprintf(stderr, "iostorm: %ld of %ld ops failed; first: %s%s%s\n", failed, ops,
		first_what, first_errno ? ": " : "", first_errno ? strerror(first_errno) : "");
	return 1;
}
