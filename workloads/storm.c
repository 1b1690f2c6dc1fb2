/*
 * storm: exec storm driver for the agent's tests and benchmark.
 *
 *   storm --execs N --workers P [--quiet] [--method vfork|spawn|fork]
 *         -- PATH [ARGV0 ARGS...]
 *
 * Runs N fork+exec+wait cycles of PATH in total, split over P worker
 * processes, with an empty environment, and prints one JSON line:
 *   {"execs":N,"workers":P,"failed":F,"elapsed_ns":T,"rate_per_s":R}
 * Exit status is 1 if any exec failed (exec error or child status != 0),
 * 2 on usage/setup errors.
 *
 * PATH is opened once up front, so a missing target fails before the storm.
 * A plain path is then exec'd by name, so the tracer sees a real exec:
 * filename == PATH and comm == basename(PATH) on every kernel.  A /proc/...
 * or /dev/fd/... path (e.g. the agent's memfd, /proc/<agent pid>/fd/N) is
 * exec'd through the open fd with execveat(AT_EMPTY_PATH) instead: that keeps
 * working even if the path was only valid in our own process, and the kernel
 * reports filename "/dev/fd/<fd>" and, since upstream ceedbf8185fc (~6.14),
 * comm = the file's name ("memfd:<name>" for a memfd; the fd number before).
 *
 * --quiet sends the children's stdout/stderr to /dev/null so they cannot
 * corrupt our JSON line.  --method exists only to compare spawn strategies;
 * vfork is the default (see workloads/README.md for measurements).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum method { M_VFORK, M_SPAWN, M_FORK };

/* One slot per worker in a MAP_SHARED page, so the parent can read it. */
struct result {
	long done, failed;
	int first_errno;	/* exec error of the first failure, or 0 */
	int first_status;	/* wait status of the first failure */
	volatile int exec_errno;	/* written by a child whose exec failed */
};

static enum method method = M_VFORK;
static int target_fd = -1, devnull = -1;
static const char *exec_path;	/* NULL: exec target_fd instead */
static char *const empty_env[] = { NULL };
static char **child_argv;
static char fd_path[64];	/* /proc/self/fd/N, for posix_spawn */

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void)
{
	fputs("usage: storm --execs N --workers P [--quiet] "
	      "[--method vfork|spawn|fork] -- PATH [ARGV0 ARGS...]\n", stderr);
	exit(2);
}

static long parse_count(const char *s, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s ? s : "", &end, 10);
	if (!s || errno || *end || end == s || v < min)
		usage();
	return v;
}

/*
 * Runs in the child of fork() or vfork(): only async-signal-safe calls, and
 * nothing that writes to the (possibly shared) stack frame of the parent.
 */
static void child_exec(struct result *r)
{
	if (devnull >= 0 && (dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0))
		r->exec_errno = errno;
	else {
		if (exec_path)
			execve(exec_path, child_argv, empty_env);
		else
			syscall(SYS_execveat, target_fd, "", child_argv,
				empty_env, AT_EMPTY_PATH);
		r->exec_errno = errno;
	}
	_exit(127);
}

static void note_failure(struct result *r, int err, int status)
{
	if (r->failed++ == 0) {
		r->first_errno = err;
		r->first_status = status;
	}
}

/*
 * Start one child.  Kept out of worker()'s loop so no loop variable lives
 * across vfork() (it returns twice and may clobber registers).
 */
static pid_t start_child(struct result *r, posix_spawn_file_actions_t *fa)
{
	pid_t pid;
	int err;

	switch (method) {
	case M_VFORK:
		if ((pid = vfork()) == 0)
			child_exec(r);
		return pid;
	case M_FORK:
		if ((pid = fork()) == 0)
			child_exec(r);
		return pid;
	default:
		err = posix_spawn(&pid, exec_path ? exec_path : fd_path, fa,
				  NULL, child_argv, empty_env);
		if (err) {
			errno = err;
			return -1;
		}
		return pid;
	}
}

static void worker(struct result *r, long n)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (devnull >= 0) {
		posix_spawn_file_actions_adddup2(&fa, devnull, 1);
		posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	}

	for (long i = 0; i < n; i++, r->done++) {
		int status = 0;

		r->exec_errno = 0;
		pid_t pid = start_child(r, &fa);
		if (pid < 0) {
			note_failure(r, errno, 0);
			continue;
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (r->exec_errno)
			note_failure(r, r->exec_errno, status);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			note_failure(r, 0, status);
	}
}

