/**
 * The agent as users run it, seen from outside: a separate `dual-slot`
 * process, its CPU and memory from /proc, its `summary:` line on stderr.
 * Shared by benchmarks/run.ts (exec storm) and benchmarks/io.ts (connect and
 * file-create storms).
 */
import { readdirSync, readFileSync } from "node:fs";

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Smallest and largest of a set of rounds: a busy host's figures need their spread beside the median. */
export const spread = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];

export const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Each thread's CPU time when last read, by "pid/tid": a thread's time stays counted after it exits. */
const threadNs = new Map<string, number>();

/**
 * CPU time of every thread of a process, in ns (schedstat's first field),
 * including threads that have exited since an earlier call (their time as last
 * read): summing only the live threads made a storm's difference negative when
 * a runtime thread ended in between.
 */
export function cpuNs(pid: number): number {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      threadNs.set(`${pid}/${tid}`, Math.max(ns, threadNs.get(`${pid}/${tid}`) ?? 0));
    } catch {
      // A thread that just exited: its last reading stands.
    }
  }
  let sum = 0;
  for (const [key, ns] of threadNs) if (key.startsWith(`${pid}/`)) sum += ns;
  return sum;
}

export function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

/** The `summary:` line's key=value pairs (all strings; absent keys are absent). */
export function parseSummary(stderr: string): Record<string, string> {
  const line = stderr.split("\n").find((l) => l.startsWith("summary:")) ?? "";
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

export interface RunningAgent {
  pid: number;
  /** Spawn to the "attached" line. */
  attachedMs: number;
  /** SIGINT, wait for the exit and its summary. */
  stop(): Promise<Record<string, string>>;
}

/**
 * Spawns the agent and resolves once it is attached. `onStdout`, when given,
 * gets every chunk of its stdout (a consumer reading the NDJSON, as a user's
 * pipeline would); otherwise stdout goes nowhere.
 */
export async function startAgent(
  argv: string[],
  onStdout?: (chunk: Uint8Array) => void,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<RunningAgent> {
  const t0 = performance.now();
  const p = Bun.spawn(argv, {
    stdin: "ignore",
    stdout: onStdout ? "pipe" : "ignore",
    stderr: "pipe",
    // Merged into this process's environment; Bun.spawn leaves out a variable whose value is undefined.
    env: { ...process.env, ...env },
  });
  let err = "";
  const drain = async (s: ReadableStream<Uint8Array>, f: (c: Uint8Array) => void) => {
    for await (const c of s) f(c);
  };
  const dec = new TextDecoder();
  const pumps = [drain(p.stderr, (c) => (err += dec.decode(c, { stream: true })))];
  if (onStdout && p.stdout instanceof ReadableStream) pumps.push(drain(p.stdout, onStdout));
  while (!err.includes("attached")) {
    if (p.exitCode !== null) throw new Error(`agent exited: ${err}`);
    await Bun.sleep(1);
  }
  const attachedMs = performance.now() - t0;
  return {
    pid: p.pid,
    attachedMs,
    async stop() {
      p.kill("SIGINT");
      await p.exited;
      await Promise.all(pumps);
      return parseSummary(err);
    },
  };
}

/**
 * The warm-up is over once the agent's CPU is under 5 % of a CPU over two steps in a row (bounded by
 * WARM_UP_MAX_MS): between its last synthetic records and the code pages it hands back after them, the
 * agent waits 100 ms or more for the JIT's last compiles, and one quiet step could fall in that wait.
 */
const WARM_UP_STEP_MS = 200;
const WARM_UP_MAX_MS = 8000;

/**
 * Waits out the agent's warm-up (synthetic records after "attached", then
 * the JIT's compiles of what it ran): its wall time and CPU, from attached.
 * Measure from there, not a fixed time after the attached line: the warm-up
 * takes 1-3 s, longer on a busy host, and a storm inside it is billed its CPU.
 */
export async function warmUp(pid: number): Promise<{ ms: number; cpuMs: number }> {
  const t0 = performance.now();
  const c0 = cpuNs(pid);
  let last = c0;
  let quiet = 0;
  for (;;) {
    await Bun.sleep(WARM_UP_STEP_MS);
    const c = cpuNs(pid);
    const busy = c - last;
    last = c;
    quiet = busy < WARM_UP_STEP_MS * 1e6 * 0.05 ? quiet + 1 : 0;
    if (quiet === 2 || performance.now() - t0 > WARM_UP_MAX_MS) break;
  }
  return { ms: performance.now() - t0 - quiet * WARM_UP_STEP_MS, cpuMs: (last - c0) / 1e6 };
}
