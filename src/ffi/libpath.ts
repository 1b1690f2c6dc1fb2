/**
 * Where libbpf comes from: the copy embedded in this executable, loaded from a
 * sealed memfd (never from a file another user could have planted or that a
 * noexec /tmp would refuse), or, in a build made with --system-libbpf, the
 * host's libbpf.so.1 from the system library directories.
 *
 * The system copy is opened by absolute path only, from a root-owned file in a
 * root-owned directory that no one else can write: bun:ffi retries a bare
 * soname it cannot resolve in the working directory, and this process runs as
 * root.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { embedded } from "../assets.ts";
import { HostError } from "../errors.ts";
import { type Libbpf, loadLibbpf } from "./libbpf.ts";
import { memfdFromBytes } from "./memfd.ts";

const TRIPLE = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
const SYSTEM_DIRS = [`/usr/lib/${TRIPLE}`, `/lib/${TRIPLE}`, "/usr/lib64", "/lib64", "/usr/lib", "/lib"];

/** Root-owned and writable by root alone: the file and the directory holding it. */
function trusted(path: string): boolean {
  try {
    for (const p of [path, dirname(path)]) {
      const st = statSync(p);
      if (st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export function systemLibbpfPath(dirs: readonly string[] = SYSTEM_DIRS): string | null {
  for (const d of dirs) {
    const p = `${d}/libbpf.so.1`;
    if (trusted(p)) return p;
  }
  return null;
}

export function openLibbpf(): Libbpf {
  if (embedded.libbpfSo !== null) {
    const { path } = memfdFromBytes("libbpf.so", readFileSync(embedded.libbpfSo));
    return loadLibbpf(path);
  }
  const path = systemLibbpfPath();
  if (path === null) {
    throw new HostError(
      `no trusted libbpf.so.1 in ${SYSTEM_DIRS.join(", ")} (this build does not embed one); install libbpf1 or use the release executable`,
    );
  }
  try {
    return loadLibbpf(path);
  } catch (e) {
    throw new HostError(`cannot load ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
