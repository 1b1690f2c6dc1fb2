/* Linked into the bundled libbpf.so (and hidden by its version script).
 *
 * Before glibc 2.33 there was no exported fstat: <sys/stat.h> inlined it
 * into __fxstat(_STAT_VER, ...). libelf calls fstat, so linking against
 * glibc 2.36 would demand fstat@GLIBC_2.33. Defining fstat here on top of
 * the baseline __fxstat (still exported as a compat symbol by every glibc)
 * keeps the floor where the rest of the library puts it.
 */
#include <sys/stat.h>

#if defined(__x86_64__)
#define DUAL_SLOT_STAT_VER 1 /* _STAT_VER_LINUX */
#elif defined(__aarch64__)
#define DUAL_SLOT_STAT_VER 0 /* generic ABI: _STAT_VER_KERNEL */
#else
#error "glibc-compat.c: unsupported architecture"
#endif

extern int __fxstat(int ver, int fd, struct stat *buf);
__asm__(".symver __fxstat,__fxstat@" DUAL_SLOT_GLIBC_BASE);

__attribute__((visibility("hidden"))) int fstat(int fd, struct stat *buf)
{
	return __fxstat(DUAL_SLOT_STAT_VER, fd, buf);
}
