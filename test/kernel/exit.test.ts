/**
 * The exit event (--events exit): real processes that exit with a status, die
 * by a signal, or run for a known time, each asserted field by field; and an
 * unselected event's program is not even loaded.
 */
import { expect, test } from "bun:test";
import { bpfObjectsOf, type JsonEvent, parseEvents, parseSummary, startAgent } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

type Exit = JsonEvent & { exit_code: number; signal: number; core_dumped: boolean; runtime_ns: string };

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

  test("by default only exec is loaded: no exit events", async () => {
    const agent = await startAgent(["--json"]);
    const pid = await sh("exit 5");
    await Bun.sleep(300);
    const { stdout } = await agent.stop();
    const events = parseEvents(stdout).filter((e) => e.pid === pid);
    expect(events.map((e) => e.event)).toEqual(["exec"]);
  }, 30_000);
});
