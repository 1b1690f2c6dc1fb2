/*
 * noop: the smallest possible exec target, used for exec storms.
 *
 * No libc and no startup code: the only thing the process does after execve()
 * is exit_group(0), so an exec storm measures exec/exit cost and nothing else.
 * It is run from a memfd, so it must be static and need no loader.
 * exit_group rather than exit: it is what _exit(0) does, and it ends the whole
 * process even if someone ever makes this multi-threaded.
 */
#if defined(__x86_64__)
__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"	.type	_start, @function\n"
	"_start:\n"
	"	xorl	%edi, %edi\n"
	"	movl	$231, %eax\n"	/* __NR_exit_group */
	"	syscall\n"
	"	hlt\n"
	"	.size	_start, . - _start\n");
#elif defined(__aarch64__)
__asm__(
	"	.text\n"
	"	.globl	_start\n"
	"	.type	_start, %function\n"
	"_start:\n"
	"	mov	x0, #0\n"
	"	mov	x8, #94\n"	/* __NR_exit_group */
	"	svc	#0\n"
	"	brk	#0\n"
	"	.size	_start, . - _start\n");
#else
#error "noop.c: only x86_64 and aarch64 are supported"
#endif
