/**
 * Start-to-attached time of ./dual-slot in the configurations that decide it,
 * in the same run: the default event set; the same with the CO-RE cuts kept
 * in /run set aside first (the first start of a boot, src/ebpf/core-btf-cache.ts);
 * `--events exec` alone; and ./dual-slot-syslibbpf (the host's libbpf.so.1
 * instead of the embedded one). Each is spawned N times, alternating, and
 * timed from spawn to its "attached" line on stderr. Also reports the agent's
 * own figure from that line (milliseconds since its process started).
 *
 *   bun benchmarks/startup.ts [--runs N] [--compare-bin PATH[,PATH...]] [--json]   (root; `bun run build` first)
 *
 * --compare-bin adds other builds (an earlier commit's, say), each started with
 * the default set and with `--events exec`, alternating with the rest.
 *
 * Prints a table, then one JSON line (only the JSON with --json).
 */
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { CACHE_DIR } from "../src/ebpf/core-btf-cache.ts";

export interface StartupSample {
  /** Spawn to the "attached" line, measured out here (ms). */
  wallMs: number;
  /** The agent's own "attached ... in X ms" (performance.now() since its start). */
  selfMs: number;
}

/** One way of starting the agent. */
export interface StartupConfig {
  label: string;
  binary: string;
  args: readonly string[];
  /** No CO-RE cut kept for each start (withoutCutCache): the first start of a boot. */
  firstOfBoot?: boolean;
}

export interface StartupResult {
  label: string;
  binary: string;
  args: readonly string[];
  bytes: number;
  libbpf: string;
  runs: number;
  samples: StartupSample[];
  medianWallMs: number;
  minWallMs: number;
  maxWallMs: number;
  medianSelfMs: number;
}

const ROOT = join(import.meta.dir, "..");
const AGENT = join(ROOT, "dual-slot");
export const STARTUP_CONFIGS: readonly StartupConfig[] = [
  { label: "default set", binary: AGENT, args: [] },
  { label: "default set, first start of a boot", binary: AGENT, args: [], firstOfBoot: true },
  { label: "--events exec", binary: AGENT, args: ["--events", "exec"] },
  { label: "default set, host libbpf", binary: join(ROOT, "dual-slot-syslibbpf"), args: [] },
];

/** Another build's starts, to compare with this one's in the same alternation. */
export function compareConfigs(binary: string): StartupConfig[] {
  return [
    { label: `default set, ${binary}`, binary, args: [] },
    { label: `--events exec, ${binary}`, binary, args: ["--events", "exec"] },
  ];
}

/**
 * Runs `start` as the first start of a boot: with no cut kept in `dir`. Each
 * build keys a cut of its own (src/ebpf/core-btf-cache.ts), so the cuts are
 * set aside for the start and put back after it: emptying the directory made
 * the next default-set start of every other build (a --compare-bin from
 * another commit) a first start of a boot too, 15-35 ms slower in every round.
 */
