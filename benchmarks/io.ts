/**
 * `bun run bench -- --only=io`: the network and file events' figures.
 *
 * 1. `dual-slot bench --workload syscall` with every event and with the
 *    default set: what an untraced syscall pays for the attached tracepoints.
 * 2. A connect storm and a file-create storm (workloads/iostorm.c), each over
 *    R rounds of a storm with no agent interleaved with the agent as users run
 *    it (`dual-slot --json`, the default event set, its stdout read and counted
 *    here). Each agent round runs the storm twice: the first (cold) warms the
 *    event type's render path, the second (warm) gives the rate, the agent's
 *    CPU per event and the BPF run time per event of the type's programs.
 *
 * Options (after `--`): --ops=N (per storm, 20000), --workers=P (2),
 * --rounds=R (3), --storms=connect,create (also rename, link, bind, dns,
 * and the events off by default, each alone: accept, unlink, rmdir; mount),
 * --syscall-rounds=N (5; 0 skips),
 * --settle-ms=MS (300, after the agent's warm-up), --out=FILE (benchmarks/io.json; "-" writes nothing),
 * --update (keep the file's other figures; --storms=none: no storm),
 * NAME@R in --storms paces both storms to R ops/s (results keyed NAME@R);
 * NAME:file runs the agent as the service does, `--output FILE` (on disk,
 * /var/tmp), read only between storms, so no reader competes with the storm
 * for the CPUs (results keyed NAME:file). Without it, stdout is a pipe this
 * process reads and counts while the storm runs.
 * Timings never decide a test's fate.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { rewriteReadmeFigures } from "../scripts/readme-figures.ts";
import { cpuNs, median, round, spread, startAgent, statusKiB, warmUp } from "./agent-process.ts";
import { enableBpfStats, type ProgStat, progIdsOf, progStats, statsDelta } from "./bpf-stats.ts";
import { EventCounter } from "./ndjson-count.ts";

const COMM = "iostorm";

interface StormKind {
  /** The record type each op produces. */
  event: string;
  /**
   * The programs each op runs, entry then exit. Not ds_emit: it is tail-called
   * from the exit program, and the kernel bills a tail call's run time to the
   * program that made it (ds_emit's own run_cnt stays 0).
   */
  programs: readonly string[];
  argv(ops: number, workers: number, dir: string): string[];
  /**
   * --events for the agent, when not the default set: an event off by default,
   * alone, so the op's other calls (the file an unlink removes is made first)
   * add no records of their own to its figures.
   */
  events?: string;
}

const common = (ops: number, workers: number) => ["--ops", String(ops), "--workers", String(workers)];
const STORMS: Record<string, StormKind> = {
  connect: {
    event: "connect",
    programs: ["ds_sockaddr_enter", "ds_connect_exit"],
    argv: (ops, workers) => ["connect", ...common(ops, workers), "127.0.0.1", "0"],
  },
  create: {
    event: "create_file",
    programs: ["ds_openat_enter", "ds_create_exit"],
    argv: (ops, workers, dir) => ["create", ...common(ops, workers), dir],
  },
  // Not in the default run: faster than the agent can follow on 2 vCPUs, so
  // their figures are the agent's limit rather than a host's everyday rate.
  rename: {
    event: "rename",
    programs: ["ds_names_enter", "ds_rename_exit"],
    argv: (ops, workers, dir) => ["rename", ...common(ops, workers), dir],
  },
  link: {
    event: "link",
    programs: ["ds_names_enter", "ds_link_exit"],
    argv: (ops, workers, dir) => ["link", ...common(ops, workers), dir],
  },
  bind: {
    event: "bind",
    programs: ["ds_sockaddr_enter", "ds_bind_exit"],
    argv: (ops, workers) => ["bind", ...common(ops, workers), "127.0.0.1"],
  },
  dns: {
    event: "dns",
    programs: ["ds_sendto_enter", "ds_dns_exit"],
    argv: (ops, workers) => ["dns", ...common(ops, workers), "127.0.0.1"],
  },
  // The events off by default, each alone; mount is in the default set.
  accept: {
    event: "accept",
    programs: ["ds_accept_exit"],
    argv: (ops, workers) => ["accept", ...common(ops, workers), "127.0.0.1"],
    events: "accept",
  },
  unlink: {
    event: "unlink",
    programs: ["ds_names_enter", "ds_unlink_exit"],
    argv: (ops, workers, dir) => ["unlink", ...common(ops, workers), dir],
    events: "unlink",
  },
  rmdir: {
    event: "rmdir",
    programs: ["ds_names_enter", "ds_unlink_exit"],
    argv: (ops, workers, dir) => ["rmdir", ...common(ops, workers), dir],
    events: "rmdir",
  },
  mount: {
    event: "mount",
    programs: ["ds_names_enter", "ds_mount_exit"],
    argv: (ops, workers, dir) => ["mount", ...common(ops, workers), dir],
  },
};

