/**
 * The exit event (--events exit): real processes that exit with a status, die
 * by a signal, or run for a known time, each asserted field by field; and an
 * unselected event's program is not even loaded.
 */
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readlinkSync, realpathSync, rmSync, unlinkSync } from "node:fs";
import { release } from "node:os";
import path from "node:path";
import { bpfObjectsOf, type JsonEvent, parseEvents, parseSummary, startAgent } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

type Exit = JsonEvent & {
  exit_code: number;
  signal: number;
  core_dumped: boolean;
  runtime_ns: string;
  exe: string;
  exe_deleted: boolean;
  exe_memfd: boolean;
  truncated: boolean;
};

/** What /proc/PID/exe points to, or "" (not there yet, or gone). */
function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
}

/** Since 6.16 sched_process_exit fires before exit_mm(): the exit has its exe. Before, it is empty. */
const EXE_AT_EXIT = (() => {
  const [major = 0, minor = 0] = release().split(".").map(Number);
  return major > 6 || (major === 6 && minor >= 16);
})();
const exeAtExit = (p: string) => (EXE_AT_EXIT ? p : "");

/** Runs `sh -c script` and returns its pid once it is gone. */
async function sh(script: string): Promise<number> {
  const p = Bun.spawn(["/bin/sh", "-c", script], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  await p.exited;
  return p.pid;
}

describeKernel("exit events (root)", { commands: ["bpftool"] }, () => {
  test("exit status, terminating signal and run time, from the real processes", async () => {
    const agent = await startAgent(["--json", "--events", "exec,exit"]);
    const status = await sh("exit 7");
    const killed = await sh("kill -KILL $$");
    const slept = await sh("sleep 0.3");
    await Bun.sleep(300);
    const { stdout, stderr } = await agent.stop();
    const events = parseEvents(stdout);
    const exitOf = (pid: number) => events.find((e) => e.event === "exit" && e.pid === pid) as Exit | undefined;

    const s = exitOf(status);
    expect(s).toBeDefined();
    expect([s!.exit_code, s!.signal, s!.core_dumped]).toEqual([7, 0, false]);
    expect([s!.tid, s!.ppid, s!.comm]).toEqual([status, process.pid, "sh"]);
    expect([s!.exe, s!.exe_deleted, s!.exe_memfd, s!.truncated]).toEqual([
      exeAtExit(realpathSync("/bin/sh")),
      false,
      false,
      false,
    ]);
    expect(s!.heap.slot1_intact).toBe(true);

    const k = exitOf(killed);
    expect(k).toBeDefined();
    expect([k!.exit_code, k!.signal]).toEqual([0, 9]);

    const t = exitOf(slept);
    expect(t).toBeDefined();
    expect(t!.exit_code).toBe(0);
    // `sh -c "sleep 0.3"` lives at least the 0.3 s of its sleep, and not minutes.
    const runtime = Number(BigInt(t!.runtime_ns)) / 1e9;
    expect(runtime).toBeGreaterThanOrEqual(0.3);
    expect(runtime).toBeLessThan(30);

    // The exec of each process comes before its exit.
    const order = events.filter((e) => e.pid === status).map((e) => e.event);
    expect(order.indexOf("exec")).toBeLessThan(order.indexOf("exit"));
    expect(parseSummary(stderr).lost).toBe("0");
  }, 30_000);

  test("--events exit alone: no exec events, and ds_exec is not loaded", async () => {
    const agent = await startAgent(["--json", "--events", "exit"]);
    const pid = await sh("exit 3");
    await Bun.sleep(300);
    // This agent's own programs (others may run on the host at the same time).
    const programs = bpfObjectsOf(agent.pid)
      .progs.map((id) => Bun.spawnSync(["bpftool", "prog", "show", "id", String(id)]).stdout.toString())
      .join("");
    const { stdout } = await agent.stop();
    const events = parseEvents(stdout);
    expect(events.filter((e) => e.event === "exec")).toEqual([]);
    expect((events.find((e) => e.pid === pid) as Exit | undefined)?.exit_code).toBe(3);
    expect(programs).toContain("ds_exit");
    expect(programs).not.toContain("ds_exec");
  }, 30_000);

  test("an exit's executable unlinked while it ran: exe_deleted, with the path it had", async () => {
    const dir = mkdtempSync("/tmp/ds-exit-");
    const bin = path.join(dir, "ds-exit-sleep");
    copyFileSync(realpathSync("/usr/bin/sleep"), bin);
    try {
      const agent = await startAgent(["--json", "--events", "exit"]);
      // Unlinked once it runs the copy (its exe link says so), ended only after: no race with a busy host.
      const p = Bun.spawn([bin, "30"], { stdout: "ignore", stderr: "ignore" });
      const deadline = Date.now() + 10_000;
      while (exeOf(p.pid) !== realpathSync(bin) && Date.now() < deadline) await Bun.sleep(10);
      unlinkSync(bin);
      p.kill("SIGTERM");
      await p.exited;
      await Bun.sleep(300);
      const { stdout } = await agent.stop();
      const e = parseEvents(stdout).find((x) => x.event === "exit" && x.pid === p.pid) as Exit | undefined;
      expect(e).toBeDefined();
      expect([e!.comm, e!.exe, e!.exe_deleted, e!.exe_memfd]).toEqual([
        "ds-exit-sleep",
        exeAtExit(bin),
        EXE_AT_EXIT,
        false,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("--allow-exe drops a trusted binary's exec but not its exit, on every kernel", async () => {
    const sleep = realpathSync("/usr/bin/sleep");
    const agent = await startAgent(["--json", "--events", "exec,exit", "--allow-exe", sleep]);
    const p = Bun.spawn([sleep, "0.1"], { stdout: "ignore", stderr: "ignore" });
    await p.exited;
    await Bun.sleep(300);
    const { stdout, stderr } = await agent.stop();
    const mine = parseEvents(stdout).filter((x) => x.pid === p.pid) as Exit[];
    expect(mine.map((x) => x.event)).toEqual(["exit"]);
    expect(mine[0]!.exe).toBe(exeAtExit(sleep));
    expect(Number(parseSummary(stderr).filtered_kernel)).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("by default only exec is loaded: no exit events", async () => {
    const agent = await startAgent(["--json"]);
    const pid = await sh("exit 5");
    await Bun.sleep(300);
    const { stdout } = await agent.stop();
    const events = parseEvents(stdout).filter((e) => e.pid === pid);
    expect(events.map((e) => e.event)).toEqual(["exec"]);
  }, 30_000);
});
