/**
 * `dual-slot run` (the default command): attach the selected events and stream their records.
 *
 * Every way a run ends goes through one path: detach, tear down, flush what
 * the reader will take within a bound, print the summary line, then exit with
 * a status that says how it went (see EXIT_STATUS).
 */

import { defineCommand, type ParsedArgs, parseArgs } from "citty";
import { MIN_DRAIN_MS, nextBacklogWait } from "../agent/drain-period.ts";
import { prepareHost } from "../agent/prepare.ts";
import { Session } from "../agent/session.ts";
import { agentArgs, sessionOptions } from "../cli/agent-args.ts";
import { checkArgv, optionalInt, secondsArg } from "../cli/args.ts";
import { availableEvents } from "../ebpf/availability.ts";
import { HostError, UsageError } from "../errors.ts";
import { realtimeNs } from "../ffi/libc.ts";
import { describeFilters, hasFilters, resolveExe, type TrustedExe } from "../filters/filters.ts";
import { fleetConfig, sinkArgs, startFleet } from "../fleet/args.ts";
import { sinkDroppedJson } from "../fleet/records.ts";
import type { FleetSink } from "../fleet/shipper.ts";
import { log, setVerbose, writeStartDirectly, writeStderr } from "../log.ts";
import { metricsArgs, parseListenAddress } from "../metrics/server.ts";
import { FileSink, FileWriter, fileOutputOptions, outputArgs, reopenOnHangup } from "../output/file.ts";
import { LossWarnings } from "../output/loss-warning.ts";
import { DEFAULT_OUTPUT_LIMIT, LineSink, PipeClosed } from "../output/sink.ts";
import { closedStdoutError, stdoutWasClosed } from "../output/stdout.ts";
import { TABLE_BANNER, TABLE_HEADER } from "../render/event.ts";
import { lostJson, lostRow } from "../render/lost.ts";
import { type ServedMetrics, serveMetrics } from "./metrics.ts";
import { beforeAttach, summaryLine } from "./summary.ts";
import { warmUpSteps } from "./warm-up-steps.ts";

export const EXIT_STATUS =
  "Exit status: 0 stopped cleanly, nothing lost; 1 error (host, libbpf, a drain that failed, stdout that cannot be written: ENOSPC, EIO...); 2 usage; 3 stopped cleanly but events were lost (kernel drops: lost>0; records that could not be decoded: malformed>0; or output dropped because stdout did not keep up: dropped_output>0). A reader that goes away (`| head`) is a clean stop. SIGINT and SIGTERM stop the agent; so does SIGHUP, except with --output, where it reopens the file (for logrotate).";

export const runArgs = {
  json: { type: "boolean", default: false, description: "NDJSON on stdout, one object per event" },
  duration: { type: "string", description: "stop after N seconds" },
  count: { type: "string", description: "stop after N events have been printed" },
  pid: { type: "string", description: "only events whose pid or ppid is N" },
  comm: { type: "string", description: "only events whose comm is NAME (exact, as the kernel truncates it: 15 bytes)" },
  "output-buffer": {
    type: "string",
    description:
      "output waiting for a slow reader before lines are dropped (counted as dropped_output): bytes, or with K/M/G (default 64M)",
  },
  ...outputArgs,
  ...sinkArgs,
  ...metricsArgs,
  ...agentArgs,
} as const;

/** A run that stopped cleanly, but not everything reached the reader: exit status 3. */
export class EventsLost extends HostError {
  override name = "EventsLost";
  override readonly exitCode: number = 3;
}

/** How long a signalled run waits for a stalled reader before dropping what is left. */
const SIGNAL_GRACE_MS = 500;
/** How long any other stop waits for a reader that makes no progress. */
const STALL_GRACE_MS = 1000;
/** How long a stop waits for the ClickHouse sink's last batches; the rest stays spooled. */
const FLEET_GRACE_MS = 5000;
const FLEET_SIGNAL_GRACE_MS = 2000;