export async function withoutCutCache<T>(start: () => Promise<T>, dir: string = CACHE_DIR): Promise<T> {
  if (!existsSync(dir)) return start();
  const kept = readdirSync(dir).filter((f) => f.startsWith("core-btf-"));
  // Beside the directory, on its filesystem, so each move is a rename.
  const aside = mkdtempSync(join(dirname(dir), ".startup-cuts-"));
  const moved: string[] = [];
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    for (const f of kept) {
      renameSync(join(dir, f), join(aside, f));
      moved.push(f);
    }
    outcome = { ok: true, value: await start() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  // The start made its own build's cut again: the one set aside is the same, and goes back over it.
  const stuck = moved.filter((f) => {
    try {
      renameSync(join(aside, f), join(dir, f));
      return false;
    } catch {
      return true;
    }
  });
  if (stuck.length === 0) rmSync(aside, { recursive: true, force: true });
  else {
    // Left where they are, named (the next start of each build makes its cut again), with the start's own error.
    const lost = new Error(`CO-RE cuts left in ${aside}, not put back in ${dir}: ${stuck.join(", ")}`);
    throw outcome.ok ? lost : new AggregateError([outcome.error, lost], lost.message);
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One start: spawn, wait for "attached", stop with SIGINT, wait for a clean exit. */
function startOnce(c: StartupConfig): Promise<StartupSample> {
  return c.firstOfBoot === true ? withoutCutCache(() => timedStart(c)) : timedStart(c);
}

async function timedStart(c: StartupConfig, timeoutMs = 20_000): Promise<StartupSample> {
  const bin = c.binary;
  const t0 = performance.now();
  const proc = Bun.spawn([bin, "--json", "--duration", "30", "--comm", "no-such-comm-x", ...c.args], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let err = "";
  let wallMs = NaN;
  const deadline = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      err += decoder.decode(value, { stream: true });
      if (Number.isNaN(wallMs) && /attached/.test(err)) {
        wallMs = performance.now() - t0;
        proc.kill("SIGINT");
      }
    }
  } finally {
    clearTimeout(deadline);
  }
  const code = await proc.exited;
  if (Number.isNaN(wallMs) || code !== 0)
    throw new Error(`${bin} did not attach and exit cleanly (exit ${code}): ${err.trim()}`);
  const self = /attached .* in ([0-9.]+) ms/.exec(err);
  return { wallMs, selfMs: self ? Number(self[1]) : NaN };
}

function libbpfOf(bin: string): string {
  const out = Bun.spawnSync([bin, "--version"], { stdout: "pipe" }).stdout.toString();
  return /\(libbpf ([^,]+),/.exec(out)?.[1] ?? "?";
}

/** Runs the comparison; `warmup` extra starts per configuration are made first and not counted. */
export async function measureStartup(
  runs = 5,
  warmup = 1,
  configs: readonly StartupConfig[] = STARTUP_CONFIGS,
): Promise<StartupResult[]> {
  for (const c of configs) {
    if (existsSync(c.binary)) continue;
    if (c.binary.startsWith(`${ROOT}/`))
      throw new Error(`${c.binary} is missing: run \`bun run build\` first (it builds both)`);
    throw new Error(`--compare-bin ${c.binary}: no such file`);
  }
  for (let i = 0; i < warmup; i++) for (const c of configs) await startOnce(c);
  const samples = configs.map((): StartupSample[] => []);
  // Alternate, so drift (page cache, other load) hits all the same.
  for (let i = 0; i < runs; i++) for (const [k, c] of configs.entries()) samples[k]!.push(await startOnce(c));
  return configs.map((c, k) => {
    const s = samples[k]!;
    const wall = s.map((x) => x.wallMs);
    return {
      label: c.label,
      binary: c.binary.startsWith(`${ROOT}/`) ? relative(ROOT, c.binary) : c.binary,
      args: c.args,
      bytes: statSync(c.binary).size,
      libbpf: libbpfOf(c.binary),
      runs,
      samples: s.map((x) => ({ wallMs: round(x.wallMs), selfMs: round(x.selfMs) })),
      medianWallMs: round(median(wall)),
      minWallMs: round(Math.min(...wall)),
      maxWallMs: round(Math.max(...wall)),
      medianSelfMs: round(median(s.map((x) => x.selfMs))),
    };
  });
}

const round = (x: number) => Math.round(x * 10) / 10;

export function startupTable(rs: StartupResult[]): string {
  const head = ["start", "libbpf", "size", "runs", "spawn→attached median", "min", "max", "agent's own median"];
  const rows = rs.map((r) => [
    r.label,
    r.libbpf,
    `${(r.bytes / 2 ** 20).toFixed(1)} MiB`,
    String(r.runs),
    `${r.medianWallMs.toFixed(1)} ms`,
    `${r.minWallMs.toFixed(1)} ms`,
    `${r.maxWallMs.toFixed(1)} ms`,
    `${r.medianSelfMs.toFixed(1)} ms`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === 1 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

if (import.meta.main) {
  process.stdout.on("error", () => process.exit(0)); // e.g. piped into head
  const args = process.argv.slice(2);
  const ri = args.indexOf("--runs");
  const runs = ri >= 0 ? Number(args[ri + 1]) : 9;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write("benchmarks/startup.ts: --runs expects a positive integer\n");
    process.exit(2);
  }
  if (process.geteuid?.() !== 0) {
    process.stderr.write("benchmarks/startup.ts: run as root (the agent attaches a BPF program)\n");
    process.exit(1);
  }
  const ci = args.indexOf("--compare-bin");
  const others = ci >= 0 ? (args[ci + 1] ?? "").split(",").filter((b) => b !== "") : [];
  if (ci >= 0 && others.length === 0) {
    process.stderr.write("benchmarks/startup.ts: --compare-bin expects PATH[,PATH...]\n");
    process.exit(2);
  }
  try {
    const rs = await measureStartup(runs, 1, [...STARTUP_CONFIGS, ...others.flatMap(compareConfigs)]);
    if (!args.includes("--json")) process.stdout.write(`${startupTable(rs)}\n`);
    process.stdout.write(`${JSON.stringify({ bench: "startup", results: rs })}\n`);
  } catch (e) {
    process.stderr.write(`benchmarks/startup.ts: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
