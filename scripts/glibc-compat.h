/* Force-included (-include) into every C file of the bundled libbpf.so.
 *
 * The .so is built on Debian 12 (glibc 2.36) but must load on older hosts,
 * so references that newer headers quietly bind to recent symbol versions
 * are pinned to the architecture's baseline version instead. Only symbols
 * whose old and new versions share one ABI on LP64 belong here; the build
 * script measures the resulting floor and fails if it creeps up.
 *
 * Deliberately includes no system header: elfutils defines _GNU_SOURCE in
 * its config.h, which must come before anything pulls in <features.h>.
 */
#ifndef DUAL_SLOT_GLIBC_COMPAT_H
#define DUAL_SLOT_GLIBC_COMPAT_H

#if defined(__x86_64__)
#define DUAL_SLOT_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define DUAL_SLOT_GLIBC_BASE "GLIBC_2.17"
#else
#error "glibc-compat.h: unsupported architecture"
#endif

/* glibc 2.28 added fcntl64 and redirects fcntl to it under
 * _FILE_OFFSET_BITS=64; on LP64 both are the same function. */
__asm__(".symver fcntl64,fcntl@" DUAL_SLOT_GLIBC_BASE);

#endif
