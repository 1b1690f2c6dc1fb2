/**
 * The few libc calls the agent needs that Bun does not expose: errno and its
 * text, vsnprintf for libbpf's va_list log lines, the monotonic clock that
 * bpf_ktime_get_ns() uses, and file descriptors.
 */
import { dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: FFIType.ptr },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  vsnprintf: { args: [FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  getpagesize: { args: [], returns: FFIType.i32 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  memcpy: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.ptr },
});

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

export function errno(): number {
  const p = libc.symbols.__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

/** "Operation not permitted (EPERM)": the text a user can search for, and the name. */
export function errnoText(code: number): string {
  const e = Math.abs(code);
  const text = e === 524 ? "Operation not supported by this kernel" : String(libc.symbols.strerror(e));
  const name = ERRNO_NAMES[e];
  return name === undefined ? `${text} (errno ${e})` : `${text} (${name})`;
}

/** Formats a C format string with its va_list, as libbpf hands them to its print callback. */
export function formatVa(fmt: Pointer, args: Pointer): string {
  const buf = new Uint8Array(1024);
  const n = libc.symbols.vsnprintf(ptr(buf), BigInt(buf.length), fmt, args);
  if (n <= 0) return "";
  return new TextDecoder().decode(buf.subarray(0, Math.min(n, buf.length - 1)));
}

const CLOCK_MONOTONIC = 1;
const CLOCK_REALTIME = 0;
const ts = new BigInt64Array(2);

function clock(id: number): bigint {
  libc.symbols.clock_gettime(id, ptr(ts));
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
  if (libc.symbols.poll(ptr(pollfd), 1n, 0) !== 1) return false;
  return ((pollfd[1]! >>> 16) & (POLLERR | POLLHUP)) !== 0;
}

/** perf sizes its buffers in kernel pages: 4 KiB on x86_64, up to 64 KiB on arm64. */
export const pageSize = (): number => libc.symbols.getpagesize();

export function closeFd(fd: number): void {
  if (fd >= 0) libc.symbols.close(fd);
}

const RLIMIT_MEMLOCK = 8;

/** Current RLIMIT_MEMLOCK soft limit in bytes (Infinity when unlimited). */
export function memlockLimit(): number {
  const r = new BigUint64Array(2);
  if (libc.symbols.getrlimit(RLIMIT_MEMLOCK, ptr(r)) !== 0) return Number.NaN;
  return r[0] === 0xffffffffffffffffn ? Infinity : Number(r[0]);
}

/** Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it as libbpf tools do. */
export function raiseMemlock(): boolean {
  const r = new BigUint64Array([0xffffffffffffffffn, 0xffffffffffffffffn]);
  return libc.symbols.setrlimit(RLIMIT_MEMLOCK, ptr(r)) === 0;
}
