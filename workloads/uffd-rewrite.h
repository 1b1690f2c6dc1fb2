/*
 * For the test tools (trigger, io-trigger): memory the kernel reads inside a
 * syscall, rewritten while it does. Two pages: the first ordinary, the second
 * not there (userfaultfd) until the kernel touches it. At that fault, inside
 * the call and after its sys_enter tracepoint, a thread runs `rewrite` (which
 * may change the first page and fills the second's contents) and only then
 * lets the kernel go on. A tracer that reads the caller's memory at the
 * syscall's exit sees what `rewrite` wrote; one that read it at entry does not.
 */
#ifndef DS_UFFD_REWRITE_H
#define DS_UFFD_REWRITE_H

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct uffd_rewrite {
	int uffd;
	long pagesize;
	char *first;  /* ordinary */
	char *second; /* there once the kernel faults on it */
	void (*rewrite)(struct uffd_rewrite *r, char *fill);
	void *arg;
	int served;
	pthread_t thread;
};

static void *uffd_serve(void *p)
{
	struct uffd_rewrite *r = p;
	struct pollfd pfd = { .fd = r->uffd, .events = POLLIN };
	struct uffd_msg msg;
	struct uffdio_copy copy;
	char *fill;

	if (poll(&pfd, 1, 10000) != 1 || read(r->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT || !(fill = calloc(1, r->pagesize)))
		return NULL;
	r->rewrite(r, fill);
	copy = (struct uffdio_copy){ .dst = (unsigned long)r->second, .src = (unsigned long)fill, .len = r->pagesize };
	if (ioctl(r->uffd, UFFDIO_COPY, &copy) == 0)
		r->served = 1;
	free(fill);
	return NULL;
}

/* The two pages and the thread that waits on the second; -1 with errno set on failure. */
static int uffd_start(struct uffd_rewrite *r)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	char *mem;

	r->pagesize = sysconf(_SC_PAGESIZE);
	r->served = 0;
	r->uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (r->uffd < 0 || ioctl(r->uffd, UFFDIO_API, &api) < 0)
		return -1;
	mem = mmap(NULL, 2 * r->pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	r->first = mem;
	r->second = mem + r->pagesize;
	reg = (struct uffdio_register){ .range = { .start = (unsigned long)r->second, .len = r->pagesize },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(r->uffd, UFFDIO_REGISTER, &reg) < 0)
		return -1;
	return pthread_create(&r->thread, NULL, uffd_serve, r) ? -1 : 0;
}

/* After the call: whether the kernel faulted on the second page and `rewrite` ran. */
static int uffd_served(struct uffd_rewrite *r)
{
	pthread_join(r->thread, NULL);
	return r->served;
}

#endif /* DS_UFFD_REWRITE_H */
