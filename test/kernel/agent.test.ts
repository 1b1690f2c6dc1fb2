/**
 * The agent end to end, against the real kernel: the compiled executable,
 * real execs, real events.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelAtLeast } from "../../src/ebpf/host-facts.ts";
import { codeRanges } from "../../src/run/code-pages.ts";
import {
  BIN,
  bpfObjectsOf,
  execsOnCpu0,
  execTimes,
  parseEvents,
  parseSummary,
  startAgent,
  stillLive,
  uniqueTrue,
  warmedUp,
} from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";
import { TOOLS } from "../helpers/trigger.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describeKernel("agent (root)", { commands: ["bash", "head", "bpftool", "taskset"] }, () => {
  test("500 execs of a uniquely named /bin/true all arrive, intact and in order", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    const agent = await startAgent(["--json", "--events", "exec"]);
    const pids = await execTimes(t.path, 500);
    await Bun.sleep(300); // two drain intervals: the reorder window holds events that long
    const { stdout, stderr, code } = await agent.stop("SIGINT");
    expect(code).toBe(0);

    const all = parseEvents(stdout);
    const ours = all.filter((e) => e.comm === t.comm);
    expect(ours.length).toBe(500);
    expect(new Set(ours.map((e) => e.pid))).toEqual(new Set(pids));
    for (const e of ours) {
      expect(e.event).toBe("exec");
      expect(e.ppid).toBe(process.pid);
      expect(e.filename).toBe(t.path);
      expect(e.heap.slot1_data).toBe(t.comm);
      expect(e.heap.slot1_intact).toBe(true);
      expect(e.heap.corrupt).toBe(false);
      expect(e.args).toEqual([t.path]);
    }
    // slot0_seq counts every event a CPU serialized: strictly increasing per CPU.
    const last = new Map<number, bigint>();
    for (const e of all) {
      const seq = BigInt(e.heap.slot0_seq);
      const prev = last.get(e.cpu);
      if (prev !== undefined) expect(seq).toBeGreaterThan(prev);
      last.set(e.cpu, seq);
    }
    const s = parseSummary(stderr);
    expect(s.lost).toBe("0");
    expect(s.malformed).toBe("0");
    expect(Number(s.events)).toBe(all.length);
  }, 60_000);

  test("a two-CPU exec storm read in turns within one long drain comes out whole and in kernel-time order", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    // One drain a second: each CPU's buffer holds about a megabyte by then, read 64 KiB a turn,
    // so lines go out turn by turn, bounded by the other CPU's last record read.
    // The storm after the warm-up, whose own drains (10-50 ms apart) would otherwise read it in small bites.
    const agent = await startAgent(["--json", "--events", "exec", "--interval", "1000", "--verbose"]);
    await warmedUp(agent.stderrSoFar);
    const storm = Bun.spawnSync([join(TOOLS, "storm"), "--execs", "4000", "--workers", "2", "--quiet", "--", t.path]);
    expect(storm.exitCode).toBe(0);
    await Bun.sleep(2500);
    const { stdout, stderr, code } = await agent.stop("SIGINT");
    expect(code).toBe(0);
    const all = parseEvents(stdout);
    const ours = all.filter((e) => e.comm === t.comm);
    expect(ours.length).toBe(4000);
    expect(new Set(ours.map((e) => e.cpu)).size).toBe(Math.min(2, navigator.hardwareConcurrency));
    // RFC 3339 with nanoseconds, one zone and width: string order is time order.
    const times = all.map((e) => String(e.time));
    const late = times.findIndex((tm, i) => i > 0 && tm < times[i - 1]!);
    expect(late === -1 ? "in order" : `${times[late - 1]} before ${times[late]}`).toBe("in order");
    expect(parseSummary(stderr).lost).toBe("0");
  }, 60_000);

  // The default set (~70 programs, the tail-call map) once; the other signals
  // with exec alone, whose detach takes a second rather than several.
  for (const [sig, events] of [
    ["SIGINT", []],
    ["SIGTERM", ["--events", "exec"]],
    ["SIGHUP", ["--events", "exec"]],
  ] as const) {
    test(`after ${sig} no program or map of ours is left in the kernel (${events.length ? "exec" : "default set"})`, async () => {
      const agent = await startAgent(["--json", ...events]);
      const held = bpfObjectsOf(agent.pid);
      expect(held.progs.length).toBeGreaterThanOrEqual(1);
      expect(held.maps.length).toBeGreaterThanOrEqual(5);
      const { code, stderr } = await agent.stop(sig);
      expect(code).toBe(0);
      expect(stderr).toContain("summary:");
      // The kernel frees programs and maps after RCU grace periods, not at exit itself: with the default
      // set's ~70 programs, a few seconds on a busy host.
      expect(await stillLive(held)).toEqual({ progs: [], maps: [] });
    }, 60_000);
  }

  // The execs run on CPU 0 only, and every buffer holds all of them if nothing drains it: a loss then
  // says the agent is broken, not that CI's machine was slow to deliver a signal. perf: 32 pages, 128
  // KiB per CPU, SIGIO at 64 KiB; 140 exec records of ~0.65 KiB (~91 KiB) cross that on CPU 0. (With 32
  // KiB per CPU and 200 records on either CPU, a CI run lost some: the second half-ring came before
  // the agent had drained the first.) The ring buffers: one 512 KiB ring, whose doorbell (ds_bell,
  // bpf/transport.bpf.h) the programs ring at 256 KiB; 600 records (~390 KB) cross that and fit.
  for (const [transport, size, execs] of [
    ["perf", ["--pages", "32"], 140],
    ["ringbuf", ["--ring-size", "524288"], 600],
    ["ringbuf-output", ["--ring-size", "524288"], 600],
  ] as const) {
    test(`${transport} (6.10+): a half-full buffer wakes the agent at once (SIGIO), long before its timer's next drain`, async () => {
      const t = uniqueTrue("dswak");
      dirs.push(t.dir);
      const out = mkdtempSync(join(tmpdir(), "dual-slot-wake-"));
      dirs.push(out);
      const file = join(out, "events.ndjson");
      // --interval 10000: after the drains of the warm-up (waited out here: it drains as it goes, and
      // on a slow host it lasts 2-3 s), the timer's next one is 10 s away, so lines in the file before
      // then can only have come from a wake-up.
      const agent = await startAgent([
        ...["--json", "--no-order", "--events", "exec", "--comm", t.comm, "--transport", transport, ...size],
        ...["--interval", "10000", "--output", file, "--verbose"],
      ]);
      const attachedAt = Date.now();
      await warmedUp(agent.stderrSoFar);
      await execsOnCpu0(t.path, execs);
      // The timer's first drain is 10 s after the attach, whatever the warm-up took: look no later
      // than 9 s after it, and leave a wake-up at least a second to show.
      const execsDone = Date.now();
      if (execsDone > attachedAt + 8_000)
        throw new Error(
          `warm-up and execs took ${execsDone - attachedAt} ms: too slow to tell a wake-up from the timer`,
        );
      const lines = () => (existsSync(file) ? readFileSync(file, "utf8").split("\n").length - 1 : 0);
      while (lines() < 40 && Date.now() < attachedAt + 9_000) await Bun.sleep(50);
      const beforeTheTimer = lines();
      const { stderr, code } = await agent.stop("SIGINT");
      // Whichever drain carried them: every exec delivered, nothing lost, a clean stop.
      expect(code).toBe(0);
      expect(parseSummary(stderr).lost).toBe("0");
      const ours = parseEvents(readFileSync(file, "utf8")).filter((e) => e.comm === t.comm);
      expect(ours.length).toBe(execs);
      expect(ours.every((e) => e.heap.transport === transport)).toBe(true);
      if (!kernelAtLeast([6, 10])) {
        // Before 6.10 a BPF program's perf output sends no SIGIO: the agent must not have counted on one.
        expect(beforeTheTimer).toBe(0);
        return;
      }
      expect(beforeTheTimer).toBeGreaterThanOrEqual(40);
    }, 60_000);
  }

  test("an idle agent keeps little of its executable resident: the warm-up's compilers go back after it", async () => {
    // Written back first: a page the build just wrote is dirty, and reclaim keeps dirty pages.
    const fd = openSync(BIN, "r");
    fsyncSync(fd);
    closeSync(fd);
    const agent = await startAgent(["--json", "--comm", "nonesuch-idle", "--verbose"]);
    try {
      await warmedUp(agent.stderrSoFar);
      const exe = readlinkSync(`/proc/${agent.pid}/exe`);
      const resident = codeRanges(readFileSync(`/proc/${agent.pid}/smaps`, "latin1"), exe).reduce(
        (kib, r) => kib + r.rssKiB,
        0,
      );
      // 8.6-9.4 MiB here once the last step's compiles are handed back too (the collection after it
      // faults the collector back); 11.2-16.3 MiB when only each step's start was (the JIT's compilers,
      // which an idle agent does not run, stayed).
      expect(resident).toBeGreaterThan(1024);
      expect(resident).toBeLessThan(10.25 * 1024);
    } finally {
      const { code, stderr } = await agent.stop("SIGINT");
      expect(code).toBe(0);
      expect(stderr).toMatch(/MiB of the executable's pages handed back/);
    }
  }, 60_000);

  test("`dual-slot | head -3` ends cleanly when head goes away", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    const sh = Bun.spawn(["bash", "-c", `"${BIN}" 2>/tmp/ds-head.err | head -3; echo "rc=\${PIPESTATUS[0]}"`], {
      stdout: "pipe",
      stderr: "pipe",
    });
    // Events make the agent write, and discover the closed pipe.
    const started = Date.now();
    let out = "";
    const outP = new Response(sh.stdout).text().then((s) => (out = s));
    while (sh.exitCode === null && Date.now() - started < 15_000) {
      await execTimes(t.path, 5);
      await Bun.sleep(100);
    }
    await sh.exited;
    await outP;
    const lines = out.trim().split("\n");
    expect(lines.slice(0, 3).join("\n")).toContain("Monitoring dual-slot heap usage");
    expect(lines.at(-1)).toBe("rc=0");
    const err = await Bun.file("/tmp/ds-head.err").text();
    expect(parseSummary(err).stop).toBe("stdout closed");
  }, 30_000);

  test("`dual-slot --comm nobody | head -3` ends with head, even with no event to write", async () => {
    const started = Date.now();
    const sh = Bun.spawn(
      ["bash", "-c", `"${BIN}" --comm no-such-comm 2>/tmp/ds-idle.err | head -3 >/dev/null; echo "\${PIPESTATUS[0]}"`],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const out = await new Response(sh.stdout).text();
    expect(out.trim()).toBe("0");
    // Not a timing figure, a hang check: the default set loads, warms up and detaches ~70 programs in
    // seconds (4-5 s of detach here, more on a busy host).
    expect(Date.now() - started).toBeLessThan(45_000);
    expect(parseSummary(await Bun.file("/tmp/ds-idle.err").text()).stop).toBe("stdout closed");
  }, 60_000);

  test("--count stops after exactly N events, --comm filters", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    const agent = await startAgent(["--json", "--events", "exec", "--comm", t.comm, "--count", "7"]);
    await execTimes(t.path, 20);
    const deadline = Date.now() + 5000;
    while (!agent.stderrSoFar().includes("summary:") && Date.now() < deadline) await Bun.sleep(50);
    const { stdout, stderr } = await agent.stop("SIGINT");
    const evs = parseEvents(stdout);
    expect(evs.length).toBe(7);
    expect(evs.every((e) => e.comm === t.comm)).toBe(true);
    expect(parseSummary(stderr).stop).toBe("count");
  }, 30_000);
});
