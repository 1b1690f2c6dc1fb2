/**
 * One running agent: the loaded object, its reader, the drain timer, the
 * reorder window and the counts the summary line reports. The run command, the
 * lab and the benchmark all drive this same class.
 */

import { type CounterTotals, possibleCpus, readCounters } from "../ebpf/info.ts";
import { BpfObject, type LoadConfig } from "../ebpf/object.ts";
import { OutputFails } from "../ebpf/output-fails.ts";
import { withTracefs } from "../ebpf/tracefs.ts";
import { monotonicNs, realtimeNs } from "../ffi/libc.ts";
import { ByteBuf } from "../output/bytebuf.ts";
import { type Framed, framePerf, frameRingbuf, PERF_RECORD_MAX } from "../reader/framing.ts";
import { PerfReader } from "../reader/perf.ts";
import { RingReader } from "../reader/ring.ts";
import type { EventSource } from "../reader/source.ts";
import { perfRing, ringbufRing, type SyntheticRing } from "../reader/synthetic-ring.ts";
import { LineRenderer } from "../render/fast.ts";
import { warmUpRecords } from "../render/warm-up.ts";
import { type AgentEvent, checkRecord, decodeEvent, newSpans, u32At } from "../wire/decode.ts";
import { programsFor } from "../wire/events.ts";
import { ds_flags, ds_header } from "../wire/layout.gen.ts";
import { type EventName, Transport } from "../wire/names.ts";
import { IDLE_DRAIN_MS, MIN_DRAIN_MS, nextDrainPeriod } from "./drain-period.ts";
import { LineWindow } from "./line-window.ts";
import { Reorder } from "./reorder.ts";

export interface SessionOptions extends LoadConfig {
  pages: number;
  intervalMs: number;
  maxArgs: number;
  /** Sort perf events across CPUs by kernel time (lines: REORDER_MARGIN_NS; decoded events: one drain interval). */
  order: boolean;
  /**
   * Called after every drain, once its events have been handed out (e.g. to
   * flush output). It may return the longest the next drain may wait, in ms
   * (output queued for a reader); undefined leaves the period alone.
   */
  onDrained?: () => number | undefined;
  /**
   * Called during a drain, after its events, for each CPU that lost events
   * since the last drain (the kernel's output_fail, or perf's LOST records,
   * whichever says more). Setting it costs one counters read per drain.
   */
  onLost?: (cpu: number, n: number) => void;
  /**
   * A drain on the timer failed: the timer stops and this decides what
   * happens next (the run command stops the run). Without it the error is
   * rethrown from the timer.
   */
  onError?: (e: unknown) => void;
  /**
   * Lines instead of events: each record is rendered from its bytes as it is
   * read (render/fast.ts), and the lines are handed to onLine in time order;
   * the session's onEvent is not called.
   */
  lines?: LineOutput;
}

export interface LineOutput {
  json: boolean;
  /** --pid / --comm, applied to the raw record (counted in renderer.filtered). */
  pid?: number;
  comm?: string;
  /** One line, without its newline: buf[start, end), valid only during the call. */
  onLine: (buf: Buffer, start: number, end: number) => void;
}

export interface SessionCounts {
  events: number;
  malformed: number;
  lost: number;
  corrupt: number;
  bytes: number;
}

const H = ds_header.off;
/** Copies of the warm-up records per pass over a synthetic ring (about 800 records). */
const WARM_COPIES = 8;
/**
 * Discarded records after each warm-up record in the ring buffer's synthetic
 * ring: steps of the reader's loop that render nothing. The warm-up's records
 * alone took frameRingbuf's loop only to the JIT's second tier; its last one
 * was compiled in the second storm (37 ms on a compiler thread, 1-2 µs per
 * event of a 20,000-exec storm, more than the first storm's). With 8 it is
 * compiled during the warm-up, for about 1.3 million more steps (~10 ms).
 */