/** Where the agent's NDJSON goes: a pipe this process reads during the storm, or an --output file. */
type Sink = "pipe" | "file";

interface StormRuns {
  /** Absent (like ops, workers) in runs saved before they were recorded per storm. */
  date?: string;
  commit?: string;
  /** The STORMS key (absent in files from before NAME@RATE: the runs' own key). */
  storm?: string;
  /** ops/s, 0: unpaced. */
  rate?: number;
  /** Where the agent's NDJSON went: a pipe read while the storm ran, or an --output file (absent before it was recorded: a pipe). */
  sink?: Sink;
  ops?: number;
  workers?: number;
  baseline: number[];
  agent: AgentRound[];
}

/** benchmarks/io.json, as --update reads it back. */
interface Saved {
  date?: string;
  /** The whole run's, for its storms saved without their own. */
  ops?: number;
  workers?: number;
  runs?: Record<string, StormRuns>;
  syscall?: Record<string, unknown>;
}

interface StormResult {
  rate_per_s: number;
  failed: number;
}

interface AgentRound {
  rate: number;
  attachedMs: number;
  capturedCold: number;
  capturedWarm: number;
  lost: number;
  droppedOutput: number;
  /** Records the compiled renderer handed to the general (decode + JSON) path, over the agent's life. */
  generalLines?: number;
  cpuUsPerEventCold: number;
  cpuUsPerEvent: number;
  peakRssKiB: number;
  /** Per program, over the warm storm. */
  bpf: Record<string, ProgStat>;
}

