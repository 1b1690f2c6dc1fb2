/**
 * The agent as a service runs it: events into --output FILE (0600, rotated by
 * size, reopened on SIGHUP the way logrotate asks, without stopping), and
 * --metrics served while it runs, checked with promtool; the environment its
 * unit starts it in.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { SERVICE_ENVIRONMENT, WITHOUT_SERVICE_ENVIRONMENT } from "../../src/service/unit.ts";
import { execTimes, parseEvents, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A root-only directory: --output refuses one that others can write. */
function privateDir(): string {
  const d = mkdtempSync("/var/tmp/ds-out-");
  dirs.push(d);
  return d;
}

function lines(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

describeKernel("service mode (root)", { commands: ["promtool"] }, () => {
  const t = uniqueTrue("dssvc");
  dirs.push(t.dir);

  test("--output: events appended to a 0600 file; SIGHUP after a rename reopens it and the agent goes on", async () => {
    const pidsIn = (p: string) =>
      new Set(
        parseEvents(lines(p))
          .filter((e) => e.comm === t.comm)
          .map((e) => e.pid),
      );
    const d = privateDir();
    const out = join(d, "events.json");
    const agent = await startAgent(["--json", "--events", "exec", "--output", out]);
    const first = await execTimes(t.path, 5);
    // Events reach the file one to two drain periods later (the reorder window): wait for them,
    // so the rename below falls between the two batches.
    for (let i = 0; i < 100 && !first.every((p) => pidsIn(out).has(p)); i++) await Bun.sleep(50);
    renameSync(out, join(d, "events.json.old")); // what logrotate does
    process.kill(agent.pid, "SIGHUP");
    // The reopen made the file again (the agent may still be in its warm-up, which yields to signals
    // between its parts): the second batch can only go there.
    for (let i = 0; i < 100 && !existsSync(out); i++) await Bun.sleep(20);
    const second = await execTimes(t.path, 5);
    await Bun.sleep(300);
    const { stdout, stderr, code } = await agent.stop("SIGTERM");
    expect(code).toBe(0);
    expect(stdout).toBe(""); // events go to the file, not stdout
    expect(stderr).toContain("summary:");
    expect(pidsIn(join(d, "events.json.old"))).toEqual(new Set(first));
    expect(pidsIn(out)).toEqual(new Set(second));
    expect(statSync(out).mode & 0o777).toBe(0o600);
  }, 30_000);

  test("--output rotates past --rotate-size and keeps --rotate-keep files; nothing is lost across them", async () => {
    const d = privateDir();
    const out = join(d, "events.json");
    const agent = await startAgent([
      "--json",
      "--events",
      "exec",
      "--output",
      out,
      "--rotate-size",
      "4K",
      "--rotate-keep",
      "50",
    ]);
    const pids: number[] = [];
    for (let i = 0; i < 10; i++) {
      pids.push(...(await execTimes(t.path, 5)));
      await Bun.sleep(150); // several drains: several writes, several rotations
    }
    await Bun.sleep(300);
    const { code } = await agent.stop("SIGTERM");
    expect(code).toBe(0);
    const files = [out, ...Array.from({ length: 50 }, (_, i) => `${out}.${i + 1}`)].filter(existsSync);
    expect(files.length).toBeGreaterThan(2);
    const seen = new Set(
      files.flatMap((f) =>
        parseEvents(lines(f))
          .filter((e) => e.comm === t.comm)
          .map((e) => e.pid),
      ),
    );
    expect(seen).toEqual(new Set(pids));
  }, 60_000);

  test("--metrics: a live Prometheus endpoint that promtool accepts, counting real events", async () => {
    const agent = await startAgent(["--json", "--metrics", "127.0.0.1:0"]);
    // The bound port is logged; port 0 lets the kernel pick a free one.
    const m = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(agent.stderrSoFar());
    expect(m).not.toBeNull();
    const url = `http://127.0.0.1:${m![1]}/metrics`;
    await execTimes(t.path, 20);
    await Bun.sleep(400);
    const body = await (await fetch(url)).text();
    const check = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(body) });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.exitCode).toBe(0);
    const events = [...body.matchAll(/^dual_slot_events_total\{type="exec",cpu="\d+"\} (\d+)$/gm)].reduce(
      (a, x) => a + Number(x[1]),
      0,
    );
    expect(events).toBeGreaterThanOrEqual(20);
    expect(body).toMatch(/^dual_slot_bpf_run_count_total\{program="ds_exec"\} [1-9]\d*$/m);
    expect((await fetch(url.replace("/metrics", "/other"))).status).toBe(404);
    const { code, stderr } = await agent.stop("SIGTERM");
    // The summary says why when it is not 0 (lost, dropped_output: the whole host is traced).
    expect({ code, summary: code === 0 ? "" : stderr.slice(-600) }).toEqual({ code: 0, summary: "" });
    // The endpoint goes away with the agent.
    expect(
      await fetch(url).then(
        () => "still up",
        () => "down",
      ),
    ).toBe("down");
  }, 30_000);

  test("the unit's environment turns Bun's once-a-second collection off: an idle agent collects at most once in 4 s", async () => {
    /** Collections JavaScriptCore logged (BUN_JSC_logGC) in 4 s of an idle agent, its warm-up done. */
    const idleCollections = async (env: Record<string, string | undefined>) => {
      // A comm no exec has: the host's other execs are not rendered, so the agent allocates next to nothing.
      const agent = await startAgent(["--json", "--events", "exec", "--comm", "dsnosuchcomm", "--verbose"], 20_000, {
        ...process.env,
        ...env,
        BUN_JSC_logGC: "1",
      });
      const collections = () => agent.stderrSoFar().match(/=> (Eden|Full)Collection/g)?.length ?? 0;
      for (let i = 0; i < 300 && !agent.stderrSoFar().includes("warm-up:"); i++) await Bun.sleep(50);
      // Counted only after the warm-up, whose own full collections (Bun.gc) are not the timer's.
      const warmedUp = agent.stderrSoFar().includes("warm-up:");
      const before = collections();
      if (warmedUp) await Bun.sleep(4000);
      const during = collections() - before;
      const { code } = await agent.stop("SIGTERM");
      expect(warmedUp).toBe(true);
      expect(code).toBe(0);
      return during;
    };
    expect(await idleCollections(SERVICE_ENVIRONMENT)).toBeLessThanOrEqual(1);
    // What the count sees without it (Bun's default, as `sudo ./dual-slot` starts): one a second.
    expect(await idleCollections(WITHOUT_SERVICE_ENVIRONMENT)).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