const MIN_OUTPUT = 4096;
const MAX_OUTPUT = 4 * 1024 ** 3;

export function outputBufferArg(raw: unknown): number {
  if (raw === undefined || raw === "") return DEFAULT_OUTPUT_LIMIT;
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(String(raw).trim());
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m?.[2] ?? "").charAt(0).toUpperCase()];
  const n = m && unit !== undefined ? Number(m[1]) * unit : Number.NaN;
  if (!Number.isSafeInteger(n) || n < MIN_OUTPUT || n > MAX_OUTPUT)
    throw new UsageError(`--output-buffer expects a size from 4K to 4G (e.g. 64M), got '${String(raw)}'`);
  return n;
}

/**
 * run's flags, checked and parsed: everything that refuses a run before the
 * host is touched (`service install` checks its --args with it too).
 */
export function runOptions(args: ParsedArgs<typeof runArgs>) {
  const parsed = sessionOptions(args);
  const duration = secondsArg("duration", args.duration);
  const limit = optionalInt("count", args.count, 1, Number.MAX_SAFE_INTEGER);
  const pid = optionalInt("pid", args.pid, 0, 0x7fffffff);
  const comm = args.comm === undefined ? undefined : String(args.comm);
  if (comm !== undefined && (comm === "" || Buffer.byteLength(comm) > 15)) {
    throw new UsageError("--comm expects 1 to 15 bytes: the kernel keeps no more of a task's name");
  }
  const outputLimit = outputBufferArg(args["output-buffer"]);
  const fileOpts = fileOutputOptions(args);
  const metricsAddr = args.metrics === undefined ? undefined : parseListenAddress(String(args.metrics));
  const fleetCfg = fleetConfig(args);
  // The table takes the NDJSON lines: with --sink they are what the renderer writes.
  const json = args.json === true || fleetCfg !== undefined;
  return { parsed, duration, limit, pid, comm, outputLimit, fileOpts, metricsAddr, fleetCfg, json };
}

/** A run command line (flags as words, without "run") checked as `dual-slot run` would check it. */
export function checkRunWords(words: readonly string[]): void {
  runOptions(parseArgs(checkArgv(words, runArgs, "run"), runArgs));
}

