/**
 * Starts the compiled ./dual-slot as a real agent for kernel tests: waits for
 * its "attached" line, collects stdout, and stops it with a signal.
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { schemaErrors } from "./schema.ts";

export const BIN = join(import.meta.dir, "../../dual-slot");

export function requireBinary(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`bun run build\` first`);
}

export interface Proc {
  pid: number;
  stderr(): string;
  /** Waits for exit (after sending `signal`, if given); SIGKILL after timeoutMs. */
  finish(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ stdout: string; stderr: string; code: number | null }>;
}

/** Spawns a command, collecting stdout, and stderr as it arrives (to watch for lines). */
export function spawnProc(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string } = {}): Proc {
  const proc = Bun.spawn(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: opts.env ?? process.env,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  let err = "";
  const stdoutText = new Response(proc.stdout).text();
  const decoder = new TextDecoder();
  const reader = proc.stderr.getReader();
  const stderrDone = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      err += decoder.decode(value, { stream: true });
    }
  })();
  return {
    pid: proc.pid,
    stderr: () => err,
    async finish(signal, timeoutMs = 20_000) {
      if (signal !== undefined) proc.kill(signal);
      const killer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await proc.exited;
      clearTimeout(killer);
      await stderrDone;
      return { stdout: await stdoutText, stderr: err, code };
    },
  };
}

/** Waits for the agent's "attached" line; kills it and throws if it exits or times out first. */
export async function waitAttached(p: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/attached/.test(p.stderr())) {
    if (!existsSync(`/proc/${p.pid}`) || Date.now() > deadline) {
      const r = await p.finish("SIGKILL", 2_000);
      throw new Error(`agent did not attach (exit ${r.code}): ${r.stderr}`);
    }
    await Bun.sleep(10);
  }
}

export interface RunningAgent {
  pid: number;
  /** Resolves when the agent has exited: its stdout, stderr and exit code. */
  stop(signal?: NodeJS.Signals): Promise<{ stdout: string; stderr: string; code: number | null }>;
  stderrSoFar(): string;
}

/** The built agent with `args`, once attached; `env` is its whole environment (default: this process's). */
export async function startAgent(
  args: string[],
  timeoutMs = 20_000,
  env?: Record<string, string | undefined>,
): Promise<RunningAgent> {
  requireBinary();
  const p = spawnProc([BIN, ...args], env === undefined ? {} : { env });
  await waitAttached(p, timeoutMs);
  return { pid: p.pid, stderrSoFar: () => p.stderr(), stop: (signal: NodeJS.Signals = "SIGINT") => p.finish(signal) };
}

/** A copy of /bin/true under a fresh, unique name: its comm identifies our execs. */
export function uniqueTrue(prefix = "dst"): { path: string; comm: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "dual-slot-test-"));
  chmodSync(dir, 0o755);
  const comm = `${prefix}${Math.random().toString(36).slice(2, 10)}`.slice(0, 15);
  const path = join(dir, comm);
  copyFileSync("/bin/true", path);
  chmodSync(path, 0o755);
  return { path, comm, dir };
}

/**
 * Runs `path` n times, one after another; returns the child pids. Async, so
 * the test keeps reading the agent's stdout meanwhile: a blocked pipe would
 * stall the agent and lose events that the test would then blame on it.
 */
export async function execTimes(path: string, n: number, argv: string[] = []): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = Bun.spawn([path, ...argv], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
    if ((await p.exited) !== 0) throw new Error(`${path} failed`);
    pids.push(p.pid);
  }
  return pids;
}

/**
 * Runs `path` n times, one after another, all on CPU 0 (a shell loop under taskset): their records
 * go to one perf buffer, whose fill the caller can then reckon with.
 */
export async function execsOnCpu0(path: string, n: number): Promise<void> {
  const loop = 'i=0; while [ "$i" -lt "$1" ]; do "$0" || exit 1; i=$((i+1)); done';
  const p = Bun.spawn(["taskset", "-c", "0", "sh", "-c", loop, path, String(n)], {
    stdout: "ignore",
    stderr: "inherit",
    stdin: "ignore",
  });
  if ((await p.exited) !== 0) throw new Error(`${n} runs of ${path} on CPU 0 failed (exit ${p.exitCode})`);
}

/**
 * A run that failed before it attached: its stderr is the summary line (all
 * zero, stop=error), then the error's lines, returned here.
 */
