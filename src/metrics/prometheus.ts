/**
 * `run --metrics ADDR`: the agent's counters in Prometheus' text exposition
 * format (version 0.0.4), rendered from a snapshot the run loop fills. Pure:
 * no I/O here, so the format is tested on its own (promtool check metrics).
 */

/** Everything one scrape shows. Counters are totals since the agent started. */
export interface MetricsSnapshot {
  /** Events decoded, by event type (src/wire/names.ts spelling, e.g. "exec") and CPU. */
  events: readonly { type: string; cpu: number; count: number }[];
  /** The kernel's count of failed outputs, by CPU (Session.lostByCpu()). */
  lostByCpu: readonly number[];
  /** Samples that failed the decoder's bounds checks. */
  malformed: number;
  /**
   * Times the reader could not frame the buffer (a size or type the kernel would never write): the
   * rest of that buffer is skipped to the producer, so one may stand for several records.
   */
  unframed: number;
  /** Records the kernel-side filters (--uid, --cgroup, --allow-exe, --allow-argv) dropped in BPF. */
  filteredKernel: number;
  /** Lines the output sink dropped (a bounded sink under a slow reader). */
  droppedOutput: number;
  /** With --sink: the ClickHouse sink's rows sent, waiting and dropped. */
  sink?: { sentRows: number; waitingRows: number; dropped: number; spoolBytes: number; failures: number };
  /** Fill of each CPU's buffer at the last drain, 0..1 (one entry for a shared ring buffer: cpu "all"). */
  bufferFill: readonly { cpu: number | "all"; ratio: number }[];
  /** The current drain period (it shortens under bursts). */
  drainPeriodSeconds: number;
  /** progStats() of each loaded program; run time stays 0 unless BPF stats are enabled. */
  programs: readonly { name: string; runTimeNs: bigint; runCount: bigint }[];
  residentMemoryBytes: number;
  cpuSeconds: number;
  build: { version: string; commit: string };
}

/** RSS and CPU time of this process, for the snapshot's process_* fields. */
export function processMetrics(): { residentMemoryBytes: number; cpuSeconds: number } {
  const cpu = process.cpuUsage();
  return { residentMemoryBytes: process.memoryUsage.rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values: backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

function formatValue(v: number | bigint): string {
  if (typeof v === "bigint") return v.toString();
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

type Labels = Record<string, string | number>;

class Family {
  readonly lines: string[];
  constructor(
    private readonly name: string,
    type: "counter" | "gauge",
    help: string,
  ) {
    this.lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  }
  sample(value: number | bigint, labels: Labels = {}): this {
    const entries = Object.entries(labels);
    const l =
      entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`).join(",")}}`;
    this.lines.push(`${this.name}${l} ${formatValue(value)}`);
    return this;
  }
}

/** The exposition text for one scrape. */
export function renderMetrics(s: MetricsSnapshot): string {
  const families: Family[] = [];
  const family = (name: string, type: "counter" | "gauge", help: string): Family => {
    const f = new Family(name, type, help);
    families.push(f);
    return f;
  };

  const events = family("dual_slot_events_total", "counter", "Events decoded, by event type and CPU.");
  for (const e of s.events) events.sample(e.count, { type: e.type, cpu: e.cpu });
  const lost = family("dual_slot_lost_total", "counter", "Events the kernel failed to output (buffer full), by CPU.");
  s.lostByCpu.forEach((n, cpu) => {
    lost.sample(n, { cpu });
  });
  family("dual_slot_malformed_total", "counter", "Samples that failed the decoder's bounds checks.").sample(
    s.malformed,
  );
  family(
    "dual_slot_unframed_total",
    "counter",
    "Times the reader could not frame a buffer and skipped the rest of it (one may stand for several records).",
  ).sample(s.unframed);
  family(
    "dual_slot_filtered_kernel_total",
    "counter",
    "Records dropped in the kernel by --uid, --cgroup, --allow-exe or --allow-argv, before they were built.",
  ).sample(s.filteredKernel);
  family("dual_slot_dropped_output_total", "counter", "Output lines dropped because the reader was too slow.").sample(
    s.droppedOutput,
  );
  if (s.sink !== undefined) {
    family("dual_slot_sink_sent_total", "counter", "Rows the ClickHouse server accepted (--sink).").sample(
      s.sink.sentRows,
    );
    family(
      "dual_slot_sink_dropped_total",
      "counter",
      "Rows the ClickHouse sink dropped, oldest first, past the spool's (or memory queue's) cap.",
    ).sample(s.sink.dropped);
    family("dual_slot_sink_waiting_rows", "gauge", "Rows spooled or queued, not yet accepted by the server.").sample(
      s.sink.waitingRows,
    );
    family("dual_slot_sink_spool_bytes", "gauge", "Bytes in the spool (or the memory queue without --spool).").sample(
      s.sink.spoolBytes,
    );
    family("dual_slot_sink_failures_total", "counter", "Inserts that failed (each is retried).").sample(
      s.sink.failures,
    );
  }
  const fill = family("dual_slot_buffer_fill_ratio", "gauge", "Fill of each buffer at the last drain (0 to 1).");
  for (const b of s.bufferFill) fill.sample(b.ratio, { cpu: b.cpu });
  family("dual_slot_drain_period_seconds", "gauge", "Current period between drains of the buffers.").sample(
    s.drainPeriodSeconds,
  );
  const runTime = family(
    "dual_slot_bpf_run_time_seconds_total",
    "counter",
    "Time spent in each BPF program (counted only while the kernel's BPF stats are enabled).",
  );
  const runCount = family(
    "dual_slot_bpf_run_count_total",
    "counter",
    "Runs of each BPF program (counted only while the kernel's BPF stats are enabled).",
  );
  for (const p of s.programs) {
    runTime.sample(Number(p.runTimeNs) / 1e9, { program: p.name });
    runCount.sample(p.runCount, { program: p.name });
  }
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.").sample(s.residentMemoryBytes);
  family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.").sample(
    s.cpuSeconds,
  );
  family("dual_slot_build_info", "gauge", "The agent's version and git commit; always 1.").sample(1, {
    version: s.build.version,
    commit: s.build.commit,
  });
  return `${families.flatMap((f) => f.lines).join("\n")}\n`;
}
