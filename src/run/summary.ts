/**
 * The `summary:` line every run ends with, on stderr: the run's counts in
 * logfmt, in their documented order; all zero for a run that failed before
 * it attached.
 */
import type { SessionCounts } from "../agent/session.ts";
import type { CounterTotals } from "../ebpf/info.ts";
import { UsageError } from "../errors.ts";
import type { FleetSink } from "../fleet/shipper.ts";
import { writeStderr } from "../log.ts";
import { logfmt } from "../output/logfmt.ts";

export interface SummaryParts {
  counts: SessionCounts;
  kernel: CounterTotals | null;
  printed: number;
  droppedOutput: number;
  filtered: number;
  generalLines: number;
  lostPerCpu: number[];
  fleet: FleetSink | null;
  stop: string;
}

/** The `summary:` line's fields, in their documented order. */
export function summaryLine(p: SummaryParts): string {
  const c = p.counts;
  const k = p.kernel;
  return logfmt([
    ["events", c.events],
    ["lost", c.lost],
    ["malformed", c.malformed],
    ["corrupt", c.corrupt],
    ["clobbers", k?.clobbers ?? 0],
    ["kernel_events", k?.events ?? 0],
    ["output_fail", k?.output_fail ?? 0],
    ["printed", p.printed],
    ["dropped_output", p.droppedOutput],
    ["filtered", p.filtered],
    ["filtered_kernel", k?.filtered_kernel ?? 0],
    // Records the compiled renderer handed to the general decoder: a cost worth seeing when it is not ~0.
    ["general_lines", p.generalLines],
    ["bytes", c.bytes],
    ["lost_per_cpu", `[${p.lostPerCpu.join(",")}]`],
    ...fleetSummary(p.fleet),
    ["stop", p.stop],
  ]);
}

/**
 * A run that failed before anything was attached (no privilege, no BTF, no
 * libbpf, an output it refuses, a load libbpf or the verifier rejected) ends
 * like every other: the summary line, all zero, `stop=error`, then the
 * error's own line.
 */
export function beforeAttach<T>(step: () => T): T {
  try {
    return step();
  } catch (e) {
    // Bad input (a --spool it refuses, say) is one line, as every usage error is.
    if (e instanceof UsageError) throw e;
    const counts: SessionCounts = { events: 0, malformed: 0, lost: 0, corrupt: 0, bytes: 0 };
    const none = { counts, kernel: null, printed: 0, droppedOutput: 0, filtered: 0, generalLines: 0 };
    writeStderr(`summary: ${summaryLine({ ...none, lostPerCpu: [], fleet: null, stop: "error" })}\n`);
    throw e;
  }
}

/** The sink's counts for the summary line (none without --sink). */
function fleetSummary(fleet: FleetSink | null): Array<[string, string | number]> {
  if (fleet === null) return [];
  const c = fleet.counters();
  return [
    ["sink_sent", c.sentRows],
    ["sink_waiting", c.waitingRows],
    ["sink_dropped", c.dropped],
  ];
}
