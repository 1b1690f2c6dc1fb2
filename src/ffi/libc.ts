/**
 * The one libc binding table: every libc function the agent calls through
 * bun:ffi, and small typed wrappers around them (errno and its text,
 * vsnprintf for libbpf's va_list log lines, the monotonic clock that
 * bpf_ktime_get_ns() uses, file descriptors, memory mappings).
 *
 * Importing this module does nothing: libc is opened on the first call, so
 * build.ts can import LIBC_SYMBOLS to find the glibc these functions need.
 */
import { dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";

/**
 * Read by build.ts (ffiLibcFloor): the functions are resolved with dlsym at
 * run time, invisible to `objdump -T`, so this table is what sets the floor.
 * Nothing else in src/ may dlopen libc.
 */
export const LIBC_SYMBOLS = {
  __errno_location: { args: [], returns: FFIType.ptr },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  vsnprintf: { args: [FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  // Variadic in C; every call passes exactly one int, which both the x86_64
  // and the arm64 Linux ABIs pass like a fixed argument.
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  // Variadic in C, bound for memfd_create(nr, name, flags): glibc wraps
  // memfd_create only since 2.27. The x86_64 and arm64 Linux ABIs pass these
  // integer arguments in the same registers as fixed ones.
  syscall: { args: [FFIType.i64, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getpagesize: { args: [], returns: FFIType.i32 },
  isatty: { args: [FFIType.i32], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  statfs: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  posix_fadvise: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.i32], returns: FFIType.i32 },
  memcpy: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.ptr },
  mount: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  umount2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

function open() {
  return dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
}

export type Libc = ReturnType<typeof open>;
let opened: Libc | undefined;

/** The raw symbols, for the other src/ffi modules; everything else uses the wrappers below. */
export function libc(): Libc {
  opened ??= open();
  return opened;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  34: "ERANGE",
  38: "ENOSYS",
  61: "ENODATA",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};

/**
 * errno of the last failed libc or libbpf call. Read it right after that call:
 * libc is already open by then (loadLibbpf opens it first), so no dlopen here
 * can overwrite the value.
 */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

/**
 * Whether fd is a terminal, without Bun's process.stdout or process.stderr: the first of those
 * costs 5-6 ms to create, a tenth of a start.
 */
export function isTerminal(fd: number): boolean {
  try {
    return libc().isatty(fd) === 1;
  } catch {
    return false; // no libc.so.6 to open: --help and --version still answer, without colour
  }
}

/** "Operation not permitted (EPERM)": the text a user can search for, and the name. */
export function errnoText(code: number): string {
  const e = Math.abs(code);
  const text = e === 524 ? "Operation not supported by this kernel" : String(libc().strerror(e));
  const name = ERRNO_NAMES[e];
  return name === undefined ? `${text} (errno ${e})` : `${text} (${name})`;
}

/** Formats a C format string with its va_list, as libbpf hands them to its print callback. */
let vaBuf: Uint8Array | undefined;

/**
 * One printf with a va_list, formatted once: a va_list cannot be walked twice,
 * so the buffer is large enough for a verifier log (whose reason is at its
 * end), allocated on first use; untouched pages cost no memory.
 */
export function formatVa(fmt: Pointer, args: Pointer): string {
  vaBuf ??= new Uint8Array(8 << 20);
  const n = libc().vsnprintf(ptr(vaBuf), BigInt(vaBuf.length), fmt, args);
  if (n <= 0) return "";
  return new TextDecoder().decode(vaBuf.subarray(0, Math.min(n, vaBuf.length - 1)));
}

const CLOCK_MONOTONIC = 1;
const CLOCK_REALTIME = 0;
const ts = new BigInt64Array(2);

function clock(id: number): bigint {
  libc().clock_gettime(id, ptr(ts));
  return ts[0]! * 1_000_000_000n + ts[1]!;
}

/** The clock behind bpf_ktime_get_ns(), so kernel timestamps can be compared with now. */
export const monotonicNs = (): bigint => clock(CLOCK_MONOTONIC);
export const realtimeNs = (): bigint => clock(CLOCK_REALTIME);

const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const pollfd = new Int32Array(2);

/**
 * True when fd is a pipe or socket whose reader has gone away. A write would
 * say so with EPIPE, but an idle agent may not write for a long time, and
 * `dual-slot | head` should end when head does, not at the next exec.
 */
export function peerClosed(fd: number): boolean {
  pollfd[0] = fd;
  pollfd[1] = POLLOUT; // events (short) = POLLOUT, revents (short) = 0
  if (libc().poll(ptr(pollfd), 1n, 0) !== 1) return false;
  return ((pollfd[1]! >>> 16) & (POLLERR | POLLHUP)) !== 0;
}

/** perf sizes its buffers in kernel pages: 4 KiB on x86_64, up to 64 KiB on arm64. */
export const pageSize = (): number => libc().getpagesize();

export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

const RLIMIT_MEMLOCK = 8;

/** Current RLIMIT_MEMLOCK soft limit in bytes (Infinity when unlimited). */
export function memlockLimit(): number {
  const r = new BigUint64Array(2);
  if (libc().getrlimit(RLIMIT_MEMLOCK, ptr(r)) !== 0) return Number.NaN;
  return r[0] === 0xffffffffffffffffn ? Infinity : Number(r[0]);
}

/** Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it as libbpf tools do. */
export function raiseMemlock(): boolean {
  const r = new BigUint64Array([0xffffffffffffffffn, 0xffffffffffffffffn]);
  return libc().setrlimit(RLIMIT_MEMLOCK, ptr(r)) === 0;
}

/** statfs(2) into `buf` (struct statfs, at least 120 bytes on 64-bit Linux); 0 or -1 with errno. */
export function statfs(path: string, buf: BigInt64Array): number {
  if (buf.byteLength < 120) throw new RangeError(`statfs buffer of ${buf.byteLength} bytes is too small`);
  return libc().statfs(ptr(Buffer.from(`${path}\0`)), ptr(buf));
}

const F_SETOWN = 8;
const F_GETFL = 3;
const F_SETFL = 4;
const O_ASYNC = 0o20000; // the same on x86_64 and arm64

/**
 * Asks the kernel to send this process SIGIO whenever `fd` becomes ready
 * (F_SETOWN, then O_ASYNC). A SIGIO listener must be in place first: the
 * signal's default action ends the process. False, with errno, if refused.
 */
export function signalWhenReady(fd: number): boolean {
  if (libc().fcntl(fd, F_SETOWN, process.pid) !== 0) return false;
  const flags = libc().fcntl(fd, F_GETFL, 0);
  return flags >= 0 && libc().fcntl(fd, F_SETFL, flags | O_ASYNC) === 0;
}

/**
 * Undoes signalWhenReady at once: clearing O_ASYNC removes the file's signal
 * owner now, where closing the fd leaves it until the kernel's last
 * reference to the file goes (a perf event: after a grace period).
 */
export function stopSignals(fd: number): void {
  const flags = libc().fcntl(fd, F_GETFL, 0);
  if (flags >= 0 && (flags & O_ASYNC) !== 0) libc().fcntl(fd, F_SETFL, flags & ~O_ASYNC);
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/**
 * flock(2) LOCK_EX | LOCK_NB: true when taken, false when another open file
 * holds it; other failures throw. Released when the descriptor is closed.
 */
export function tryLockExclusive(fd: number): boolean {
  if (libc().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const e = errno();
  if (e === EWOULDBLOCK) return false;
  throw new Error(`flock: ${errnoText(e)}`);
}

/** fcntl(2) with one int argument; the result, or -1 with errno. */
export function fcntl(fd: number, cmd: number, arg: number): number {
  return libc().fcntl(fd, cmd, arg);
}

/** mmap(2); null on failure (MAP_FAILED), with errno set. */
export function mmap(
  addr: Pointer | null,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): Pointer | null {
  const p: Pointer | bigint | null = libc().mmap(addr, length, prot, flags, fd, offset);
  // bun:ffi returns MAP_FAILED ((void *)-1) as a bigint, being past 2^53;
  // every user-space address on 64-bit Linux fits a number.
  if (p === null || typeof p === "bigint") return null;
  return p;
}

/** munmap(2); 0, or -1 with errno. */
export function munmap(addr: Pointer, length: number): number {
  return libc().munmap(addr, length);
}

const cstr = (s: string) => Buffer.from(`${s}\0`);

/** mount(2) of a pseudo filesystem (no source, no data); -errno on failure. */
export function mountFs(type: string, target: string, flags: number): number {
  return libc().mount(cstr("none"), cstr(target), cstr(type), BigInt(flags), null) === 0 ? 0 : -errno();
}

/** umount2(2) with MNT_DETACH: gone from the tree now, released when no longer in use. */
export function detachMount(target: string): number {
  const MNT_DETACH = 2;
  return libc().umount2(cstr(target), MNT_DETACH) === 0 ? 0 : -errno();
}

/** madvise(2); 0, or -errno. */
export function madvise(addr: number, length: number, advice: number): number {
  return libc().madvise(addr as Pointer, length, advice) === 0 ? 0 : -errno();
}

/** posix_fadvise(2) over `len` bytes from `offset` (0: to the end); 0, or -errno (it returns the error rather than setting errno). */
export function fadvise(fd: number, advice: number, offset = 0, len = 0): number {
  return -libc().posix_fadvise(fd, offset, len, advice);
}

/** memcpy(3): `n` bytes from `src` to `dst`; the caller bounds both ends. */
export function memcpy(dst: Pointer, src: Pointer, n: number): void {
  libc().memcpy(dst, src, n);
}
