/**
 * The metrics endpoint (src/metrics/): the exposition text checked by
 * promtool itself, label escaping, and the server on a loopback port.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { escapeLabelValue, type MetricsSnapshot, processMetrics, renderMetrics } from "../../src/metrics/prometheus.ts";
import { type MetricsServer, parseListenAddress, startMetricsServer } from "../../src/metrics/server.ts";
import { inCi } from "../helpers/kernel.ts";

const snapshot: MetricsSnapshot = {
  events: [
    { type: "exec", cpu: 0, count: 1234 },
    { type: "exec", cpu: 1, count: 56 },
  ],
  lostByCpu: [0, 7],
  malformed: 2,
  unframed: 4,
  filteredKernel: 9,
  droppedOutput: 3,
  bufferFill: [
    { cpu: 0, ratio: 0.25 },
    { cpu: 1, ratio: 0 },
  ],
  drainPeriodSeconds: 0.1,
  programs: [
    { name: "ds_exec", runTimeNs: 2_194_000n, runCount: 1000n },
    { name: 'we"ird\\name\n', runTimeNs: 0n, runCount: 18_446_744_073_709_551_615n },
  ],
  ...processMetrics(),
  build: { version: "0.1.0", commit: "03677e2" },
};

describe("exposition format", () => {
  const text = renderMetrics(snapshot);

  test("every metric with HELP and TYPE, values as given", () => {
    for (const name of [
      "dual_slot_events_total",
      "dual_slot_lost_total",
      "dual_slot_malformed_total",
      "dual_slot_unframed_total",
      "dual_slot_filtered_kernel_total",
      "dual_slot_dropped_output_total",
      "dual_slot_buffer_fill_ratio",
      "dual_slot_drain_period_seconds",
      "dual_slot_bpf_run_time_seconds_total",
      "dual_slot_bpf_run_count_total",
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "dual_slot_build_info",
    ]) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge)$`, "m"));
    }
    const lines = text.split("\n");
    expect(lines).toContain('dual_slot_events_total{type="exec",cpu="1"} 56');
    expect(lines).toContain('dual_slot_lost_total{cpu="1"} 7');
    expect(lines).toContain("dual_slot_malformed_total 2");
    expect(lines).toContain("dual_slot_unframed_total 4");
    expect(lines).toContain("dual_slot_filtered_kernel_total 9");
    expect(lines).toContain('dual_slot_buffer_fill_ratio{cpu="0"} 0.25');
    expect(lines).toContain('dual_slot_bpf_run_time_seconds_total{program="ds_exec"} 0.002194');
    // u64 counts keep every digit.
    expect(lines).toContain('dual_slot_bpf_run_count_total{program="we\\"ird\\\\name\\n"} 18446744073709551615');
    expect(lines).toContain('dual_slot_build_info{version="0.1.0",commit="03677e2"} 1');
    expect(text.endsWith("\n")).toBe(true);
  });

  const withSink = { sentRows: 10, waitingRows: 4, dropped: 2, spoolBytes: 512, failures: 3 };
  test("with --sink: the ClickHouse sink's rows sent, waiting and dropped (sink_dropped)", () => {
    expect(text).not.toContain("dual_slot_sink_");
    const lines = renderMetrics({ ...snapshot, sink: withSink }).split("\n");
    expect(lines).toContain("dual_slot_sink_sent_total 10");
    expect(lines).toContain("dual_slot_sink_dropped_total 2");
    expect(lines).toContain("dual_slot_sink_waiting_rows 4");
    expect(lines).toContain("dual_slot_sink_spool_bytes 512");
    expect(lines).toContain("dual_slot_sink_failures_total 3");
  });

  test("label values escaped", () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeLabelValue("plain")).toBe("plain");
  });

  test("an empty snapshot is still valid: families without samples", () => {
    const empty: MetricsSnapshot = {
      ...snapshot,
      events: [],
      lostByCpu: [],
      bufferFill: [],
      programs: [],
    };
    expect(renderMetrics(empty)).toContain("# TYPE dual_slot_events_total counter");
  });

  const promtool = Bun.which("promtool");
  // promtool comes with .ci/setup (Debian's prometheus); under CI its absence fails.
  const check = promtool === null && !inCi() ? test.skip : test;
  check("promtool check metrics: no errors, no lint warnings", () => {
    if (promtool === null) throw new Error("promtool not on $PATH (run .ci/setup: Debian package prometheus)");
    for (const s of [
      snapshot,
      { ...snapshot, events: [], lostByCpu: [], bufferFill: [], programs: [] },
      { ...snapshot, sink: withSink },
    ]) {
      const r = Bun.spawnSync([promtool, "check", "metrics"], { stdin: Buffer.from(renderMetrics(s)) });
      const out = `${r.stdout.toString()}${r.stderr.toString()}`;
      expect(out).toBe("");
      expect(r.exitCode).toBe(0);
    }
    // It does catch mistakes: a counter without _total, and a bad line.
    const bad = Bun.spawnSync([promtool, "check", "metrics"], {
      stdin: Buffer.from("# HELP x y\n# TYPE x counter\nx 1\nnot a metric line\n"),
    });
    expect(bad.exitCode).not.toBe(0);
  });
});

describe("server", () => {
  let server: MetricsServer | undefined;
  afterAll(() => server?.stop());

  test("GET /metrics, 404 elsewhere, 405 for other methods, 500 on a failed snapshot", async () => {
    let fail = false;
    server = startMetricsServer(
      parseListenAddress("127.0.0.1:0"),
      () => {
        if (fail) throw new Error("boom");
        return snapshot;
      },
      0,
    );
    expect(server.port).toBeGreaterThan(0);
    const base = `http://127.0.0.1:${server.port}`;
    const ok = await fetch(`${base}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await ok.text()).toBe(renderMetrics(snapshot));
    for (const path of ["/", "/metrics/", "/metricsx", "/other"]) {
      const r = await fetch(`${base}${path}`);
      expect(r.status).toBe(404);
      await r.text();
    }
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    await post.text();
    fail = true;
    const broken = await fetch(`${base}/metrics`);
    expect(broken.status).toBe(500);
    expect(await broken.text()).toContain("boom");
  });

  test("a port in use is a one-line HostError", () => {
    if (server === undefined) throw new Error("previous test did not start the server");
    expect(() => startMetricsServer({ hostname: "127.0.0.1", port: server!.port }, () => snapshot)).toThrow(
      /cannot listen/,
    );
  });

  test("scrapes closer than a second apart share one snapshot (a scrape flood cannot stall the drains)", async () => {
    let taken = 0;
    const s = startMetricsServer(parseListenAddress("127.0.0.1:0"), () => {
      taken++;
      return snapshot;
    });
    try {
      for (let i = 0; i < 20; i++) expect((await fetch(`http://127.0.0.1:${s.port}/metrics`)).status).toBe(200);
      expect(taken).toBe(1);
    } finally {
      s.stop();
    }
  });

  test("a name that does not resolve says so, not only Bun's EBADF", () => {
    expect(() => startMetricsServer({ hostname: "nosuchhost.invalid", port: 0 }, () => snapshot)).toThrow(
      /cannot listen: .*\(nosuchhost\.invalid is not an IP address: does it resolve here\?\)$/,
    );
  });

  test("addresses", () => {
    expect(parseListenAddress("127.0.0.1:9464")).toEqual({ hostname: "127.0.0.1", port: 9464 });
    expect(parseListenAddress("[::1]:9464")).toEqual({ hostname: "::1", port: 9464 });
    expect(parseListenAddress("localhost:0")).toEqual({ hostname: "localhost", port: 0 });
    for (const bad of [":9464", "9464", "127.0.0.1", "127.0.0.1:65536", "::1:9464", "a b:1", "h:-1"])
      expect(() => parseListenAddress(bad)).toThrow(UsageError);
  });
});