const RINGBUF_WARM_DISCARDED = 8;
/**
 * One-byte lines per warm-up record through the reorder window and onLine alone
 * (no rendering): release() and the sink's push reach their last tier on lines,
 * and the warm-up's records alone left that compile (6-8 ms each) to the first
 * or the third storm.
 */
const WARM_RELEASE_LINES = 2;
/**
 * The reorder window's bound: a record stamped this long before a drain
 * started was in its CPU's buffer when the drain read it (a program takes
 * microseconds from its stamp to its output), so lines older than that go out
 * in the drain that read them. Ordering holds for any stamp-to-output gap
 * below it (the drain period no longer matters: it was one interval, at least
 * 5 ms, before).
 */
const REORDER_MARGIN_NS = 10e6;
/**
 * Each CPU's buffer is read this much at a time, and the lines the turn
 * rendered are released before the next: a line is copied to the output while
 * it is still in the CPU's caches. Read whole, an exec storm's 100 ms drain
 * rendered 3 MB of lines before the first was passed on, and the copy of each
 * (the memmove into the sink's chunk) missed the caches: 9-11 % of the
 * agent's CPU in a storm.
 */
const ROUND_BYTES = 64 * 1024;
/**
 * A CPU not read to the end bounds a turn's release by the last stamp read
 * from it, less this: a record a softirq wrote while a task's program ran on
 * the same CPU is older than the one after it in the buffer, by microseconds.
 */
const NESTED_SLACK_NS = 1e6;

export class Session {
  readonly counts: SessionCounts = { events: 0, malformed: 0, lost: 0, corrupt: 0, bytes: 0 };
  /** Wall-clock time of the kernel's monotonic zero, to print event times. */
  readonly bootWallNs: bigint;
  readonly cpus: number;
  private readonly obj: BpfObject;
  private readonly reader: EventSource;
  /** The one record handler the readers call (the warm-up calls it too). */
  private readonly handle = (data: Uint8Array): void => this.sample(data);
  private readonly reorder: Reorder<AgentEvent> | null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Current drain period: --interval, shortened while buffers fill fast, longer while nothing comes. */
  private delay: number;
  /** The longest drain period: --interval, or IDLE_DRAIN_MS once a half-full buffer wakes us by itself. */
  private idleMs: number;
  /** SIGIO from the perf rings (a buffer half full): drain now, whatever the timer says. */
  private readonly onSigio = (): void => this.wake();
  private listening = false;
  /** The last drain's start, ms of the monotonic clock. */
  private lastDrainAt = 0;
  /** What onDrained asked the next wait not to exceed. */
  private waitCap = Number.POSITIVE_INFINITY;
  private stopped = false;
  /** Per CPU, the losses already handed to onLost. */
  private readonly lossSeen: number[] = [];
  lastMalformed = "";
  /** Events decoded, by type and CPU (for metrics). */
  readonly eventsByType = new Map<EventName, number[]>();
  /** How full the fullest buffer got between the last two drains, 0..1. */
  lastFill = 0;
  /** Lines the reorder window still held when the stop ended: none, unless its last drain failed. */
  heldAtStop = 0;
  /** The kernel's counters, read once at stop just before the maps go away. */
  kernelCountersAtStop: CounterTotals | null = null;
  /** With opts.lines: the renderer (its filtered count is the run's). */
  readonly renderer: LineRenderer | null = null;
  private readonly spans = newSpans();
  /** With opts.lines, perf, ordered: each CPU's lines waiting for the window. */
  private window = new LineWindow();
  /** The warm-up's synthetic rings (one, or per CPU for replay()), built at its first call, dropped by endWarmUp(). */
  private warmRing: { rings: SyntheticRing[]; records: number } | null = null;
  /** The warm-up's reorder window, the same for each of its calls, dropped by endWarmUp(). */
  private warmWindow: LineWindow | null = null;
  /** With opts.lines, unordered: the one line being rendered. */
  private readonly direct = new ByteBuf();
  /** Per CPU, the kernel time of the last record read from it. */
  private readonly lastKey: number[];
  /** This drain's bound for releasing lines: its start less REORDER_MARGIN_NS. */
  private cutoff = 0;
  /** consume()'s turns, with ordered lines: the lines older than every CPU's next record go out. */
  private readonly rounds = {
    bytes: ROUND_BYTES,
    after: (pending: readonly boolean[]): void => {
      let bound = this.cutoff;
      for (let cpu = 0; cpu < pending.length; cpu++) {
        if (pending[cpu] === true) bound = Math.min(bound, (this.lastKey[cpu] ?? 0) - NESTED_SLACK_NS);
      }
      this.window.release(bound, this.emit);
    },
  };
  private outputFails: OutputFails | null = null;
  /** Where lines go: opts.lines.onLine, or the warm-up's while it runs. */
  private emit: LineOutput["onLine"] = () => {};