export function linesAfterZeroSummary(stderr: string): string[] {
  const lines = stderr.trim().split("\n");
  if (!/^summary: events=0 lost=0 .* stop=error$/.test(lines[0] ?? ""))
    throw new Error(`expected the zero summary first, got: ${stderr}`);
  return lines.slice(1);
}

export function parseSummary(stderr: string): Record<string, string> {
  const line = stderr.split("\n").find((l) => l.startsWith("summary:"));
  if (line === undefined) throw new Error(`no summary line in: ${stderr}`);
  // logfmt: a quoted value (`stop="stdout closed"`) is one value, unescaped.
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return out;
}

export type JsonEvent = Record<string, unknown> & {
  event: string;
  pid: number;
  ppid: number;
  comm: string;
  filename: string;
  cpu: number;
  args: string[];
  heap: Record<string, unknown> & {
    slot0_seq: string;
    slot1_data: string;
    slot1_intact: boolean;
    corrupt: boolean;
    mode: string;
    slots: number;
    transport: string;
    encoding: string;
    bytes: number;
  };
};

/**
 * The NDJSON lines of a run. Every event must validate against the schema the
 * renderer is built from (a line that does not is a test failure here, so
 * every kernel test checks the schema on real events).
 */
export function parseEvents(stdout: string): JsonEvent[] {
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as JsonEvent;
      } catch (e) {
        throw new Error(`not a JSON line (${(e as Error).message}): ${JSON.stringify(l.slice(0, 2000))}`);
      }
    })
    .map((e) => {
      const errors = schemaErrors(e);
      if (errors.length > 0)
        throw new Error(`event does not match the schema: ${errors.join("; ")}: ${JSON.stringify(e)}`);
      return e;
    });
}

/** Program and map ids a process holds, from its fds' /proc fdinfo (map_id:, prog_id:). */
export function bpfObjectsOf(pid: number): { progs: number[]; maps: number[] } {
  const progs = new Set<number>();
  const maps = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info = "";
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      continue;
    }
    const m = /^map_id:\s*(\d+)/m.exec(info);
    if (m) maps.add(Number(m[1]));
    const p = /^prog_id:\s*(\d+)/m.exec(info);
    if (p) progs.add(Number(p[1]));
  }
  return { progs: [...progs], maps: [...maps] };
}

/** Debian puts bpftool in /usr/sbin, which a non-login root shell's PATH may lack. */
export const BPFTOOL = existsSync("/usr/sbin/bpftool") ? "/usr/sbin/bpftool" : "bpftool";

export async function liveIds(kind: "prog" | "map"): Promise<Set<number>> {
  const out = await new Response(Bun.spawn([BPFTOOL, "-j", kind, "show"], { stdout: "pipe" }).stdout).text();
  return new Set((JSON.parse(out || "[]") as Array<{ id: number }>).map((x) => x.id));
}

/**
 * Waits until none of these program and map ids is live in the kernel any more, for at most 25 s
 * (the kernel frees ~70 programs, then their maps, after RCU grace periods: seconds on a busy host);
 * returns the ids still live then, for the caller to expect none.
 */
export async function stillLive(ids: {
  progs?: number[];
  maps?: number[];
}): Promise<{ progs: number[]; maps: number[] }> {
  const { progs = [], maps = [] } = ids;
  const left = async () => {
    const [p, m] = [progs.length ? await liveIds("prog") : new Set(), maps.length ? await liveIds("map") : new Set()];
    return { progs: progs.filter((id) => p.has(id)), maps: maps.filter((id) => m.has(id)) };
  };
  const deadline = Date.now() + 25_000;
  let now = await left();
  while (now.progs.length + now.maps.length > 0 && Date.now() < deadline) {
    await Bun.sleep(50);
    now = await left();
  }
  return now;
}

/** A process's CPU time in seconds (utime + stime), from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

/**
 * Waits for the end of the warm-up after "attached" (2-3 s of synthetic records on a slow host, drained
 * as it goes): the agent's `--verbose` line "warm-up: N synthetic records in ..." says it is over. The
 * caller starts the agent with `--verbose`. A guess from the agent's CPU use returned early on CI's
 * machine, and what the caller measured next (a wake-up, a loss) was then the warm-up's drains.
 */
export async function warmedUp(stderrSoFar: () => string, timeoutMs = 20_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!/ DEBUG warm-up: \d+ synthetic records/.test(stderrSoFar())) {
    if (performance.now() > end)
      throw new Error(`no end of the warm-up in ${timeoutMs} ms (started with --verbose?); stderr:\n${stderrSoFar()}`);
    await Bun.sleep(50);
  }
}
