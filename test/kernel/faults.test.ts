/**
 * The agent when things go wrong around it: output that cannot be written, a
 * reader that stops reading, events the kernel had to drop. Every failure ends
 * the same way (detached, summary, one line, a status that says so), the agent
 * never spins, and loss is visible while it happens.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fcntl } from "../../src/ffi/libc.ts";
import {
  BIN,
  bpfObjectsOf,
  cpuSeconds,
  execTimes,
  type Proc,
  parseEvents,
  parseSummary,
  type RunningAgent,
  spawnProc,
  startAgent,
  stillLive,
  uniqueTrue,
  waitAttached,
  warmedUp,
} from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

const dirs: string[] = [];
const mounts: string[] = [];
const fds: number[] = [];
afterAll(() => {
  for (const fd of fds) closeSync(fd);
  for (const m of mounts) Bun.spawnSync(["umount", m]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

/**
 * The maps of an agent that is loading its programs, as soon as it has any
 * (the load's first step creates them): a signal sent then lands inside the
 * load. Empty if the process went away or never got that far.
 */
async function mapsWhileLoading(p: Proc): Promise<number[]> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && existsSync(`/proc/${p.pid}`)) {
    try {
      const maps = bpfObjectsOf(p.pid).maps;
      if (maps.length > 0) return maps;
    } catch {
      // Gone between the check and the read: the caller's expect says so.
    }
    await Bun.sleep(2);
  }
  return [];
}

/** The agent (or another command) with stdout redirected by the shell, as a user would. */
function withStdout(target: string, args: string[]): Proc {
  return spawnProc(["bash", "-c", `exec "$0" "$@" >${target}`, BIN, ...args]);
}

/** A stack trace, or the source dump Bun prints with an uncaught error. */
function hasTrace(stderr: string): boolean {
  return /^\s+at\s/m.test(stderr) || /^\s*\d+ \| /m.test(stderr) || /^error: /m.test(stderr);
}

/** The agent's stderr lines that are neither logs nor the summary: its final word. */
function finalLines(stderr: string): string[] {
  return stderr
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("dual-slot:"));
}

/** A named pipe whose read end this test holds open and never reads. */
function stalledPipe(): { path: string; fd: number } {
  const path = join(scratch("ds-stall-"), "fifo");
  const r = Bun.spawnSync(["mkfifo", path]);
  if (r.exitCode !== 0) throw new Error("mkfifo failed");
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  fds.push(fd);
  return { path, fd };
}

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;

/**
 * The agent enlarges a pipe on stdout to 1 MiB; shrinking it back (as a
 * lower pipe-max-size would) lets a few hundred execs fill it.
 */
function shrinkPipe(fd: number): void {
  expect(fcntl(fd, F_GETPIPE_SZ, 0)).toBe(1024 * 1024);
  expect(fcntl(fd, F_SETPIPE_SZ, 64 * 1024)).toBe(64 * 1024);
}

