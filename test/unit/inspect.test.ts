/**
 * `mem`, `stats` and `doctor` without a kernel: the accounting model, the
 * projection, flag rules, verdict logic and the layouts users read.
 *
 * The memlock figures below were measured on the development VM (kernel
 * 6.18, 2 possible CPUs, sizeof(struct bpf_array) = 312, sizeof(struct
 * bpf_ringbuf_map) = 304, 3 ring meta pages); test/kernel/inspect.test.ts
 * checks the same model against whatever kernel runs the tests.
 */
import { describe, expect, test } from "bun:test";
import { defaultPages, defaultRingSize } from "../../src/cli/agent-args.ts";
import {
  type DoctorCheck,
  lockdownVerdict,
  memlockVerdict,
  paranoidVerdict,
  probeVerdict,
  statsVerdict,
} from "../../src/doctor/checks.ts";
import { doctorJson, doctorTable, requiredFailures, verdictLine } from "../../src/doctor/report.ts";
import { cpuList, parseCpuList } from "../../src/ebpf/host-facts.ts";
import type { CounterTotals } from "../../src/ebpf/info.ts";
import { HostError, UsageError } from "../../src/errors.ts";
import {
  expectedMemlock,
  formulaText,
  type KernelSizes,
  MapType,
  perfBufferBytes,
  projection,
  scratchBytes,
  scratchOverhead,
} from "../../src/mem/model.ts";
import { memOptions } from "../../src/mem/options.ts";
import { formatBytes, groupDigits, renderTable, wrap } from "../../src/render/columns.ts";
import type { Agent } from "../../src/stats/agents.ts";
import { selectAgent } from "../../src/stats/agents.ts";
import { type StatsView, statsJson, statsTable } from "../../src/stats/report.ts";

const VM: KernelSizes = {
  bpfArray: 312,
  ringbufMap: 304,
  ringbufMetaPages: 3,
  pageSize: 4096,
  htab: 896,
  htabElem: 48,
  htabBucket: 16,
  localStorageMap: 480,
  localStorageBucket: 16,
};
const KiB = 1024;
const MiB = 1024 * KiB;

describe("format", () => {
  test("binary units, exact when whole", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(65536)).toBe("64 KiB");
    expect(formatBytes(65864)).toBe("64.3 KiB");
    expect(formatBytes(4 * MiB)).toBe("4 MiB");
    expect(formatBytes(1.5 * MiB)).toBe("1.50 MiB");
  });
  test("digit groups and aligned columns", () => {
    expect(groupDigits(1234567)).toBe("1,234,567");
    expect(groupDigits(999)).toBe("999");
    expect(
      renderTable(
        ["A", "NUM"],
        [
          ["x", "1"],
          ["long", "100"],
        ],
        ["l", "r"],
      ),
    ).toEqual(["A     NUM", "x       1", "long  100"]);
  });
  test("wrap keeps words whole and lines short", () => {
    const lines = wrap("aaa bbb ccc ddd", 7);
    expect(lines).toEqual(["aaa bbb", "ccc ddd"]);
  });
  test("CPU lists as sysfs writes them", () => {
    expect(parseCpuList("0-1\n")).toBe(2);
    expect(parseCpuList("0")).toBe(1);
    expect(parseCpuList("0-3,8-11")).toBe(8);
    expect(parseCpuList("0,2,4-5")).toBe(4);
    expect(() => parseCpuList("0-x")).toThrow();
    expect(() => parseCpuList("3-1")).toThrow();
  });
});

