/**
 * How `dual-slot stats` shows an agent's per-CPU counters. Pure functions of
 * plain data, so the layout is unit-tested without a kernel.
 */

import type { CounterTotals } from "../ebpf/info.ts";
import { type Align, formatBytes, groupDigits, renderTable } from "../render/columns.ts";
import { escapeText } from "../render/escape.ts";

export interface AgentView {
  pid: number | null;
  comm: string | null;
  progId: number | null;
  attached: boolean;
  countersMapId: number;
  scratchMapId: number | null;
  /** g_percpu_data max_entries as the kernel reports it. */
  slots: number | null;
  valueSize: number | null;
  config: {
    mode: string;
    slots: number;
    transport: string;
    encoding: string;
    guard: boolean;
    injectClobber: boolean;
    /** Kernel-side filters in use ("uid", "cgroup", "allow-exe", "allow-argv"). */
    filters?: string[];
  } | null;
  why: string;
}

export interface StatsView {
  agent: AgentView;
  agentsFound: number;
  total: CounterTotals;
  perCpu: CounterTotals[];
  runCnt: number;
  runTimeNs: number;
  /** Events per second since the previous refresh (watch mode only). */
  eventsPerSec: number | null;
}

/** Guard detections only exist when the agent was loaded with --guard; unknown config: show the raw count. */
const guardOn = (v: StatsView): boolean => v.agent.config?.guard ?? true;

/** Slots the agent has: the scratch map's entries (the counters array always has three). */
const slotCount = (v: StatsView): number => Math.min(v.agent.slots ?? 3, v.total.slot_gets.length);

function counterJson(c: CounterTotals, v: StatsView) {
  return {
    events: c.events,
    output_fail: c.output_fail,
    clobbers: guardOn(v) ? c.clobbers : null,
    corrupt: c.corrupt,
    lookup_fail: c.lookup_fail,
    filtered_kernel: c.filtered_kernel,
    bytes: c.bytes,
    slot_gets: c.slot_gets.slice(0, slotCount(v)),
  };
}

export function statsJson(v: StatsView, now = new Date()): string {
  const a = v.agent;
  return JSON.stringify({
    time: now.toISOString(),
    agent: {
      pid: a.pid,
      comm: a.comm,
      prog_id: a.progId,
      attached: a.attached,
      counters_map_id: a.countersMapId,
      scratch_map_id: a.scratchMapId,
      slots: a.slots,
      value_size: a.valueSize,
      config:
        a.config === null
          ? null
          : {
              mode: a.config.mode,
              slots: a.config.slots,
              transport: a.config.transport,
              encoding: a.config.encoding,
              guard: a.config.guard,
              inject_clobber: a.config.injectClobber,
              filters: a.config.filters ?? [],
            },
      selected: a.why,
    },
    agents_found: v.agentsFound,
    total: counterJson(v.total, v),
    per_cpu: v.perCpu.map((c, cpu) => ({ cpu, ...counterJson(c, v) })),
    run_cnt: v.runCnt,
    run_time_ns: v.runTimeNs,
    events_per_sec: v.eventsPerSec,
  });
}

export function agentLine(a: AgentView): string {
  // A comm is whatever that process named itself.
  const who = a.pid === null ? "no process holds it" : `pid ${a.pid}${a.comm ? ` (${escapeText(a.comm, 16)})` : ""}`;
  const prog =
    a.progId === null
      ? "no ds_exec program"
      : `ds_exec prog ${a.progId} ${a.attached ? "attached" : "loaded, not attached"}`;
  return `agent: ${who}, ${prog}, ds_counters map ${a.countersMapId} [${a.why}]`;
}

export function configLine(a: AgentView): string {
  const heap =
    a.slots === null
      ? "g_percpu_data not found"
      : `g_percpu_data map ${a.scratchMapId}: ${a.slots} slot${a.slots === 1 ? "" : "s"} x ${a.valueSize ?? "?"} B per CPU`;
  if (a.config === null) return `config: unknown (agent from another build); ${heap}`;
  const c = a.config;
  return (
    `config: mode=${c.mode} slots=${c.slots} transport=${c.transport} encoding=${c.encoding} ` +
    `guard=${c.guard ? "on" : "off"}${c.injectClobber ? " inject-clobber" : ""}` +
    `${(c.filters ?? []).length > 0 ? ` kernel-filters=${c.filters!.join(",")}` : ""}; ${heap}`
  );
}

/** The human view: who, how configured, the per-CPU table and a totals row. */
export function statsTable(v: StatsView): string[] {
  const slots = slotCount(v);
  const guard = guardOn(v);
  const header = [
    "CPU",
    "EVENTS",
    "OUTPUT_FAIL",
    "CLOBBERS",
    "CORRUPT",
    "LOOKUP_FAIL",
    "FILTERED_KERNEL",
    ...Array.from({ length: slots }, (_, i) => `SLOT${i}_GETS`),
    "BYTES",
  ];
  const row = (label: string, c: CounterTotals) => [
    label,
    groupDigits(c.events),
    groupDigits(c.output_fail),
    guard ? groupDigits(c.clobbers) : "-",
    groupDigits(c.corrupt),
    groupDigits(c.lookup_fail),
    groupDigits(c.filtered_kernel),
    ...c.slot_gets.slice(0, slots).map(groupDigits),
    formatBytes(c.bytes),
  ];
  const rows = [...v.perCpu.map((c, i) => row(String(i), c)), row("all", v.total)];
  const align: Align[] = header.map((_, i) => (i === 0 ? "l" : "r"));
  const lines = [agentLine(v.agent), configLine(v.agent), "", ...renderTable(header, rows, align)];
  const notes: string[] = [];
  if (v.total.filtered_kernel > 0 || (v.agent.config?.filters ?? []).length > 0)
    notes.push("FILTERED_KERNEL: records the agent's --uid, --cgroup, --allow-exe, --allow-argv dropped in BPF");
  if (!guard) notes.push("CLOBBERS: guard off (load the agent with --guard to count slot-1 grabs)");
  if (v.runCnt > 0) {
    // The kernel only counts runs while BPF stats are enabled, so this may cover part of the agent's life.
    notes.push(
      `ds_exec: ${groupDigits(v.runCnt)} runs counted while kernel.bpf_stats_enabled was on, ${(v.runTimeNs / v.runCnt / 1000).toFixed(2)} us each`,
    );
  }
  if (v.eventsPerSec !== null) notes.push(`rate: ${v.eventsPerSec.toFixed(1)} events/s`);
  if (notes.length > 0) lines.push("", ...notes);
  return lines;
}
