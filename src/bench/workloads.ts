/**
 * The benchmark's workloads: an exec storm (the embedded storm driver running
 * the embedded no-op) and a syscall flood (the embedded flood tool, seen by
 * the ds_flood program on sys_enter).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { embeddedBytes, embeddedExecutable } from "../agent/trigger.ts";

export interface StormResult {
  execs: number;
  workers: number;
  failed: number;
  elapsed_ns: number;
  rate_per_s: number;
}

export interface StormTarget {
  path: string;
  comm: string;
  close(): void;
}

/**
 * The storm's target must be exec'd by a plain path so its events carry a
 * comm we can count. It goes in a fresh root-only directory under /run
 * (tmpfs, not world-writable), and is removed afterwards.
 */
export function stormTarget(): StormTarget {
  const dir = mkdtempSync(join("/run", "dual-slot-bench-"));
  chmodSync(dir, 0o700);
  const comm = `dsb${Math.random().toString(36).slice(2, 10)}`;
  const path = join(dir, comm);
  writeFileSync(path, embeddedBytes("noop"), { mode: 0o700 });
  return { path, comm, close: () => rmSync(dir, { recursive: true, force: true }) };
}

/** About 80 bytes in 6 arguments: what an everyday command line looks like. */
export const REALISTIC_ARGV = [
  "--color=auto",
  "-l",
  "--time-style=long-iso",
  "/var/log/syslog",
  "-h",
  "--group-directories-first",
];

export async function runStorm(
  target: StormTarget,
  execs: number,
  workers: number,
  argv: string[] = [],
): Promise<StormResult> {
  const cmd = [
    embeddedExecutable("storm"),
    "--execs",
    String(execs),
    "--workers",
    String(workers),
    "--quiet",
    "--",
    target.path,
  ];
  if (argv.length > 0) cmd.push(target.path, ...argv);
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`exec storm failed (exit ${code}): ${err.trim()}`);
  return JSON.parse(out.trim()) as StormResult;
}

export interface FloodResult {
  count: number;
  syscall_nr: number;
  elapsed_ns: number;
  rate_per_s: number;
}

export interface FloodRun {
  pid: number;
  /** The syscall the flood makes: getppid on this architecture. */
  syscallNr: number;
  start(): void;
  /** For when the measurement fails before start(): the child would wait on stdin forever. */
  kill(): void;
  result: Promise<FloodResult>;
}

const GETPPID: Record<string, number> = { x64: 110, arm64: 173 };

/** Spawns the flood paused on stdin, so a filter on its pid can be installed first. */
export function spawnFlood(count: number, rate: number): FloodRun {
  const p = Bun.spawn([embeddedExecutable("flood"), "--count", String(count), "--rate", String(rate), "--wait-stdin"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const result = (async () => {
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    if (code !== 0) throw new Error(`flood failed (exit ${code}): ${err.trim()}`);
    return JSON.parse(out.trim()) as FloodResult;
  })();
  return {
    pid: p.pid,
    syscallNr: GETPPID[process.arch] ?? 110,
    start: () => {
      p.stdin.write("g");
      void p.stdin.end();
    },
    kill: () => p.kill("SIGKILL"),
    result,
  };
}