describe("memory model", () => {
  const shape = (type: number, valueSize: number, maxEntries: number, flags = 0, keySize = 4) => ({
    type,
    keySize,
    valueSize,
    maxEntries,
    flags,
  });

  test("percpu scratch map: CPUs x slots x 16 KiB plus bpf_array and one pointer per slot", () => {
    expect(expectedMemlock(shape(MapType.percpu_array, 16384, 1), VM, 2)).toBe(33088);
    expect(expectedMemlock(shape(MapType.percpu_array, 16384, 2), VM, 2)).toBe(65864);
    expect(expectedMemlock(shape(MapType.percpu_array, 16384, 3), VM, 2)).toBe(98640);
    for (const slots of [1, 2, 3]) {
      expect(expectedMemlock(shape(MapType.percpu_array, 16384, slots), VM, 2)).toBe(
        scratchBytes(2, slots, 16384) + scratchOverhead(slots, VM),
      );
    }
  });

  test("an LRU hash: header, power-of-two buckets, locks per CPU, one element per entry (6.18's own figure)", () => {
    // 8192 entries, u32 key, 120-byte value, 2 CPUs (ds_inflight before it moved to task storage); the kernel said 1573824.
    expect(expectedMemlock(shape(MapType.lru_hash, 120, 8192), VM, 2)).toBe(1573824);
    expect(expectedMemlock(shape(MapType.lru_hash, 120, 5000), VM, 2)).toBe(896 + 8192 * 16 + 64 + 5000 * 176);
  });

  test("task storage: the map and its buckets, at least 2, a power of two of the CPUs; the per-task elements not counted", () => {
    // ds_inflight on 6.18, 2 CPUs: 480 + 2 x 16.
    expect(expectedMemlock(shape(MapType.task_storage, 128, 0), VM, 2)).toBe(512);
    expect(expectedMemlock(shape(MapType.task_storage, 128, 0), VM, 1)).toBe(480 + 2 * 16);
    expect(expectedMemlock(shape(MapType.task_storage, 128, 0), VM, 6)).toBe(480 + 8 * 16);
  });

  test("a preallocated hash: the LRU's figure, one extra element and one pointer per CPU (6.18's own figure)", () => {
    // ds_filter_uid: 64 entries, u32 key, u8 value, 2 CPUs; the kernel said 6224.
    expect(expectedMemlock(shape(MapType.hash, 1, 64), VM, 2)).toBe(6224);
    expect(expectedMemlock(shape(MapType.hash, 1, 64), VM, 2)).toBe(
      expectedMemlock(shape(MapType.lru_hash, 1, 64), VM, 2)! + 2 * (48 + 8 + 8) + 2 * 8,
    );
  });

  test("values are rounded up to 8 bytes per CPU", () => {
    // ds_counters: 80 B x 2 CPUs; ds_slot_state: 16 B x 3 entries x 2 CPUs.
    expect(expectedMemlock(shape(MapType.percpu_array, 80, 1), VM, 2)).toBe(480);
    expect(expectedMemlock(shape(MapType.percpu_array, 16, 3), VM, 2)).toBe(432);
    expect(expectedMemlock(shape(MapType.percpu_array, 12, 1), VM, 1)).toBe(312 + 8 + 16);
  });

  test("arrays: plain, perf event (8-byte slots), mmapable (two pages)", () => {
    expect(expectedMemlock(shape(MapType.perf_event_array, 4, 2), VM, 2)).toBe(328);
    expect(expectedMemlock(shape(MapType.array, 16, 1, 128), VM, 2)).toBe(328);
    expect(expectedMemlock(shape(MapType.array, 28, 1, 1152), VM, 2)).toBe(8192);
  });

  test("ring buffer: meta + data pages, data mapped twice", () => {
    expect(expectedMemlock(shape(MapType.ringbuf, 0, 4096), VM, 2)).toBe(16728);
    expect(expectedMemlock(shape(MapType.ringbuf, 0, 65536), VM, 2)).toBe(78408);
    expect(expectedMemlock(shape(MapType.ringbuf, 0, MiB), VM, 2)).toBe(1065288);
    expect(expectedMemlock(shape(MapType.hash, 8, 10, 1), VM, 2)).toBeNull(); // BPF_F_NO_PREALLOC: not modelled
    expect(expectedMemlock(shape(99, 8, 10), VM, 2)).toBeNull();
  });

  test("projection: the design note's 4 MiB on 128 CPUs with two slots", () => {
    const rows = projection({
      hostCpus: 2,
      slots: 2,
      valueSize: 16384,
      transport: { kind: "perf", pages: 64 },
      pageSize: 4096,
    });
    expect(rows.map((r) => r.cpus)).toEqual([2, 8, 32, 64, 128, 256]);
    const r128 = rows.find((r) => r.cpus === 128)!;
    expect(r128.scratch).toEqual([2 * MiB, 4 * MiB, 6 * MiB]);
    expect(r128.events).toBe(128 * 65 * 4096);
    expect(r128.total).toBe(4 * MiB + 128 * 65 * 4096);
    expect(rows.filter((r) => r.thisHost).map((r) => r.cpus)).toEqual([2]);
    expect(rows[0]!.events).toBe(perfBufferBytes(2, 64, 4096));
  });

  test("projection adds an unlisted host and keeps the ring size flat", () => {
    const rows = projection({
      hostCpus: 12,
      slots: 3,
      valueSize: 16384,
      transport: { kind: "ring", bytes: MiB },
      pageSize: 4096,
    });
    expect(rows.map((r) => r.cpus)).toEqual([2, 8, 12, 32, 64, 128, 256]);
    expect(rows.find((r) => r.thisHost)!.scratch[2]).toBe(12 * 3 * 16384);
    expect(new Set(rows.map((r) => r.events))).toEqual(new Set([MiB]));
  });

  test("the formula line names its source and the overhead", () => {
    const t = formulaText(16384, VM);
    expect(t).toContain("possible CPUs x slots x 16384 B");
    expect(t).toContain("sizeof(struct bpf_array) = 312 B");
    expect(formulaText(16384, null)).not.toContain("sizeof");
  });
});

