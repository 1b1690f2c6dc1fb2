/**
 * Facts about this host that the kernel publishes outside the bpf() syscall:
 * CPU lists in sysfs, per-fd memlock in /proc, our own mappings, struct sizes
 * in the kernel's BTF, and filesystem magic numbers via statfs(2).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import { Btf } from "../btf/btf.ts";
import type { KernelSizes } from "../mem/model.ts";

const libc = dlopen("libc.so.6", {
  getpagesize: { args: [], returns: FFIType.i32 },
  statfs: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
});

/** "0-3,8-11" -> 8: the format of /sys/devices/system/cpu/{possible,online}. */
export function parseCpuList(text: string): number {
  let n = 0;
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`malformed CPU list '${text.trim()}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`malformed CPU list '${text.trim()}'`);
    n += hi - lo + 1;
  }
  return n;
}

export function cpuList(which: "possible" | "online"): { text: string; count: number } {
  const text = readFileSync(`/sys/devices/system/cpu/${which}`, "utf8").trim();
  return { text, count: parseCpuList(text) };
}

export const pageSize = (): number => libc.symbols.getpagesize();

/** The kernel's memlock line for a BPF fd (a map's memory, as the kernel itself accounts it). */
export function fdMemlock(fd: number, pid: number | "self" = "self"): number | null {
  const m = /^memlock:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
  return m ? Number(m[1]) : null;
}

/** Bytes of this process's perf ring mappings, from /proc/self/maps (what perf_buffer__new mmapped). */
export function perfMappedBytes(): { bytes: number; mappings: number } {
  let bytes = 0;
  let mappings = 0;
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    if (!line.endsWith("[perf_event]")) continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s/.exec(line);
    if (!m) continue;
    bytes += Number(BigInt(`0x${m[2]}`) - BigInt(`0x${m[1]}`));
    mappings++;
  }
  return { bytes, mappings };
}

/** statfs(2) f_type, or null when the path cannot be statted. f_type is the first, long-sized field on 64-bit Linux. */
export function fsMagic(path: string): number | null {
  const buf = new BigInt64Array(32);
  if (libc.symbols.statfs(ptr(Buffer.from(`${path}\0`)), ptr(buf)) !== 0) return null;
  return Number(buf[0]!);
}

export const BPF_FS_MAGIC = 0xcafe4a11;

let sizes: KernelSizes | null | undefined;

/**
 * Struct sizes from /sys/kernel/btf/vmlinux: the kernel build's own answer,
 * since sizeof(struct bpf_map) changes between versions and configs. Null when
 * the BTF is unreadable; callers then show the kernel's figures without a model.
 */
export function kernelSizes(path = "/sys/kernel/btf/vmlinux"): KernelSizes | null {
  if (sizes !== undefined) return sizes;
  try {
    const btf = Btf.parse(readFileSync(path));
    const page = pageSize();
    const ring = btf.struct("bpf_ringbuf");
    const data = ring.members.find((m) => m.name === "data");
    sizes = {
      bpfArray: btf.struct("bpf_array").size,
      ringbufMap: btf.struct("bpf_ringbuf_map").size,
      ringbufMetaPages: Math.floor((data?.offset ?? ring.size) / page),
      pageSize: page,
    };
  } catch {
    sizes = null;
  }
  return sizes;
}
