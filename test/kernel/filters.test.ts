/**
 * The kernel-side filters (bpf/filter.bpf.h) on real execs: what each one
 * keeps, what it drops, and that every drop is counted as filtered_kernel in
 * the summary line and in `dual-slot stats`. The binaries are fresh copies of
 * /bin/true under unique names, so other work on the host can neither match
 * our filters nor be mistaken for our events.
 */
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  BIN,
  execTimes,
  type JsonEvent,
  parseEvents,
  parseSummary,
  type RunningAgent,
  startAgent,
  uniqueTrue,
} from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

const ARCH = process.arch === "arm64" ? "arm64" : "x64";
const TRIGGER = join(import.meta.dir, "../../out/workloads", ARCH, "trigger");
const NOBODY = 65534;

const cleanup: Array<() => void> = [];
afterAll(() => {
  for (const c of cleanup.reverse()) {
    try {
      c();
    } catch {
      // Best effort: a leftover temp file must not fail the suite.
    }
  }
});

function binary(prefix: string): { path: string; comm: string } {
  const t = uniqueTrue(prefix);
  cleanup.push(() => rmSync(t.dir, { recursive: true, force: true }));
  return t;
}

async function stop(agent: RunningAgent): Promise<{ events: JsonEvent[]; summary: Record<string, string> }> {
  await Bun.sleep(300); // the last records reach the buffer and one drain
  const r = await agent.stop();
  if (r.code !== 0) throw new Error(`agent exited ${r.code}: ${r.stderr}`);
  return { events: parseEvents(r.stdout), summary: parseSummary(r.stderr) };
}

