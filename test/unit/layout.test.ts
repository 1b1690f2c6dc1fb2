/**
 * src/wire/layout.ts against the BTF clang emitted for bpf/dual_slot.h, and
 * src/bpf/info.ts against the running kernel's BTF. Every offset and size the
 * decoder uses is checked, so an edit to one side only fails here.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { Btf, type BtfStruct } from "../../src/btf/btf.ts";
import { MAP_INFO, PROG_INFO } from "../../src/kernel/info.ts";
import * as L from "../../src/wire/layout.ts";

const ROOT = path.join(import.meta.dir, "../..");
// DS_BPF_OBJ: another object to check (e.g. a cross-built one).
const OBJ = process.env.DS_BPF_OBJ ?? path.join(ROOT, "out/dual_slot.x64.bpf.o");
const HEADER = path.join(ROOT, "bpf/dual_slot.h");
const VMLINUX = "/sys/kernel/btf/vmlinux";

function loadObj(): Btf {
  if (!fs.existsSync(OBJ)) {
    throw new Error(`${OBJ} is missing: run \`bun run build\` first (CI builds before tests)`);
  }
  return Btf.fromElf(new Uint8Array(fs.readFileSync(OBJ)));
}

let cached: Btf | undefined;
const btf = (): Btf => (cached ??= loadObj());

function member(s: BtfStruct, name: string, struct: string) {
  const m = s.members.find((x) => x.name === name);
  if (!m) throw new Error(`BTF struct ${struct} has no member '${name}'`);
  return m;
}

/**
 * Checks a layout.ts table against a BTF struct: `size` is the struct size, every
 * other key a member offset (`rename` maps TS keys to C names). Also checks that
 * every BTF member is mirrored, except `unmirrored` ones.
 */
function checkStruct(
  struct: string,
  table: Record<string, number>,
  opts: { rename?: Record<string, string>; unmirrored?: string[] } = {},
): BtfStruct {
  const s = btf().struct(struct);
  expect(`${struct}.size=${table.size}`).toBe(`${struct}.size=${s.size}`);
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(table)) {
    if (k === "size") continue;
    const cname = opts.rename?.[k] ?? k;
    const m = member(s, cname, struct);
    expect(m.bitSize).toBe(0);
    expect(`${struct}.${cname} @ ${v}`).toBe(`${struct}.${cname} @ ${m.offset}`);
    seen.add(cname);
  }
  const missing = s.members.map((m) => m.name).filter((n) => !seen.has(n) && !(opts.unmirrored ?? []).includes(n));
  expect(missing).toEqual([]);
  return s;
}

