/**
 * `dual-slot bench`: measures this host by itself. Every transport and
 * encoding on the exec storm, against a storm with no agent in the same run,
 * then the flood to find each transport's own limit.
 */

import { closeSync, constants, ftruncateSync, openSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { defineCommand } from "citty";
import { prepareHost } from "../agent/prepare.ts";
import { agentArgs, ENCODINGS, sessionOptions, TRANSPORTS } from "../cli/agent-args.ts";
import { choiceArg, intArg } from "../cli/args.ts";
import { availableEvents } from "../ebpf/availability.ts";
import { possibleCpus } from "../ebpf/info.ts";
import { UsageError } from "../errors.ts";
import { log, setVerbose } from "../log.ts";
import { writeStdout } from "../output/stdout.ts";
import {
  type BenchRow,
  baselineStorm,
  combineRounds,
  execBench,
  floodBench,
  type SyscallCost,
  syscallCost,
} from "./measure.ts";
import { benchTable, Progress } from "./report.ts";
import { REALISTIC_ARGV, stormTarget } from "./workloads.ts";

const { mode: _m, slots: _s, guard: _g, "inject-clobber": _i, transport: _t, encoding: _e, ...shared } = agentArgs;

function list<T extends string>(name: string, raw: unknown, all: readonly T[]): T[] {
  const s = String(raw);
  return s === "all" ? [...all] : s.split(",").map((x) => choiceArg(name, x.trim(), all));
}

/** --out FILE, created if missing (truncated only when the results are written); never through a symlink (this runs as root). */
function openOut(path: string): number {
  try {
    // Not truncated yet: a benchmark that fails leaves the previous results as they were.
    return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new UsageError(`--out ${path}: ${code === "ELOOP" ? "a symlink" : code}`);
  }
}

export default defineCommand({
  meta: {
    name: "bench",
    description:
      "Measure this host: an exec storm (fork+exec of an embedded static no-op) with no agent and under each transport and encoding, and a syscall flood through the same business + encode path to find each transport's limit. Prints offered and delivered rates, captured %, lost, bytes and agent CPU per event, BPF ns per event (bpf_prog_info with BPF stats on) and the storm's slowdown.",
  },
  args: {
    workload: {
      type: "string",
      default: "all",
      description:
        "exec, flood, syscall (what an untraced syscall costs with the event set attached: getppid in a loop with no agent, with the floor (an empty program on the same syscall tracepoints) and with the agent) or all",
    },
    "syscall-calls": { type: "string", default: "2000000", description: "getppid calls per syscall round" },
    execs: { type: "string", default: "20000", description: "execs per storm" },
    rounds: {
      type: "string",
      default: "1",
      description: "exec storm rounds; each row reports totals and medians over them",
    },
    workers: { type: "string", default: "2", description: "storm worker processes" },
    transports: { type: "string", default: "all", description: "comma list of perf, ringbuf, ringbuf-output (or all)" },
    encodings: { type: "string", default: "all", description: "comma list of compact, fixed (or all)" },
    "flood-rates": {
      type: "string",
      default: "5000,10000,20000,50000,100000,200000,0",
      description: "flood rates in calls/s to try (0: as fast as possible)",
    },
    "flood-seconds": { type: "string", default: "1", description: "how long each flood rate runs" },
    json: { type: "boolean", default: false, description: "print the results as JSON instead of a table" },
    out: { type: "string", description: "also write the results as JSON to this file" },
    ...shared,
  },
  async run({ args }) {
    setVerbose(args.verbose === true);
    const workload = choiceArg("workload", args.workload, ["exec", "flood", "syscall", "all"] as const);
    const syscallCalls = intArg("syscall-calls", args["syscall-calls"], 1000, 1_000_000_000);
    const execs = intArg("execs", args.execs, 1, 10_000_000);
    const workers = intArg("workers", args.workers, 1, 64);
    const rounds = intArg("rounds", args.rounds, 1, 100);
    const transports = list("transports", args.transports, TRANSPORTS);
    const encodings = list("encodings", args.encodings, ENCODINGS);
    const rates = String(args["flood-rates"])
      .split(",")
      .map((r) => intArg("flood-rates", r.trim(), 0, 100_000_000));
    const floodSeconds = intArg("flood-seconds", args["flood-seconds"], 1, 600);
    if (args.out === "") throw new UsageError("--out needs a file name");
    // Opened now: a path that cannot be written fails in a moment, not after the benchmark.
    const outFd = args.out === undefined ? null : openOut(String(args.out));
    const parsed = sessionOptions(args, transports);
    const image = prepareHost();
    // As `run` does: a default event this kernel cannot report (load_module
    // without CONFIG_MODULES) is dropped with a line, not a failed attach.
    const explicit = args.events !== undefined && args.events !== "all";
    const base = { ...parsed, events: availableEvents(parsed.events, explicit, (line) => log.info(line)) };

    const doExec = workload === "exec" || workload === "all";
    const doFlood = workload === "flood" || workload === "all";
    const doSyscall = workload === "syscall" || workload === "all";
    const combos = transports.flatMap((t) => encodings.map((e) => ({ t, e })));
    const progress = new Progress(
      (doExec ? rounds * (combos.length + 1) + 1 : 0) +
        (doFlood ? transports.length * rates.length : 0) +
        (doSyscall ? Math.max(rounds, 5) : 0),
    );
    const rows: BenchRow[] = [];
    let syscall: SyscallCost | null = null;
    const baselines: number[] = [];
    const target = stormTarget();
    try {
      if (doExec) {
        // Unrecorded: the JIT compiles the per-event path on first use, which
        // would otherwise be billed to whichever row runs first.
        await execBench(
          image,
          { ...base, transport: "perf", encoding: "compact" },
          target,
          Math.min(execs, 2000),
          workers,
          REALISTIC_ARGV,
          1,
        );
        progress.step("warm-up");
        // Rounds interleave a storm with no agent and every combination, in a
        // rotating order, so drift on a busy host spreads over all of them.
        const byCombo = new Map<string, BenchRow[]>();
        for (let r = 0; r < rounds; r++) {
          const baseline = await baselineStorm(target, execs, workers, REALISTIC_ARGV);
          baselines.push(baseline);
          progress.step(`round ${r + 1}: exec storm, no agent`);
          for (let i = 0; i < combos.length; i++) {
            const { t, e } = combos[(i + r) % combos.length]!;
            const row = await execBench(
              image,
              { ...base, transport: t, encoding: e },
              target,
              execs,
              workers,
              REALISTIC_ARGV,
              baseline,
            );
            byCombo.set(`${t}/${e}`, [...(byCombo.get(`${t}/${e}`) ?? []), row]);
            progress.step(`round ${r + 1}: exec storm, ${t}/${e}`);
          }
        }
        for (const { t, e } of combos) rows.push(combineRounds(byCombo.get(`${t}/${e}`)!));
      }
      if (doSyscall) {
        syscall = await syscallCost(image, base, syscallCalls, Math.max(rounds, 5), (l) => progress.step(l));
      }
      if (doFlood) {
        for (const t of transports) {
          for (const rate of rates) {
            const count = rate === 0 ? 1_000_000 * floodSeconds : rate * floodSeconds;
            rows.push(await floodBench(image, { ...base, transport: t, encoding: "compact" }, count, rate));
            progress.step(`flood ${rate === 0 ? "max" : rate}/s, ${t}`);
          }
        }
      }
    } finally {
      target.close();
      progress.end();
    }
    const result = {
      host: { kernel: release(), cpus: possibleCpus(), arch: process.arch },
      execs,
      workers,
      rounds,
      argv_bytes: REALISTIC_ARGV.join(" ").length,
      baseline_rates_per_s: baselines.map(Math.round),
      interval_ms: base.intervalMs,
      pages: base.pages,
      ring_size: base.ringSize,
      rows,
      syscall_cost: syscall,
    };
    if (outFd !== null) {
      ftruncateSync(outFd, 0);
      writeFileSync(outFd, `${JSON.stringify(result, null, 2)}\n`);
      closeSync(outFd);
    }
    const baselineLine =
      baselines.length > 0 ? `baseline storm (no agent): ${result.baseline_rates_per_s.join(", ")} execs/s\n` : "";
    const syscallLine =
      syscall === null
        ? ""
        : `untraced syscall (getppid): ${syscall.bare_ns} ns bare, ${syscall.attached_ns} ns with ${syscall.events} attached: +${syscall.overhead_ns} ns (rounds: ${syscall.overhead_min_ns} to ${syscall.overhead_max_ns}); the floor (an empty program on the same ${syscall.tracepoints} syscall tracepoints): +${syscall.floor_overhead_ns} ns (${syscall.floor_overhead_min_ns} to ${syscall.floor_overhead_max_ns}); the set over the floor: ${syscall.over_floor_ns >= 0 ? "+" : ""}${syscall.over_floor_ns} ns (${syscall.over_floor_min_ns} to ${syscall.over_floor_max_ns})\n`;
    await writeStdout(
      args.json
        ? `${JSON.stringify(result)}\n`
        : `${rows.length > 0 ? `${benchTable(rows)}\n` : ""}${baselineLine}${syscallLine}`,
    );
  },
});
