/**
 * Running dual-slot agents, as the kernel sees them: every map named
 * ds_counters with our value layout, tied to its ds_exec program (the program's
 * map ids are the maps of one loaded object), its sibling maps, whether a link
 * attaches it, and which process holds it.
 */

import {
  bpfFdHolders,
  type FdHolder,
  linkedProgIds,
  lookup,
  mapIds,
  mapInfoById,
  type ProgDetail,
  progDetail,
  progIds,
  withMapFd,
  withProgFd,
} from "../ebpf/ids.ts";
import { type CounterTotals, type MapInfo, readCounters } from "../ebpf/info.ts";
import { HostError } from "../errors.ts";
import { MapType } from "../mem/model.ts";
import { ds_config, ds_counters, sections } from "../wire/layout.gen.ts";
import { byValue, Encoding, Mode, Transport } from "../wire/names.ts";

const BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
const PROG_NAME = "ds_exec";

export interface AgentConfig {
  mode: string;
  slots: number;
  transport: string;
  encoding: string;
  guard: boolean;
  injectClobber: boolean;
  /** Kernel-side filters the agent loaded with. */
  filters: string[];
}

export interface Agent {
  counters: MapInfo;
  /** g_percpu_data: its max_entries is the slot count the agent runs with. */
  scratch: MapInfo | null;
  rodata: MapInfo | null;
  prog: ProgDetail | null;
  attached: boolean;
  holders: FdHolder[];
}

const isCounters = (m: MapInfo) =>
  m.name === "ds_counters" && m.type === MapType.percpu_array && m.valueSize === ds_counters.size;

/** Every agent currently loaded, oldest first. Needs CAP_SYS_ADMIN (the id walk). */
export function findAgents(): Agent[] {
  const counters = mapIds()
    .map(mapInfoById)
    .filter((m): m is MapInfo => m !== null && isCounters(m));
  if (counters.length === 0) return [];
  const progs = progIds()
    .map((id) => withProgFd(id, progDetail))
    .filter((p): p is ProgDetail => p !== null && p.name === PROG_NAME && p.type === BPF_PROG_TYPE_RAW_TRACEPOINT);
  const linked = linkedProgIds();
  const holders = bpfFdHolders();
  return counters
    .map((c): Agent => {
      const prog = progs.find((p) => p.mapIds.includes(c.id)) ?? null;
      const siblings = (prog?.mapIds ?? []).map(mapInfoById).filter((m): m is MapInfo => m !== null);
      const own = [...(prog ? (holders.progs.get(prog.id) ?? []) : []), ...(holders.maps.get(c.id) ?? [])];
      return {
        counters: c,
        scratch: siblings.find((m) => m.name === "g_percpu_data" && m.type === MapType.percpu_array) ?? null,
        rodata: siblings.find((m) => m.name.endsWith(".rodata")) ?? null,
        prog,
        attached: prog !== null && linked.has(prog.id),
        holders: own.filter((h, i) => own.findIndex((x) => x.pid === h.pid) === i),
      };
    })
    .sort((a, b) => Number((a.prog?.loadTimeNs ?? 0n) - (b.prog?.loadTimeNs ?? 0n)) || a.counters.id - b.counters.id);
}

export interface Selection {
  agent: Agent;
  why: string;
}

/**
 * The agent to report on: the one the user named, else the newest attached one
 * (a `mem` run or a test may have loaded objects that never attach).
 */
export function selectAgent(agents: readonly Agent[], by: { pid?: number; mapId?: number }): Selection {
  if (by.mapId !== undefined) {
    const a = agents.find((x) => x.counters.id === by.mapId || x.prog?.id === by.mapId);
    if (!a)
      throw new HostError(
        `no agent has ds_counters map id or ds_exec program id ${by.mapId} (found: ${describeIds(agents)})`,
      );
    return { agent: a, why: `chosen by --id ${by.mapId}` };
  }
  if (by.pid !== undefined) {
    const a = agents.filter((x) => x.holders.some((h) => h.pid === by.pid)).at(-1);
    if (!a) throw new HostError(`process ${by.pid} holds no dual-slot agent (found: ${describeIds(agents)})`);
    return { agent: a, why: `chosen by --pid ${by.pid}` };
  }
  const attached = agents.filter((a) => a.attached);
  const pick = (attached.length > 0 ? attached : agents).at(-1);
  if (!pick) throw new HostError("no dual-slot agent is loaded");
  const others = agents.length - 1;
  const why =
    others === 0
      ? "the only agent loaded"
      : `newest ${attached.length > 0 ? "attached " : ""}of ${agents.length} agents; pick another with --pid or --id (see --all)`;
  return { agent: pick, why };
}

function describeIds(agents: readonly Agent[]): string {
  if (agents.length === 0) return "none";
  return agents.map((a) => `map ${a.counters.id}${a.holders[0] ? ` pid ${a.holders[0].pid}` : ""}`).join(", ");
}

const MODE_NAMES = byValue(Mode);
const TRANSPORT_NAMES = byValue(Transport);
const ENCODING_NAMES = byValue(Encoding);

/** The agent's load-time configuration (struct ds_config), read back from its frozen .rodata map. */
export function agentConfig(a: Agent): AgentConfig | null {
  // Another build's .rodata may lay the configuration out differently: only trust an exact size match.
  const size = sections[".rodata"].size;
  if (a.rodata === null || a.rodata.valueSize !== size) return null;
  const buf = new Uint8Array(size);
  const ok = withMapFd(a.rodata.id, (fd) => {
    lookup(fd, 0, buf, ".rodata");
    return true;
  });
  if (ok !== true) return null;
  const dv = new DataView(buf.buffer);
  const at = sections[".rodata"].vars.ds_cfg;
  const v = (name: keyof typeof ds_config.off): number => dv.getUint32(at + ds_config.off[name], true);
  const mode = v("mode");
  const transport = v("transport");
  const encoding = v("encoding");
  return {
    mode: MODE_NAMES[mode] ?? String(mode),
    slots: v("slots"),
    transport: TRANSPORT_NAMES[transport] ?? String(transport),
    encoding: ENCODING_NAMES[encoding] ?? String(encoding),
    guard: v("guard") === 1,
    injectClobber: v("inject_clobber") === 1,
    filters: (
      [
        ["filter_uid", "uid"],
        ["filter_cgroup", "cgroup"],
        ["filter_exe", "allow-exe"],
        ["filter_argv", "allow-argv"],
      ] as const
    )
      .filter(([k]) => v(k) === 1)
      .map(([, name]) => name),
  };
}

export interface Snapshot {
  /** performance.now() at the read, to turn deltas into rates. */
  atMs: number;
  total: CounterTotals;
  perCpu: CounterTotals[];
  runCnt: number;
  runTimeNs: number;
}

/** One read of the agent's counters; null when its maps are gone (the agent exited). */
export function snapshot(a: Agent, cpus: number): Snapshot | null {
  const c = withMapFd(a.counters.id, (fd) => readCounters(fd, cpus));
  if (c === null) return null;
  const p = a.prog === null ? null : withProgFd(a.prog.id, progDetail);
  return {
    atMs: performance.now(),
    total: c.total,
    perCpu: c.perCpu,
    runCnt: Number(p?.runCnt ?? 0n),
    runTimeNs: Number(p?.runTimeNs ?? 0n),
  };
}