describe("wire layout vs BTF of out/dual_slot.x64.bpf.o", () => {
  test("the object exists (run `bun run build` first) and has BTF", () => {
    expect(btf().typeCount).toBeGreaterThan(0);
  });

  test("struct ds_level", () => {
    const s = checkStruct("ds_level", L.Level, { unmirrored: ["pad"] });
    expect(member(s, "data_expected", "ds_level").size).toBe(16);
    expect(member(s, "data_observed", "ds_level").size).toBe(16);
    expect(member(s, "tag_expected", "ds_level").size).toBe(8);
    expect(member(s, "tag_observed", "ds_level").size).toBe(8);
    for (const f of ["slot", "used", "intact"]) expect(member(s, f, "ds_level").size).toBe(1);
  });

  test("struct ds_header", () => {
    // layout.ts calls the member `size_`: `size` is the struct's own size there.
    const s = checkStruct("ds_header", L.Header, { rename: { size_: "size" } });
    const sizes: Record<string, number> = {
      tag: 8,
      ktime_ns: 8,
      seq: 8,
      size: 4,
      type: 2,
      version: 1,
      encoding: 1,
      cpu: 4,
      mode: 1,
      slots: 1,
      transport: 1,
      guard: 1,
    };
    for (const [n, sz] of Object.entries(sizes)) expect(`${n}:${member(s, n, "ds_header").size}`).toBe(`${n}:${sz}`);
  });

  test("struct ds_exec", () => {
    const s = checkStruct("ds_exec", L.Exec);
    expect(member(s, "hdr", "ds_exec").size).toBe(L.Header.size);
    expect(member(s, "level", "ds_exec").size).toBe(L.LEVELS * L.Level.size);
    expect(member(s, "str", "ds_exec").size).toBe(L.STR_NR * 4);
    expect(member(s, "mark", "ds_exec").size).toBe(16);
    expect(member(s, "cgroup_id", "ds_exec").size).toBe(8);
    for (const f of ["pid", "tid", "ppid", "uid", "gid", "flags", "mntns_id", "args_total"]) {
      expect(`${f}:${member(s, f, "ds_exec").size}`).toBe(`${f}:4`);
    }
    // Compact strings start right after the struct: nothing may follow str[].
    expect(L.Exec.str + L.STR_NR * 4).toBe(s.size);
  });

  test("struct ds_exec_fixed: every array's offset and size", () => {
    const s = btf().struct("ds_exec_fixed");
    expect(s.size).toBe(L.ExecFixed.size);
    const base = member(s, "base", "ds_exec_fixed");
    expect(base.offset).toBe(0);
    expect(base.size).toBe(L.Exec.size);
    const names = ["comm", "filename", "args", "cwd", "exe", "pexe"] as const;
    for (const n of names) {
      const [off, size] = L.ExecFixed[n];
      const m = member(s, n, "ds_exec_fixed");
      expect(`${n} @ ${off} [${size}]`).toBe(`${n} @ ${m.offset} [${m.size}]`);
    }
    expect(s.members.map((m) => m.name)).toEqual(["base", ...names]);
  });

  test("struct ds_counters", () => {
    const s = checkStruct("ds_counters", L.Counters);
    expect(member(s, "slot_gets", "ds_counters").size).toBe(3 * 8);
    for (const m of s.members) if (m.name !== "slot_gets") expect(`${m.name}:${m.size}`).toBe(`${m.name}:8`);
  });

  test("the checker itself catches a wrong offset, a wrong size and an unmirrored member", () => {
    expect(() => checkStruct("ds_level", { ...L.Level, slot: L.Level.slot + 1 }, { unmirrored: ["pad"] })).toThrow();
    expect(() => checkStruct("ds_level", { ...L.Level, size: L.Level.size - 8 }, { unmirrored: ["pad"] })).toThrow();
    expect(() => checkStruct("ds_level", L.Level)).toThrow(); // pad is not mirrored
    const { guard: _guard, ...noGuard } = L.Header;
    expect(() => checkStruct("ds_header", noGuard, { rename: { size_: "size" } })).toThrow();
  });

  test("the fixed arrays follow ds_exec in Str order without gaps", () => {
    const order = (Object.keys(L.Str) as Array<keyof typeof L.Str>).sort((a, b) => L.Str[a] - L.Str[b]);
    let at: number = L.Exec.size;
    for (const n of order) {
      const [off, size] = L.ExecFixed[n];
      expect(`${n}@${off}`).toBe(`${n}@${at}`);
      at += size;
    }
    expect(at).toBe(L.ExecFixed.size);
  });
});

/* Enums and #defines: clang only emits an enum's BTF when a type uses it; the
 * header declares the fields as __u8/__u16/__u32, so they are usually absent. */
const ENUMS: Array<[string, Record<string, number>, (cname: string) => string]> = [
  ["ds_flags", L.Flags, (c) => camel(c.replace(/^DS_F_/, ""))],
  ["ds_str", { ...L.Str, nr: L.STR_NR }, (c) => c.replace(/^DS_STR_/, "").toLowerCase()],
  ["ds_mode", L.Mode, (c) => c.replace(/^DS_MODE_/, "").toLowerCase()],
  [
    "ds_transport",
    L.Transport,
    (c) =>
      c
        .replace(/^DS_TRANSPORT_/, "")
        .toLowerCase()
        .replace(/_/g, "-"),
  ],
  ["ds_encoding", L.Encoding, (c) => c.replace(/^DS_ENCODING_/, "").toLowerCase()],
  ["ds_event_type", L.EventType, (c) => c.replace(/^DS_EVENT_/, "").toLowerCase()],
];

function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function checkEnum(
  values: Map<string, bigint>,
  table: Record<string, number>,
  tsName: (c: string) => string,
  label: string,
) {
  const got: Record<string, number> = {};
  for (const [c, v] of values) got[tsName(c)] = Number(v);
  expect(`${label}: ${JSON.stringify(got, Object.keys(got).sort())}`).toBe(
    `${label}: ${JSON.stringify(table, Object.keys(table).sort())}`,
  );
}