  constructor(
    image: Uint8Array,
    readonly opts: SessionOptions,
    private readonly onEvent: (ev: AgentEvent) => void,
  ) {
    this.bootWallNs = realtimeNs() - monotonicNs();
    this.cpus = possibleCpus();
    this.lastKey = new Array<number>(this.cpus).fill(0);
    this.reorder = opts.transport === "perf" && opts.order ? new Reorder<AgentEvent>((e) => Number(e.ktimeNs)) : null;
    this.delay = opts.intervalMs;
    this.idleMs = opts.intervalMs;
    if (opts.lines !== undefined) {
      const l = opts.lines;
      this.emit = l.onLine;
      this.renderer = new LineRenderer({
        json: l.json,
        bootWallNs: this.bootWallNs,
        maxArgs: opts.maxArgs,
        ...(l.pid !== undefined ? { pid: l.pid } : {}),
        ...(l.comm !== undefined ? { comm: l.comm } : {}),
      });
    }
    this.obj = BpfObject.load(image, opts);
    try {
      // The CPU an event ran on is in its own header; the reader needs no say in it.
      const handle = this.handle;
      this.reader =
        opts.transport === "perf"
          ? new PerfReader(this.obj.mapFd("ds_events"), opts.pages, handle, this.cpus)
          : new RingReader(
              this.obj.mapFd("ds_ring"),
              handle,
              this.obj.rings ? { mapFd: this.obj.mapFd("ds_bell"), cpus: this.cpus } : undefined,
            );
    } catch (e) {
      this.obj.close();
      throw e;
    }
  }

  get object(): BpfObject {
    return this.obj;
  }

  /** The current drain period in ms: --interval, shorter while buffers fill fast, longer while nothing comes. */
  get drainPeriodMs(): number {
    return this.delay;
  }

  /** Attaches the programs; events flow from here on. */
  attach(): void {
    const programs = programsFor(this.opts.events, this.opts.failedExecs, (this.opts.irqSlots ?? 0) > 0);
    // In the order of src/wire/events.ts. A call that enters between its sys_enter and sys_exit
    // programs' attaches keeps what its entry took (a copy slot) until the thread's next call; attaching
    // the exits first instead coincided with PREEMPT_RT 6.1 guests stalling in two CI runs of four.
    const attach = () => {
      for (const p of programs) this.obj.attachProgram(p);
    };
    if (programs.some((p) => p.tracefs === true)) withTracefs(attach);
    else attach();
    // The listener goes first: SIGIO's default action would end the process.
    process.on("SIGIO", this.onSigio);
    this.listening = true;
    if (this.reader.signalWhenHalfFull()) this.idleMs = Math.max(IDLE_DRAIN_MS, this.opts.intervalMs);
    this.arm();
  }

  /**
   * Half a buffer's worth came since the last wake-up: drain now instead of at
   * the timer, but not sooner than MIN_DRAIN_MS after the last drain (small
   * buffers signal every few records under a storm).
   */
  private wake(): void {
    if (this.stopped || this.timer === null) return;
    clearTimeout(this.timer);
    this.delay = Math.min(this.delay, this.opts.intervalMs);
    this.arm(Math.max(0, this.lastDrainAt + MIN_DRAIN_MS - Number(monotonicNs()) / 1e6));
  }

