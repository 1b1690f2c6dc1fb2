/**
 * Runs a workload under a freshly loaded session, with the kernel's BPF run-time
 * stats on: what the lab and the benchmark both measure.
 */
import { progStats } from "../ebpf/info.ts";
import { enableBpfStats } from "../ebpf/object.ts";
import type { AgentEvent } from "../wire/decode.ts";
import { Session, type SessionOptions } from "./session.ts";

export interface Measured {
  /** Events lost between the programs and user space, as the session counted them. */
  lost: number;
  /** This process's CPU time over the workload and the drains after it (µs). */
  cpuUs: number;
  /** Mean BPF run time per program run over the workload (ns); 0 when it did not run. */
  bpfNs: number;
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export async function underSession(
  image: Uint8Array,
  opts: SessionOptions,
  prog: "ds_exec" | "ds_flood",
  onEvent: (ev: AgentEvent) => void,
  work: () => Promise<void>,
  before: (s: Session) => void = () => {},
): Promise<Measured> {
  // Stats first: if the kernel refuses them, nothing is loaded yet to leak.
  const stats = enableBpfStats();
  let session: Session;
  try {
    session = new Session(image, opts, onEvent);
  } catch (e) {
    stats.close();
    throw e;
  }
  try {
    before(session);
    session.attach();
    const fd = session.object.progFd(prog);
    const p0 = progStats(fd);
    const c0 = cpuUs();
    await work();
    // Two drain intervals: what the reorder window still holds comes out.
    await Bun.sleep(2 * opts.intervalMs);
    session.drain();
    const cpu = cpuUs() - c0;
    const p1 = progStats(fd);
    session.stop();
    const runs = Number(p1.runCnt - p0.runCnt);
    return { lost: session.counts.lost, cpuUs: cpu, bpfNs: runs > 0 ? Number(p1.runTimeNs - p0.runTimeNs) / runs : 0 };
  } finally {
    session.stop();
    stats.close();
  }
}