export default defineCommand({
  meta: {
    name: "run",
    description: `Stream this host's security events (--events picks them), each built with the dual-slot per-CPU heap (slot 1: business data, slot 0: the record being serialized). Logs go to stderr, events to stdout. Lost events show up while they happen: a warning on stderr at most every 5 s, and an in-band record ({"event":"lost",...} or a LOST row). ${EXIT_STATUS}`,
  },
  args: runArgs,
  async run({ args }) {
    setVerbose(args.verbose === true);
    writeStartDirectly(true);
    const { parsed, duration, limit, pid, comm, outputLimit, fileOpts, metricsAddr, fleetCfg, json } = runOptions(args);

    let why: string | null = null;
    let failure: unknown = null;
    let signalledAt: number | null = null;
    let wake: () => void = () => {};
    const done = new Promise<void>((resolve) => (wake = resolve));
    const stop = (w: string) => {
      if (why !== null) return;
      why = w;
      wake();
    };
    const fail = (e: unknown) => {
      failure ??= e;
      stop("error");
    };
    // First of all: a signal during the start (systemd's stop or reload, a Ctrl-C, logrotate) would
    // otherwise take its default action, ending the process without a summary, for good (systemd does
    // not restart a unit that a SIGHUP ended). Handled once the start returns to the event loop, just
    // before the attach: the run stops there, through the same teardown and summary as always.
    const onSignal = (sig: string) => () => {
      signalledAt ??= performance.now();
      stop(sig);
    };
    // With --output, SIGHUP is a reload: reopenOnHangup and restatOnHangup, installed with the file and
    // the session, handle it (a reload during the start finds them installed by then); until then it is
    // only kept from killing the agent.
    const handlers: Partial<Record<NodeJS.Signals, () => void>> = {
      SIGINT: onSignal("SIGINT"),
      SIGTERM: onSignal("SIGTERM"),
      SIGHUP: fileOpts === undefined ? onSignal("SIGHUP") : () => {},
    };
    for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
    const unhookSignals = () => {
      for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
    };

    // Dropped once loaded (0.7 MB, and the loader's copy): nothing reads it after bpf_object__open_mem.
    let image: Uint8Array | null = beforeAttach(prepareHost);
    // After the checks that end a run: an unavailable default event is worth a line only to a run that starts.
    const explicit = args.events !== undefined && args.events !== "all";
    // An event asked for that this kernel cannot report is a refusal of the request, in one line (no summary).
    const opts = { ...parsed, events: availableEvents(parsed.events, explicit, (line) => log.info(line)) };
    // --output FILE: appended, rotated, reopened on SIGHUP; otherwise stdout.
    const sink = beforeAttach(() => {
      if (fileOpts !== undefined) return new FileSink(new FileWriter(fileOpts), outputLimit);
      if (stdoutWasClosed()) throw closedStdoutError();
      return new LineSink(1, outputLimit);
    });
    /** Events accepted into the sink (what --count counts). */
    let accepted = 0;
    const warnings = new LossWarnings({
      sharedBuffer: opts.transport !== "perf",
      outputLimit,
      output: fileOpts?.path ?? "stdout",
      emit: (line) => log.warn(line),
    });
    let droppedSeen = 0;
    let fleet: FleetSink | null = null;
    if (fleetCfg !== undefined) {
      // The in-band record of rows the sink dropped: on stdout, and in the table itself.
      // A spool that cannot be read ends as the other faults before attaching do, with the summary.
      fleet = beforeAttach(() =>
        startFleet(fleetCfg, (rows, batches) => {
          const line = sinkDroppedJson({ dropped: rows, batches, wallNs: realtimeNs() });
          sink.push(line, false);
          fleet?.pushString(line);
        }),
      );
    }

    // Flush after every drain: one write per batch, never waiting for the reader.
    const flush = () => {
      try {
        sink.flush();
      } catch (e) {
        if (e instanceof PipeClosed) stop("stdout closed");
        else fail(e);
      }
    };
    let backlogWait = MIN_DRAIN_MS;
    const afterDrain = (): number | undefined => {
      const queued = sink.queuedBytes;
      flush();
      fleet?.tick();
      if (why !== null) return undefined; // stopping: the summary tells the rest, not a warning about a slow reader
      warnings.dropped(sink.dropped - droppedSeen);
      droppedSeen = sink.dropped;
      warnings.tick();
      // An open ClickHouse batch is sealed at a tick: the idle drain period must not hold it past its age.
      const fleetDue = fleet === null ? undefined : Math.max(MIN_DRAIN_MS, fleet.msUntilDue());
      if (sink.idle) {
        backlogWait = MIN_DRAIN_MS;
        return fleetDue;
      }
      backlogWait = nextBacklogWait(backlogWait, sink.queuedBytes < queued, opts.intervalMs);
      return Math.min(backlogWait, fleetDue ?? Number.POSITIVE_INFINITY);
    };
    const onLost = (cpu: number, n: number) => {
      const r = { cpu, lost: n, wallNs: realtimeNs() };
      sink.push(json ? lostJson(r) : lostRow(r), false);
      fleet?.pushString(lostJson(r));
      warnings.lost(cpu, n);
    };
    // Records are rendered from their bytes (--pid/--comm applied there) and come back as lines in time order.
    // The warm-up calls this same function, with its own sink (warm-up-sink.ts), no fleet and no --count
    // stop: what it changes is data, never a branch taken (a path the warm-up never took made the JIT
    // throw away onLine's optimized code in the first storm).
    let lineSink = sink;
    let lineFleet = fleet;
    let cap = limit ?? Number.POSITIVE_INFINITY;
    const onLine = (buf: Buffer, start: number, end: number) => {
      if (accepted >= cap) return;
      lineFleet?.push(buf, start, end);
      if (lineSink.pushBytes(buf, start, end) && ++accepted >= cap) stop("count");
    };
    // The warm-up's parts go through onLine into the warm-up's own sink, with no fleet and no --count.
    const divert = (to: LineSink | FileSink, part: () => void) => {
      const real = accepted;
      lineSink = to;
      lineFleet = null;
      cap = Number.POSITIVE_INFINITY;
      try {
        part();
      } finally {
        lineSink = sink;
        lineFleet = fleet;
        cap = limit ?? Number.POSITIVE_INFINITY;
        accepted = real;
      }
    };
    const lines = {
      json,
      onLine,
      ...(pid !== undefined ? { pid } : {}),
      ...(comm !== undefined ? { comm } : {}),
    };
    let session: Session;
    try {
      session = beforeAttach(
        () => new Session(image!, { ...opts, onDrained: afterDrain, onLost, onError: fail, lines }, () => {}),
      );
      image = null;
    } catch (e) {
      unhookSignals();
      throw e;
    }
    const unhookReopen = sink instanceof FileSink ? reopenOnHangup(sink.writer) : () => {};
    const unhookExes =
      fileOpts !== undefined && (opts.filters?.exes.length ?? 0) > 0
        ? restatOnHangup(session, opts.filters!.exes)
        : () => {};
    let metrics: ServedMetrics | null = null;
    const onExit = () => {
      session.stop();
      sink.restore();
    };
    process.on("exit", onExit);

    let timer: ReturnType<typeof setTimeout> | null = null;
    // A signal that came during the load is handled here, before anything attaches: one turn of the
    // event loop delivers it (a 0 ms timer; 1 ms cost a millisecond of every start).
    await Bun.sleep(0);
    try {
      if (why === null) {
        sink.nonBlocking();
        session.attach();
        if (metricsAddr !== undefined) metrics = serveMetrics(metricsAddr, session, () => sink.dropped, fleet);
        if (!json) {
          sink.push(TABLE_BANNER, false);
          sink.push(TABLE_HEADER, false);
        }
        log.info(
          `attached ${opts.events.join(",")} in ${performance.now().toFixed(1)} ms ` +
            `(mode=${opts.mode} slots=${opts.slots} transport=${opts.transport} encoding=${opts.encoding}` +
            `${opts.guard ? " guard" : ""}${opts.injectClobber ? " inject-clobber" : ""}, ${session.cpus} CPUs)` +
            (hasFilters(opts.filters) ? `; kernel-side filters: ${describeFilters(opts.filters)}` : ""),
        );
        // The start's lines, the last this one, went straight to fd 2; a running agent's go through
        // Bun's stream, which buffers a stalled reader instead of holding the drain.
        writeStartDirectly(false);
        // Before the first drain: the JIT compiles the per-event path now, not during the first burst,
        // through the run's own onLine (compiled now too).
        await warmUpSteps({ session, sink, outputLimit, onLine, divert, stopping: () => why !== null });
        timer = duration !== undefined ? setTimeout(() => stop("duration"), duration * 1000) : null;
      }
    } catch (e) {
      fail(e);
    }

    await done;
    if (timer) clearTimeout(timer);
    metrics?.close();
    // Before the object closes: a reload (SIGHUP) during the stop's waits below would update its maps.
    unhookExes();
    try {
      session.stop(); // detaches first: whatever else failed, nothing stays attached
    } catch (e) {
      failure ??= e;
    }
    // The sink's last batch goes to the server (or the spool) within a bound; the rest waits in the spool.
    // First: its in-band records (rows dropped on the way out) still reach stdout.
    if (fleet !== null) await fleet.close(signalledAt !== null ? FLEET_SIGNAL_GRACE_MS : FLEET_GRACE_MS);
    await closeOutput(sink, flush, () => signalledAt);
    sink.abandon(); // what the reader did not take counts as dropped_output
    sink.restore();
    if (sink instanceof FileSink) sink.writer.close();
    unhookSignals();
    unhookReopen();
    process.off("exit", onExit);

    const k = session.kernelCountersAtStop;
    const c = session.counts;
    log.debug(`stopping: ${why}`);
    if (c.malformed > 0) log.warn(`malformed samples: ${c.malformed} (last: ${session.lastMalformed})`);
    const summary = summaryLine({
      counts: c,
      kernel: k,
      printed: sink.written,
      // With the lines a failed last drain left in the reorder window: never written either.
      droppedOutput: sink.dropped + session.heldAtStop,
      filtered: session.renderer?.filtered ?? 0,
      generalLines: session.renderer?.generalLines ?? 0,
      lostPerCpu: session.lostByCpu(),
      fleet,
      stop: why ?? "error",
    });
    writeStderr(`summary: ${summary}\n`);

    if (failure !== null) throw failure;
    const sinkDropped = fleet?.counts.dropped ?? 0;
    if (c.lost > 0 || sink.dropped > 0 || sinkDropped > 0 || c.malformed > 0) {
      const parts = [
        ...(c.lost > 0 ? [`${c.lost} lost before reaching the agent`] : []),
        ...(c.malformed > 0 ? [`${c.malformed} malformed (read, but not decodable: not printed)`] : []),
        ...(sink.dropped > 0 ? [`${sink.dropped} not written: more waited for the output than its buffer holds`] : []),
        // Why: the sink's warnings above said it (a full spool or queue, a spool it could not write, a
        // batch whose data the server refused, rows left at exit without a spool).
        ...(sinkDropped > 0 ? [`${sinkDropped} dropped by the ClickHouse sink (its warnings above say why)`] : []),
      ];
      throw new EventsLost(`stopped, but events were lost: ${parts.join(", ")}`);
    }
  },
});

