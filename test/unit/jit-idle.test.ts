import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jitCpuNs, jitIdle } from "../../src/run/jit-idle.ts";

/** A /proc/PID/task look-alike: each thread's comm and schedstat (run ns, wait ns, slices). */
function tasks(threads: [string, number][]): string {
  const dir = mkdtempSync(join(tmpdir(), "ds-jit-idle-"));
  threads.forEach(([comm, ns], i) => {
    mkdirSync(join(dir, String(100 + i)));
    writeFileSync(join(dir, String(100 + i), "comm"), `${comm}\n`);
    writeFileSync(join(dir, String(100 + i), "schedstat"), `${ns} 12345 67\n`);
  });
  return dir;
}

describe("jitCpuNs", () => {
  test("sums the compiler threads' run time, and only theirs", () => {
    const dir = tasks([
      ["dual-slot", 9_000_000_000],
      ["JITWorker", 1_500_000],
      ["HeapHelper", 7_000_000],
      ["JITWorker", 2_250_000],
    ]);
    try {
      expect(jitCpuNs(dir)).toBe(3_750_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("no compiler thread, or no such directory, is null: nothing to wait for", () => {
    const dir = tasks([["dual-slot", 1]]);
    try {
      expect(jitCpuNs(dir)).toBeNull();
      expect(jitCpuNs(join(dir, "gone"))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("this runtime's own compiler threads are found once it has compiled something", () => {
    let x = 0;
    for (let i = 0; i < 2_000_000; i++) x = (x + i * 7) % 1_000_003;
    expect(x).toBeGreaterThanOrEqual(0);
    expect(jitCpuNs()).toBeGreaterThan(0);
  });
});

describe("jitIdle", () => {
  test("waits for two quiet polls in a row after the last compile", async () => {
    // Compiling for three polls, one quiet poll, compiling again, then quiet for good.
    const seen = [0, 5e6, 9e6, 14e6, 14e6, 20e6, 20.2e6, 20.4e6, 20.4e6, 20.4e6];
    let i = 0;
    const reads = await jitIdle(10_000, () => seen[Math.min(i++, seen.length - 1)]!);
    expect(reads).toBe(8);
  });

  test("gives up at its bound while the compilers stay busy", async () => {
    let ns = 0;
    const reads = await jitIdle(300, () => (ns += 10e6));
    // 50 ms polls: at most 300 / 50 after the first read, fewer when sleeps run long on a busy host.
    expect(reads).toBeLessThanOrEqual(7);
    expect(reads).toBeGreaterThan(2);
  });

  test("no compiler threads: one read, no wait", async () => {
    expect(await jitIdle(10_000, () => null)).toBe(1);
  });
});
