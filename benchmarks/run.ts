/**
 * `bun run bench`: the figures the README's performance table comes from.
 *
 * 1. The agent as users run it (a separate process, NDJSON out, in the
 *    environment its service unit gives it: SERVICE_ENVIRONMENT) on an exec
 *    storm (and, with --compare-env=NAME=VALUE, the same agent started with
 *    that environment too; with --compare-cli, without the service's), against
 *    the same storm with no agent, interleaved in one run:
 *    captured/expected, lost, agent CPU µs per event (all its threads, from
 *    /proc schedstat), storm slowdown, start-to-attached, peak RSS.
 * 2. `dual-slot bench`: transports x encodings on the storm, and the flood.
 * 3. benchmarks/startup.ts, when present: start-up (default set, first start of a boot, exec
 *    alone, host libbpf).
 *
 * `--only=io` runs benchmarks/io.ts instead (connect and file-create storms,
 * the untraced-syscall cost), results in benchmarks/io.json.
 *
 * Results go to benchmarks/results.json. Timings never decide a test's fate.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rewriteReadmeFigures } from "../scripts/readme-figures.ts";
import { SERVICE_ENVIRONMENT, WITHOUT_SERVICE_ENVIRONMENT } from "../src/service/unit.ts";
import { cpuNs, median, round, spread, startAgent, statusKiB, warmUp } from "./agent-process.ts";
import { execStorm } from "./exec-storm.ts";
import { parseFlags } from "./flags.ts";
import { ioBench } from "./io.ts";

const root = join(import.meta.dir, "..");
const arch = process.arch === "arm64" ? "arm64" : "x64";
const TOOLS = join(root, "out/workloads", arch);
const args = parseFlags(process.argv.slice(2));
/** --only=fleet: the ClickHouse sink's figures alone (benchmarks/fleet.ts takes the same flags). */
if (args.get("only") === "fleet") {
  const fleet = Bun.spawn(["bun", join(import.meta.dir, "fleet.ts"), ...process.argv.slice(2)], {
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await fleet.exited);
}
/** --bin=PATH: another build of the agent (with --only=agent, to compare two builds on this host). */
const BIN = args.get("bin") ?? join(root, "dual-slot");
const EXECS = Number(args.get("execs") ?? 20000);
const WORKERS = Number(args.get("workers") ?? 2);
const ROUNDS = Number(args.get("rounds") ?? 3);
/** --only=agent: the agent on the storm alone (no `dual-slot bench`, no start-up comparison), nothing written. */
const ONLY_AGENT = args.get("only") === "agent";
/** Idle CPU is measured over this window, after the agent has settled (its warm-up done). */
const IDLE_MS = Number(args.get("idle-ms") ?? 2000);
const SETTLE_MS = Number(args.get("settle-ms") ?? 1500);

if (!existsSync(BIN)) throw new Error("./dual-slot is missing: run `bun run build` first");
if (process.geteuid?.() !== 0) throw new Error("the benchmark loads BPF programs: run it as root");

if (args.get("only") === "io") {
  await ioBench(args, BIN, TOOLS);
  process.exit(0);
}

const execs = execStorm(TOOLS, "bench", "dsb", EXECS, WORKERS);
const { comm } = execs;
const storm = execs.run;

interface AgentRound {
  rate: number;
  attachedMs: number;
  captured: number;
  lost: number;
  /** The first storm after start-up: includes the JIT compiling the per-event path. */
  coldCpuUsPerEvent: number;
  /** A second storm on the same, now warm, agent: the steady state of a long-running agent. */
  cpuUsPerEvent: number;
  /** Peak RSS over start-up and both storms. */
  rssKiB: number;
  /** RSS once attached and settled (warm-up done, idle). */
  attachRssKiB: number;
  /** From attached to the warm-up's end (see warmUp): wall time and the agent's CPU, once per start. */
  warmUpMs: number;
  warmUpCpuMs: number;
  /** Agent CPU while no event of ours arrives, ms per second (the drain timer, the host's other execs), from the warm-up's end. */
  idleCpuMsPerS: number;
  /** The same after both storms and a pause: a long-running agent between bursts. */
  steadyIdleCpuMsPerS: number;
  /** Records rendered by the general decoder instead of the compiled path (summary's general_lines). */
  generalLines: number;
}

/** Agent CPU in ms per second over IDLE_MS, after `settleMs` for what came before to finish. */
async function idleCpu(pid: number, settleMs = SETTLE_MS): Promise<number> {
  await Bun.sleep(settleMs);
  const t0 = cpuNs(pid);
  await Bun.sleep(IDLE_MS);
  return (cpuNs(pid) - t0) / 1e6 / (IDLE_MS / 1000);
}

async function withAgent(config: Config): Promise<AgentRound> {
  const p = await startAgent([config.bin ?? BIN, ...config.args, "--comm", comm], undefined, config.env);
  const attachedMs = p.attachedMs;
  // The warm-up after the attached line, and the JIT threads compiling what it ran (0.9-1.2 s of CPU).
  const warm = await warmUp(p.pid);
  const idleCpuMsPerS = await idleCpu(p.pid, 0);
  const attachRssKiB = statusKiB(p.pid, "VmRSS");
  const c0 = cpuNs(p.pid);
  await storm();
  await Bun.sleep(250); // the last drains
  const c1 = cpuNs(p.pid);
  const rate = await storm();
  await Bun.sleep(250);
  const c2 = cpuNs(p.pid);
  const rssKiB = statusKiB(p.pid, "VmHWM");
  const steadyIdleCpuMsPerS = await idleCpu(p.pid);
  const s = await p.stop();
  const captured = Number(s.printed ?? 0) / 2;
  return {
    rate,
    attachedMs,
    captured,
    lost: Number(s.lost ?? -1),
    coldCpuUsPerEvent: (c1 - c0) / 1000 / EXECS,
    cpuUsPerEvent: (c2 - c1) / 1000 / EXECS,
    rssKiB,
    attachRssKiB,
    warmUpMs: warm.ms,
    warmUpCpuMs: warm.cpuMs,
    idleCpuMsPerS,
    steadyIdleCpuMsPerS,
    generalLines: Number(s.general_lines ?? -1),
  };
}

/**
 * The agent's configurations, each started afresh in every round (alternating
 * the order): the output formats and transports the per-event target covers,
 * all with the --comm filter on, and with --compare-env=NAME=VALUE the NDJSON
 * one again under that environment (an allocator or runtime setting to decide
 * on, e.g. MIMALLOC_PURGE_DELAY=-1). --configs=ndjson,table,ringbuf picks them
 * (default: all three; --only=agent: ndjson).
 */
interface Config {
  label: string;
  args: string[];
  /** Added to the benchmark's own environment; undefined: removed from it (the summary shows it as -NAME). */
  env: Readonly<Record<string, string | undefined>>;
  /** Another build of the agent (--compare-bin), instead of BIN. */
  bin?: string;
}
const KNOWN: Record<string, Config> = {
  ndjson: { label: "NDJSON, perf buffers (the defaults)", args: ["--json"], env: SERVICE_ENVIRONMENT },
  table: { label: "table, perf buffers", args: [], env: SERVICE_ENVIRONMENT },
  ringbuf: { label: "NDJSON, ring buffer", args: ["--json", "--transport", "ringbuf"], env: SERVICE_ENVIRONMENT },
};
const CONFIGS: Record<string, Config> = {};
for (const name of (args.get("configs") ?? (ONLY_AGENT ? "ndjson" : "ndjson,table,ringbuf")).split(",")) {
  const c = KNOWN[name];
  if (c === undefined) throw new Error(`--configs: ${name}? (${Object.keys(KNOWN).join(", ")})`);
  CONFIGS[name] = c;
}
/** --compare-bin=PATH[,PATH...]: other builds (e.g. earlier commits') in each chosen configuration, interleaved. */
const chosen = Object.entries(CONFIGS);
for (const compareBin of args.get("compare-bin")?.split(",") ?? []) {
  if (!existsSync(compareBin)) throw new Error(`--compare-bin=${compareBin}: no such file`);
  for (const [name, c] of chosen)
    CONFIGS[`${name}@${compareBin}`] = { ...c, label: `${c.label}, ${compareBin}`, bin: compareBin };
}
/** --compare-cli: each chosen configuration again as `sudo ./dual-slot` starts it (no service environment). */
if (args.has("compare-cli")) {
  for (const [name, c] of chosen)
    CONFIGS[`${name}-cli`] = {
      ...c,
      label: `${c.label}, without the service's environment`,
      env: WITHOUT_SERVICE_ENVIRONMENT,
    };
}
const compareEnv = args.get("compare-env");
if (compareEnv !== undefined) {
  const eq = compareEnv.indexOf("=");
  if (eq <= 0) throw new Error(`--compare-env=${compareEnv}: want NAME=VALUE`);
  CONFIGS[compareEnv] = {
    label: `NDJSON, perf buffers, with ${compareEnv}`,
    args: ["--json"],
    env: { ...SERVICE_ENVIRONMENT, [compareEnv.slice(0, eq)]: compareEnv.slice(eq + 1) },
  };
}
const baseline: number[] = [];
const byConfig = Object.fromEntries(Object.keys(CONFIGS).map((c) => [c, [] as AgentRound[]]));
try {
  process.stderr.write(
    `bench: exec storm ${EXECS} execs x ${WORKERS} workers, ${ROUNDS} rounds, agent and no agent interleaved\n`,
  );
  for (let r = 0; r < ROUNDS; r++) {
    baseline.push(await storm());
    // Alternate which configuration goes first, so neither always follows the no-agent storm.
    const names = Object.keys(CONFIGS);
    if (r % 2 === 1) names.reverse();
    for (const c of names) byConfig[c]!.push(await withAgent(CONFIGS[c]!));
    const rates = Object.entries(byConfig).map(([c, rs]) => `${c} ${Math.round(rs.at(-1)!.rate)}/s`);
    process.stderr.write(
      `bench: round ${r + 1}: no agent ${Math.round(baseline.at(-1)!)}/s, agent: ${rates.join(", ")}\n`,
    );
  }
} finally {
  execs.remove();
}

const base = median(baseline);
function summary(rounds: AgentRound[], config: Config) {
  const agentRate = median(rounds.map((r) => r.rate));
  // Paired: each round's agent storm against the no-agent storm of the same round.
  const paired = rounds.map((r, i) => 100 * (baseline[i]! / r.rate - 1));
  return {
    label: config.label,
    args: [...config.args, "--comm", "NAME"].join(" "),
    env:
      Object.entries(config.env)
        .map(([k, v]) => (v === undefined ? `-${k}` : `${k}=${v}`))
        .join(" ") || "(none)",
    execs: EXECS,
    workers: WORKERS,
    rounds: ROUNDS,
    baseline_rate_per_s: Math.round(base),
    agent_rate_per_s: Math.round(agentRate),
    storm_slowdown_pct: Math.round(1000 * (base / agentRate - 1)) / 10,
    storm_slowdown_paired_range_pct: spread(paired).map((x) => round(x, 1)),
    captured_per_storm: rounds.map((r) => `${r.captured}/${EXECS}`),
    lost: rounds.map((r) => r.lost),
    agent_cpu_us_per_event: round(median(rounds.map((r) => r.cpuUsPerEvent)), 2),
    agent_cpu_us_per_event_range: spread(rounds.map((r) => r.cpuUsPerEvent)).map((x) => round(x, 2)),
    agent_cpu_us_per_event_cold: round(median(rounds.map((r) => r.coldCpuUsPerEvent)), 2),
    start_to_attached_ms: Math.round(median(rounds.map((r) => r.attachedMs))),
    peak_rss_mib: Math.round(median(rounds.map((r) => r.rssKiB)) / 102.4) / 10,
    attached_rss_mib: Math.round(median(rounds.map((r) => r.attachRssKiB)) / 102.4) / 10,
    warm_up_ms: Math.round(median(rounds.map((r) => r.warmUpMs))),
    warm_up_cpu_ms: Math.round(median(rounds.map((r) => r.warmUpCpuMs))),
    idle_cpu_ms_per_s: round(median(rounds.map((r) => r.idleCpuMsPerS)), 2),
    idle_after_storms_cpu_ms_per_s: round(median(rounds.map((r) => r.steadyIdleCpuMsPerS)), 2),
    general_lines: rounds.map((r) => r.generalLines),
  };
}
const configs = Object.fromEntries(Object.entries(CONFIGS).map(([name, c]) => [name, summary(byConfig[name]!, c)]));
console.log("agent on the exec storm (separate process):");
console.table(configs);
if (ONLY_AGENT) {
  console.log(JSON.stringify({ configs, rounds: byConfig }));
  process.exit(0);
}

// The in-binary benchmark: transports, encodings, flood.
const b = Bun.spawn(
  [
    BIN,
    "bench",
    "--execs",
    String(Math.min(EXECS, 5000)),
    "--workers",
    String(WORKERS),
    "--rounds",
    String(ROUNDS),
    "--out",
    join(root, "benchmarks/transports.json"),
  ],
  {
    stdout: "pipe",
    stderr: "inherit",
  },
);
const table = await new Response(b.stdout).text();
if ((await b.exited) !== 0) throw new Error("dual-slot bench failed");
console.log(`\ndual-slot bench:\n${table}`);

let startup: unknown = null;
if (existsSync(join(root, "benchmarks/startup.ts"))) {
  const s = Bun.spawn(["bun", join(root, "benchmarks/startup.ts"), "--json"], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(s.stdout).text();
  if ((await s.exited) === 0) {
    startup = JSON.parse(out.trim().split("\n").at(-1)!);
    console.log("\nstart-up:", JSON.stringify(startup));
  }
}

writeFileSync(
  join(root, "benchmarks/results.json"),
  `${JSON.stringify({ date: new Date().toISOString(), configs, transports: JSON.parse(readFileSync(join(root, "benchmarks/transports.json"), "utf8")), startup }, null, 2)}\n`,
);
console.log("\nwritten: benchmarks/results.json");
rewriteReadmeFigures();
