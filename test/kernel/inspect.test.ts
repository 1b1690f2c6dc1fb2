/**
 * `mem`, `stats` and `doctor` against the real kernel, through the compiled
 * ./dual-slot: what the kernel reports must match what we derive ourselves
 * from sysfs, the kernel's BTF and known execs.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { kernelAtLeast } from "../../src/ebpf/host-facts.ts";
import { BIN, execTimes, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

const NOBODY = "dsnobody";
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function run(argv: string[], asNobody = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = asNobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", BIN, ...argv]
    : [BIN, ...argv];
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", cwd: "/" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

/** Independent of the code under test: a sysfs CPU list ("0-3,8") counted. */
function cpusFromSysfs(which: "possible" | "online"): number {
  return readFileSync(`/sys/devices/system/cpu/${which}`, "utf8")
    .trim()
    .split(",")
    .reduce((n, part) => {
      const [lo, hi] = part.split("-").map(Number);
      return n + (hi === undefined ? 1 : hi - lo! + 1);
    }, 0);
}

const possibleFromSysfs = (): number => cpusFromSysfs("possible");
const onlineFromSysfs = (): number => cpusFromSysfs("online");

interface MemJson {
  possible_cpus: number;
  online_cpus: number;
  page_size: number;
  options: { slots: number; transport: string; pages: number; ring_size: number };
  maps: {
    name: string;
    type: number;
    key_size: number;
    value_size: number;
    max_entries: number;
    memlock: number;
    expected: number | null;
    id: number;
    role: string;
  }[];
  scratch: { slots: number; value_size: number; formula_bytes: number; memlock: number; overhead: number };
  perf_buffers: { pages_per_cpu: number; cpus: number; bytes: number; measured: boolean } | null;
  doorbell_buffers: { pages_per_cpu: number; cpus: number; bytes: number; measured: boolean } | null;
  footprint: { total: number; events: number };
  projection: { cpus: number; slots_2: number; this_host: boolean }[];
}

