/**
 * One measurement each: the storm with no agent, the storm under an in-process
 * agent session, the flood under a session. CPU is this process's own
 * (process.cpuUsage): the workloads run in child processes, so what is counted
 * is the agent's work: draining, decoding, counting.
 */
import { type Measured, underSession } from "../agent/measured.ts";
import { Session, type SessionOptions } from "../agent/session.ts";
import { BpfObject } from "../ebpf/object.ts";
import { withTracefs } from "../ebpf/tracefs.ts";
import type { AgentEvent } from "../wire/decode.ts";
import { programsFor } from "../wire/events.ts";
import type { EncodingName, TransportName } from "../wire/names.ts";
import { runStorm, type StormTarget, spawnFlood } from "./workloads.ts";

export interface BenchRow {
  workload: "exec" | "flood";
  transport: TransportName;
  encoding: EncodingName;
  offered_per_s: number;
  delivered_per_s: number;
  expected: number;
  captured: number;
  captured_pct: number;
  lost: number;
  bytes_per_event: number;
  agent_cpu_us_per_event: number;
  bpf_ns_per_event: number;
  /** Exec storm only: how much slower the storm ran with the agent attached. */
  slowdown_pct: number | null;
}

export async function baselineStorm(
  target: StormTarget,
  execs: number,
  workers: number,
  argv: string[],
): Promise<number> {
  return (await runStorm(target, execs, workers, argv)).rate_per_s;
}

interface Counted extends Measured {
  captured: number;
  bytes: number;
}

/** underSession, counting the events `mine` accepts and their bytes. */
async function counted(
  image: Uint8Array,
  opts: SessionOptions,
  prog: "ds_exec" | "ds_flood",
  mine: (pid: number, comm: string, type: string) => boolean,
  before: (s: Session) => void,
  work: () => Promise<void>,
): Promise<Counted> {
  let captured = 0;
  let bytes = 0;
  const onEvent = (ev: AgentEvent) => {
    if (mine(ev.pid, ev.comm, ev.type)) {
      captured++;
      bytes += ev.size;
    }
  };
  return { ...(await underSession(image, opts, prog, onEvent, work, before)), captured, bytes };
}

function row(
  workload: BenchRow["workload"],
  opts: SessionOptions,
  expected: number,
  offered: number,
  elapsedNs: number,
  m: Counted,
  slowdown: number | null,
): BenchRow {
  const n = Math.max(m.captured, 1);
  return {
    workload,
    transport: opts.transport,
    encoding: opts.encoding,
    offered_per_s: Math.round(offered),
    delivered_per_s: Math.round(m.captured / (elapsedNs / 1e9)),
    expected,
    captured: m.captured,
    captured_pct: Math.round((1000 * m.captured) / expected) / 10,
    lost: m.lost,
    bytes_per_event: Math.round(m.bytes / n),
    agent_cpu_us_per_event: Math.round((100 * m.cpuUs) / n) / 100,
    bpf_ns_per_event: Math.round(m.bpfNs),
    slowdown_pct: slowdown,
  };
}

export async function execBench(
  image: Uint8Array,
  opts: SessionOptions,
  target: StormTarget,
  execs: number,
  workers: number,
  argv: string[],
  baselineRate: number,
): Promise<BenchRow> {
  let elapsed = 1;
  let rate = 0;
  const m = await counted(
    image,
    opts,
    "ds_exec",
    (_p, comm) => comm === target.comm,
    () => {},
    async () => {
      const r = await runStorm(target, execs, workers, argv);
      elapsed = r.elapsed_ns;
      rate = r.rate_per_s;
    },
  );
  const slowdown = Math.round(1000 * (baselineRate / rate - 1)) / 10;
  return row("exec", opts, execs, rate, elapsed, m, slowdown);
}

export async function floodBench(
  image: Uint8Array,
  opts: SessionOptions,
  count: number,
  rate: number,
): Promise<BenchRow> {
  const flood = spawnFlood(count, rate);
  let elapsed = 1;
  let offered = 0;
  let started = false;
  const m = await counted(
    image,
    { ...opts, events: ["flood"] },
    "ds_flood",
    (pid, _c, type) => type === "flood" && pid === flood.pid,
    (s) => s.object.setBss({ flood_tgid: flood.pid, flood_nr: flood.syscallNr }),
    async () => {
      started = true;
      flood.start();
      const r = await flood.result;
      elapsed = r.elapsed_ns;
      offered = r.rate_per_s;
    },
  ).catch((e: unknown) => {
    if (!started) flood.kill();
    throw e;
  });
  return row("flood", opts, count, offered, elapsed, m, null);
}

/**
 * What the agent costs a syscall it does not trace: getppid in a tight loop
 * (the flood workload, no program of ours on it) with no agent, with the
 * floor (an empty program on the same syscall tracepoints as the event set),
 * and with the event set attached, the three interleaved round by round.
 * The syscall tracepoints put every syscall of the host on the kernel's slow
 * path, whatever runs there: that is the floor. What the set costs beyond
 * the floor is ours.
 */