const num = (args: ReadonlyMap<string, string | undefined>, k: string, dflt: number): number => {
  const v = Number(args.get(k) ?? dflt);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${k} wants a whole number, got ${args.get(k)}`);
  return v;
};

export async function ioBench(
  args: ReadonlyMap<string, string | undefined>,
  bin: string,
  tools: string,
): Promise<void> {
  const ops = num(args, "ops", 20000);
  const workers = num(args, "workers", 2);
  const rounds = num(args, "rounds", 3);
  const settleMs = num(args, "settle-ms", 300);
  /** The storm running now: its ops/s (0: as fast as the host goes). */
  let rate = 0;
  const syscallRounds = num(args, "syscall-rounds", 5);
  const out = args.get("out") ?? join(import.meta.dir, "io.json");
  const stormList = args.get("storms") ?? "connect,create";
  // Which code each figure is from, since --update keeps older ones beside it.
  const git = Bun.spawnSync(["git", "-C", import.meta.dir, "rev-parse", "--short", "HEAD"], { stdout: "pipe" });
  const commit = git.exitCode === 0 ? git.stdout.toString().trim() : "unknown";
  // NAME or NAME@RATE: the no-agent and agent storms both paced to RATE ops/s, results keyed NAME@RATE.
  const kinds = (stormList === "none" ? [] : stormList.split(",")).map((entry) => {
    const [stormRate = "", sink = "pipe"] = entry.split(":");
    if (sink !== "pipe" && sink !== "file")
      throw new Error(`--storms: ${entry}: the output is :file, or nothing for a pipe`);
    const [k = "", r = "0"] = stormRate.split("@");
    const s = STORMS[k];
    if (!s) throw new Error(`--storms: no storm ${k} (${Object.keys(STORMS).join(", ")})`);
    const paced = Number(r);
    if (!Number.isInteger(paced) || paced < 0) throw new Error(`--storms: ${entry}: the rate is ops/s, a whole number`);
    return { name: entry, storm: k, kind: s, paced, sink: sink as Sink };
  });

  // Root-only, so the unique names the create storm makes cannot collide with anyone's.
  const dir = mkdtempSync("/run/dual-slot-iobench-");
  chmodSync(dir, 0o700);
  // :file storms' output: on disk, as the service's /var/log/dual-slot is.
  const fileDir = mkdtempSync("/var/tmp/dual-slot-iobench-");
  chmodSync(fileDir, 0o700);

  async function storm(kind: StormKind): Promise<StormResult> {
    const paced = rate > 0 ? ["--rate", String(rate)] : [];
    const [command = "", ...rest] = kind.argv(ops, workers, dir);
    const p = Bun.spawn([join(tools, "iostorm"), command, ...paced, ...rest], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [text, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    if (code !== 0) throw new Error(`iostorm ${kind.event} exited ${code}: ${err.trim()}`);
    return JSON.parse(text) as StormResult;
  }

  /** Until the reader has seen `want` lines, or none arrived for a while (lost ones never will). */
  async function drained(counter: EventCounter, event: string, want: number, pump: () => void): Promise<void> {
    let last = -1;
    let stillSince = performance.now();
    const t0 = performance.now();
    pump();
    while (counter.count(event) < want && performance.now() - t0 < 10_000) {
      await Bun.sleep(50);
      pump();
      const n = counter.count(event);
      if (n !== last) [last, stillSince] = [n, performance.now()];
      else if (performance.now() - stillSince > 1000) return;
    }
  }

  /** The agent running now, if any: a stopped benchmark must not leave it attached. */
  let agentPid = 0;

  async function withAgent(kind: StormKind, sink: Sink): Promise<AgentRound> {
    const counter = new EventCounter(COMM);
    const file = join(fileDir, "events.ndjson");
    if (sink === "file") rmSync(file, { force: true });
    const events = kind.events !== undefined ? ["--events", kind.events] : [];
    const agent =
      sink === "file"
        ? await startAgent([bin, "--json", ...events, "--output", file])
        : await startAgent([bin, "--json", ...events], (c) => counter.push(c));
    agentPid = agent.pid;
    // With --output, what the file gained since the last look, counted between storms.
    let fd = -1;
    let at = 0;
    const chunk = new Uint8Array(1 << 20);
    const pump = () => {
      if (sink !== "file") return;
      if (fd < 0) fd = openSync(file, "r");
      for (let n = readSync(fd, chunk, 0, chunk.length, at); n > 0; n = readSync(fd, chunk, 0, chunk.length, at)) {
        at += n;
        counter.push(chunk.subarray(0, n));
      }
    };
    try {
      // The warm-up after the attached line (2-3 s on a slow host: a fixed 1.5 s let the storms run
      // inside it, and billed its CPU to them), the JIT compiling what it ran, then a moment more.
      await warmUp(agent.pid);
      await Bun.sleep(settleMs);
      const ids = progIdsOf(agent.pid);
      // A renamed or merged program would otherwise read as 0 ns: say so instead.
      const loaded = progStats(ids);
      const missing = kind.programs.filter((n) => !loaded.has(n));
      if (missing.length > 0)
        throw new Error(`storm ${kind.event}: the agent has no program ${missing.join(", ")} (renamed?)`);
      const c0 = cpuNs(agent.pid);
      await storm(kind);
      await drained(counter, kind.event, ops, pump);
      const capturedCold = counter.count(kind.event);
      const c1 = cpuNs(agent.pid);
      const s1 = progStats(ids);
      const warm = await storm(kind);
      const s2 = progStats(ids);
      await drained(counter, kind.event, 2 * ops, pump);
      const c2 = cpuNs(agent.pid);
      const capturedWarm = counter.count(kind.event) - capturedCold;
      const peakRssKiB = statusKiB(agent.pid, "VmHWM");
      const summary = await agent.stop();
      agentPid = 0;
      return {
        rate: warm.rate_per_s,
        attachedMs: agent.attachedMs,
        capturedCold,
        capturedWarm,
        lost: Number(summary.lost ?? -1),
        droppedOutput: Number(summary.dropped_output ?? -1),
        generalLines: Number(summary.general_lines ?? -1),
        cpuUsPerEventCold: (c1 - c0) / 1000 / Math.max(1, capturedCold),
        cpuUsPerEvent: (c2 - c1) / 1000 / Math.max(1, capturedWarm),
        peakRssKiB,
        bpf: statsDelta(s1, s2, kind.programs),
      };
    } catch (e) {
      await agent.stop();
      throw e;
    } finally {
      if (fd >= 0) closeSync(fd);
      if (sink === "file") rmSync(file, { force: true });
    }
  }

  // --update: keep what the file has and replace only what this run measures
  // (e.g. --storms=none for the syscall cost alone); its storms are summarized anew.
  const prev =
    args.has("update") && out !== "-" && existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Saved) : null;
  const runs: Record<string, StormRuns> = { ...prev?.runs };
  const storms: Record<string, unknown> = Object.fromEntries(
    // Summarized as this run summarizes its own (the sink first), so a kept row keeps its label.
    Object.entries(runs).map(([k, r]) => [
      k,
      {
        sink: r.sink ?? "pipe",
        ...summarize(
          STORMS[r.storm ?? k]!,
          r.ops ?? prev?.ops ?? ops,
          r.workers ?? prev?.workers ?? workers,
          r.baseline,
          r.agent,
        ),
      },
    ]),
  );
  const syscall: Record<string, unknown> = { ...prev?.syscall };
  // The first measurement's; `updated` says when --update last replaced a part.
  const date = prev?.date ?? new Date().toISOString();
  const updated = prev ? new Date().toISOString() : undefined;
  const host = { kernel: (await Bun.file("/proc/sys/kernel/osrelease").text()).trim(), arch: process.arch };
  // After every stage, so a run cut short (the shared lock, a deadline) keeps what it measured.
  const save = () => {
    if (out === "-") return;
    writeFileSync(
      out,
      `${JSON.stringify({ date, updated, host, ops, workers, rounds, storms, syscall, runs }, null, 2)}\n`,
    );
  };
  // First, before the stats go on, and so a run cut short still has it.
  for (const events of syscallRounds > 0 ? ["all", "default"] : []) {
    // A failure here is recorded, not fatal: the storms are measured either way.
    syscall[events] = await syscallCost(bin, events, syscallRounds).then(
      (c) => ({ date: new Date().toISOString(), commit, ...c }),
      (e: unknown) => ({ error: String(e) }),
    );
    save();
    console.log(`untraced syscall, events ${events}:`, JSON.stringify(syscall[events]));
  }
  const restoreStats = enableBpfStats();
  // A Ctrl-C must not leave the host's BPF stats on (they cost every program run).
  const onSignal = () => {
    if (agentPid > 0) process.kill(agentPid, "SIGINT");
    restoreStats();
    rmSync(dir, { recursive: true, force: true });
    rmSync(fileDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    for (const { name, storm: stormName, kind, paced, sink } of kinds) {
      rate = paced;
      process.stderr.write(`bench io: ${name} storm, ${ops} ops x ${workers} workers, ${rounds} rounds\n`);
      const baseline: number[] = [];
      const agentRounds: AgentRound[] = [];
      for (let r = 0; r < rounds; r++) {
        baseline.push((await storm(kind)).rate_per_s);
        agentRounds.push(await withAgent(kind, sink));
        const a = agentRounds.at(-1)!;
        process.stderr.write(
          `bench io: ${name} round ${r + 1}: no agent ${Math.round(baseline.at(-1)!)}/s, agent ${Math.round(a.rate)}/s, captured ${a.capturedWarm}/${ops}, lost ${a.lost}\n`,
        );
      }
      runs[name] = {
        date: new Date().toISOString(),
        commit,
        storm: stormName,
        rate,
        sink,
        ops,
        workers,
        baseline,
        agent: agentRounds,
      };
      storms[name] = { sink, ...summarize(kind, ops, workers, baseline, agentRounds) };
      save();
      console.log(`${name} storm:`);
      for (const [k, v] of Object.entries(storms[name] as object)) console.log(`  ${k}: ${JSON.stringify(v)}`);
    }
  } finally {
    restoreStats();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(dir, { recursive: true, force: true });
    rmSync(fileDir, { recursive: true, force: true });
  }

  save();
  if (out !== "-") {
    console.log(`\nwritten: ${out}`);
    if (out === join(import.meta.dir, "io.json")) rewriteReadmeFigures();
  }
}

function summarize(kind: StormKind, ops: number, workers: number, baseline: number[], rounds: AgentRound[]) {
  const rates = rounds.map((r) => r.rate);
  const base = median(baseline);
  const agent = median(rates);
  const paired = rounds.map((r, i) => 100 * (baseline[i]! / r.rate - 1));
  const cpu = rounds.map((r) => r.cpuUsPerEvent);
  // The programs the rounds measured: a kept run's (--update) may be from a build whose programs had other names.
  const names = rounds[0] !== undefined ? Object.keys(rounds[0].bpf) : kind.programs;
  // Per program, ns per run (any process's: openat runs host-wide) and runs per op (> 1: the host's own calls).
  const perProg = Object.fromEntries(
    names.map((n) => {
      const ns = rounds.map((r) => r.bpf[n]!.runTimeNs / Math.max(1, r.bpf[n]!.runCnt));
      const cnt = rounds.map((r) => r.bpf[n]!.runCnt / ops);
      return [
        n,
        {
          ns_per_run: round(median(ns)),
          ns_per_run_range: spread(ns).map((x) => round(x)),
          runs_per_op: round(median(cnt), 2),
        },
      ];
    }),
  );
  // Per op, not per captured line: a record the perf buffer had no room for ran the same programs.
  const bpfPerEvent = rounds.map((r) => names.reduce((s, n) => s + r.bpf[n]!.runTimeNs, 0) / ops);
  return {
    event: kind.event,
    ...(kind.events !== undefined ? { events: kind.events } : {}),
    ops,
    workers,
    baseline_rate_per_s: Math.round(base),
    baseline_rate_range: spread(baseline).map(Math.round),
    agent_rate_per_s: Math.round(agent),
    agent_rate_range: spread(rates).map(Math.round),
    storm_slowdown_pct: round(100 * (base / agent - 1), 1),
    storm_slowdown_paired_range_pct: spread(paired).map((x) => round(x, 1)),
    captured_warm: rounds.map((r) => `${r.capturedWarm}/${ops}`),
    captured_cold: rounds.map((r) => `${r.capturedCold}/${ops}`),
    lost: rounds.map((r) => r.lost),
    dropped_output: rounds.map((r) => r.droppedOutput),
    general_lines: rounds.map((r) => r.generalLines ?? null),
    agent_cpu_us_per_event: round(median(cpu), 2),
    agent_cpu_us_per_event_range: spread(cpu).map((x) => round(x, 2)),
    agent_cpu_us_per_event_cold: round(median(rounds.map((r) => r.cpuUsPerEventCold)), 2),
    bpf_ns_per_event: round(median(bpfPerEvent)),
    bpf_ns_per_event_range: spread(bpfPerEvent).map((x) => round(x)),
    bpf_programs: perProg,
    start_to_attached_ms: Math.round(median(rounds.map((r) => r.attachedMs))),
    peak_rss_mib: round(median(rounds.map((r) => r.peakRssKiB)) / 1024, 1),
  };
}

/** `dual-slot bench --workload syscall`: its own paired rounds of a getppid loop, bare and attached. */
async function syscallCost(bin: string, events: string, rounds: number): Promise<object> {
  const argv = [bin, "bench", "--workload", "syscall", "--rounds", String(rounds), "--json"];
  if (events !== "default") argv.push("--events", events);
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "inherit" });
  const text = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`${argv.join(" ")} failed`);
  return (JSON.parse(text.trim().split("\n").at(-1)!) as { syscall_cost: object }).syscall_cost;
}