int main(int argc, char **argv)
{
	long execs = -1, workers = 1;
	int quiet = 0, i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (!strcmp(argv[i], "--execs"))
			execs = parse_count(argv[++i], 0);
		else if (!strcmp(argv[i], "--workers"))
			workers = parse_count(argv[++i], 1);
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else if (!strcmp(argv[i], "--method") && i + 1 < argc) {
			const char *m = argv[++i];
			if (!strcmp(m, "vfork"))
				method = M_VFORK;
			else if (!strcmp(m, "spawn"))
				method = M_SPAWN;
			else if (!strcmp(m, "fork"))
				method = M_FORK;
			else
				usage();
		} else
			usage();
	}
	if (execs < 0 || i + 1 >= argc)
		usage();
	const char *path = argv[i + 1];
	/* Default argv is {PATH}; otherwise ARGV0 ARGS... verbatim. */
	child_argv = i + 2 < argc ? &argv[i + 2] : &argv[i + 1];

	/*
	 * CLOEXEC is fine: the kernel opens the binary before closing CLOEXEC
	 * fds, and this is an ELF (only #! scripts need the fd to survive).
	 */
	target_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (target_fd < 0) {
		fprintf(stderr, "storm: open %s: %s\n", path, strerror(errno));
		return 2;
	}
	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", target_fd);
	if (strncmp(path, "/proc/", 6) != 0 && strncmp(path, "/dev/fd/", 8) != 0)
		exec_path = path;
	if (quiet && (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "storm: open /dev/null: %s\n", strerror(errno));
		return 2;
	}

	size_t len = sizeof(struct result) * (size_t)workers;
	struct result *res = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int gate[2];
	if (res == MAP_FAILED || pipe2(gate, O_CLOEXEC) < 0) {
		fprintf(stderr, "storm: setup: %s\n", strerror(errno));
		return 2;
	}

	/*
	 * Fork all workers first and hold them at a gate (EOF on a pipe), so
	 * the timed interval covers the execs, not the worker start-up.
	 */
	pid_t parent = getpid();
	pid_t *wpid = calloc((size_t)workers, sizeof(pid_t));
	long *share = calloc((size_t)workers, sizeof(long));
	if (!wpid || !share) {
		fputs("storm: out of memory\n", stderr);
		return 2;
	}
	for (long w = 0; w < workers; w++) {
		share[w] = execs / workers + (w < execs % workers);
		wpid[w] = fork();
		if (wpid[w] < 0) {
			fprintf(stderr, "storm: fork: %s\n", strerror(errno));
			kill(0, SIGKILL);	/* our group: don't leave workers */
			return 2;
		}
		if (wpid[w] == 0) {
			char c;
			/* A killed storm must not leave workers storming. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			close(gate[1]);
			while (read(gate[0], &c, 1) < 0 && errno == EINTR)
				;
			worker(&res[w], share[w]);
			_exit(0);
		}
	}
	close(gate[0]);
	long long t0 = now_ns();
	close(gate[1]);

	long failed = 0;
	int first_errno = 0, first_status = 0, have_first = 0, wstat;
	for (long w = 0; w < workers; w++) {
		while (waitpid(wpid[w], &wstat, 0) < 0 && errno == EINTR)
			;
		struct result *r = &res[w];
		/* A worker that died early failed every exec it didn't run. */
		long lost = share[w] - r->done;
		if (!WIFEXITED(wstat) || WEXITSTATUS(wstat) != 0)
			lost = lost > 0 ? lost : 1;
		failed += r->failed + lost;
		if (!have_first && (r->failed || lost)) {
			have_first = 1;
			first_errno = r->failed ? r->first_errno : 0;
			first_status = r->failed ? r->first_status : wstat;
		}
	}
	long long elapsed = now_ns() - t0;

	printf("{\"execs\":%ld,\"workers\":%ld,\"failed\":%ld,"
	       "\"elapsed_ns\":%lld,\"rate_per_s\":%.1f}\n",
	       execs, workers, failed, elapsed,
	       elapsed > 0 ? execs * 1e9 / (double)elapsed : 0.0);
	fflush(stdout);
	if (!failed)
		return 0;
	if (first_errno)
		fprintf(stderr, "storm: %ld of %ld execs failed; first: exec %s: %s\n",
			failed, execs, path, strerror(first_errno));
	else if (WIFSIGNALED(first_status))
		fprintf(stderr, "storm: %ld of %ld execs failed; first: killed by signal %d\n",
			failed, execs, WTERMSIG(first_status));
	else
		fprintf(stderr, "storm: %ld of %ld execs failed; first: exit status %d\n",
			failed, execs, WEXITSTATUS(first_status));
	return 1;
}
