/**
 * BPF run time of one agent's programs, from the kernel's per-program stats
 * (run_time_ns, run_cnt; only counted while kernel.bpf_stats_enabled is on).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface ProgStat {
  runTimeNs: number;
  runCnt: number;
}

const SYSCTL = "kernel.bpf_stats_enabled";

function sysctl(...args: string[]): string {
  const r = Bun.spawnSync(["sysctl", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`sysctl ${args.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}

/**
 * Turns the stats on and returns what restores the setting. The sysctl keeps
 * its own count apart from BPF_ENABLE_STATS fds (`dual-slot bench` uses one),
 * so turning it off again never turns off another holder's stats.
 */
export function enableBpfStats(): () => void {
  const before = sysctl("-n", SYSCTL);
  sysctl("-qw", `${SYSCTL}=1`);
  return () => sysctl("-qw", `${SYSCTL}=${before}`);
}

/**
 * The ids of the programs a process holds open. By fd rather than by name:
 * another engineer's agent on the same host loads programs of the same names.
 */
export function progIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).includes("bpf-prog")) continue;
      const m = /^prog_id:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      if (m) ids.add(Number(m[1]));
    } catch {
      // An fd closed while we walked.
    }
  }
  return ids;
}

interface BpftoolProg {
  id: number;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

/** run_time_ns and run_cnt of the given programs, by name (bpftool shows BTF's full names, not the 15-byte ones). */
export function progStats(ids: Set<number>): Map<string, ProgStat> {
  const r = Bun.spawnSync(["bpftool", "-j", "prog", "show"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bpftool prog show: ${r.stderr.toString().trim()}`);
  const out = new Map<string, ProgStat>();
  for (const p of JSON.parse(r.stdout.toString()) as BpftoolProg[]) {
    if (!ids.has(p.id) || p.name === undefined) continue;
    out.set(p.name, { runTimeNs: p.run_time_ns ?? 0, runCnt: p.run_cnt ?? 0 });
  }
  return out;
}

/** after - before, per program named in `names` (absent ones count as 0: not loaded, or never run). */
export function statsDelta(
  before: Map<string, ProgStat>,
  after: Map<string, ProgStat>,
  names: readonly string[],
): Record<string, ProgStat> {
  const zero: ProgStat = { runTimeNs: 0, runCnt: 0 };
  return Object.fromEntries(
    names.map((n) => {
      const a = after.get(n) ?? zero;
      const b = before.get(n) ?? zero;
      return [n, { runTimeNs: a.runTimeNs - b.runTimeNs, runCnt: a.runCnt - b.runCnt }];
    }),
  );
}
