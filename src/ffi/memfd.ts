/**
 * Load embedded native code from an anonymous, sealed memfd.
 *
 * The release executable carries libbpf.so inside itself. Bun's own way of
 * loading embedded libraries extracts them to $TMPDIR, which is unsafe for an
 * agent running as root (another user can race the file) and fails outright
 * on noexec tmp mounts. A memfd never touches a filesystem: dlopen() of
 * /proc/self/fd/N maps it straight from anonymous memory, and sealing it
 * first means nothing can rewrite the code between our write and the map.
 */
import { ptr } from "bun:ffi";
import { errno, errnoText, type Libc, libc } from "./libc.ts";

const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
// Kernels >= 6.3 with vm.memfd_noexec=1 make memfds non-executable unless
// asked; older kernels reject the unknown flag with EINVAL.
const MFD_EXEC = 0x10;
// Data, never code: sealed non-executable where the kernel knows the flag (6.3+).
const MFD_NOEXEC_SEAL = 0x8;

const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const F_SEAL_WRITE = 0x8;
const ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

const EINTR = 4;
const EINVAL = 22;
const EACCES = 13;

// One write(2) moves at most this much on Linux anyway; bounding it keeps the
// length argument a plain number.
const MAX_WRITE = 0x7fff_f000;

// memfd_create(2) by number through syscall(): glibc only wraps it since 2.27,
// and this wrapper alone would raise the executable's glibc floor to that.
const SYS_memfd_create = process.arch === "arm64" ? 279 : 319;

class NativeCallError extends Error {
  readonly errno: number;
  constructor(call: string, err: number, hint = "") {
    super(`${call} failed: ${errnoText(err)}${hint}`);
    this.name = "NativeCallError";
    this.errno = err;
  }
}

// The kernel rejects names over 249 bytes; the name only labels /proc maps,
// so cutting it (even mid-character) is harmless.
const MAX_NAME_BYTES = 249;

function cName(s: string): Uint8Array {
  const encoded = new TextEncoder().encode(s).subarray(0, MAX_NAME_BYTES);
  const out = new Uint8Array(encoded.length + 1);
  out.set(encoded);
  return out;
}

export interface MemfdOptions {
  /**
   * Close the fd on exec (default true). Pass false only to exec the memfd as
   * a program from a child via /proc/self/fd/N; dlopen is in-process and
   * does not care.
   */
  cloexec?: boolean;
  /** Ask for an executable memfd (default true: code to dlopen); false for data. */
  executable?: boolean;
}

function create(c: Libc, name: string, cloexec: boolean, executable: boolean): number {
  const label = cName(name);
  const base = MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0);
  const memfdCreate = (flags: number) => Number(c.syscall(SYS_memfd_create, ptr(label), flags));
  let fd = memfdCreate(base | (executable ? MFD_EXEC : MFD_NOEXEC_SEAL));
  if (fd >= 0) return fd;
  let err = errno();
  if (err === EACCES && executable) {
    throw new NativeCallError("memfd_create", err, ": executable memfds are forbidden here (sysctl vm.memfd_noexec=2)");
  }
  if (err !== EINVAL) throw new NativeCallError("memfd_create", err);
  fd = memfdCreate(base);
  if (fd >= 0) return fd;
  err = errno();
  throw new NativeCallError("memfd_create", err);
}

function writeAll(c: Libc, fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const len = Math.min(bytes.length - off, MAX_WRITE);
    const n = Number(c.write(fd, ptr(bytes, off), len));
    if (n < 0) {
      const err = errno();
      if (err === EINTR) continue;
      throw new NativeCallError("write", err);
    }
    if (n === 0) throw new Error(`write failed: wrote 0 of ${bytes.length - off} remaining bytes`);
    off += n;
  }
}

/**
 * Write bytes into an anonymous memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING, plus
 * MFD_EXEC when the kernel knows it), seal it against any change, and return
 * its fd and "/proc/self/fd/N". Never touches the filesystem.
 *
 * glibc's dlopen matches already-loaded objects by path string first, so a
 * later dlopen of a *different* memfd that reuses the same fd number returns
 * the earlier library: keep the fd open until every dlopen is done.
 */
export function memfdFromBytes(
  name: string,
  bytes: Uint8Array,
  options: MemfdOptions = {},
): { fd: number; path: string } {
  const c = libc();
  const fd = create(c, name, options.cloexec ?? true, options.executable ?? true);
  try {
    writeAll(c, fd, bytes);
    if (c.fcntl(fd, F_ADD_SEALS, ALL_SEALS) < 0) {
      throw new NativeCallError("fcntl(F_ADD_SEALS)", errno());
    }
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return { fd, path: `/proc/self/fd/${fd}` };
}

/** Close the fd (after dlopen the mapping stays valid). */
export function closeFd(fd: number): void {
  const c = libc();
  // Linux releases the fd even when close() reports EINTR, so never retry.
  if (c.close(fd) < 0) {
    const err = errno();
    if (err !== EINTR) throw new NativeCallError("close", err);
  }
}