describe("mem flags", () => {
  test("defaults price what `run` loads", () => {
    expect(memOptions({})).toEqual({
      slots: 2,
      transport: "perf",
      pages: defaultPages(cpuList("possible").count),
      ringSize: defaultRingSize(cpuList("possible").count),
    });
  });
  test("the ring buffer's default holds what the perf buffers hold in all, as a power of two", () => {
    expect(defaultRingSize(1)).toBe(4 * MiB);
    expect(defaultRingSize(2)).toBe(8 * MiB);
    expect(defaultRingSize(3)).toBe(16 * MiB);
    expect(defaultRingSize(16)).toBe(64 * MiB);
    expect(defaultRingSize(512)).toBe(64 * MiB);
  });
  test("--ring-size alone prices the ring; mixed flags are refused", () => {
    expect(memOptions({ "ring-size": "65536" }).transport).toBe("ringbuf");
    expect(() => memOptions({ transport: "perf", "ring-size": "65536" })).toThrow(UsageError);
    expect(() => memOptions({ transport: "ringbuf", pages: "8" })).toThrow(UsageError);
    expect(() => memOptions({ slots: "4" })).toThrow(UsageError);
    expect(() => memOptions({ pages: "3" })).toThrow(UsageError);
    expect(() => memOptions({ transport: "carrier-pigeon" })).toThrow(UsageError);
  });
});

