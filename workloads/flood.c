/*
 * flood: a high-rate, easily filtered trigger for a BPF program on
 * raw_tracepoint/sys_enter (the agent filters on our tgid and syscall_nr).
 *
 *   flood --count N [--rate R] [--wait-stdin]
 *
 * Calls getppid() N times through syscall(2), then prints one JSON line:
 *   {"count":N,"syscall_nr":X,"elapsed_ns":T,"rate_per_s":R}
 *
 * Why getppid: it takes no arguments, cannot fail, does almost no work in
 * the kernel (so the measured cost is the tracing overhead), exists under
 * the same name on x86_64 (110) and aarch64 (173), and unlike getpid/gettid/
 * clock_gettime/futex no libc or runtime calls it in a hot path, so even an
 * unfiltered sys_enter probe sees little of it besides us.  syscall(2) is
 * used because glibc's getppid() wrapper might one day be cached.  Nothing
 * else in the loop enters the kernel: clock_gettime goes through the vDSO.
 *
 * --rate R paces to about R calls/s by busy-waiting on CLOCK_MONOTONIC after
 * each small batch (sleeping would be far too coarse at these rates); 0 or
 * absent means as fast as possible.  --wait-stdin blocks until one byte (or
 * EOF) arrives on stdin, so the agent can install its pid filter first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FLOOD_NR SYS_getppid

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void)
{
	fputs("usage: flood --count N [--rate R] [--wait-stdin]\n", stderr);
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s ? s : "", &end, 10);
	if (!s || errno || *end || end == s || v < 0)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	long count = -1, rate = 0;
	int wait_stdin = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count"))
			count = parse_count(argv[++i]);
		else if (!strcmp(argv[i], "--rate"))
			rate = parse_count(argv[++i]);
		else if (!strcmp(argv[i], "--wait-stdin"))
			wait_stdin = 1;
		else
			usage();
	}
	if (count < 0)
		usage();

	if (wait_stdin) {
		char c;
		ssize_t n;
		while ((n = read(0, &c, 1)) < 0 && errno == EINTR)
			;
		if (n < 0) {
			fprintf(stderr, "flood: read stdin: %s\n", strerror(errno));
			return 2;
		}
	}

	long long t0 = now_ns();
	if (rate == 0) {
		for (long i = 0; i < count; i++)
			syscall(FLOOD_NR);
	} else {
		/* Check the clock about every 50 us of work, at least per call. */
		long batch = rate / 20000 > 0 ? rate / 20000 : 1;
		double ns_per_call = 1e9 / (double)rate;
		for (long done = 0; done < count;) {
			long n = count - done < batch ? count - done : batch;
			for (long i = 0; i < n; i++)
				syscall(FLOOD_NR);
			done += n;
			/* Absolute schedule, so pacing errors don't accumulate. */
			long long due = t0 + (long long)(done * ns_per_call);
			while (now_ns() < due)
				;
		}
	}
	long long elapsed = now_ns() - t0;

	printf("{\"count\":%ld,\"syscall_nr\":%d,\"elapsed_ns\":%lld,"
	       "\"rate_per_s\":%.1f}\n", count, (int)FLOOD_NR, elapsed,
	       elapsed > 0 ? count * 1e9 / (double)elapsed : 0.0);
	return fflush(stdout) == 0 ? 0 : 1;
}
