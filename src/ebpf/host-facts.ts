/**
 * Facts about this host that the kernel publishes outside the bpf() syscall:
 * CPU lists in sysfs, per-fd memlock in /proc, our own mappings, struct sizes
 * in the kernel's BTF (read by libbpf), and filesystem magic numbers via
 * statfs(2).
 */
import { type Pointer, read } from "bun:ffi";
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { asPtr, libbpf } from "../ffi/libbpf.ts";
import { pageSize as libcPageSize, statfs } from "../ffi/libc.ts";
import type { KernelSizes } from "../mem/model.ts";

/** "0,2-3" -> [0, 2, 3]: the format of /sys/devices/system/cpu/{possible,online}. */
export function parseCpuIds(text: string): number[] {
  const ids: number[] = [];
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`malformed CPU list '${text.trim()}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 1 << 16) throw new Error(`malformed CPU list '${text.trim()}'`);
    for (let c = lo; c <= hi; c++) ids.push(c);
  }
  return ids;
}

/** "0-3,8-11" -> 8. */
export function parseCpuList(text: string): number {
  return parseCpuIds(text).length;
}

export function cpuList(which: "possible" | "online"): { text: string; count: number } {
  const text = readFileSync(`/sys/devices/system/cpu/${which}`, "utf8").trim();
  return { text, count: parseCpuList(text) };
}

export const pageSize = libcPageSize;

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
  if (statfs(path, buf) !== 0) return null;
  return Number(buf[0]!);
}

export const BPF_FS_MAGIC = 0xcafe4a11;

const BTF_KIND_STRUCT = 4;
// struct btf_type is three u32s (name_off, info, size), followed for a struct
// by vlen struct btf_member, three u32s each (name_off, type, offset).
const BTF_TYPE_BYTES = 12;
const BTF_MEMBER_BYTES = 12;

type Lib = ReturnType<typeof libbpf>;

/** Type id of a named struct, or throws: a kernel without it is not one we can model. */
function structId(l: Lib, btf: Pointer, name: string): number {
  const id = l.btf__find_by_name_kind(btf, Buffer.from(`${name}\0`), BTF_KIND_STRUCT);
  if (id <= 0) throw new Error(`struct ${name} is not in the kernel's BTF`);
  return id;
}

function structSize(l: Lib, btf: Pointer, id: number): number {
  const size = Number(l.btf__resolve_size(btf, id));
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`BTF type ${id} has no size`);
  return size;
}

/** Byte offset of a struct member (the containing byte for a bitfield), or null when there is none by that name. */
function memberOffset(l: Lib, btf: Pointer, id: number, name: string): number | null {
  const t = asPtr(l.btf__type_by_id(btf, id));
  if (t === null) return null;
  const info = read.u32(t, 4);
  if (((info >>> 24) & 0x1f) !== BTF_KIND_STRUCT) return null;
  const kindFlag = info >>> 31 === 1;
  const vlen = info & 0xffff;
  for (let i = 0; i < vlen; i++) {
    const m = BTF_TYPE_BYTES + i * BTF_MEMBER_BYTES;
    if (String(l.btf__name_by_offset(btf, read.u32(t, m)) ?? "") !== name) continue;
    const raw = read.u32(t, m + 8);
    // kind_flag=1 packs bitfield_size<<24 | bit_offset into the offset word.
    return Math.floor((kindFlag ? raw & 0xffffff : raw) / 8);
  }
  return null;
}

let sizes: KernelSizes | null | undefined;

/**
 * Struct sizes from the running kernel's BTF, as libbpf finds it
 * (/sys/kernel/btf/vmlinux first): the kernel build's own answer, since
 * sizeof(struct bpf_map) changes between versions and configs. Null when there
 * is no usable BTF; callers then show the kernel's figures without a model.
 *
 * libbpf must be loaded first (prepareHost). Parsing vmlinux BTF costs
 * milliseconds, so the answer is kept.
 */
export function kernelSizes(): KernelSizes | null {
  if (sizes !== undefined) return sizes;
  const l = libbpf();
  const btf = asPtr(l.btf__load_vmlinux_btf());
  if (btf === null) {
    sizes = null;
    return sizes;
  }
  try {
    const page = pageSize();
    const ring = structId(l, btf, "bpf_ringbuf");
    const data = memberOffset(l, btf, ring, "data");
    sizes = {
      bpfArray: structSize(l, btf, structId(l, btf, "bpf_array")),
      ringbufMap: structSize(l, btf, structId(l, btf, "bpf_ringbuf_map")),
      ringbufMetaPages: Math.floor((data ?? structSize(l, btf, ring)) / page),
      pageSize: page,
      htab: structSize(l, btf, structId(l, btf, "bpf_htab")),
      htabElem: structSize(l, btf, structId(l, btf, "htab_elem")),
      htabBucket: structSize(l, btf, structId(l, btf, "bucket")),
      localStorageMap: structSize(l, btf, structId(l, btf, "bpf_local_storage_map")),
      localStorageBucket: structSize(l, btf, structId(l, btf, "bpf_local_storage_map_bucket")),
    };
  } catch {
    sizes = null;
  } finally {
    l.btf__free(btf);
  }
  return sizes;
}

/** The running kernel's major.minor, from its release string (null if that is not "N.M..."). */
export function kernelVersion(rel = release()): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Whether the running kernel is at least `min` (major, minor). */
export function kernelAtLeast(min: readonly [number, number], rel = release()): boolean {
  const v = kernelVersion(rel);
  return v !== null && (v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]));
}

/**
 * Whether a BPF program's perf output can signal an O_ASYNC owner (SIGIO):
 * from 6.10 on. Before, a wake-up from bpf_perf_event_output woke pollers
 * but sent no signal (perf/ring_buffer: "Trigger IO signals for
 * watermark_wakeup"), and a drain back-off that relied on one would lose the
 * start of a burst.
 */
export function perfOutputSignals(rel = release()): boolean {
  return kernelAtLeast([6, 10], rel);
}
