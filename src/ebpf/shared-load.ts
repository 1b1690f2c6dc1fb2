/**
 * The verifier is most of a start: the default set's programs take it
 * 60-150 ms on this project's 2-vCPU host, one after another inside
 * bpf_object__load. For root it runs in the calling thread and holds no lock
 * across programs, so a load can be shared out: one object creates the maps,
 * and the programs are split across more objects, opened from the same image,
 * which reuse those maps and are loaded at the same time, one per thread.
 *
 * libbpf calls on different objects may run on different threads. Its log
 * cannot: the print callback is JS, which only the JS thread may run, so
 * libbpf prints nothing while the threads load; a shared load that fails is
 * done again the usual way, which logs the verifier's reason.
 */
import type { Pointer } from "bun:ffi";
import { functionAddress, libbpf } from "../ffi/libbpf.ts";
import { type NativeThread, startThread } from "../ffi/pthread.ts";

/** Threads a load may use: the CPUs there are, up to 4 (the default set's biggest program then dominates). */
export const MAX_LOADERS = 4;

/**
 * Splits the programs into at most `k` groups of about the same weight
 * (the instructions the verifier goes through, which its time follows: see
 * src/ebpf/verify-weights.gen.ts): heaviest first,
 * each into the lightest group so far. No group is empty.
 */
export function splitByWeight(programs: ReadonlyArray<{ name: string; weight: number }>, k: number): string[][] {
  const groups = Array.from({ length: Math.max(1, Math.min(k, programs.length)) }, () => ({
    weight: 0,
    names: [] as string[],
  }));
  const heaviestFirst = [...programs].sort((a, b) => b.weight - a.weight || a.name.localeCompare(b.name));
  for (const p of heaviestFirst) {
    let lightest = groups[0]!;
    for (const g of groups) if (g.weight < lightest.weight) lightest = g;
    lightest.names.push(p.name);
    lightest.weight += p.weight;
  }
  return groups.map((g) => g.names).filter((n) => n.length > 0);
}

/**
 * Runs `body` with libbpf's log off: its print callback is JS, which a
 * thread of ours must never call, and libbpf's log is global.
 */
export function quietly<T>(body: () => T): T {
  const l = libbpf();
  const print = l.libbpf_set_print(null);
  try {
    return body();
  } finally {
    l.libbpf_set_print(print);
  }
}

/** bpf_object__load on a thread of its own; join() gives its result (0, or -errno). Only inside quietly(). */
export function loadOnThread(object: Pointer): NativeThread {
  return startThread(functionAddress("bpf_object__load"), object);
}

/**
 * bpf_object__load on every object at once: the first on this thread, each
 * other on a thread of its own. Returns each one's result (0, or -errno), in
 * order. Every thread started is joined before this returns or throws. Only
 * inside quietly().
 */
export function loadAtOnce(objects: readonly Pointer[]): number[] {
  const threads: NativeThread[] = [];
  try {
    for (const o of objects.slice(1)) threads.push(loadOnThread(o));
    const first = objects[0] === undefined ? 0 : libbpf().bpf_object__load(objects[0]);
    const rest: number[] = [];
    for (let t = threads.shift(); t !== undefined; t = threads.shift()) rest.push(t.join());
    return [first, ...rest];
  } finally {
    // A thread that failed to start, or a join that failed, leaves others running: they still have to finish.
    for (let t = threads.shift(); t !== undefined; t = threads.shift()) {
      try {
        t.join();
      } catch {
        // Nothing more can be done for a thread pthread_join refuses.
      }
    }
  }
}