async function mem(args: string[]): Promise<MemJson> {
  const r = await run(["mem", "--json", ...args]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as MemJson;
}

describeKernel("mem (root)", { commands: ["bpftool"] }, () => {
  // sizeof(struct bpf_array) of the running kernel, from its BTF through bpftool, independently of the agent.
  const bpfArray = bpftoolStructSize("bpf_array");
  const cpus = possibleFromSysfs();

  test("--json: possible CPUs, slot count and value size as the kernel reports them", async () => {
    const j = await mem([]);
    expect(j.possible_cpus).toBe(cpus);
    expect(j.online_cpus).toBe(onlineFromSysfs());
    const heap = j.maps.find((m) => m.name === "g_percpu_data")!;
    expect(heap).toMatchObject({ type: 6, key_size: 4, value_size: 16384, max_entries: 2 });
    expect(j.scratch).toMatchObject({ slots: 2, value_size: 16384, formula_bytes: cpus * 2 * 16384 });
    // Every map the object has: the five of dual_slot.bpf.c and libbpf's .rodata/.bss.
    const names = j.maps.map((m) => m.name);
    for (const n of ["g_percpu_data", "ds_events", "ds_ring", "ds_counters", "ds_slot_state"])
      expect(names).toContain(n);
    expect(names.some((n) => n.endsWith(".rodata"))).toBe(true);
    expect(new Set(j.maps.map((m) => m.id)).size).toBe(j.maps.length);
  });

  /*
   * The kernel's memlock for a per-CPU array (array_map_mem_usage) is the
   * formula plus sizeof(struct bpf_array) (the map header, 312 B on 6.18) and
   * one 8-byte per-CPU pointer per slot, stored in the header's pptrs[]. It
   * does not grow with CPUs: per CPU the kernel charges exactly the value.
   */
  for (const slots of [1, 2, 3]) {
    test(`scratch map with ${slots} slot(s): memlock = CPUs x slots x 16384 + sizeof(bpf_array) + 8 x slots`, async () => {
      const j = await mem(["--slots", String(slots)]);
      expect(j.scratch.slots).toBe(slots);
      expect(j.scratch.memlock).toBe(cpus * slots * 16384 + bpfArray + 8 * slots);
      expect(j.scratch.overhead).toBe(bpfArray + 8 * slots);
    });
  }

  test("every map's kernel memlock matches the model, and perf buffers are (pages + 1) x page per CPU", async () => {
    const j = await mem(["--pages", "8"]);
    for (const m of j.maps) expect({ name: m.name, memlock: m.expected }).toEqual({ name: m.name, memlock: m.memlock });
    expect(j.perf_buffers).toEqual({
      pages_per_cpu: 8,
      cpus: onlineFromSysfs(),
      bytes: onlineFromSysfs() * 9 * j.page_size,
      measured: true,
    });
    expect(j.doorbell_buffers).toBeNull();
    const row = j.projection.find((p) => p.cpus === 128)!;
    expect(row.slots_2).toBe(4 * 1024 * 1024);
    expect(j.projection.filter((p) => p.this_host).map((p) => p.cpus)).toEqual([cpus]);
  });

  test("--ring-size prices the ring buffer as the kernel sizes it", async () => {
    const j = await mem(["--ring-size", "65536"]);
    expect(j.options.transport).toBe("ringbuf");
    expect(j.perf_buffers).toBeNull();
    const ring = j.maps.find((m) => m.name === "ds_ring")!;
    expect(ring.max_entries).toBe(65536);
    expect(ring.memlock).toBe(ring.expected!);
    expect(ring.memlock).toBeGreaterThan(65536);
    // The doorbell's perf buffers (6.10+: one data page and the header page per CPU), in the footprint.
    if (kernelAtLeast([6, 10])) {
      expect(j.doorbell_buffers).toEqual({
        pages_per_cpu: 1,
        cpus: onlineFromSysfs(),
        bytes: onlineFromSysfs() * 2 * j.page_size,
        measured: true,
      });
    } else expect(j.doorbell_buffers).toBeNull();
    const events = j.maps.filter((m) => m.role === "events").reduce((a, m) => a + m.memlock, 0);
    expect(j.footprint.events).toBe(events + (j.doorbell_buffers?.bytes ?? 0));
  });

  test("table names this host, the formula and its source; bad flags exit 2 in one line", async () => {
    const r = await run(["mem"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("<- this host");
    expect(r.stdout).toContain("g_percpu_data = possible CPUs x slots x 16384 B");
    expect(r.stdout).toContain(`sizeof(struct bpf_array) = ${bpfArray} B`);
    const bad = await run(["mem", "--slots", "4"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toEqual(["dual-slot: --slots must be between 1 and 3, got 4"]);
  });
});

interface StatsJson {
  agent: {
    pid: number;
    slots: number;
    value_size: number;
    counters_map_id: number;
    attached: boolean;
    config: { mode: string; guard: boolean } | null;
  };
  total: { events: number; output_fail: number; clobbers: number | null; slot_gets: number[] };
  per_cpu: { cpu: number; events: number }[];
}

async function stats(args: string[]): Promise<StatsJson> {
  const r = await run(["stats", "--json", ...args]);
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines.length).toBe(1);
  return JSON.parse(lines[0]!) as StatsJson;
}

describeKernel("stats (root)", () => {
  test("sees a running agent's event counter grow by at least the execs we made", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    const agent = await startAgent(["--json", "--events", "exec", "--duration", "30"]);
    let mapId = 0;
    try {
      const before = await stats(["--pid", String(agent.pid)]);
      expect(before.agent).toMatchObject({ pid: agent.pid, slots: 2, value_size: 16384, attached: true });
      expect(before.agent.config).toMatchObject({ mode: "dual", guard: false });
      expect(before.total.clobbers).toBeNull();
      expect(before.total.slot_gets.length).toBe(2);
      expect(before.per_cpu.length).toBe(possibleFromSysfs());
      mapId = before.agent.counters_map_id;

      await execTimes(t.path, 40);
      const after = await stats(["--id", String(mapId)]);
      expect(after.agent.pid).toBe(agent.pid);
      expect(after.total.events - before.total.events).toBeGreaterThanOrEqual(40);
      // Dual mode: every event takes slot 1 (business) and slot 0 (serializer) once.
      expect(after.total.slot_gets[1]! - before.total.slot_gets[1]!).toBeGreaterThanOrEqual(40);
      expect(after.total.slot_gets[0]! - before.total.slot_gets[0]!).toBeGreaterThanOrEqual(40);
      expect(after.per_cpu.reduce((s, c) => s + c.events, 0)).toBe(after.total.events);
    } finally {
      const { code } = await agent.stop("SIGINT");
      expect(code).toBe(0);
    }
    // An exiting process's files are released by a kernel work item (delayed fput), so its maps
    // can outlive it by a moment: wait for the map to go, then stats must say so in one line.
    let gone = await run(["stats", "--id", String(mapId)]);
    for (let i = 0; i < 30 && gone.code === 0; i++) {
      await Bun.sleep(100);
      gone = await run(["stats", "--id", String(mapId)]);
    }
    expect(gone.code).not.toBe(0);
    expect(gone.stderr.trim().split("\n").length).toBe(1);
  }, 60_000);

  test("counts guard detections when the agent has a guard", async () => {
    const t = uniqueTrue();
    dirs.push(t.dir);
    const agent = await startAgent(["--json", "--events", "exec", "--duration", "30", "--guard", "--inject-clobber"]);
    try {
      const before = await stats(["--pid", String(agent.pid)]);
      expect(before.agent.config).toMatchObject({ guard: true });
      await execTimes(t.path, 20);
      const after = await stats(["--pid", String(agent.pid)]);
      expect(after.total.clobbers! - before.total.clobbers!).toBeGreaterThanOrEqual(20);
    } finally {
      await agent.stop("SIGINT");
    }
  }, 60_000);
});

/** Creates the unprivileged test user once; setpriv then runs the binary as that user. */
async function ensureNobody(): Promise<void> {
  const id = Bun.spawnSync(["id", "-u", NOBODY]);
  if (id.exitCode !== 0) {
    const add = Bun.spawnSync(["useradd", "-M", "-s", "/usr/sbin/nologin", NOBODY], { stderr: "pipe" });
    // A concurrent run may have created it meanwhile (exit 9: user exists).
    if (add.exitCode !== 0 && add.exitCode !== 9) throw new Error(`useradd ${NOBODY} failed: ${add.stderr.toString()}`);
  }
  const access = Bun.spawnSync([
    "setpriv",
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "test",
    "-x",
    BIN,
  ]);
  if (access.exitCode !== 0)
    throw new Error(`${NOBODY} cannot execute ${BIN}: make it and its directories world-executable`);
}

interface DoctorJson {
  ready: boolean;
  failed: string[];
  checks: { name: string; status: string; required: boolean; detail: string; fix: string | null }[];
}

describeKernel("doctor", { commands: ["setpriv", "useradd", "id", "test"] }, () => {
  test("passes as root: every required check ok, probes actually loaded", async () => {
    const r = await run(["doctor", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as DoctorJson;
    expect(j.ready).toBe(true);
    expect(j.failed).toEqual([]);
    const names = j.checks.map((c) => c.name);
    for (const n of [
      "privileges",
      "kernel",
      "btf",
      "raw_tracepoint",
      "percpu_array",
      "ringbuf",
      "lockdown",
      "bpffs",
      "perf_event_paranoid",
      "bpf_stats_enabled",
      "memlock",
    ]) {
      expect(names).toContain(n);
    }
    for (const c of j.checks.filter((x) => x.required))
      expect({ name: c.name, status: c.status }).toEqual({ name: c.name, status: "ok" });
    for (const n of ["raw_tracepoint", "percpu_array", "ringbuf"])
      expect(j.checks.find((c) => c.name === n)!.detail).toContain("supported (probe loaded)");
    const table = await run(["doctor"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("verdict: ready");
  });

  test("unprivileged: reports the capability failure with its fix and exits non-zero", async () => {
    await ensureNobody();
    const r = await run(["doctor", "--json"], true);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as DoctorJson;
    expect(j.ready).toBe(false);
    expect(j.failed).toEqual(["privileges"]);
    const priv = j.checks.find((c) => c.name === "privileges")!;
    expect(priv.status).toBe("fail");
    expect(priv.detail).toContain("without CAP_BPF+CAP_PERFMON");
    expect(priv.fix).toContain("CAP_BPF and CAP_PERFMON");
    expect(priv.fix).toContain("sudo");
    for (const n of ["raw_tracepoint", "percpu_array", "ringbuf"]) {
      const c = j.checks.find((x) => x.name === n)!;
      expect(c.status).toBe("skip");
      expect(c.detail).toContain("cannot probe without privileges");
    }
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toStartWith("dual-slot: doctor: 1 required check failed; first: privileges");

    const table = await run(["doctor"], true);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^FAIL\s+privileges\s+required/m);
    expect(table.stdout).toMatch(/^\s+fix: run as root/m);
    expect(table.stdout).toContain("verdict: NOT READY: 1 required check failed: privileges");
  });

  test("unprivileged, the agent, mem and stats stop at the first failing check in one line (the agent's after its summary)", async () => {
    await ensureNobody();
    for (const argv of [["--duration", "1"], ["mem"], ["stats"]]) {
      const r = await run(argv, true);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      let lines = r.stderr.trim().split("\n");
      // The agent's run ends as every run does, with its summary (all zero) before the one line.
      if (argv[0] === "--duration") {
        expect(lines[0]).toMatch(/^summary: events=0 .* stop=error$/);
        lines = lines.slice(1);
      }
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^dual-slot: privileges: euid \d+ without CAP_BPF\+CAP_PERFMON; fix: run as root/);
    }
  });
});

function bpftoolStructSize(name: string): number {
  const bpftool = Bun.which("bpftool") ?? "/usr/sbin/bpftool";
  const out = Bun.spawnSync([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux"]).stdout.toString();
  const m = new RegExp(`^\\[\\d+\\] STRUCT '${name}' size=(\\d+)`, "m").exec(out);
  if (m === null) throw new Error(`bpftool found no struct ${name} in the kernel's BTF`);
  return Number(m[1]);
}