/**
 * With --output, SIGHUP is a reload (logrotate, `systemctl reload`): it also
 * stat()s the --allow-exe paths again, so a trusted binary replaced by a
 * package upgrade (a new inode) is trusted again. A path that is gone keeps
 * its old entry, with a warning. Without --output, SIGHUP stops the agent and
 * a restart does the same.
 */
function restatOnHangup(session: Session, initial: readonly TrustedExe[]): () => void {
  let current = [...initial];
  const onHup = () => {
    const next = current.map((e) => {
      try {
        return resolveExe(e.path);
      } catch (err) {
        log.warn(`SIGHUP: --allow-exe ${e.path}: ${(err as Error).message}; keeping the old entry`);
        return e;
      }
    });
    try {
      session.object.replaceTrustedExes(current, next);
      current = next;
      log.debug(`SIGHUP: --allow-exe re-resolved (${next.length} paths)`);
    } catch (err) {
      log.warn(`SIGHUP: cannot update the trusted executables: ${(err as Error).message}`);
    }
  };
  process.on("SIGHUP", onHup);
  return () => process.off("SIGHUP", onHup);
}

/**
 * The last flush: waits for the reader while it makes progress, but never past
 * SIGNAL_GRACE_MS after a signal (an operator's SIGTERM must end the agent
 * promptly) nor STALL_GRACE_MS without progress. What is left is dropped by the caller.
 */
async function closeOutput(
  sink: LineSink | FileSink,
  flush: () => void,
  signalledAt: () => number | null,
): Promise<void> {
  let progressAt = performance.now();
  for (;;) {
    const before = sink.queuedBytes;
    flush();
    if (sink.idle) return;
    const now = performance.now();
    if (sink.queuedBytes < before) progressAt = now;
    const sig = signalledAt();
    if ((sig !== null && now - sig >= SIGNAL_GRACE_MS) || now - progressAt >= STALL_GRACE_MS) return;
    await Bun.sleep(10);
  }
}