describe("doctor verdicts", () => {
  test("probes: supported, not allowed to ask, unsupported, error", () => {
    expect(probeVerdict(1, 22, "X", "fix", "x").status).toBe("ok");
    const skip = probeVerdict(0, 1, "X", "fix", "x");
    expect(skip.status).toBe("skip");
    expect(skip.detail).toContain("cannot probe without privileges");
    expect(probeVerdict(0, 22, "X", "upgrade", "x")).toMatchObject({ status: "fail", ok: false, fix: "upgrade" });
    expect(probeVerdict(-95, 95, "X", "upgrade", "x").status).toBe("fail");
  });

  test("lockdown: confidentiality or a refused helper fails", () => {
    expect(
      lockdownVerdict({ text: "none integrity [confidentiality]", securityfs: true, helperProbe: null }).status,
    ).toBe("fail");
    expect(lockdownVerdict({ text: null, securityfs: false, helperProbe: 0 }).status).toBe("fail");
    expect(lockdownVerdict({ text: "none [integrity] confidentiality", securityfs: true, helperProbe: 1 }).status).toBe(
      "ok",
    );
    expect(lockdownVerdict({ text: null, securityfs: true, helperProbe: null }).detail).toContain("no lockdown LSM");
    expect(lockdownVerdict({ text: null, securityfs: false, helperProbe: null }).status).toBe("skip");
  });

  test("memlock is required only where the kernel charges maps to it", () => {
    const old = {
      kernel: [5, 10] as [number, number],
      limit: 64 * KiB,
      needed: 2 * MiB,
      perfBytes: 0,
      perfAllowance: null,
      canRaise: false,
    };
    expect(memlockVerdict(old)).toMatchObject({ status: "fail", required: true });
    expect(memlockVerdict({ ...old, canRaise: true }).status).toBe("ok");
    const now = memlockVerdict({ ...old, kernel: [6, 1] });
    expect(now).toMatchObject({ status: "ok", required: false });
    expect(memlockVerdict({ ...old, kernel: [6, 1], perfBytes: 2 * MiB, perfAllowance: MiB }).detail).toContain(
      "exceed",
    );
  });

  test("paranoia matters only without CAP_PERFMON; stats off is information", () => {
    expect(paranoidVerdict(3, true).status).toBe("ok");
    expect(paranoidVerdict(3, false)).toMatchObject({ status: "warn", required: false });
    expect(paranoidVerdict(-1, false).status).toBe("ok");
    expect(statsVerdict("0").status).toBe("info");
    expect(statsVerdict("1").status).toBe("ok");
  });

  test("verdict line, table and JSON agree on what failed", () => {
    const checks: DoctorCheck[] = [
      { name: "privileges", ok: false, required: true, status: "fail", detail: "euid 1001", fix: "run as root" },
      { name: "bpffs", ok: false, required: false, status: "warn", detail: "not mounted", fix: "mount it" },
      { name: "kernel", ok: true, required: true, status: "ok", detail: "6.1" },
    ];
    expect(requiredFailures(checks).map((c) => c.name)).toEqual(["privileges"]);
    expect(verdictLine(checks)).toBe("verdict: NOT READY: 1 required check failed: privileges (1 ok, 1 fail, 1 warn)");
    const table = doctorTable(checks);
    expect(table.some((l) => /^FAIL\s+privileges\s+required\s+euid 1001$/.test(l))).toBe(true);
    expect(table.some((l) => l.trim() === "fix: run as root")).toBe(true);
    expect(table.some((l) => l.includes("fix: mount it"))).toBe(true);
    const j = JSON.parse(doctorJson(checks)) as { ready: boolean; failed: string[]; checks: { fix: string | null }[] };
    expect(j.ready).toBe(false);
    expect(j.failed).toEqual(["privileges"]);
    expect(j.checks[2]!.fix).toBeNull();
    expect(verdictLine(checks.slice(2))).toBe("verdict: ready: this host can run dual-slot (1 ok)");
  });
});

const zero = (): CounterTotals => ({
  seq: 0,
  events: 0,
  output_fail: 0,
  corrupt: 0,
  clobbers: 0,
  lookup_fail: 0,
  bytes: 0,
  filtered_kernel: 0,
  slot_gets: [0, 0, 0],
});

function agent(counterId: number, loadTimeNs: bigint, attached: boolean, pid: number): Agent {
  const map = { id: counterId, type: 6, name: "ds_counters", keySize: 4, valueSize: 80, maxEntries: 1, flags: 0 };
  return {
    counters: map,
    scratch: { ...map, id: counterId - 1, name: "g_percpu_data", valueSize: 16384, maxEntries: 2 },
    rodata: null,
    prog: {
      id: counterId + 100,
      type: 17,
      name: "ds_exec",
      loadTimeNs,
      uid: 0,
      mapIds: [counterId],
      runCnt: 0n,
      runTimeNs: 0n,
      xlatedBytes: 0,
      verifiedInsns: 0,
    },
    attached,
    holders: [{ pid, comm: "dual-slot" }],
  };
}

