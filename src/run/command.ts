/**
 * `dual-slot run` (the default command): attach and stream exec events.
 */
import { defineCommand } from "citty";
import { prepareHost } from "../agent/prepare.ts";
import { Session } from "../agent/session.ts";
import { agentArgs, sessionOptions } from "../cli/agent-args.ts";
import { optionalInt, secondsArg } from "../cli/args.ts";
import { UsageError } from "../errors.ts";
import { log, setVerbose } from "../log.ts";
import { LineSink, PipeClosed } from "../output/sink.ts";
import { jsonLine, TABLE_BANNER, TABLE_HEADER, tableRow } from "../render/event.ts";
import type { ExecEvent } from "../wire/decode.ts";

export const runArgs = {
  json: { type: "boolean", default: false, description: "NDJSON on stdout, one object per event" },
  duration: { type: "string", description: "stop after N seconds" },
  count: { type: "string", description: "stop after N events have been printed" },
  pid: { type: "string", description: "only events whose pid or ppid is N" },
  comm: { type: "string", description: "only events whose comm is NAME (exact, as the kernel truncates it: 15 bytes)" },
  ...agentArgs,
} as const;

export default defineCommand({
  meta: {
    name: "run",
    description:
      "Stream exec events built with the dual-slot per-CPU heap (slot 1: business data, slot 0: the event being serialized). Logs go to stderr, events to stdout.",
  },
  args: runArgs,
  async run({ args }) {
    setVerbose(args.verbose === true);
    const opts = sessionOptions(args);
    const duration = secondsArg("duration", args.duration);
    const limit = optionalInt("count", args.count, 1, Number.MAX_SAFE_INTEGER);
    const pid = optionalInt("pid", args.pid, 0, 0x7fffffff);
    const comm = args.comm === undefined ? undefined : String(args.comm);
    if (comm !== undefined && (comm === "" || Buffer.byteLength(comm) > 15)) {
      throw new UsageError("--comm expects 1 to 15 bytes: the kernel keeps no more of a task's name");
    }

    const image = prepareHost();
    const sink = new LineSink();
    let printed = 0;
    let filtered = 0;
    let stop: (why: string) => void = () => {};
    const done = new Promise<string>((resolve) => (stop = resolve));

    // Flush after every drain: one write per batch. A closed reader ends the run cleanly.
    const flush = () => {
      try {
        sink.flush();
      } catch (e) {
        if (e instanceof PipeClosed) stop("stdout closed");
        else throw e;
      }
    };
    const session = new Session(image, { ...opts, onDrained: flush }, (ev: ExecEvent) => {
      if (limit !== undefined && printed >= limit) return;
      if ((pid !== undefined && ev.pid !== pid && ev.ppid !== pid) || (comm !== undefined && ev.comm !== comm)) {
        filtered++;
        return;
      }
      sink.push(args.json ? jsonLine(ev, session.bootWallNs) : tableRow(ev));
      printed++;
      if (limit !== undefined && printed >= limit) stop("count");
    });

    const onSignal = (sig: string) => () => stop(sig);
    const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM"), SIGHUP: onSignal("SIGHUP") };
    for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
    process.on("exit", () => session.stop());

    session.attach();
    if (!args.json) {
      sink.push(TABLE_BANNER);
      sink.push(TABLE_HEADER);
    }
    log.info(
      `attached ds_exec to raw_tracepoint/sched_process_exec in ${performance.now().toFixed(1)} ms ` +
        `(mode=${opts.mode} slots=${opts.slots} transport=${opts.transport} encoding=${opts.encoding}` +
        `${opts.guard ? " guard" : ""}${opts.injectClobber ? " inject-clobber" : ""}, ${session.cpus} CPUs)`,
    );
    session.drain();
    const timer = duration !== undefined ? setTimeout(() => stop("duration"), duration * 1000) : null;

    const why = await done;
    if (timer) clearTimeout(timer);
    session.stop();
    try {
      sink.flush();
    } catch {
      // The reader is gone; the summary still goes to stderr.
    }
    const k = session.kernelCountersAtStop;
    const c = session.counts;
    log.debug(`stopping: ${why}`);
    if (c.malformed > 0) log.warn(`malformed samples: ${c.malformed} (last: ${session.lastMalformed})`);
    process.stderr.write(
      `summary: events=${c.events} lost=${c.lost} malformed=${c.malformed} corrupt=${c.corrupt} clobbers=${k?.clobbers ?? 0} ` +
        `kernel_events=${k?.events ?? 0} output_fail=${k?.output_fail ?? 0} printed=${printed} filtered=${filtered} ` +
        `bytes=${c.bytes} lost_per_cpu=[${session.lostByCpu().join(",")}] stop=${why}\n`,
    );
    for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
  },
});
