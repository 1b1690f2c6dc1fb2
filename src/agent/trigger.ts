/**
 * Execs of our own, for the lab and tests of the running binary: the embedded
 * static no-op, run from a sealed memfd so nothing is written to disk and the
 * host needs no particular binary.
 */
import { readFileSync } from "node:fs";
import { embedded } from "../assets.ts";
import { memfdFromBytes } from "../native/memfd.ts";

let noopPath: string | null = null;

/** A path any child can exec: our memfd, seen through our own /proc entry. */
export function noopExecutable(): string {
  if (noopPath === null) {
    const { fd } = memfdFromBytes("dual-slot-noop", new Uint8Array(readFileSync(embedded.noop)));
    noopPath = `/proc/${process.pid}/fd/${fd}`;
  }
  return noopPath;
}

/** Runs the no-op n times, one after another (async: the event loop keeps draining). */
export async function execNoop(n: number, argv: string[] = []): Promise<Set<number>> {
  const path = noopExecutable();
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) {
    const p = Bun.spawn([path, ...argv], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const code = await p.exited;
    if (code !== 0) throw new Error(`exec of the embedded no-op failed (exit ${code})`);
    pids.add(p.pid);
  }
  return pids;
}
