/**
 * The slot lab: each experiment loads the object in one configuration,
 * triggers execs of its own, and counts what happened to those events: the
 * one-slot collision, the third nesting level and the guard, made observable.
 */
import { underSession } from "../agent/measured.ts";
import type { SessionOptions } from "../agent/session.ts";
import { execNoop } from "../agent/trigger.ts";
import { type ExecEvent, isExecEvent } from "../wire/decode.ts";

export interface Experiment {
  name: string;
  /** What the user should expect, and why. */
  expect: string;
  opts: Pick<SessionOptions, "mode" | "slots" | "guard" | "injectClobber" | "irqSlots">;
  /** An interrupt-context experiment: it runs --irq-execs execs (an interrupt lands inside an exec program rarely). */
  irq?: true;
}

/** The interrupt-context experiments' execs by default: a few hundred collisions' worth. */
export const IRQ_EXECS = 10_000;

export const EXPERIMENTS: readonly Experiment[] = [
  {
    name: "dual",
    expect: "0 corrupt: business data in slot 1, the event in slot 0",
    opts: { mode: "dual", slots: 2, guard: false, injectClobber: false },
  },
  {
    name: "single",
    expect: "all corrupt: the serializer writes its header over the data it is reading",
    opts: { mode: "single", slots: 1, guard: false, injectClobber: false },
  },
  {
    name: "nest3 --slots 2",
    expect: "all corrupt: the third level has no slot of its own and takes slot 1",
    opts: { mode: "nest3", slots: 2, guard: false, injectClobber: false },
  },
  {
    name: "nest3 --slots 3",
    expect: "0 corrupt: a third slot for the third level",
    opts: { mode: "nest3", slots: 3, guard: false, injectClobber: false },
  },
  {
    name: "dual --guard",
    expect: "0 detected: the guard's cost without a culprit",
    opts: { mode: "dual", slots: 2, guard: true, injectClobber: false },
  },
  {
    name: "dual --guard --inject-clobber",
    expect: "every event detected: a refresh_tid()-like helper grabs held slot 1",
    opts: { mode: "dual", slots: 2, guard: true, injectClobber: true },
  },
  {
    name: "irq --guard",
    expect:
      "some detected: the timer tick (hardirq) or a softirq lands inside an exec program and takes the slot it holds (Elkeid's two slots, shared by every context)",
    opts: { mode: "dual", slots: 2, guard: true, injectClobber: false, irqSlots: 1 },
    irq: true,
  },
  {
    name: "irq --guard, a pair per context",
    expect: "0 detected: process, softirq and hardirq context each have their own two slots (6)",
    opts: { mode: "dual", slots: 6, guard: true, injectClobber: false, irqSlots: 2 },
    irq: true,
  },
];

export interface LabRow {
  experiment: string;
  mode: string;
  slots: number;
  guard: boolean;
  inject_clobber: boolean;
  execs: number;
  events: number;
  corrupt: number;
  clobbers_detected: number;
  lost: number;
  bpf_ns_per_event: number | null;
  expect: string;
}

export async function runExperiment(
  image: Uint8Array,
  base: SessionOptions,
  exp: Experiment,
  execs: number,
): Promise<LabRow> {
  const seen: ExecEvent[] = [];
  let pids = new Set<number>();
  const m = await underSession(
    image,
    // Only sched_process_exec: the heap experiments need no failed execs, and the lab loads six objects.
    { ...base, ...exp.opts, events: ["exec"], failedExecs: false },
    "ds_exec",
    (ev) => {
      // The lab loads only the exec program.
      if (isExecEvent(ev)) seen.push(ev);
    },
    async () => {
      pids = await execNoop(execs);
    },
  );
  const ours = seen.filter((e) => pids.has(e.pid));
  return {
    experiment: exp.name,
    mode: exp.opts.mode,
    slots: exp.opts.slots,
    guard: exp.opts.guard,
    inject_clobber: exp.opts.injectClobber,
    execs,
    events: ours.length,
    corrupt: ours.filter((e) => e.corrupt).length,
    clobbers_detected: ours.filter((e) => e.clobbered).length,
    lost: m.lost,
    bpf_ns_per_event: m.bpfNs > 0 ? Math.round(m.bpfNs) : null,
    expect: exp.expect,
  };
}

export function labTable(rows: LabRow[]): string {
  const head = ["EXPERIMENT", "SLOTS", "EVENTS", "CORRUPT", "CLOBBERS", "LOST", "BPF ns/ev", "EXPECTED"];
  const body = rows.map((r) => [
    r.experiment,
    String(r.slots),
    `${r.events}/${r.execs}`,
    String(r.corrupt),
    String(r.clobbers_detected),
    String(r.lost),
    r.bpf_ns_per_event === null ? "-" : String(r.bpf_ns_per_event),
    r.expect,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ");
  return [line(head), ...body.map(line)].join("\n");
}
