/** The bench table, and a progress line on stderr while it runs. */
import type { BenchRow } from "./measure.ts";

const COLS: Array<[string, (r: BenchRow) => string]> = [
  ["WORKLOAD", (r) => r.workload],
  ["TRANSPORT", (r) => r.transport],
  ["ENCODING", (r) => r.encoding],
  ["OFFERED/s", (r) => String(r.offered_per_s)],
  ["DELIVERED/s", (r) => String(r.delivered_per_s)],
  ["CAPTURED", (r) => `${r.captured}/${r.expected} (${r.captured_pct}%)`],
  ["LOST", (r) => String(r.lost)],
  ["B/EVENT", (r) => String(r.bytes_per_event)],
  ["AGENT µs/EV", (r) => r.agent_cpu_us_per_event.toFixed(2)],
  ["BPF ns/EV", (r) => String(r.bpf_ns_per_event)],
  ["SLOWDOWN", (r) => (r.slowdown_pct === null ? "-" : `${r.slowdown_pct}%`)],
];

export function benchTable(rows: BenchRow[]): string {
  const cells = rows.map((r) => COLS.map(([, f]) => f(r)));
  const widths = COLS.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i < 3 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  return [line(COLS.map(([h]) => h)), ...cells.map(line)].join("\n");
}

/** A one-line bar on a terminal; plain lines otherwise (CI logs). */
export class Progress {
  private done = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly total: number) {}

  step(label: string): void {
    this.done++;
    const width = 24;
    const fill = Math.round((width * this.done) / this.total);
    const bar = `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${this.done}/${this.total} ${label}`;
    process.stderr.write(this.tty ? `\r\x1b[2K${bar}` : `${bar}\n`);
  }

  end(): void {
    if (this.tty) process.stderr.write("\n");
  }
}