describeKernel("faults (root)", { commands: ["bash", "mount", "umount", "mkfifo", "bpftool", "setpriv"] }, () => {
  test("stdout on a full filesystem: exit 1 with one line, summary printed, nothing left attached, no stack trace", async () => {
    const dir = scratch("ds-full-");
    const mnt = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
    expect(mnt.exitCode).toBe(0);
    mounts.push(dir);
    const t = uniqueTrue("dsful");
    dirs.push(t.dir);
    const p = withStdout(`"${dir}/o.json"`, ["--json", "--duration", "30"]);
    await waitAttached(p);
    const held = bpfObjectsOf(p.pid).progs;
    expect(held.length).toBeGreaterThanOrEqual(1);
    // ~400 bytes per event: a few hundred fill 64 KiB; keep going until the agent gives up.
    const deadline = Date.now() + 15_000;
    while (!p.stderr().includes("summary:") && Date.now() < deadline) await execTimes(t.path, 50);
    const { stderr, code } = await p.finish(undefined, 10_000);
    expect(code).toBe(1);
    expect(hasTrace(stderr)).toBe(false);
    const s = parseSummary(stderr);
    expect(s.stop).toBe("error");
    expect(Number(s.printed)).toBeGreaterThan(0);
    // The write that failed held events: they count as dropped, not as printed.
    expect(Number(s.dropped_output)).toBeGreaterThan(0);
    expect(Number(s.printed) + Number(s.dropped_output)).toBeLessThanOrEqual(Number(s.events));
    const last = finalLines(stderr);
    expect(last).toHaveLength(1);
    expect(last[0]).toStartWith("dual-slot: cannot write to stdout: ENOSPC");
    expect(await stillLive({ progs: held })).toEqual({ progs: [], maps: [] });
    const names = await new Response(Bun.spawn(["bpftool", "-j", "prog", "show"], { stdout: "pipe" }).stdout).text();
    const mine = (JSON.parse(names || "[]") as Array<{ id: number; name?: string }>).filter((x) => held.includes(x.id));
    expect(mine).toEqual([]);
  }, 60_000);

  test("stdout on /dev/full: exit 1, one line, no stack trace", async () => {
    const t = uniqueTrue("dsdf");
    dirs.push(t.dir);
    const p = withStdout("/dev/full", ["--json", "--events", "exec", "--duration", "3"]);
    await waitAttached(p);
    await execTimes(t.path, 5);
    const { stderr, code } = await p.finish(undefined, 15_000);
    expect(code).toBe(1);
    expect(hasTrace(stderr)).toBe(false);
    expect(parseSummary(stderr).stop).toBe("error");
    expect(finalLines(stderr)).toEqual([expect.stringMatching(/^dual-slot: cannot write to stdout: ENOSPC/)]);
  }, 30_000);

  test("faults before anything attaches (no privilege, a refused --output, a load that fails) end with the summary too", async () => {
    const runs: Array<[string[], RegExp]> = [
      [
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "--duration", "1"],
        /^dual-slot: privileges: euid 65534 without CAP_BPF\+CAP_PERFMON/,
      ],
      [[BIN, "--duration", "1", "--output", "/proc/nonexistent/ev.json"], /^dual-slot: refusing to write there: /],
      [
        ["bash", "-c", 'ulimit -n 40; exec "$0" "$@"', BIN, "--duration", "1"],
        /^dual-slot: bpf_object__load failed: Too many open files \(EMFILE\).*; libbpf: (?!libbpf)/,
      ],
    ];
    for (const [cmd, last] of runs) {
      const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
      const stderr = r.stderr.toString();
      expect(r.exitCode).toBe(1);
      expect(hasTrace(stderr)).toBe(false);
      const summary = parseSummary(stderr);
      expect([summary.events, summary.lost, summary.printed, summary.stop]).toEqual(["0", "0", "0", "error"]);
      expect(finalLines(stderr)).toEqual([expect.stringMatching(last)]);
    }
  }, 60_000);

  test("stdout closed at start (>&-): a refusal with the zero summary, not a clean run into /dev/null; doctor too", async () => {
    for (const args of [["--duration", "1"], ["doctor"]]) {
      const r = Bun.spawnSync(["bash", "-c", 'exec "$0" "$@" >&-', BIN, ...args], { stderr: "pipe" });
      const stderr = r.stderr.toString();
      expect({ args, code: r.exitCode }).toEqual({ args, code: 1 });
      expect(finalLines(stderr)).toEqual([
        "dual-slot: cannot write to stdout: EBADF (it was closed when the agent started: what it printed would reach no one)",
      ]);
      if (args[0] === "--duration") expect(parseSummary(stderr).stop).toBe("error");
    }
    // A stdout sent to /dev/null on purpose is a choice, not a fault.
    const chosen = Bun.spawnSync([
      "bash",
      "-c",
      'exec "$0" "$@" >/dev/null',
      BIN,
      "--duration",
      "1",
      "--events",
      "exec",
    ]);
    expect(chosen.exitCode).toBe(0);
  }, 60_000);

  test("a reader that stops reading: no spin, draining goes on, SIGTERM ends the run (stdout is never waited on), dropped_output counted, exit 3", async () => {
    const fifo = stalledPipe();
    const t = uniqueTrue("dsstl");
    dirs.push(t.dir);
    // A 64 KiB bound: the burst overflows the pipe and the bound while the reader sleeps.
    // --events exec: what is timed is the agent's stop with stdout stalled, not the kernel's release
    // of each syscall tracepoint link (about 40 ms each, one after the other, in perf_trace_destroy).
    const p = withStdout(`"${fifo.path}"`, ["--json", "--events", "exec", "--output-buffer", "64K", "--verbose"]);
    await waitAttached(p);
    await warmedUp(p.stderr);
    shrinkPipe(fifo.fd);
    await execTimes(t.path, 600);
    await Bun.sleep(300);
    // Stalled, the agent idles: well under a CPU-second over a second of wall time.
    const c0 = cpuSeconds(p.pid);
    await Bun.sleep(1000);
    expect(cpuSeconds(p.pid) - c0).toBeLessThan(0.3);
    // Dropped output is told live, not only in the summary.
    expect(p.stderr()).toMatch(
      /dropped \d+ output lines in the last [\d.]+s: more waited for stdout than the output buffer holds \(--output-buffer [\d.]+ [KM]iB\)/,
    );

    // A stop that waited for the stalled reader would never come: the guard's SIGKILL would end it (no exit code).
    const { stderr, code } = await p.finish("SIGTERM", 10_000);
    expect(code).toBe(3);
    expect(hasTrace(stderr)).toBe(false);
    const s = parseSummary(stderr);
    expect(s.stop).toBe("SIGTERM");
    expect(Number(s.dropped_output)).toBeGreaterThan(0);
    expect(Number(s.lost)).toBe(0);
  }, 60_000);

  test("SIGTERM with a full pipe and the default bound also ends the run", async () => {
    const fifo = stalledPipe();
    const t = uniqueTrue("dsst2");
    dirs.push(t.dir);
    const p = withStdout(`"${fifo.path}"`, ["--json", "--events", "exec"]);
    await waitAttached(p);
    shrinkPipe(fifo.fd);
    await execTimes(t.path, 400);
    await Bun.sleep(300);
    // As above: ended by itself (exit 3), not by the guard's SIGKILL.
    const { stderr, code } = await p.finish("SIGTERM", 10_000);
    expect(code).toBe(3);
    expect(Number(parseSummary(stderr).dropped_output)).toBeGreaterThan(0);
  }, 60_000);

  for (const transport of ["perf", "ringbuf"] as const) {
    test(`forced loss (${transport}): a live warning, an in-band lost record in the NDJSON, exit 3`, async () => {
      const t = uniqueTrue("dslos");
      dirs.push(t.dir);
      const small = transport === "perf" ? ["--pages", "1"] : ["--ring-size", "4096"];
      const agent = await startAgent([
        "--json",
        "--events",
        "exec",
        "--transport",
        transport,
        ...small,
        "--interval",
        "2000",
      ]);
      await execTimes(t.path, 300);
      // The next drain (the period shrinks while buffers fill) reports the loss.
      const deadline = Date.now() + 5_000;
      while (!/lost \d+ events/.test(agent.stderrSoFar()) && Date.now() < deadline) await Bun.sleep(50);
      const live = agent.stderrSoFar();
      const { stdout, stderr, code } = await agent.stop("SIGINT");
      expect(code).toBe(3);
      expect(hasTrace(stderr)).toBe(false);
      if (transport === "perf")
        expect(live).toMatch(/lost \d+ events on CPU \d+(, \d+ on CPU \d+)* in the last [\d.]+s/);
      else expect(live).toMatch(/lost \d+ events in the last [\d.]+s: the ring buffer shared by all CPUs was full/);

      // parseEvents validates every line against the schema, the lost record included.
      const records = parseEvents(stdout) as Array<Record<string, unknown>>;
      const lost = records.filter((r) => r.event === "lost");
      expect(lost.length).toBeGreaterThan(0);
      for (const r of lost) {
        expect(typeof r.time).toBe("string");
        expect(Number.isNaN(Date.parse(r.time as string))).toBe(false);
        expect(Number.isInteger(r.cpu)).toBe(true);
        expect(r.lost as number).toBeGreaterThan(0);
      }
      const s = parseSummary(stderr);
      const total = lost.reduce((n, r) => n + (r.lost as number), 0);
      expect(total).toBe(Number(s.output_fail));
      expect(Number(s.lost)).toBeGreaterThan(0);
      expect(finalLines(stderr)).toEqual([expect.stringMatching(/^dual-slot: stopped, but events were lost: /)]);
    }, 60_000);
  }

  test("forced loss in the table: a LOST row", async () => {
    const t = uniqueTrue("dslot");
    dirs.push(t.dir);
    const agent = await startAgent(["--events", "exec", "--pages", "1", "--interval", "2000"]);
    await execTimes(t.path, 300);
    await Bun.sleep(300);
    const { stdout, code } = await agent.stop("SIGINT");
    expect(code).toBe(3);
    expect(stdout).toMatch(/^LOST {9}- {8}- {8}- {16}cpu=\d+ lost=\d+ time=\S+Z$/m);
  }, 60_000);

  /**
   * An agent run with a loop of execs of `t` going on through `during` (which starts it and waits)
   * and the SIGINT after: nothing may be lost, and the loop's execs must really be in the output.
   */
  async function noLossWhileExecing(
    t: { path: string; comm: string },
    during: () => Promise<RunningAgent>,
  ): Promise<{ signalledAt: number; stoppedAt: number; lastAt: number }> {
    const loop = Bun.spawn(["bash", "-c", `while :; do "${t.path}"; done`], { stdout: "ignore", stderr: "ignore" });
    try {
      const agent = await during();
      const signalledAt = Date.now();
      const { stdout, stderr, code } = await agent.stop("SIGINT");
      const stoppedAt = Date.now();
      const s = parseSummary(stderr);
      expect({ code, lost: s.lost, output_fail: s.output_fail }).toEqual({ code: 0, lost: "0", output_fail: "0" });
      const ours = parseEvents(stdout).filter((e) => e.comm === t.comm);
      expect(ours.length).toBeGreaterThan(100);
      // "2026-12-07T01:27:55.089889002Z": to the millisecond.
      const lastAt = Math.max(...ours.map((e) => Date.parse(`${String(e.time).slice(0, 23)}Z`)));
      return { signalledAt, stoppedAt, lastAt };
    } finally {
      loop.kill("SIGKILL");
      await loop.exited;
    }
  }

  test("execs that go on while the default set detaches (seconds: a grace period per tracepoint): records end at the stop, nothing lost", async () => {
    const t = uniqueTrue("dsdet");
    dirs.push(t.dir);
    // 64 pages: 256 KiB per CPU, a few hundred exec records each. The loop runs through the stop; the
    // exec program's link goes last, so it fires all through the ~70 links' release. Its records
    // used to go on for those seconds (drained between links); the stop switch (ds_stop) ends them
    // at the signal. The loop starts once the warm-up is over.
    const agent = await startAgent(["--json", "--comm", t.comm, "--pages", "64", "--verbose"]);
    await warmedUp(agent.stderrSoFar);
    const { signalledAt, stoppedAt, lastAt } = await noLossWhileExecing(t, async () => {
      await Bun.sleep(1_000);
      return agent;
    });
    // The release took seconds (else this proves nothing); the last exec recorded came within a
    // moment of the signal (its handling, between two of the loop's execs), not near the end.
    expect(stoppedAt - signalledAt).toBeGreaterThan(1_500);
    expect(lastAt - signalledAt).toBeLessThan(500);
  }, 60_000);

  test("execs that go on while the agent warms up after attaching (0.5-1 s of CPU) are drained, not lost", async () => {
    const t = uniqueTrue("dswrm");
    dirs.push(t.dir);
    // exec alone (a quick detach), 64 pages (256 KiB per CPU, still less than what a CPU gets over the
    // warm-up's 1.5-3 s of the loop, 1,000-3,000 records): the loop runs from before the attach, so
    // its records pour in all through the warm-up; in one block, with no drain, they overflowed the
    // buffers; in 10,000-record steps, each after ~100 ms of handing code pages back, they still did
    // on a busy host. Drained after every 1,000 records and every piece of that kernel work (10-50 ms
    // apart), a small part of a buffer waits at a time.
    await noLossWhileExecing(t, async () => {
      const agent = await startAgent(["--json", "--events", "exec", "--comm", t.comm, "--pages", "64"]);
      await Bun.sleep(2_500);
      return agent;
    });
  }, 60_000);

  test("a clean run with nothing lost still exits 0, with dropped_output=0 in a logfmt summary", async () => {
    const agent = await startAgent(["--json", "--events", "exec"]);
    await Bun.sleep(300);
    const { stderr, code } = await agent.stop("SIGTERM");
    expect(code).toBe(0);
    const line = stderr.split("\n").find((l) => l.startsWith("summary:"))!;
    expect(line).toMatch(/^summary:( [a-z_]+=("([^"\\]|\\.)*"|[^\s"]+))+$/);
    expect(parseSummary(stderr).dropped_output).toBe("0");
  }, 30_000);

  test("SIGTERM while the programs load (systemd's stop during start-up): the run stops once loaded, before attaching, with its summary, exit 0, nothing left", async () => {
    // The default set: the longest load (~0.5 s here). The handlers are installed before it starts,
    // and its first step creates the maps, so the signal lands inside the load.
    const p = spawnProc([BIN, "run", "--json"]);
    const maps = await mapsWhileLoading(p);
    expect(maps.length).toBeGreaterThan(0);
    expect(p.stderr()).not.toContain("attached");
    const { stderr, code } = await p.finish("SIGTERM", 30_000);
    expect(hasTrace(stderr)).toBe(false);
    expect(code).toBe(0);
    expect(parseSummary(stderr).stop).toBe("SIGTERM");
    // Handled before the attach: no program ever ran, no event was read.
    expect(stderr).not.toContain("attached");
    expect(parseSummary(stderr).kernel_events).toBe("0");
    expect(await stillLive({ maps })).toEqual({ progs: [], maps: [] });
  }, 60_000);

  test("SIGHUP with --output while the programs load (a reload or logrotate during start-up): the agent attaches and goes on, writing to its file", async () => {
    // Its default action would end the agent for good: systemd does not restart a unit a SIGHUP ended.
    const out = join(scratch("ds-hup-"), "events.json");
    const p = spawnProc([BIN, "run", "--json", "--output", out]);
    const maps = await mapsWhileLoading(p);
    expect(maps.length).toBeGreaterThan(0);
    expect(p.stderr()).not.toContain("attached");
    process.kill(p.pid, "SIGHUP");
    await waitAttached(p);
    const t = uniqueTrue("dshup");
    dirs.push(t.dir);
    const pids = await execTimes(t.path, 3);
    for (let i = 0; i < 100 && !pids.every((pid) => readText(out).includes(`"pid":${pid},`)); i++) await Bun.sleep(50);
    const { stderr, code } = await p.finish("SIGTERM", 30_000);
    expect(hasTrace(stderr)).toBe(false);
    expect(code).toBe(0);
    expect(parseSummary(stderr).stop).toBe("SIGTERM");
    const seen = parseEvents(readText(out)).filter((e) => e.event === "exec" && e.comm === t.comm);
    expect(seen.map((e) => e.pid).sort()).toEqual([...pids].sort());
    expect(await stillLive({ maps })).toEqual({ progs: [], maps: [] });
  }, 60_000);

  test("SIGHUP while the stop waits for the ClickHouse sink (--output, --allow-exe): a reload then is ignored, not a crash", async () => {
    // A server that takes the connection and never answers: the stop's wait for the sink's last batch
    // lasts its bound, and a logrotate's SIGHUP then used to re-resolve --allow-exe into closed maps.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const out = join(scratch("ds-hup-stop-"), "events.json");
      const p = spawnProc([
        BIN,
        "run",
        "--json",
        "--events",
        "exec",
        "--output",
        out,
        "--allow-exe",
        "/bin/true",
        "--sink",
        `clickhouse+http://127.0.0.1:${silent.port}/db.events`,
        "--sink-flush",
        "0.1",
      ]);
      await waitAttached(p);
      await execTimes("/bin/ls", 3, ["/"]);
      await Bun.sleep(1_500); // a batch sealed and its insert under way, unanswered
      process.kill(p.pid, "SIGTERM");
      await Bun.sleep(300);
      process.kill(p.pid, "SIGHUP");
      const { stderr, code } = await p.finish(undefined, 30_000);
      expect(hasTrace(stderr)).toBe(false);
      expect([code === 0 || code === 3, parseSummary(stderr).stop]).toEqual([true, "SIGTERM"]);
    } finally {
      silent.stop(true);
    }
  }, 60_000);

  test("stats, mem, doctor, lab on /dev/full: one line, exit 1", async () => {
    const agent = await startAgent(["--json", "--events", "exec"]);
    try {
      for (const cmd of [["stats"], ["stats", "--watch"], ["mem"], ["doctor"]]) {
        const { stderr, code } = await withStdout("/dev/full", cmd).finish(undefined, 20_000);
        expect({ cmd, code }).toEqual({ cmd, code: 1 });
        expect(hasTrace(stderr)).toBe(false);
        const last = stderr.trim().split("\n").at(-1);
        expect(last).toStartWith("dual-slot: cannot write to stdout: ENOSPC");
        expect(finalLines(stderr)).toHaveLength(1);
      }
    } finally {
      await agent.stop("SIGINT");
    }
    // The lab too (it ran its experiments, then could not say what they found).
    const lab = await withStdout("/dev/full", ["lab", "--execs", "1", "--irq-execs", "1"]).finish(undefined, 60_000);
    expect(lab.code).toBe(1);
    expect(finalLines(lab.stderr)).toEqual([expect.stringMatching(/^dual-slot: cannot write to stdout: ENOSPC/)]);
  }, 120_000);

  test("stats, mem, doctor into a closed pipe: a quiet, normal stop", async () => {
    const agent = await startAgent(["--json", "--events", "exec"]);
    try {
      for (const cmd of [["stats"], ["stats", "--watch"], ["mem"], ["doctor"]]) {
        // Both ends opened, then the read end closed: the first write is EPIPE.
        const { path, fd: r } = stalledPipe();
        fds.pop();
        const w = openSync(path, constants.O_WRONLY);
        closeSync(r);
        const p = Bun.spawn([BIN, ...cmd], { stdout: w, stderr: "pipe", stdin: "ignore" });
        closeSync(w);
        const killer = setTimeout(() => p.kill("SIGKILL"), 20_000);
        const code = await p.exited;
        clearTimeout(killer);
        const stderr = await new Response(p.stderr).text();
        expect({ cmd, code }).toEqual({ cmd, code: 0 });
        expect(hasTrace(stderr)).toBe(false);
        expect(finalLines(stderr)).toEqual([]);
      }
    } finally {
      await agent.stop("SIGINT");
    }
  }, 90_000);
});