/** enum NAME { A = 1, B = 1 << 2, ... } from the header's text. */
function headerEnum(src: string, name: string): Map<string, bigint> {
  const m = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(src);
  if (!m) throw new Error(`bpf/dual_slot.h has no enum ${name}`);
  const out = new Map<string, bigint>();
  let next = 0n;
  for (const raw of m[1]!.replace(/\/\*[\s\S]*?\*\//g, "").split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const [k, expr] = item.split("=").map((x) => x.trim()) as [string, string | undefined];
    let v = next;
    if (expr !== undefined) {
      const shift = /^(\d+)\s*<<\s*(\d+)$/.exec(expr);
      v = shift ? BigInt(shift[1]!) << BigInt(shift[2]!) : BigInt(expr);
    }
    out.set(k, v);
    next = v + 1n;
  }
  return out;
}

function headerDefine(src: string, name: string): number {
  const m = new RegExp(`^#define\\s+${name}\\s+(\\S+)`, "m").exec(src);
  if (!m) throw new Error(`bpf/dual_slot.h has no #define ${name}`);
  return Number(m[1]);
}

describe("enums and constants", () => {
  const src = fs.readFileSync(HEADER, "utf8");

  for (const [name, table, tsName] of ENUMS) {
    // A missing object is not a reason to skip: the test then runs and fails with "run `bun run build` first".
    let inBtf = true;
    try {
      btf().enumValues(name);
    } catch (e) {
      if (/no enum/.test(String(e))) inBtf = false;
    }
    if (!inBtf) {
      console.warn(
        `[layout.test] SKIPPED: enum ${name} is not in the object's BTF (no type uses it); checked against bpf/dual_slot.h instead`,
      );
    }
    test.skipIf(!inBtf)(`enum ${name} (object BTF)`, () => {
      checkEnum(btf().enumValues(name), table, tsName, name);
    });

    test(`enum ${name} (bpf/dual_slot.h source)`, () => {
      checkEnum(headerEnum(src, name), table, tsName, name);
    });
  }

  test("#defines mirrored in layout.ts", () => {
    expect(headerDefine(src, "SD_EVENT_MAX")).toBe(L.SD_EVENT_MAX);
    expect(headerDefine(src, "DS_WIRE_VERSION")).toBe(L.WIRE_VERSION);
    expect(headerDefine(src, "DS_LEVELS")).toBe(L.LEVELS);
    expect(headerDefine(src, "DS_SLOT_NONE")).toBe(L.SLOT_NONE);
    expect(headerDefine(src, "DS_COMM_LEN")).toBe(L.ExecFixed.comm[1]);
    expect(headerDefine(src, "DS_FIXED_FILENAME")).toBe(L.ExecFixed.filename[1]);
    expect(headerDefine(src, "DS_FIXED_ARGS")).toBe(L.ExecFixed.args[1]);
    expect(headerDefine(src, "DS_FIXED_PATH")).toBe(L.ExecFixed.cwd[1]);
    expect(headerDefine(src, "DS_FIXED_PATH")).toBe(L.ExecFixed.exe[1]);
    expect(headerDefine(src, "DS_FIXED_PATH")).toBe(L.ExecFixed.pexe[1]);
    // slot_gets[DS_MAX_SLOTS]
    expect((L.Counters.bytes - L.Counters.slot_gets) / 8).toBe(headerDefine(src, "DS_MAX_SLOTS"));
  });

  test("a compact descriptor's 16-bit offset can address every byte of a slot", () => {
    expect(L.SD_EVENT_MAX - 1).toBeLessThanOrEqual(0xffff);
    expect(L.ExecFixed.size).toBeLessThanOrEqual(L.SD_EVENT_MAX);
  });
});

function vmlinuxBtf(): Btf | null {
  try {
    fs.accessSync(VMLINUX, fs.constants.R_OK);
    return Btf.parse(new Uint8Array(fs.readFileSync(VMLINUX)));
  } catch (e) {
    console.warn(
      `[layout.test] SKIPPED: ${VMLINUX} not readable (${String(e)}); bpf_prog_info/bpf_map_info offsets unchecked`,
    );
    return null;
  }
}

describe("src/bpf/info.ts vs the running kernel's BTF", () => {
  const k = vmlinuxBtf();

  test.skipIf(k === null)("struct bpf_prog_info", () => {
    const s = k!.struct("bpf_prog_info");
    for (const f of ["id", "name", "run_time_ns", "run_cnt"] as const) {
      expect(`${f} @ ${PROG_INFO[f]}`).toBe(`${f} @ ${member(s, f, "bpf_prog_info").offset}`);
    }
    expect(member(s, "id", "bpf_prog_info").size).toBe(4);
    expect(member(s, "name", "bpf_prog_info").size).toBe(16);
    expect(member(s, "run_time_ns", "bpf_prog_info").size).toBe(8);
    expect(member(s, "run_cnt", "bpf_prog_info").size).toBe(8);
    // The buffer handed to the kernel must cover every field read from it.
    expect(PROG_INFO.size).toBeGreaterThanOrEqual(PROG_INFO.run_cnt + 8);
    expect(PROG_INFO.size % 8).toBe(0);
  });

  test.skipIf(k === null)("struct bpf_map_info", () => {
    const s = k!.struct("bpf_map_info");
    const sizes = { type: 4, id: 4, key_size: 4, value_size: 4, max_entries: 4, map_flags: 4, name: 16 } as const;
    for (const [f, sz] of Object.entries(sizes) as Array<[keyof typeof sizes, number]>) {
      const m = member(s, f, "bpf_map_info");
      expect(`${f} @ ${MAP_INFO[f]} [${sz}]`).toBe(`${f} @ ${m.offset} [${m.size}]`);
    }
    expect(MAP_INFO.size).toBeGreaterThanOrEqual(MAP_INFO.name + 16);
    expect(MAP_INFO.size % 8).toBe(0);
  });
});
