/**
 * The slot lab against the real kernel: what the second (and third) slot buys,
 * and the guard catching a helper that grabs a held slot.
 */
import { beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { IRQ_EXECS, type LabRow } from "../../src/lab/experiments.ts";
import { BIN, type JsonEvent, parseEvents, parseSummary, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

type Row = LabRow;

describeKernel("lab (root)", () => {
  let rows: Row[] = [];
  beforeAll(async () => {
    const p = Bun.spawn([BIN, "lab", "--execs", "500", "--json"], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    if (code !== 0) throw new Error(`lab failed: ${err}`);
    rows = (JSON.parse(out) as { rows: Row[] }).rows;
  }, 180_000);

  const row = (name: string): Row => {
    const r = rows.find((x) => x.experiment === name);
    if (r === undefined) throw new Error(`no lab row ${name}`);
    return r;
  };

  test("every experiment saw all its execs, none lost", () => {
    expect(rows.length).toBe(8);
    for (const r of rows) {
      expect(r.events).toBe(r.experiment.startsWith("irq") ? IRQ_EXECS : 500);
      expect(r.lost).toBe(0);
      expect(r.bpf_ns_per_event).toBeGreaterThan(0);
    }
  });

  test("dual: 0 corrupt over 500 execs", () => expect(row("dual").corrupt).toBe(0));
  test("single: at least 95% corrupt", () => expect(row("single").corrupt).toBeGreaterThanOrEqual(475));
  test("nest3 --slots 2 corrupts, --slots 3 does not", () => {
    expect(row("nest3 --slots 2").corrupt).toBeGreaterThanOrEqual(475);
    expect(row("nest3 --slots 3").corrupt).toBe(0);
    expect(row("nest3 --slots 3").slots).toBe(3);
  });
  test("interrupt context: the tick and softirqs clobber Elkeid's shared pair; a pair per context is never clobbered", () => {
    // An interrupt lands inside one exec program in a few hundred: 10,000 execs make it near certain.
    const shared = row("irq --guard");
    expect(shared.clobbers_detected).toBeGreaterThan(0);
    const own = row("irq --guard, a pair per context");
    expect(own.slots).toBe(6);
    expect(own.clobbers_detected).toBe(0);
    expect(own.corrupt).toBe(0);
  });
  test("guard: every injected clobber detected, none without injection", () => {
    expect(row("dual --guard --inject-clobber").clobbers_detected).toBe(500);
    expect(row("dual --guard").clobbers_detected).toBe(0);
    expect(row("dual --guard").corrupt).toBe(0);
  });
});

describeKernel("corruption on live events (root)", () => {
  test("--mode single: table rows say CORRUPT and JSON carries expected vs observed", async () => {
    const agent = await startAgent(["--mode", "single", "--events", "exec", "--json"]);
    const t = uniqueTrue("dslab");
    const child = Bun.spawn([t.path]);
    await child.exited;
    await Bun.sleep(200);
    const { stdout, stderr } = await agent.stop();
    rmSync(t.dir, { recursive: true, force: true });
    // The exec this test made, not whichever exec on the host came first.
    const evs = parseEvents(stdout).filter((ev) => ev.pid === child.pid && ev.comm === t.comm);
    expect(evs).toHaveLength(1);
    const e = evs[0]!.heap as JsonEvent["heap"] & {
      levels: Array<{ intact: boolean; expected: string; observed: string }>;
    };
    expect(e.mode).toBe("single");
    expect(e.slots).toBe(1);
    expect(e.corrupt).toBe(true);
    expect(e.slot1_intact).toBe(false);
    expect(e.levels[0]!.intact).toBe(false);
    expect(e.levels[0]!.expected).not.toBe(e.levels[0]!.observed);
    expect(Number(parseSummary(stderr).corrupt)).toBe(Number(parseSummary(stderr).events));
  }, 30_000);

  test("--guard --inject-clobber: events flagged clobbered, summary counts them", async () => {
    const agent = await startAgent(["--events", "exec", "--guard", "--inject-clobber"]);
    await Bun.spawn(["/bin/true"]).exited;
    await Bun.sleep(200);
    const { stdout, stderr } = await agent.stop();
    const rows = stdout.split("\n").filter((l) => /^(EXEC|CORRUPT) /.test(l));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toContain("CLOBBERED");
    expect(Number(parseSummary(stderr).clobbers)).toBeGreaterThanOrEqual(rows.length);
  }, 30_000);
});