describe("stats", () => {
  const agents = [agent(10, 1n, true, 100), agent(20, 2n, true, 200), agent(30, 3n, false, 300)];

  test("picks the newest attached agent and says why", () => {
    const s = selectAgent(agents, {});
    expect(s.agent.counters.id).toBe(20);
    expect(s.why).toContain("newest attached of 3 agents");
    expect(selectAgent(agents.slice(0, 1), {}).why).toBe("the only agent loaded");
    expect(selectAgent(agents, { pid: 100 }).agent.counters.id).toBe(10);
    expect(selectAgent(agents, { mapId: 30 }).agent.counters.id).toBe(30);
    expect(selectAgent(agents, { mapId: 120 }).agent.counters.id).toBe(20); // by program id
    expect(() => selectAgent(agents, { pid: 999 })).toThrow(HostError);
    expect(() => selectAgent([], {})).toThrow(HostError);
  });

  const cpu0 = { ...zero(), events: 7, bytes: 2048, slot_gets: [7, 7, 0] };
  const cpu1 = { ...zero(), events: 1000, output_fail: 2, bytes: 4096, slot_gets: [1000, 1000, 0] };
  const view = (guard: boolean | null): StatsView => ({
    agent: {
      pid: 200,
      comm: "dual-slot",
      progId: 120,
      attached: true,
      countersMapId: 20,
      scratchMapId: 19,
      slots: 2,
      valueSize: 16384,
      config:
        guard === null
          ? null
          : { mode: "dual", slots: 2, transport: "perf", encoding: "compact", guard, injectClobber: false },
      why: "the only agent loaded",
    },
    agentsFound: 1,
    total: { ...zero(), events: 1007, output_fail: 2, bytes: 6144, filtered_kernel: 3, slot_gets: [1007, 1007, 0] },
    perCpu: [cpu0, cpu1],
    runCnt: 0,
    runTimeNs: 0,
    eventsPerSec: null,
  });

  test("table: one row per CPU plus a total, one column per slot the map has", () => {
    const lines = statsTable(view(false));
    expect(lines[0]).toBe(
      "agent: pid 200 (dual-slot), ds_exec prog 120 attached, ds_counters map 20 [the only agent loaded]",
    );
    const header = lines.find((l) => l.startsWith("CPU"))!;
    expect(header.split(/\s+/)).toEqual([
      "CPU",
      "EVENTS",
      "OUTPUT_FAIL",
      "CLOBBERS",
      "CORRUPT",
      "LOOKUP_FAIL",
      "FILTERED_KERNEL",
      "SLOT0_GETS",
      "SLOT1_GETS",
      "BYTES",
    ]);
    expect(lines.find((l) => l.startsWith("all"))!.split(/\s+/)).toEqual([
      "all",
      "1,007",
      "2",
      "-",
      "0",
      "0",
      "3",
      "1,007",
      "1,007",
      "6",
      "KiB",
    ]);
    expect(lines.some((l) => l.includes("guard off"))).toBe(true);
    expect(lines.some((l) => l.startsWith("FILTERED_KERNEL: records the agent's --uid"))).toBe(true);
    expect(
      statsTable(view(true))
        .find((l) => l.startsWith("all"))!
        .split(/\s+/)[3],
    ).toBe("0");
  });

  test("JSON: clobbers only where the guard exists, slots as the map has them", () => {
    const j = JSON.parse(statsJson(view(false))) as {
      agent: { pid: number; slots: number; config: { guard: boolean } };
      total: { events: number; clobbers: number | null; slot_gets: number[] };
      per_cpu: { cpu: number; events: number }[];
    };
    expect(j.agent.pid).toBe(200);
    expect(j.total).toMatchObject({ events: 1007, clobbers: null, slot_gets: [1007, 1007] });
    expect(j.per_cpu.map((c) => [c.cpu, c.events])).toEqual([
      [0, 7],
      [1, 1000],
    ]);
    const unknown = JSON.parse(statsJson(view(null))) as { agent: { config: null }; total: { clobbers: number } };
    expect(unknown.agent.config).toBeNull();
    expect(unknown.total.clobbers).toBe(0);
  });
});
