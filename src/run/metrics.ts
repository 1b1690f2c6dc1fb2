/**
 * `run --metrics ADDR`: fills the Prometheus snapshot from the running session
 * and output at each scrape, and keeps the kernel's BPF run-time stats on while
 * the endpoint is served (without them, run time stays 0; that is not a reason
 * to fail the run).
 */
import type { Session } from "../agent/session.ts";
import { buildInfo } from "../assets.ts";
import { progStats } from "../ebpf/info.ts";
import { enableBpfStats } from "../ebpf/object.ts";
import type { FleetSink } from "../fleet/shipper.ts";
import { log } from "../log.ts";
import { type MetricsSnapshot, processMetrics } from "../metrics/prometheus.ts";
import { type ListenAddress, type MetricsServer, startMetricsServer } from "../metrics/server.ts";
import { programsFor } from "../wire/events.ts";

export interface ServedMetrics {
  close(): void;
}

export function serveMetrics(
  addr: ListenAddress,
  session: Session,
  droppedOutput: () => number,
  fleet: FleetSink | null = null,
): ServedMetrics {
  let stats: { close(): void } | null = null;
  try {
    stats = enableBpfStats();
  } catch (e) {
    log.warn(`BPF run-time stats unavailable, dual_slot_bpf_run_time_seconds_total stays 0: ${(e as Error).message}`);
  }
  const programs = programsFor(session.opts.events, session.opts.failedExecs).map((p) => p.name);
  const snapshot = (): MetricsSnapshot => ({
    events: [...session.eventsByType].flatMap(([type, byCpu]) => byCpu.map((count, cpu) => ({ type, cpu, count }))),
    lostByCpu: session.lostByCpu(),
    malformed: session.counts.malformed,
    unframed: session.unframed,
    filteredKernel: session.kernelCounters().filtered_kernel,
    droppedOutput: droppedOutput(),
    ...(fleet !== null ? { sink: fleet.counters() } : {}),
    // The readers report the fullest buffer of a drain, not each one: one series, "all".
    bufferFill: [{ cpu: "all", ratio: session.lastFill }],
    drainPeriodSeconds: session.drainPeriodMs / 1000,
    programs: programs.map((name) => {
      const p = progStats(session.object.progFd(name));
      return { name, runTimeNs: p.runTimeNs, runCount: p.runCnt };
    }),
    ...processMetrics(),
    build: { version: buildInfo.version, commit: buildInfo.commit },
  });
  let server: MetricsServer;
  try {
    server = startMetricsServer(addr, snapshot);
  } catch (e) {
    stats?.close();
    throw e;
  }
  log.info(`metrics on ${new URL("/metrics", server.url).href}`);
  return {
    close: () => {
      server.stop();
      stats?.close();
    },
  };
}
