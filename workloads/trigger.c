/*
 * trigger: does one security-relevant thing for real, so a kernel test can
 * assert the record the agent built for it. Test-only: not embedded.
 *
 *   trigger prctl NAME            prctl(PR_SET_NAME, NAME)
 *   trigger setsid                fork; the child calls setsid()
 *   trigger memfd NAME            memfd_create(NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING)
 *   trigger ptrace                fork a child; PTRACE_ATTACH, PTRACE_POKEDATA a known
 *                                 word into it, detach, kill it
 *   trigger ptrace-seize          the same with PTRACE_SEIZE (and PTRACE_INTERRUPT) and PTRACE_POKETEXT
 *   trigger kill                  fork a child; kill(child, SIGUSR1), tkill(child, SIGUSR1),
 *                                 tgkill(child, child, SIGTERM)
 *   trigger setuid-root UID       as root: keep capabilities, become UID, raise CAP_SETUID,
 *                                 setuid(0): a non-root task making itself root
 *   trigger exec-missing PATH [ARG...]  execve(PATH, {PATH, "x"}) that fails; with ARGs, {PATH, ARG...}
 *   trigger exec-edge PATH        the same, {PATH, "edge-1"}, the argv array ending where its page
 *                                 does, an inaccessible page after it
 *   trigger execveat-missing NAME execveat(open("/"), NAME, {NAME, "y"}) that fails (NAME relative to /)
 *   trigger exec-rewritten PATH   execve(PATH, {"before-0", "arg-1"}, {ENV}) of a file no binfmt takes
 *                                 (ENOEXEC), ENV on a userfaultfd page: while the kernel copies the
 *                                 environment (inside the call, after its sys_enter, before argv) a
 *                                 thread rewrites argv[0] to "after-00"
 *   trigger exec-unpaged PATH     the same with argv[1] on the userfaultfd page instead: not readable
 *                                 at sys_enter; filled with "arg-1" when the kernel faults on it
 *   trigger memfd-exec PATH       copy PATH into a memfd and execute it from there
 *   trigger unlinked-exec PATH    copy PATH to a file, unlink it, execute it by fd
 *   trigger thread-exit CODE      the main thread leaves (pthread_exit), then a second thread exit(CODE)s
 *   trigger thread-exec PATH      a second thread execs PATH (the kernel gives it the leader's pid)
 *   trigger chain N PATH          N nested fork levels, the deepest execs PATH
 *   trigger as-user UID PATH      setgid/setuid to UID, then exec PATH (a setuid file)
 *   trigger as-user-fd UID PATH   the same, PATH opened first and run by fd (execveat AT_EMPTY_PATH)
 *
 * Every command prints one JSON line with what a test needs to match the event
 * (pids, fds, addresses) before it acts where that matters, and exits 0 when the
 * action happened as intended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include "uffd-rewrite.h"

static volatile uint64_t target_word = 0x1111111111111111ull;

static void die(const char *what)
{
	fprintf(stderr, "trigger: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int copy_to(int dst, const char *path)
{
	char buf[65536];
	int src = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (src < 0)
		return -1;
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(dst, buf, n) != n)
			return -1;
	close(src);
	return n < 0 ? -1 : 0;
}

static int wait_ok(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* seize: PTRACE_SEIZE, PTRACE_INTERRUPT to stop it, then PTRACE_POKETEXT; else ATTACH and POKEDATA. */
static int cmd_ptrace(int seize)
{
	const uint64_t word = 0x4242424242424242ull;
	pid_t child = fork();
	int st;

	if (child < 0)
		die("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	printf("{\"pid\":%d,\"child\":%d,\"addr\":\"0x%lx\",\"data\":\"0x%llx\"}\n", getpid(), child,
	       (unsigned long)&target_word, (unsigned long long)word);
	fflush(stdout);
	if (seize ? ptrace(PTRACE_SEIZE, child, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0
		  : ptrace(PTRACE_ATTACH, child, 0, 0) < 0)
		die("PTRACE_SEIZE/INTERRUPT or PTRACE_ATTACH");
	if (waitpid(child, &st, 0) < 0)
		die("waitpid");
	if (ptrace(seize ? PTRACE_POKETEXT : PTRACE_POKEDATA, child, (void *)&target_word, (void *)word) < 0)
		die("PTRACE_POKETEXT/POKEDATA");
	ptrace(PTRACE_DETACH, child, 0, 0);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	return 0;
}

static int cmd_setuid_root(uid_t uid)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die("PR_SET_KEEPCAPS");
	if (setresuid(uid, uid, uid) < 0)
		die("setresuid");
	/* Permitted survived (KEEPCAPS); effective was cleared: raise CAP_SETUID again. */
	if (syscall(SYS_capget, &h, d) < 0)
		die("capget");
	d[0].effective |= 1u << CAP_SETUID;
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset");
	printf("{\"pid\":%d,\"uid\":%u}\n", getpid(), uid);
	fflush(stdout);
	if (setuid(0) < 0)
		die("setuid(0)");
	return 0;
}


/*
 * exec-rewritten, exec-unpaged: inside the call, argv[0] becomes "after-00";
 * the page the kernel faulted on is filled with "arg-1" (argv[1]'s, for
 * exec-unpaged) or "DS_ENV=1" (the environment's, for exec-rewritten).
 */
static void rewrite_argv(struct uffd_rewrite *r, char *fill)
{
	memcpy(r->first, "after-00", 9);
	if (r->arg)
		memcpy(fill, "arg-1", 6);
	else
		memcpy(fill, "DS_ENV=1", 9);
}

static int cmd_exec_rewritten(const char *path, int unpaged)
{
	struct uffd_rewrite r = { .rewrite = rewrite_argv, .arg = unpaged ? &r : NULL };
	char *args[3], *env[2];

	if (uffd_start(&r) < 0)
		die("userfaultfd");
	strcpy(r.first, "before-0");
	strcpy(r.first + 16, "arg-1");
	args[0] = r.first;
	args[1] = unpaged ? r.second : r.first + 16;
	args[2] = NULL;
	env[0] = unpaged ? r.first + 32 : r.second;
	env[1] = NULL;
	strcpy(r.first + 32, "DS_ENV=1");
	printf("{\"pid\":%d}\n", getpid());
	fflush(stdout);
	/* The kernel copies the environment, then argv from its last string: the fault comes before argv[0]. */
	execve(path, args, env);
	if (errno != ENOEXEC)
		die("execve (expected ENOEXEC)");
	if (!uffd_served(&r)) {
		fprintf(stderr, "trigger: the kernel never faulted on the userfaultfd page\n");
		return 1;
	}
	return 0;
}

/* thread-exit: the main thread leaves first (pthread_exit); the process ends later, with another's exit(CODE). */
static void *exit_from_thread(void *p)
{
	usleep(100 * 1000);
	exit((int)(long)p);
	return NULL;
}

static int cmd_thread_exit(const char *code)
{
	pthread_t th;

	printf("{\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (pthread_create(&th, NULL, exit_from_thread, (void *)(long)atoi(code)))
		die("pthread_create");
	pthread_exit(NULL);
}

/* thread-exec: execve from a thread other than the leader. */
static void *exec_from_thread(void *p)
{
	char *path = p, *args[] = { path, NULL };

	execve(path, args, environ);
	die("execve");
	return NULL;
}

static int cmd_thread_exec(char *path)
{
	pthread_t th;

	printf("{\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (pthread_create(&th, NULL, exec_from_thread, path))
		die("pthread_create");
	pthread_join(th, NULL); /* never returns: the exec ends this thread first */
	return 1;
}

/* Says this pid, then execve(path, args), which must fail with ENOENT. */
static int exec_missing(const char *path, char *const args[])
{
	printf("{\"pid\":%d}\n", getpid());
	fflush(stdout);
	execve(path, args, environ);
	return errno == ENOENT ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "prctl") && argc == 3) {
		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		if (prctl(PR_SET_NAME, argv[2], 0, 0, 0) < 0)
			die("prctl");
		return 0;
	}
	if (!strcmp(cmd, "setsid")) {
		pid_t child = fork();

		if (child < 0)
			die("fork");
		if (child == 0)
			_exit(setsid() < 0 ? 1 : 0);
		printf("{\"pid\":%d,\"child\":%d}\n", getpid(), child);
		return wait_ok(child) ? 1 : 0;
	}
	if (!strcmp(cmd, "memfd") && argc == 3) {
		int fd = memfd_create(argv[2], MFD_CLOEXEC | MFD_ALLOW_SEALING);

		if (fd < 0)
			die("memfd_create");
		printf("{\"pid\":%d,\"fd\":%d}\n", getpid(), fd);
		return 0;
	}
	if (!strcmp(cmd, "ptrace"))
		return cmd_ptrace(0);
	if (!strcmp(cmd, "ptrace-seize"))
		return cmd_ptrace(1);
	if (!strcmp(cmd, "kill")) {
		pid_t child;

		/* Ignored before the fork: the child must survive SIGUSR1 whenever it comes. */
		signal(SIGUSR1, SIG_IGN);
		child = fork();
		if (child < 0)
			die("fork");
		if (child == 0) {
			for (;;)
				pause();
		}
		printf("{\"pid\":%d,\"child\":%d}\n", getpid(), child);
		fflush(stdout);
		if (kill(child, SIGUSR1) < 0 || syscall(SYS_tkill, child, SIGUSR1) < 0 ||
		    syscall(SYS_tgkill, child, child, SIGTERM) < 0)
			die("kill");
		waitpid(child, NULL, 0);
		return 0;
	}
	if (!strcmp(cmd, "setuid-root") && argc == 3)
		return cmd_setuid_root((uid_t)atoi(argv[2]));
	if (!strcmp(cmd, "exec-missing") && argc >= 3) {
		char *dflt[] = { argv[2], "x", NULL };

		return exec_missing(argv[2], argc > 3 ? &argv[2] : dflt);
	}
	if (!strcmp(cmd, "exec-edge") && argc == 3) {
		long pg = sysconf(_SC_PAGESIZE);
		char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char **args;

		if (m == MAP_FAILED || mprotect(m + pg, pg, PROT_NONE))
			return 1;
		args = (char **)(m + pg - 3 * sizeof(char *));
		args[0] = argv[2];
		args[1] = "edge-1";
		args[2] = NULL;
		return exec_missing(argv[2], args);
	}
	if (!strcmp(cmd, "exec-rewritten") && argc == 3)
		return cmd_exec_rewritten(argv[2], 0);
	if (!strcmp(cmd, "exec-unpaged") && argc == 3)
		return cmd_exec_rewritten(argv[2], 1);
	if (!strcmp(cmd, "execveat-missing") && argc == 3) {
		/* The same through execveat: a directory fd and a name under it that is not there. */
		char *args[] = { argv[2], "y", NULL };
		int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		syscall(SYS_execveat, dfd, argv[2], args, environ, 0);
		return errno == ENOENT ? 0 : 1;
	}
	if (!strcmp(cmd, "memfd-exec") && argc == 3) {
		int fd = memfd_create("ds-memfd-exec", MFD_CLOEXEC);
		char *args[] = { "from-memfd", NULL };

		if (fd < 0 || copy_to(fd, argv[2]) < 0)
			die("memfd copy");
		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		fexecve(fd, args, environ);
		die("fexecve");
	}
	if (!strcmp(cmd, "unlinked-exec") && argc == 3) {
		char path[] = "/tmp/ds-unlinked-XXXXXX";
		char *args[] = { "from-unlinked", NULL };
		int fd = mkstemp(path), rfd;

		if (fd < 0 || copy_to(fd, argv[2]) < 0 || fchmod(fd, 0700) < 0)
			die("copy");
		close(fd);
		rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || unlink(path) < 0)
			die("reopen");
		printf("{\"pid\":%d,\"path\":\"%s\"}\n", getpid(), path);
		fflush(stdout);
		fexecve(rfd, args, environ);
		die("fexecve");
	}
	if (!strcmp(cmd, "thread-exit") && argc == 3)
		return cmd_thread_exit(argv[2]);
	if (!strcmp(cmd, "thread-exec") && argc == 3)
		return cmd_thread_exec(argv[2]);
	if (!strcmp(cmd, "chain") && argc == 4) {
		int n = atoi(argv[2]);

		printf("{\"pid\":%d}\n", getpid());
		fflush(stdout);
		for (int i = 0; i < n; i++) {
			pid_t child = fork();

			if (child < 0)
				die("fork");
			if (child > 0)
				return wait_ok(child) ? 1 : 0;
		}
		execl(argv[3], argv[3], (char *)NULL);
		die("exec");
	}
	if ((!strcmp(cmd, "as-user") || !strcmp(cmd, "as-user-fd")) && argc == 4) {
		uid_t uid = (uid_t)atoi(argv[2]);
		char *args[] = { argv[3], NULL };
		int by_fd = !strcmp(cmd, "as-user-fd");
		int fd = by_fd ? open(argv[3], O_RDONLY | O_CLOEXEC) : -1;

		if (by_fd && fd < 0)
			die("open");
		if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
			die("drop");
		if (fd >= 0) {
			syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
			die("execveat");
		}
		execl(argv[3], argv[3], (char *)NULL);
		die("exec");
	}
	fprintf(stderr, "trigger: unknown command or arguments: %s\n", cmd);
	return 2;
}