  private arm(ms = Math.min(this.delay, this.waitCap)): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.drain();
      } catch (e) {
        // No re-arm: a drain that failed once would fail again, blind and attached.
        if (this.opts.onError === undefined) throw e;
        this.opts.onError(e);
        return;
      }
      if (!this.stopped) this.arm();
    }, ms);
  }

  private sample(data: Uint8Array): void {
    if (this.renderer !== null) {
      this.sampleLine(data, this.renderer);
      return;
    }
    const d = decodeEvent(data, { maxArgs: this.opts.maxArgs });
    if (!d.ok) {
      this.counts.malformed++;
      this.lastMalformed = d.reason;
      return;
    }
    const ev = d.event;
    this.counts.events++;
    let byCpu = this.eventsByType.get(ev.type);
    if (byCpu === undefined) {
      byCpu = new Array<number>(this.cpus).fill(0);
      this.eventsByType.set(ev.type, byCpu);
    }
    if (ev.cpu < byCpu.length) byCpu[ev.cpu]!++;
    this.counts.bytes += ev.size;
    if (ev.corrupt) this.counts.corrupt++;
    if (this.reorder) this.reorder.push(ev.cpu, ev);
    else this.onEvent(ev);
  }

  /**
   * The line path: the same checks and counts as decodeEvent's, from the
   * header, then the line rendered into its CPU's queue (perf, ordered) or
   * handed out at once.
   */
  private sampleLine(data: Uint8Array, renderer: LineRenderer): void {
    const spec = checkRecord(data, this.spans);
    if (typeof spec === "string") {
      this.counts.malformed++;
      this.lastMalformed = spec;
      return;
    }
    const cpu = u32At(data, H.cpu);
    // The window's key, as Reorder's: kernel time as a double (exact below 2^53 ns, ~104 days).
    let key = 0;
    if (this.reorder !== null) {
      key = u32At(data, H.ktime_ns + 4) * 4294967296 + u32At(data, H.ktime_ns);
      if (cpu < this.lastKey.length) this.lastKey[cpu] = key;
    }
    this.counts.events++;
    let byCpu = this.eventsByType.get(spec.name);
    if (byCpu === undefined) {
      byCpu = new Array<number>(this.cpus).fill(0);
      this.eventsByType.set(spec.name, byCpu);
    }
    if (cpu < byCpu.length) byCpu[cpu]!++;
    this.counts.bytes += this.spans.size;
    if ((u32At(data, spec.struct.off.flags!) & ds_flags.DS_F_CORRUPT) !== 0) this.counts.corrupt++;
    if (!renderer.wants(data, spec, this.spans)) return;
    if (this.reorder === null) {
      const out = this.direct;
      out.len = 0;
      if (renderer.renderWanted(data, spec, this.spans, out)) this.emit(out.buf, 0, out.len);
      return;
    }
    const out = this.window.out(cpu, renderer.room(this.spans));
    const start = out.len;
    if (!renderer.renderWanted(data, spec, this.spans, out)) {
      // The general path refused it (a record it cannot decode): its room goes back.
      this.window.unused();
      return;
    }
    this.window.push(key, start, out.len);
  }

  /**
   * Runs synthetic records through this session's own line path (the
   * transport's framing, the checks and counts, the renderer, the reorder
   * window), about `count` of them, handing the lines to `onLine` and calling
   * `afterPass` after each pass's lines (as a drain flushes), then puts every
   * count back. The JIT compiles what a burst will run, with the shapes and
   * values it will see, before the burst: otherwise the first storm pays for
   * tier-up and deoptimizations in CPU and in lost events.
   */
  warmUp(count: number, onLine: LineOutput["onLine"], afterPass: () => void = () => {}): void {
    const lines = this.opts.lines;
    const renderer = this.renderer;
    if (lines === undefined || renderer === null || this.stopped) return;
    const perf = this.opts.transport === "perf";
    if (this.warmRing === null) {
      const records = warmUpRecords({
        transport: Transport[this.opts.transport],
        events: this.opts.events,
        ...(lines.pid !== undefined ? { pid: lines.pid } : {}),
        ...(lines.comm !== undefined ? { comm: lines.comm } : {}),
      });
      // Enough records per pass for the framing loop to get hot as well.
      const many = Array.from({ length: WARM_COPIES }, () => records).flat();
      // Read as a drain reads its CPUs' buffers: each record in its own CPU's ring (0 or 1).
      const perCpu = () => [0, 1].map((c) => many.filter((r) => u32At(r, H.cpu) === c)).filter((rs) => rs.length > 0);
      const rings = !perf
        ? [ringbufRing(many, true, RINGBUF_WARM_DISCARDED)]
        : this.reader instanceof PerfReader && this.reorder !== null
          ? perCpu().map((rs) => perfRing(rs, true))
          : [perfRing(many, true)];
      this.warmRing = { rings, records: many.length };
    }
    const { rings, records } = this.warmRing;
    const ring = rings[0]!;
    const counts = { ...this.counts };
    const byType = new Map([...this.eventsByType].map(([k, v]): [EventName, number[]] => [k, [...v]]));
    const rendered = [renderer.filtered, renderer.fastLines, renderer.generalLines];
    const malformed = this.lastMalformed;
    const emit = this.emit;
    // A window of its own: the run's (lines a drain between two warm-up calls holds) is left alone.
    // One for every call: a new one per call left each call's grown segments to the GC (about 10 MiB).
    const window = this.window;
    this.warmWindow ??= new LineWindow();
    this.window = this.warmWindow;
    this.emit = onLine;
    // Every synthetic line goes out by the end of its pass.
    const cutoff = this.cutoff;
    this.cutoff = Number.POSITIVE_INFINITY;
    try {
      const framed: Framed = { tail: 0n, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };
      const scratch = new Uint8Array(PERF_RECORD_MAX);
      const reader = this.reader;
      for (let n = 0; n < count; n += records) {
        if (perf && this.reorder !== null && reader instanceof PerfReader) reader.replay(rings, this.rounds);
        else if (perf) framePerf(ring.data, ring.head, ring.tail, this.handle, scratch, framed);
        else frameRingbuf(ring.data, ring.head, ring.tail, this.handle, scratch, framed);
        afterPass();
      }
      if (this.reorder !== null) {
        const pending = new Array<boolean>(this.cpus).fill(false);
        // Keys past 2^32, alternating CPUs, as a storm's: the same types and branches as real lines.
        for (let i = 0; i < WARM_RELEASE_LINES * count; i++) {
          const out = this.window.out(i & 1, 1);
          const start = out.len;
          out.buf[out.len++] = 0x78;
          this.window.push(5e12 + i, start, out.len);
        }
        this.rounds.after(pending);
        afterPass();
      }
    } finally {
      this.cutoff = cutoff;
      this.emit = emit;
      this.window = window;
      Object.assign(this.counts, counts);
      this.eventsByType.clear();
      for (const [k, v] of byType) this.eventsByType.set(k, v);
      [renderer.filtered, renderer.fastLines, renderer.generalLines] = rendered as [number, number, number];
      // The runs it kept of synthetic records, and their streaks: the real drains between chunks start clean.
      renderer.memo.reset();
      this.lastMalformed = malformed;
    }
  }

  /** The warm-up is over: its synthetic ring can go, and its window's spare segments go to the run's. */
  endWarmUp(): void {
    this.warmRing = null;
    if (this.warmWindow !== null) this.window.adoptSpare(this.warmWindow);
    this.warmWindow = null;
  }

  /** Reads everything waiting; with ordering, releases what is older than the last drain. */
  drain(final = false): void {
    if (this.stopped) return;
    const now = monotonicNs();
    this.lastDrainAt = Number(now) / 1e6;
    this.window.nextDrain();
    const lines = this.opts.lines;
    const inRounds = this.reorder !== null && lines !== undefined;
    this.cutoff = final ? Number.POSITIVE_INFINITY : Number(now) - REORDER_MARGIN_NS;
    const fill = inRounds ? this.reader.consume(this.rounds) : this.reader.consume();
    this.lastFill = fill;
    this.delay = nextDrainPeriod(this.delay, fill, this.opts.intervalMs, this.idleMs);
    if (!inRounds && this.reorder) {
      for (const ev of final ? this.reorder.flush() : this.reorder.release(Number(now))) this.onEvent(ev);
    }
    if (this.opts.onLost) this.reportLoss(this.opts.onLost);
    this.waitCap = this.opts.onDrained?.() ?? Number.POSITIVE_INFINITY;
  }

  /** Hands out, per CPU, what was lost since the last drain. */
  private reportLoss(onLost: (cpu: number, n: number) => void): void {
    this.outputFails ??= new OutputFails(this.obj.mapFd("ds_counters"), this.cpus);
    const fails = this.outputFails;
    fails.read();
    const perf = this.reader.lostByCpu();
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      // Both count the same drops; perf's LOST record may arrive drains later than the counter moves.
      const seen = Math.max(fails.at(cpu), perf[cpu] ?? 0);
      const n = seen - (this.lossSeen[cpu] ?? 0);
      if (n > 0) {
        this.lossSeen[cpu] = seen;
        onLost(cpu, n);
      }
    }
  }

  /** Times the reader could not frame a buffer (counted in lost() as well). */
  get unframed(): number {
    return this.reader.badRecords();
  }

  kernelCounters(): CounterTotals {
    return readCounters(this.obj.mapFd("ds_counters"), this.cpus).total;
  }

  /**
   * Events lost between the programs and us. The kernel's own count of failed
   * outputs is authoritative: perf reports a full buffer with a LOST record only
   * once space frees up again, which may be after we stop reading.
   */
  lost(k: CounterTotals = this.kernelCounters()): number {
    // perf's LOST records count the same drops as output_fail; unframeable records are a loss of their own.
    return Math.max(this.reader.lost(), k.output_fail) + this.reader.badRecords();
  }

  /**
   * Per CPU, what was lost: the kernel's failed outputs or perf's LOST records,
   * whichever says more (the ring buffer has only the first), as of the last
   * drain for a run that reports loss (onLost): the map may be closed by now.
   */
  lostByCpu(): number[] {
    const perf = this.reader.lostByCpu();
    return Array.from({ length: this.cpus }, (_, cpu) => Math.max(this.lossSeen[cpu] ?? 0, perf[cpu] ?? 0));
  }

  /** Final drain, then teardown: links, reader, object. Safe to call twice. */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    try {
      // The stop is this instant: records end here, not as each link goes (seconds for the default set,
      // a grace period per syscall tracepoint). Drained between links all the same: what programs
      // already under way emit, and everything if the kernel refused the switch.
      this.obj.silence();
      this.obj.detach(() => this.drain());
      this.drain(true);
    } finally {
      // Even when a drain failed (a run ending in error): the kernel's own count of what it could not
      // output, read while the maps are still there, or the summary would say lost=0.
      try {
        this.kernelCountersAtStop = this.kernelCounters();
        this.counts.lost = this.lost(this.kernelCountersAtStop);
      } catch {
        // The maps cannot be read: the summary says kernel counters unknown (kernelCountersAtStop null).
      }
      // A drain that failed leaves its lines in the window: never written, and said so in the summary.
      this.heldAtStop = this.window.held();
      this.stopped = true;
      this.reader.close(); // no SIGIO after this: the perf fds are gone
      if (this.listening) process.off("SIGIO", this.onSigio);
      this.listening = false;
      this.obj.close();
    }
  }
}