export interface SyscallCost {
  events: string;
  calls_per_round: number;
  rounds: number;
  /** The syscall tracepoints the set (and the floor) attach to. */
  tracepoints: number;
  /** Medians over the rounds, ns per syscall. */
  bare_ns: number;
  floor_ns: number;
  attached_ns: number;
  /** Median and range of the per-round differences (attached - bare). */
  overhead_ns: number;
  overhead_min_ns: number;
  overhead_max_ns: number;
  /** The same for floor - bare: the kernel's own cost of those tracepoints. */
  floor_overhead_ns: number;
  floor_overhead_min_ns: number;
  floor_overhead_max_ns: number;
  /** And attached - floor: what the set's programs add to it (0 when none of ours runs). */
  over_floor_ns: number;
  over_floor_min_ns: number;
  over_floor_max_ns: number;
}

async function floodNs(count: number): Promise<number> {
  const f = spawnFlood(count, 0);
  f.start();
  const r = await f.result;
  return r.elapsed_ns / r.count;
}

type Arm = "bare" | "floor" | "attached";

/**
 * Each arm waits this long before its loop: attaching leaves this process's
 * JIT and GC threads busy for a while, and on two vCPUs they took the loop's
 * CPU (the set measured 20-25 ns above its floor without the wait, -4 with).
 * The cost measured is the steady state's.
 */
const SETTLE_MS = 300;

export async function syscallCost(
  image: Uint8Array,
  opts: SessionOptions,
  count: number,
  rounds: number,
  step: (label: string) => void,
): Promise<SyscallCost> {
  const ns: Record<Arm, number[]> = { bare: [], floor: [], attached: [] };
  const programs = programsFor(opts.events, opts.failedExecs, (opts.irqSlots ?? 0) > 0);
  let tracepoints = 0;
  const arms: Arm[] = ["bare", "floor", "attached"];
  for (let r = 0; r < rounds; r++) {
    // Rotated, and reversed every other round: over six rounds each arm takes each place after each
    // other arm, so drift on a busy host, and what the arm before left behind, fall on all three.
    const rotated = arms.map((_, i) => arms[(i + r) % arms.length]!);
    const order = r % 2 === 0 ? rotated : rotated.reverse();
    for (const arm of order) {
      if (arm === "bare") {
        await Bun.sleep(SETTLE_MS);
        ns.bare.push(await floodNs(count));
      } else if (arm === "floor") {
        const obj = BpfObject.load(image, { ...opts, floor: true });
        try {
          tracepoints = withTracefs(() => obj.attachFloor(programs)).length;
          await Bun.sleep(SETTLE_MS);
          ns.floor.push(await floodNs(count));
        } finally {
          obj.close();
        }
      } else {
        const s = new Session(image, opts, () => {});
        try {
          s.attach();
          await Bun.sleep(SETTLE_MS);
          ns.attached.push(await floodNs(count));
        } finally {
          s.stop();
        }
      }
    }
    step(`round ${r + 1}: getppid loop, no agent / floor / ${opts.events.join(",")}`);
  }
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const diff = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);
  const spread = (xs: number[]) => [r1(med(xs)), r1(Math.min(...xs)), r1(Math.max(...xs))] as const;
  const [overhead, overheadMin, overheadMax] = spread(diff(ns.attached, ns.bare));
  const [floor, floorMin, floorMax] = spread(diff(ns.floor, ns.bare));
  const [over, overMin, overMax] = spread(diff(ns.attached, ns.floor));
  return {
    events: opts.events.join(","),
    calls_per_round: count,
    rounds,
    tracepoints,
    bare_ns: r1(med(ns.bare)),
    floor_ns: r1(med(ns.floor)),
    attached_ns: r1(med(ns.attached)),
    overhead_ns: overhead,
    overhead_min_ns: overheadMin,
    overhead_max_ns: overheadMax,
    floor_overhead_ns: floor,
    floor_overhead_min_ns: floorMin,
    floor_overhead_max_ns: floorMax,
    over_floor_ns: over,
    over_floor_min_ns: overMin,
    over_floor_max_ns: overMax,
  };
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One row from several rounds of the same measurement: counts add up, rates and costs are medians. */
export function combineRounds(rounds: BenchRow[]): BenchRow {
  const first = rounds[0]!;
  const expected = rounds.reduce((n, r) => n + r.expected, 0);
  const captured = rounds.reduce((n, r) => n + r.captured, 0);
  const slow = rounds.map((r) => r.slowdown_pct).filter((x): x is number => x !== null);
  return {
    ...first,
    offered_per_s: med(rounds.map((r) => r.offered_per_s)),
    delivered_per_s: med(rounds.map((r) => r.delivered_per_s)),
    expected,
    captured,
    captured_pct: Math.round((1000 * captured) / expected) / 10,
    lost: rounds.reduce((n, r) => n + r.lost, 0),
    bytes_per_event: med(rounds.map((r) => r.bytes_per_event)),
    agent_cpu_us_per_event: med(rounds.map((r) => r.agent_cpu_us_per_event)),
    bpf_ns_per_event: med(rounds.map((r) => r.bpf_ns_per_event)),
    slowdown_pct: slow.length > 0 ? med(slow) : null,
  };
}
