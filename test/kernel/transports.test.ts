/**
 * The three transports, ordered output across CPUs, drops that are counted
 * rather than hidden, and the built-in benchmark.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { BIN, execTimes, parseEvents, parseSummary, startAgent, uniqueTrue, warmedUp } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

/** Exec records alone, through the ring buffer: each test sizes the ring. */
const EXEC_RINGBUF = ["--json", "--events", "exec", "--transport", "ringbuf"] as const;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The exec records of `t` in `stdout`: one per pid in `pids`, each with its path, `args` and this test as parent. */
function expectExecs(stdout: string, t: { path: string; comm: string }, pids: number[], args: string[]) {
  const ours = parseEvents(stdout).filter((e) => e.comm === t.comm);
  expect(ours.length).toBe(pids.length);
  expect(new Set(ours.map((e) => e.pid))).toEqual(new Set(pids));
  for (const e of ours) {
    expect(e.filename).toBe(t.path);
    expect(e.args).toEqual([t.path, ...args]);
    expect(e.ppid).toBe(process.pid);
  }
  return ours;
}

describeKernel("transports (root)", { commands: ["taskset", "bash"], cpus: [0, 1] }, () => {
  for (const transport of ["perf", "ringbuf", "ringbuf-output"]) {
    test(`${transport}: 500 of 500 known execs, correct fields, lost=0`, async () => {
      const t = uniqueTrue("dstr");
      dirs.push(t.dir);
      const agent = await startAgent(["--json", "--events", "exec", "--transport", transport]);
      const pids = await execTimes(t.path, 500, ["x"]);
      await Bun.sleep(200);
      const { stdout, stderr } = await agent.stop();
      for (const e of expectExecs(stdout, t, pids, ["x"])) {
        expect(e.heap.transport).toBe(transport);
        expect(e.heap.slot1_intact).toBe(true);
      }
      const s = parseSummary(stderr);
      expect(s.lost).toBe("0");
      expect(s.output_fail).toBe("0");
    }, 60_000);
  }

  test("ringbuf: a 128 KiB ring that goes round three times: 500 of 500, the records across its end whole", async () => {
    // The reader maps the ring once (not twice, as the kernel offers): a record that runs past the
    // end is put together from both ends. 500 exec records of 600+ bytes are 2.3+ laps of 128 KiB,
    // and a lap ends inside a record unless one happens to end exactly there.
    const t = uniqueTrue("dslap");
    dirs.push(t.dir);
    const arg = "y".repeat(200);
    const agent = await startAgent([...EXEC_RINGBUF, "--ring-size", "131072", "--verbose"]);
    // Between the warm-up's steps the agent drains 120-140 ms apart: a burst then fills so small a ring.
    await warmedUp(agent.stderrSoFar);
    const pids = await execTimes(t.path, 500, [arg]);
    await Bun.sleep(200);
    const { stdout, stderr } = await agent.stop();
    expectExecs(stdout, t, pids, [arg]);
    const s = parseSummary(stderr);
    expect(s.lost).toBe("0");
    expect(s.malformed).toBe("0");
    expect(Number(s.bytes)).toBeGreaterThan(2 * 131072);
  }, 60_000);

  test("a 4 KiB ring under an exec flood reports its drops, and still stops cleanly", async () => {
    const t = uniqueTrue("dsfl");
    dirs.push(t.dir);
    const agent = await startAgent([
      ...EXEC_RINGBUF,
      "--ring-size",
      "4096",
      "--interval",
      "2000",
      "--metrics",
      "127.0.0.1:0",
    ]);
    await execTimes(t.path, 300);
    await Bun.sleep(2_500); // a drain (every 2 s here) has counted the drops
    const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)\//.exec(agent.stderrSoFar())![1];
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const scraped = [...body.matchAll(/^dual_slot_lost_total\{cpu="\d+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    const { stdout, stderr, code } = await agent.stop();
    expect(code).toBe(3); // stopped cleanly, but events were lost
    const s = parseSummary(stderr);
    // The ring buffer's drops (the kernel's count: it has no LOST records) per CPU, in the metrics and the summary.
    expect(scraped.length).toBeGreaterThan(0);
    expect(scraped.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const perCpu = JSON.parse(s.lost_per_cpu!) as number[];
    expect(perCpu.reduce((a, b) => a + b, 0)).toBe(Number(s.output_fail));
    const got = parseEvents(stdout).filter((e) => e.comm === t.comm).length;
    expect(Number(s.lost)).toBeGreaterThan(0);
    expect(Number(s.lost)).toBe(Number(s.output_fail));
    expect(got).toBeLessThan(300);
    // Every exec is either delivered or counted as dropped: nothing vanishes.
    expect(Number(s.kernel_events) + Number(s.output_fail)).toBeGreaterThanOrEqual(300);
  }, 60_000);

  test("ordered output: a parent's exec prints before its child's, across CPUs", async () => {
    const t = uniqueTrue("dsord");
    dirs.push(t.dir);
    const agent = await startAgent(["--json", "--events", "exec"]);
    // Parent execs bash on CPU 0; its child moves to CPU 1 and execs our binary there.
    for (let i = 0; i < 100; i++) {
      await Bun.spawn(["taskset", "-c", "0", "bash", "-c", `taskset -c 1 ${t.path}; true`]).exited;
    }
    await Bun.sleep(200);
    const { stdout } = await agent.stop();
    const evs = parseEvents(stdout);
    const children = evs.filter((e) => e.comm === t.comm);
    expect(children.length).toBe(100);
    let crossCpu = 0;
    for (const c of children) {
      const at = evs.indexOf(c);
      // Both of the parent's execs (taskset, then bash) happened before it forked the child.
      // (taskset's PATH search also reports each execve that failed before bash was found.)
      const parents = evs.map((e, i) => ({ e, i })).filter(({ e }) => e.pid === c.ppid && e.res === 0);
      expect(parents.map(({ e }) => e.comm)).toEqual(["taskset", "bash"]);
      for (const { i } of parents) expect(i).toBeLessThan(at);
      if (parents[1]!.e.cpu !== c.cpu) crossCpu++;
    }
    expect(crossCpu).toBeGreaterThan(50);
  }, 60_000);

  test("bench --execs 200 --workers 1 completes with every field", async () => {
    const p = Bun.spawn(
      // exec alone: each row loads and detaches its own session, and the default
      // set's ~70 programs would make this test two minutes of attach and detach.
      [
        BIN,
        "bench",
        "--events",
        "exec",
        "--execs",
        "200",
        "--workers",
        "1",
        "--syscall-calls",
        "200000",
        "--json",
        "--flood-rates",
        "10000",
        "--flood-seconds",
        "1",
      ],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    expect(code === 0 ? "ok" : err).toBe("ok");
    const r = JSON.parse(out) as {
      rows: Array<Record<string, unknown>>;
      baseline_rates_per_s: number[];
      syscall_cost: Record<string, number | string>;
    };
    expect(r.baseline_rates_per_s.length).toBe(1);
    // The floor sits on exec's syscall tracepoints: execve's and execveat's enter and exit.
    expect(r.syscall_cost.tracepoints).toBe(4);
    for (const f of ["bare_ns", "floor_ns", "attached_ns", "floor_overhead_ns", "over_floor_ns"])
      expect(typeof r.syscall_cost[f]).toBe("number");
    expect(r.syscall_cost.floor_ns as number).toBeGreaterThan(0);
    expect(r.rows.length).toBe(6 + 3);
    const fields = [
      "workload",
      "transport",
      "encoding",
      "offered_per_s",
      "delivered_per_s",
      "expected",
      "captured",
      "captured_pct",
      "lost",
      "bytes_per_event",
      "agent_cpu_us_per_event",
      "bpf_ns_per_event",
      "slowdown_pct",
    ];
    for (const row of r.rows) {
      for (const f of fields) expect(row).toHaveProperty(f);
      expect(row.bpf_ns_per_event as number).toBeGreaterThan(0);
      // Every exec is delivered or counted lost (fixed events can overflow 64 pages).
      const label = `${row.workload} ${row.transport}/${row.encoding}: captured ${row.captured} lost ${row.lost}`;
      expect((row.captured as number) + (row.lost as number) >= (row.expected as number) ? "accounted" : label).toBe(
        "accounted",
      );
      if (row.workload === "exec") {
        if (row.encoding === "compact") expect(row.captured === 200 ? "all" : label).toBe("all");
        expect(typeof row.slowdown_pct).toBe("number");
      }
    }
  }, 180_000);
});
