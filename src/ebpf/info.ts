/**
 * What the kernel itself says about our programs and maps (bpf_obj_get_info_by_fd),
 * and the per-CPU counters map. The UAPI structs bpf_prog_info and bpf_map_info
 * are laid out as in the build's vmlinux.h (generated layout); their members only
 * ever grow at the end, and a kernel that knows fewer accepts the longer buffer
 * as long as the tail is zero.
 */
import { ptr } from "bun:ffi";
import { checkInt, libbpf } from "../ffi/libbpf.ts";
import { bpf_map_info, bpf_prog_info, ds_counters } from "../wire/layout.gen.ts";

const PROG_INFO = bpf_prog_info.off;
const MAP_INFO = bpf_map_info.off;
const C = ds_counters.off;

function info(fd: number, size: number): DataView {
  const buf = new Uint8Array(size);
  const len = new Uint32Array([size]);
  checkInt("bpf_obj_get_info_by_fd", libbpf().bpf_obj_get_info_by_fd(fd, ptr(buf), ptr(len)));
  return new DataView(buf.buffer);
}

function cname(dv: DataView, off: number): string {
  const bytes = new Uint8Array(dv.buffer, off, 16);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? 16 : end));
}

export interface ProgStats {
  id: number;
  name: string;
  runTimeNs: bigint;
  runCnt: bigint;
}

export function progStats(fd: number): ProgStats {
  const dv = info(fd, bpf_prog_info.size);
  return {
    id: dv.getUint32(PROG_INFO.id, true),
    name: cname(dv, PROG_INFO.name),
    runTimeNs: dv.getBigUint64(PROG_INFO.run_time_ns, true),
    runCnt: dv.getBigUint64(PROG_INFO.run_cnt, true),
  };
}

export interface MapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export function mapInfo(fd: number): MapInfo {
  const dv = info(fd, bpf_map_info.size);
  return {
    id: dv.getUint32(MAP_INFO.id, true),
    type: dv.getUint32(MAP_INFO.type, true),
    name: cname(dv, MAP_INFO.name),
    keySize: dv.getUint32(MAP_INFO.key_size, true),
    valueSize: dv.getUint32(MAP_INFO.value_size, true),
    maxEntries: dv.getUint32(MAP_INFO.max_entries, true),
    flags: dv.getUint32(MAP_INFO.map_flags, true),
  };
}

export type CounterTotals = { [K in Exclude<keyof typeof ds_counters.off, "slot_gets">]: number } & {
  slot_gets: number[];
};

export function possibleCpus(): number {
  return checkInt("libbpf_num_possible_cpus", libbpf().libbpf_num_possible_cpus());
}

/** Reads ds_counters on every CPU: per-CPU values and their sums. */
export function readCounters(fd: number, cpus = possibleCpus()): { total: CounterTotals; perCpu: CounterTotals[] } {
  const stride = Math.ceil(ds_counters.size / 8) * 8;
  const buf = new Uint8Array(stride * cpus);
  const key = new Uint32Array(1);
  checkInt("bpf_map_lookup_elem", libbpf().bpf_map_lookup_elem(fd, ptr(key), ptr(buf)), "ds_counters");
  const dv = new DataView(buf.buffer);
  const one = (base: number): CounterTotals => {
    const n = (o: number) => Number(dv.getBigUint64(base + o, true));
    return {
      seq: n(C.seq),
      events: n(C.events),
      output_fail: n(C.output_fail),
      corrupt: n(C.corrupt),
      clobbers: n(C.clobbers),
      lookup_fail: n(C.lookup_fail),
      bytes: n(C.bytes),
      filtered_kernel: n(C.filtered_kernel),
      slot_gets: Array.from({ length: ds_counters.count.slot_gets }, (_, i) => n(C.slot_gets + 8 * i)),
    };
  };
  const perCpu = Array.from({ length: cpus }, (_, c) => one(c * stride));
  const total = perCpu.reduce((a, b) => ({
    seq: a.seq + b.seq,
    events: a.events + b.events,
    output_fail: a.output_fail + b.output_fail,
    corrupt: a.corrupt + b.corrupt,
    clobbers: a.clobbers + b.clobbers,
    lookup_fail: a.lookup_fail + b.lookup_fail,
    bytes: a.bytes + b.bytes,
    filtered_kernel: a.filtered_kernel + b.filtered_kernel,
    slot_gets: a.slot_gets.map((v, i) => v + b.slot_gets[i]!),
  }));
  return { total, perCpu };
}
