/**
 * Execs of our own, for the lab, the benchmark and tests of the running
 * binary: the embedded static tools, run from sealed memfds so nothing is
 * written to disk and the host needs no particular binary.
 */
import { readFileSync } from "node:fs";
import { embedded } from "../assets.ts";
import { memfdFromBytes } from "../ffi/memfd.ts";

type Tool = "noop" | "storm" | "flood";
const paths = new Map<Tool, string>();

/** A path any child can exec: our memfd, seen through our own /proc entry. */
export function embeddedExecutable(tool: Tool): string {
  let p = paths.get(tool);
  if (p === undefined) {
    const { fd } = memfdFromBytes(`dual-slot-${tool}`, new Uint8Array(readFileSync(embedded[tool])));
    p = `/proc/${process.pid}/fd/${fd}`;
    paths.set(tool, p);
  }
  return p;
}

export function embeddedBytes(tool: Tool): Uint8Array {
  return new Uint8Array(readFileSync(embedded[tool]));
}

/** Runs the no-op n times, one after another (async: the event loop keeps draining). */
export async function execNoop(n: number, argv: string[] = []): Promise<Set<number>> {
  const path = embeddedExecutable("noop");
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) {
    const p = Bun.spawn([path, ...argv], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const code = await p.exited;
    if (code !== 0) throw new Error(`exec of the embedded no-op failed (exit ${code})`);
    pids.add(p.pid);
  }
  return pids;
}
