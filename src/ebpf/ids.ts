/**
 * The kernel's own inventory of BPF objects: every program, map and link has a
 * global id, and CAP_SYS_ADMIN can walk them and open each by id. That is how
 * `dual-slot stats` finds a running agent without it pinning anything.
 */
import { ptr } from "bun:ffi";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { checkInt, libbpf } from "../ffi/libbpf.ts";
import { closeFd } from "../ffi/libc.ts";
import { bpf_link_info, bpf_prog_info } from "../wire/layout.gen.ts";
import { type MapInfo, mapInfo } from "./info.ts";

const ENOENT = 2;

/** All ids of one kind, in ascending order. Objects may vanish while we walk; that is fine. */
function walk(next: (start: number, out: Uint32Array) => number, call: string): number[] {
  const ids: number[] = [];
  const out = new Uint32Array(1);
  for (let id = 0; ; id = out[0]!) {
    const r = next(id, out);
    if (r < 0) {
      // libbpf 1.x returns -errno (so -1 is EPERM); ENOENT means "no id after this one".
      const e = -r;
      if (e === ENOENT) return ids;
      checkInt(call, -e, "walking ids needs CAP_SYS_ADMIN");
    }
    ids.push(out[0]!);
  }
}

export const mapIds = (): number[] => walk((s, o) => libbpf().bpf_map_get_next_id(s, ptr(o)), "bpf_map_get_next_id");
export const progIds = (): number[] => walk((s, o) => libbpf().bpf_prog_get_next_id(s, ptr(o)), "bpf_prog_get_next_id");
export const linkIds = (): number[] => walk((s, o) => libbpf().bpf_link_get_next_id(s, ptr(o)), "bpf_link_get_next_id");

/** Runs `f` with a fresh fd for the object, closing it after; null when the object is gone. */
function withFd<T>(fd: number, f: (fd: number) => T): T | null {
  if (fd < 0) return null;
  try {
    return f(fd);
  } finally {
    closeFd(fd);
  }
}

export const withMapFd = <T>(id: number, f: (fd: number) => T): T | null =>
  withFd(libbpf().bpf_map_get_fd_by_id(id), f);
export const withProgFd = <T>(id: number, f: (fd: number) => T): T | null =>
  withFd(libbpf().bpf_prog_get_fd_by_id(id), f);

export function mapInfoById(id: number): MapInfo | null {
  return withMapFd(id, (fd) => mapInfo(fd));
}

export interface ProgDetail {
  id: number;
  type: number;
  name: string;
  /** CLOCK_BOOTTIME nanoseconds at load. */
  loadTimeNs: bigint;
  uid: number;
  mapIds: number[];
  runCnt: bigint;
  runTimeNs: bigint;
  /** The program as the verifier left it, in bytes; and the instructions it went through to get there. */
  xlatedBytes: number;
  verifiedInsns: number;
}

const PROG = bpf_prog_info.off;
const MAX_MAP_IDS = 64;

/** bpf_prog_info including the ids of the maps the program uses: the maps of one loaded object. */
export function progDetail(fd: number): ProgDetail {
  const buf = new Uint8Array(bpf_prog_info.size);
  const ids = new Uint32Array(MAX_MAP_IDS);
  const dv = new DataView(buf.buffer);
  dv.setUint32(PROG.nr_map_ids, MAX_MAP_IDS, true);
  dv.setBigUint64(PROG.map_ids, BigInt(ptr(ids)), true);
  const len = new Uint32Array([bpf_prog_info.size]);
  checkInt("bpf_obj_get_info_by_fd", libbpf().bpf_obj_get_info_by_fd(fd, ptr(buf), ptr(len)), "program");
  const nameBytes = buf.subarray(PROG.name, PROG.name + 16);
  const end = nameBytes.indexOf(0);
  const n = Math.min(dv.getUint32(PROG.nr_map_ids, true), MAX_MAP_IDS);
  return {
    id: dv.getUint32(PROG.id, true),
    type: dv.getUint32(PROG.type, true),
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 16 : end)),
    loadTimeNs: dv.getBigUint64(PROG.load_time, true),
    uid: dv.getUint32(PROG.created_by_uid, true),
    mapIds: Array.from(ids.subarray(0, n)),
    runCnt: dv.getBigUint64(PROG.run_cnt, true),
    runTimeNs: dv.getBigUint64(PROG.run_time_ns, true),
    xlatedBytes: dv.getUint32(PROG.xlated_prog_len, true),
    verifiedInsns: dv.getUint32(PROG.verified_insns, true),
  };
}

/** Programs that have at least one link: attached to something, not merely loaded. */
export function linkedProgIds(): Set<number> {
  const out = new Set<number>();
  const LINK_INFO_SIZE = bpf_link_info.size;
  const LINK_PROG_ID = bpf_link_info.off.prog_id;
  for (const id of linkIds()) {
    withFd(libbpf().bpf_link_get_fd_by_id(id), (fd) => {
      const buf = new Uint8Array(LINK_INFO_SIZE);
      const len = new Uint32Array([LINK_INFO_SIZE]);
      if (libbpf().bpf_obj_get_info_by_fd(fd, ptr(buf), ptr(len)) === 0) {
        out.add(new DataView(buf.buffer).getUint32(LINK_PROG_ID, true));
      }
    });
  }
  return out;
}

/** Reads one map value (all CPUs' copies for a per-CPU map) into `out`. */
export function lookup(fd: number, key: number, out: Uint8Array, what: string): void {
  const k = new Uint32Array([key]);
  checkInt("bpf_map_lookup_elem", libbpf().bpf_map_lookup_elem(fd, ptr(k), ptr(out)), what);
}

export interface FdHolder {
  pid: number;
  comm: string;
}

/**
 * Which processes hold an fd for each prog and map id, from /proc/<pid>/fdinfo
 * (prog_id:/map_id: lines). An agent's maps die with its last fd, so the
 * holder of the program is the agent.
 */
export function bpfFdHolders(skipPid = process.pid): { progs: Map<number, FdHolder[]>; maps: Map<number, FdHolder[]> } {
  const progs = new Map<number, FdHolder[]>();
  const maps = new Map<number, FdHolder[]>();
  const add = (m: Map<number, FdHolder[]>, id: number, h: FdHolder) => {
    const list = m.get(id) ?? [];
    if (!list.some((x) => x.pid === h.pid)) list.push(h);
    m.set(id, list);
  };
  for (const ent of readdirSync("/proc")) {
    if (!/^\d+$/.test(ent) || Number(ent) === skipPid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${ent}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    let comm = "";
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${ent}/fd/${fd}`);
        if (!target.startsWith("anon_inode:bpf")) continue;
        const info = readFileSync(`/proc/${ent}/fdinfo/${fd}`, "utf8");
        if (comm === "") comm = readFileSync(`/proc/${ent}/comm`, "utf8").trim();
        const h = { pid: Number(ent), comm };
        const p = /^prog_id:\s*(\d+)/m.exec(info);
        if (p && target === "anon_inode:bpf-prog") add(progs, Number(p[1]), h);
        const mp = /^map_id:\s*(\d+)/m.exec(info);
        if (mp) add(maps, Number(mp[1]), h);
      } catch {
        // The fd closed between readdir and read.
      }
    }
  }
  return { progs, maps };
}