async function statsOf(pid: number): Promise<{ total: { filtered_kernel: number } }> {
  const p = Bun.spawn([BIN, "stats", "--json", "--pid", String(pid)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`stats exited ${code}: ${err}`);
  return JSON.parse(out) as { total: { filtered_kernel: number } };
}

/** The cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host. */
function cgroup2Mount(): string {
  const line = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .find((l) => l.split(" ")[2] === "cgroup2");
  if (line === undefined) throw new Error("no cgroup2 mount");
  return line.split(" ")[1]!;
}

const execsOf = (evs: JsonEvent[], comm: string) => evs.filter((e) => e.event === "exec" && e.comm === comm);

describeKernel("kernel-side filters (root)", { executables: [TRIGGER] }, () => {
  test("--uid keeps only that uid's records: the exec as nobody, not the same binary as root", async () => {
    const t = binary("dsuid");
    const agent = await startAgent(["--json", "--events", "exec", "--uid", String(NOBODY)]);
    const asNobody = Bun.spawn([TRIGGER, "as-user", String(NOBODY), t.path], { stdout: "ignore", stderr: "pipe" });
    if ((await asNobody.exited) !== 0)
      throw new Error(`trigger as-user failed: ${await new Response(asNobody.stderr).text()}`);
    const [asRoot] = await execTimes(t.path, 1);
    const { events, summary } = await stop(agent);
    const ours = events.filter((e) => e.pid === asNobody.pid || e.pid === asRoot);
    // The trigger's own exec (root) and the root run are dropped; only the exec as nobody is left.
    expect(ours.map((e) => [e.pid, e.comm, e.uid, e.filename])).toEqual([[asNobody.pid, t.comm, NOBODY, t.path]]);
    expect(events.every((e) => e.uid === NOBODY)).toBe(true);
    expect(Number(summary.filtered_kernel)).toBeGreaterThanOrEqual(2);
  }, 30_000);

  test("--cgroup keeps only the tasks of a fresh cgroup v2 group: the child moved into it", async () => {
    const t = binary("dscg");
    const dir = join(cgroup2Mount(), `ds-filters-${process.pid}-${Date.now()}`);
    mkdirSync(dir);
    cleanup.push(() => rmdirSync(dir));
    const agent = await startAgent(["--json", "--events", "exec,exit,fork", "--cgroup", dir]);
    // The shell moves itself into the group, then becomes the binary: only that exec and its exit are in it.
    const child = Bun.spawn(["/bin/sh", "-c", `echo $$ > ${dir}/cgroup.procs && exec ${t.path}`], {
      stdout: "ignore",
      stderr: "pipe",
    });
    if ((await child.exited) !== 0) throw new Error(`child failed: ${await new Response(child.stderr).text()}`);
    await execTimes(t.path, 2); // the same binary outside the group
    const { events, summary } = await stop(agent);
    // Nothing else on the host runs in this group: every record is ours.
    expect(events.map((e) => [e.event, e.pid, e.comm])).toEqual([
      ["exec", child.pid, t.comm],
      ["exit", child.pid, t.comm],
    ]);
    expect(Number(summary.filtered_kernel)).toBeGreaterThanOrEqual(2 * 3); // the outside runs: fork, exec, exit each
    expect(summary.events).toBe("2");
  }, 30_000);

  test("--allow-exe drops the trusted binary's execs, not another copy's; filtered_kernel counts them", async () => {
    const trusted = binary("dsok");
    const other = binary("dsno");
    // Same bytes at another path: a copy is another inode, so it is not trusted.
    const copy = join(dirname(other.path), trusted.comm);
    copyFileSync(trusted.path, copy);
    const agent = await startAgent(["--json", "--events", "exec", "--allow-exe", trusted.path]);
    await execTimes(trusted.path, 3);
    const otherPids = await execTimes(other.path, 2);
    const copyPid = (await execTimes(copy, 1))[0]!;
    // Read while the agent runs: stats sees the same per-CPU counter.
    const live = await statsOf(agent.pid);
    const { events, summary } = await stop(agent);
    // Only the trusted file's execs are dropped, and nobody else runs it.
    expect(live.total.filtered_kernel).toBe(3);
    expect(summary.filtered_kernel).toBe("3");
    expect(execsOf(events, other.comm).map((e) => e.pid)).toEqual(otherPids);
    // The copy has the trusted name (comm) but not its inode.
    expect(execsOf(events, trusted.comm).map((e) => [e.pid, e.filename])).toEqual([[copyPid, copy]]);
  }, 30_000);

  test("with --output, SIGHUP stat()s --allow-exe again: a replaced binary is trusted once more", async () => {
    const t = binary("dshup");
    const out = mkdtempSync(join(tmpdir(), "ds-filters-out-"));
    cleanup.push(() => rmSync(out, { recursive: true, force: true }));
    const file = join(out, "events.json");
    // --verbose: the agent says when the SIGHUP's re-resolution is in the map.
    const agent = await startAgent([
      "--json",
      "--verbose",
      "--events",
      "exec",
      "--output",
      file,
      "--allow-exe",
      t.path,
    ]);
    await execTimes(t.path, 1); // trusted: dropped
    // A package upgrade: a new file renamed over the old path, so a new inode.
    copyFileSync(t.path, `${t.path}.new`);
    renameSync(`${t.path}.new`, t.path);
    const [reported] = await execTimes(t.path, 1); // a new inode, not trusted (yet)
    process.kill(agent.pid, "SIGHUP");
    for (let i = 0; i < 500 && !agent.stderrSoFar().includes("--allow-exe re-resolved"); i++) await Bun.sleep(10);
    expect(agent.stderrSoFar()).toContain("--allow-exe re-resolved");
    await execTimes(t.path, 2); // trusted again: dropped
    const { summary } = await stop(agent);
    const events = parseEvents(readFileSync(file, "utf8"));
    expect(execsOf(events, t.comm).map((e) => e.pid)).toEqual([reported!]);
    expect(summary.filtered_kernel).toBe("3");
  }, 30_000);

  test("--allow-argv drops exactly the matching argv: the same binary with other arguments passes", async () => {
    const t = binary("dsargv");
    // A length that is a multiple of 8 and one that is not, and bytes above 0x7f (the BPF side hashes them unsigned).
    const long = ["héllo", "wörld", "12345678"];
    const agent = await startAgent([
      "--json",
      "--events",
      "exec",
      "--allow-argv",
      `${t.path} x1`,
      "--allow-argv",
      [t.path, ...long].join(" "),
    ]);
    await execTimes(t.path, 2, ["x1"]);
    await execTimes(t.path, 1, long);
    const kept = [
      ...(await execTimes(t.path, 1, ["x2"])),
      ...(await execTimes(t.path, 1, [])),
      ...(await execTimes(t.path, 1, ["x1", "x1"])),
      ...(await execTimes(t.path, 1, ["x"])),
    ];
    const { events, summary } = await stop(agent);
    expect(execsOf(events, t.comm).map((e) => [e.pid, e.args])).toEqual([
      [kept[0]!, [t.path, "x2"]],
      [kept[1]!, [t.path]],
      [kept[2]!, [t.path, "x1", "x1"]],
      [kept[3]!, [t.path, "x"]],
    ]);
    expect(summary.filtered_kernel).toBe("3");
  }, 30_000);
});
