/**
 * The programs' load shared across threads (src/ebpf/shared-load.ts) against
 * the load on one thread, in this process: the same programs, verified the
 * same way (the instructions the verifier went through and what it kept show
 * that every part saw the same .rodata), over one set of maps, and nothing
 * of either left once closed.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { drift, measureVerified } from "../../scripts/verify-weights.ts";
import { prepareHost } from "../../src/agent/prepare.ts";
import { unavailable } from "../../src/ebpf/availability.ts";
import { progDetail } from "../../src/ebpf/ids.ts";
import { mapInfo } from "../../src/ebpf/info.ts";
import { BpfObject, DEFAULT_CONFIG } from "../../src/ebpf/object.ts";
import { verifiedInsns } from "../../src/ebpf/verify-weights.gen.ts";
import { libbpf } from "../../src/ffi/libbpf.ts";
import { EVENTS, programsFor } from "../../src/wire/events.ts";
import { programInsns } from "../../src/wire/layout.gen.ts";
import { BIN, bpfObjectsOf, execTimes, spawnProc, uniqueTrue, waitAttached } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

/** A new cgroup whose processes may use one CPU's time (cgroup v2's cpu.max, or v1's cfs quota). */
function oneCpuCgroup(): { dir: string } {
  const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
  const dir = v2 ? `/sys/fs/cgroup/ds-test-quota-${process.pid}` : `/sys/fs/cgroup/cpu/ds-test-quota-${process.pid}`;
  mkdirSync(dir);
  if (v2) writeFileSync(`${dir}/cpu.max`, "100000 100000");
  else {
    writeFileSync(`${dir}/cpu.cfs_period_us`, "100000");
    writeFileSync(`${dir}/cpu.cfs_quota_us`, "100000");
  }
  return { dir };
}

describeKernel("a load shared across threads", { commands: ["prlimit", "taskset"], cpus: [0, 1] }, () => {
  const events = EVENTS.map((e) => e.name).filter((e) => unavailable(e) === undefined);
  const names = programsFor(events).map((p) => p.name);

  /** Each program's verifier figures and maps, and the maps this process holds, while loaded by `loaders` threads. */
  function loaded(image: Uint8Array, loaders: number) {
    const before = bpfObjectsOf(process.pid);
    const obj = BpfObject.load(image, { ...DEFAULT_CONFIG, events, loaders });
    try {
      const progs = new Map(names.map((n) => [n, progDetail(obj.progFd(n))]));
      // The build's count of what each program carries (the load's weights) is libbpf's, subprograms included.
      for (const n of names)
        expect({ n, insns: Number(libbpf().bpf_program__insn_cnt(obj.prog(n))) }).toEqual({
          n,
          insns: (programInsns as Record<string, number>)[n] ?? -1,
        });
      const held = bpfObjectsOf(process.pid);
      return {
        loadedBy: obj.loadedBy,
        progs,
        counters: mapInfo(obj.mapFd("ds_counters")).id,
        maps: held.maps.filter((id) => !before.maps.includes(id)),
      };
    } finally {
      obj.close();
    }
  }

  test("every program is verified as on one thread, over the one set of maps, and all of it goes at close", () => {
    const image = prepareHost();
    const before = bpfObjectsOf(process.pid);
    const alone = loaded(image, 1);
    const shared = loaded(image, 3);
    expect(alone.loadedBy).toBe(1);
    expect(shared.loadedBy).toBe(3);
    for (const name of names) {
      const a = alone.progs.get(name)!;
      const s = shared.progs.get(name)!;
      expect({ name, xlated: s.xlatedBytes, verified: s.verifiedInsns }).toEqual({
        name,
        xlated: a.xlatedBytes,
        verified: a.verifiedInsns,
      });
      expect(s.verifiedInsns).toBeGreaterThan(0);
      // Every program of every part uses the maps the first object made, not maps of its own.
      for (const id of s.mapIds) expect(shared.maps).toContain(id);
      if (a.mapIds.length > 0) expect(s.mapIds.length).toBe(a.mapIds.length);
    }
    expect(shared.progs.get("ds_exec")!.mapIds).toContain(shared.counters);
    expect(shared.maps.length).toBe(alone.maps.length);
    // Closed: this process holds no program or map of either load.
    expect(bpfObjectsOf(process.pid)).toEqual(before);
  }, 60_000);

  test("what the load splits by is what this kernel's verifier goes through (else: sudo bun scripts/verify-weights.ts)", () => {
    expect(drift(verifiedInsns, measureVerified(), 0.1)).toEqual([]);
  }, 60_000);

  test("without the cut to resolve in, the load stays on one thread (each object would read the whole kernel BTF)", () => {
    const obj = BpfObject.load(prepareHost(), { ...DEFAULT_CONFIG, events, kernelBtf: "whole", loaders: 3 });
    try {
      expect(obj.loadedBy).toBe(1);
    } finally {
      obj.close();
    }
  }, 60_000);

  // Each part holds its own copies of the maps' fds: with 64 fds a load on one thread fits and a shared
  // one does not (EMFILE), so the agent has to fall back, and must still attach and report.
  test("a shared load that fails is done again on one thread: here, too few fds for the parts' maps", async () => {
    const t = uniqueTrue("dsfd");
    const agent = spawnProc([
      "prlimit",
      "--nofile=64",
      BIN,
      "--events",
      "exec",
      "--json",
      "--verbose",
      "--comm",
      t.comm,
    ]);
    await waitAttached(agent);
    await execTimes(t.path, 3);
    await Bun.sleep(400);
    const { code, stdout, stderr } = await agent.finish("SIGINT");
    expect(code).toBe(0);
    expect(stderr).toMatch(/Too many open files|EMFILE/);
    expect(stderr).toContain("loading once more on one thread, with libbpf's log");
    const execs = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { event: string; comm: string; filename: string });
    expect(execs.filter((e) => e.event === "exec").map((e) => [e.comm, e.filename])).toEqual(
      Array.from({ length: 3 }, () => [t.comm, t.path]),
    );
  }, 60_000);

  test("one thread per CPU the agent may use: two here, one under taskset -c 0, one under a one-CPU quota", async () => {
    // The count is Bun's (os.availableParallelism), which honours both: this guards that it still does.
    const loadedOn = async (cmd: string[]) => {
      const agent = spawnProc([...cmd, BIN, "--events", "exec", "--verbose"]);
      await waitAttached(agent);
      const { stderr } = await agent.finish("SIGINT");
      return /programs loaded on (\d+) threads?/.exec(stderr)?.[1];
    };
    expect(await loadedOn([])).toBe("2");
    expect(await loadedOn(["taskset", "-c", "0"])).toBe("1");
    // A cgroup allowed one CPU's time (a container's or a unit's CPUQuota=100%): two would only verify slower.
    const quota = oneCpuCgroup();
    try {
      expect(await loadedOn(["sh", "-c", `echo $$ > ${quota.dir}/cgroup.procs && exec "$0" "$@"`])).toBe("1");
    } finally {
      rmdirSync(quota.dir);
    }
  }, 60_000);
});
