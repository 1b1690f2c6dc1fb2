/**
 * Runs a test tool (workloads/trigger.c, workloads/io-trigger.c) under a
 * running agent: the tool's first JSON line (what it did: pids, fds, ports)
 * and every event the agent printed meanwhile.
 */
import { join } from "node:path";
import { type JsonEvent, parseEvents, startAgent } from "./agent.ts";

const ARCH = process.arch === "arm64" ? "arm64" : "x64";
export const TOOLS = join(import.meta.dir, "../../out/workloads", ARCH);
export const TRIGGER = join(TOOLS, "trigger");
export const IO_TRIGGER = join(TOOLS, "io-trigger");
export const NOOP = join(TOOLS, "noop");

export type Ev = JsonEvent & Record<string, unknown>;

export interface Triggered {
  out: Record<string, string | number>;
  events: Ev[];
  trigger: number;
}

export async function underAgent(
  tool: string,
  events: string,
  argv: string[],
  opts: { expectExit?: number; cwd?: string; agentArgs?: string[] } = {},
): Promise<Triggered> {
  const agent = await startAgent(["--json", "--events", events, ...(opts.agentArgs ?? [])]);
  const p = Bun.spawn([tool, ...argv], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  await Bun.sleep(300);
  const run = await agent.stop();
  if (code !== (opts.expectExit ?? 0)) throw new Error(`${tool} ${argv.join(" ")} exited ${code}: ${stderr}`);
  const first = stdout.split("\n").find((l) => l.startsWith("{"));
  return {
    out: first === undefined ? {} : (JSON.parse(first) as Record<string, string | number>),
    events: parseEvents(run.stdout) as Ev[],
    trigger: p.pid,
  };
}

/** The events of one type from one process. */
export const only = (evs: Ev[], type: string, pid: number): Ev[] =>
  evs.filter((e) => e.event === type && e.pid === pid);
