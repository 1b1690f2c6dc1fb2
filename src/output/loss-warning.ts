/**
 * Loss made visible while it happens: at most one warning line per period on
 * stderr, summing what was lost since the last one. The summary at exit still
 * has the totals; this is for the operator watching a run that lasts months.
 */

export interface LossWarningOptions {
  /** The ring buffer transport has one buffer for all CPUs; perf has one per CPU. */
  sharedBuffer: boolean;
  /** What the output keeps waiting (--output-buffer), in bytes, to say why lines were dropped. */
  outputLimit?: number;
  /** Where lines go: "stdout", or the --output file. */
  output?: string;
  emit: (line: string) => void;
  periodMs?: number;
  /** Milliseconds, monotonic; injectable for tests. */
  now?: () => number;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 10 ? `${Number(s.toFixed(1))}s` : `${Math.round(s)}s`;
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Number((bytes / 1024 / 1024).toFixed(1))} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

export class LossWarnings {
  private readonly byCpu = new Map<number, number>();
  private droppedOutput = 0;
  private readonly periodMs: number;
  private readonly now: () => number;
  /** Start of the window the next warning covers. */
  private since: number;
  /** When the last warning went out (-Infinity: none yet, so the first loss is told at once). */
  private lastWarn = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: LossWarningOptions) {
    this.periodMs = opts.periodMs ?? 5000;
    this.now = opts.now ?? (() => performance.now());
    this.since = this.now();
  }

  /** Events the kernel could not hand over on `cpu`. */
  lost(cpu: number, n: number): void {
    if (n > 0) this.byCpu.set(cpu, (this.byCpu.get(cpu) ?? 0) + n);
  }

  /** Output lines dropped because stdout did not keep up. */
  dropped(n: number): void {
    if (n > 0) this.droppedOutput += n;
  }

  /** Emits the pending warning if there is one and the period allows; returns the line or null. */
  tick(): string | null {
    if (this.byCpu.size === 0 && this.droppedOutput === 0) return null;
    const t = this.now();
    if (t - this.lastWarn < this.periodMs) return null;
    const line = this.line(t - this.since);
    this.byCpu.clear();
    this.droppedOutput = 0;
    this.lastWarn = t;
    this.since = t;
    this.opts.emit(line);
    return line;
  }

  private line(windowMs: number): string {
    const parts: string[] = [];
    const last = `in the last ${seconds(windowMs)}`;
    if (this.byCpu.size > 0) {
      const cpus = [...this.byCpu.entries()].sort((a, b) => a[0] - b[0]);
      const total = cpus.reduce((s, [, n]) => s + n, 0);
      if (this.opts.sharedBuffer) {
        const where = cpus.map(([c, n]) => `CPU ${c}: ${n}`).join(", ");
        parts.push(`lost ${total} events ${last}: the ring buffer shared by all CPUs was full (${where})`);
      } else {
        const [first, ...rest] = cpus.map(([c, n]) => `${n} on CPU ${c}`);
        const each = rest.length === 0 ? `${first}` : `${first}, ${rest.join(", ")}`;
        parts.push(`lost ${each.replace(/^(\d+)/, "$1 events")} ${last}`);
      }
    }
    if (this.droppedOutput > 0) {
      // A slow reader, or a bound smaller than one drain's lines: the same count, so name both.
      const bound = this.opts.outputLimit !== undefined ? ` (--output-buffer ${mib(this.opts.outputLimit)})` : "";
      parts.push(
        `dropped ${this.droppedOutput} output lines ${last}: more waited for ${this.opts.output ?? "stdout"} than the output buffer holds${bound}`,
      );
    }
    return parts.join("; ");
  }
}
