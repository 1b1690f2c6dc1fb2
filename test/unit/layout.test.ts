/**
 * The generated wire layer: the generator on hand-made BTF (bitfields, anonymous
 * members, nested structs, arrays, enums, section offsets), the committed
 * src/wire/layout.gen.ts against a fresh generation from the built object, and
 * the event table against the record convention the decoder relies on.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { coreRoots, essentialName, generateWire, Types, wireModule } from "../../scripts/wire-gen.ts";
import { elfSection } from "../../src/ebpf/elf.ts";
import { notMeasured, verifiedInsns } from "../../src/ebpf/verify-weights.gen.ts";
import { ALL_PROGRAMS, EVENTS, programsFor, SPEC_BY_TYPE } from "../../src/wire/events.ts";
import {
  coreRoots as coreRootsOf,
  ds_header,
  ds_rec_str,
  ds_record,
  ds_wire_const,
  sections,
} from "../../src/wire/layout.gen.ts";
import { EventType, Mode, named, Transport } from "../../src/wire/names.ts";

const ROOT = path.join(import.meta.dir, "../..");
const OBJ = process.env.DS_BPF_OBJ ?? path.join(ROOT, "out/dual_slot.x64.bpf.o");

/** A small BTF as `bpftool -j btf dump` prints it. */
function btfJson(): string {
  const types = [
    { id: 1, kind: "INT", name: "unsigned int", size: 4, bits_offset: 0, nr_bits: 32, encoding: "(none)" },
    { id: 2, kind: "TYPEDEF", name: "__u32", type_id: 1 },
    { id: 3, kind: "INT", name: "char", size: 1, bits_offset: 0, nr_bits: 8, encoding: "SIGNED" },
    { id: 4, kind: "ARRAY", name: "(anon)", type_id: 3, index_type_id: 1, nr_elems: 16 },
    {
      id: 5,
      kind: "ENUM",
      name: "ds_color",
      size: 4,
      vlen: 2,
      values: [
        { name: "DS_COLOR_RED", val: 0 },
        { name: "DS_COLOR_DARK_BLUE", val: 7 },
      ],
    },
    {
      id: 6,
      kind: "STRUCT",
      name: "ds_inner",
      size: 8,
      vlen: 2,
      members: [
        { name: "a", type_id: 2, bits_offset: 0 },
        { name: "b", type_id: 2, bits_offset: 32 },
      ],
    },
    { id: 7, kind: "ARRAY", name: "(anon)", type_id: 6, index_type_id: 1, nr_elems: 2 },
    { id: 8, kind: "UNION", name: "(anon)", size: 4, vlen: 1, members: [{ name: "u", type_id: 2, bits_offset: 0 }] },
    {
      id: 9,
      kind: "STRUCT",
      name: "ds_outer",
      size: 48,
      vlen: 6,
      members: [
        { name: "flag", type_id: 2, bits_offset: 0, bitfield_size: 1 },
        { name: "color", type_id: 5, bits_offset: 32 },
        { name: "name", type_id: 4, bits_offset: 64 },
        { name: "inner", type_id: 7, bits_offset: 192 },
        { name: "(anon)", type_id: 8, bits_offset: 320 },
        { name: "last", type_id: 2, bits_offset: 352 },
      ],
    },
    { id: 10, kind: "PTR", name: "(anon)", type_id: 11 },
    {
      id: 11,
      kind: "STRUCT",
      name: "ds_wire_types",
      size: 48,
      vlen: 1,
      members: [{ name: "o", type_id: 9, bits_offset: 0 }],
    },
    {
      id: 12,
      kind: "STRUCT",
      name: "ds_cfg_t",
      size: 4,
      vlen: 1,
      members: [{ name: "x", type_id: 2, bits_offset: 0 }],
    },
    { id: 13, kind: "VAR", name: "ds_cfg", type_id: 12, linkage: "global" },
    { id: 14, kind: "VAR", name: "ds_wire_anchor", type_id: 10, linkage: "global" },
    { id: 15, kind: "DATASEC", name: ".rodata", size: 0, vlen: 1, vars: [{ type_id: 13, offset: 0, size: 4 }] },
    { id: 16, kind: "DATASEC", name: ".bss", size: 0, vlen: 1, vars: [{ type_id: 14, offset: 0, size: 8 }] },
  ];
  return JSON.stringify({ types });
}

const OBJDUMP = `
Sections:
Idx Name          Size     VMA              Type
  8 .rodata       00000004 0000000000000000 DATA
 10 .bss          00000010 0000000000000000 BSS

SYMBOL TABLE:
0000000000000000 g     O .rodata\t0000000000000004 ds_cfg
0000000000000008 g     O .bss\t0000000000000008 ds_wire_anchor
`;

/** Evaluates generated TypeScript (plain object literals) into its exports. */
function load(src: string): Record<string, unknown> {
  const js = src.replace(/^export const (\w+) =/gm, "out.$1 =").replace(/ as const;/g, ";");
  const out: Record<string, unknown> = {};
  new Function("out", js)(out);
  return out;
}

describe("scripts/wire-gen.ts on hand-made BTF", () => {
  const gen = load(wireModule(btfJson(), OBJDUMP));

  test("a struct: offsets, sizes, array counts and member kinds", () => {
    expect(gen.ds_outer).toEqual({
      size: 48,
      off: { color: 4, name: 8, inner: 24, last: 44 },
      bytes: { color: 4, name: 16, inner: 16, last: 4 },
      count: { name: 16, inner: 2 },
      kind: { color: "u32", name: "s8[16]", inner: "ds_inner[2]", last: "u32" },
    });
  });

  test("nested structs are emitted; the anchor itself is not", () => {
    expect((gen.ds_inner as { off: unknown }).off).toEqual({ a: 0, b: 4 });
    expect(gen.ds_wire_types).toBeUndefined();
  });

  test("enums keep their C names and values", () => {
    expect(gen.ds_color).toEqual({ DS_COLOR_RED: 0, DS_COLOR_DARK_BLUE: 7 });
  });

  test("section variables' offsets come from the symbol table, not the unfixed BTF", () => {
    expect(gen.sections).toEqual({
      ".rodata": { size: 4, vars: { ds_cfg: 0 } },
      ".bss": { size: 16, vars: { ds_wire_anchor: 8 } },
    });
  });

  test("bitfields and anonymous members are left out, and said so", () => {
    const src = wireModule(btfJson(), OBJDUMP);
    expect(src).toContain("not addressable, left out: flag, (anonymous)");
  });

  test("a missing anchor or section is an error, not an empty layout", () => {
    const noAnchor = JSON.stringify({
      types: (JSON.parse(btfJson()).types as Array<{ name: string }>).filter((t) => t.name !== "ds_wire_types"),
    });
    expect(() => wireModule(noAnchor, OBJDUMP)).toThrow(/ds_wire_types/);
    expect(() => wireModule(btfJson(), OBJDUMP.replace(".bss ", ".data "))).toThrow(/\.bss/);
  });
});

/** A .BTF.ext holding one CO-RE relocation per [type id, kind] (struct bpf_core_relo records). */
function btfExt(relos: Array<[number, number]>): Uint8Array {
  const core = 4 + 8 + 16 * relos.length;
  const b = Buffer.alloc(32 + core);
  b.writeUInt16LE(0xeb9f, 0);
  b.writeUInt8(1, 2);
  b.writeUInt32LE(32, 4); // hdr_len; func_info and line_info empty
  b.writeUInt32LE(0, 24); // core_relo_off
  b.writeUInt32LE(core, 28);
  b.writeUInt32LE(16, 32); // record size
  b.writeUInt32LE(0, 36); // section name
  b.writeUInt32LE(relos.length, 40);
  relos.forEach(([type, kind], i) => {
    b.writeUInt32LE(type, 44 + 16 * i + 4);
    b.writeUInt32LE(kind, 44 + 16 * i + 12);
  });
  return new Uint8Array(b);
}

describe("coreRoots: the kernel types the CO-RE relocations resolve", () => {
  const types = () => new Types(JSON.parse(btfJson()).types);

  test("each relocation's root, once, by kind and essential name; local type ids need no kernel type", () => {
    // Field offsets (0) and existence (2) on struct ds_inner, an enum's value (11), a local type id (6).
    const roots = coreRoots(
      types(),
      btfExt([
        [6, 0],
        [6, 2],
        [5, 11],
        [9, 6],
      ]),
    );
    expect(roots.map((r) => `${r.kind} ${r.name}`)).toEqual(["ENUM ds_color", "STRUCT ds_inner"]);
    expect(essentialName("task_struct___v2")).toBe("task_struct");
    expect(essentialName("a____b")).toBe("a____b");
  });

  test("a relocation the cut cannot answer (the kernel's own type id, type matches) fails the build", () => {
    expect(() => coreRoots(types(), btfExt([[6, 7]]))).toThrow(/kind 7/);
    expect(() => coreRoots(types(), btfExt([[6, 12]]))).toThrow(/kind 12/);
    // Type exists / size: on a struct, the struct alone; through a typedef, what it names too.
    expect(
      coreRoots(
        types(),
        btfExt([
          [6, 8],
          [6, 9],
        ]),
      ).map((r) => r.name),
    ).toEqual(["ds_inner"]);
    expect(() => coreRoots(types(), btfExt([[2, 8]]))).toThrow(/\(kind 8\) on TYPEDEF __u32/);
  });

  test("the built object's roots are in the generated layout", () => {
    if (!existsSync(OBJ)) throw new Error(`${OBJ} is missing: run \`bun run build\` first (CI builds before tests)`);
    const ext = elfSection(new Uint8Array(readFileSync(OBJ)), ".BTF.ext");
    expect(ext).not.toBeNull();
    expect(coreRootsOf.map((r) => r.name)).toContain("task_struct");
  });
});

describe("src/wire/layout.gen.ts", () => {
  test("is what the built object generates (run `bun run build` and commit it)", async () => {
    if (!existsSync(OBJ)) throw new Error(`${OBJ} is missing: run \`bun run build\` first (CI builds before tests)`);
    const fresh = Bun.spawnSync([`${ROOT}/node_modules/.bin/biome`, "format", "--stdin-file-path=x.ts"], {
      stdin: Buffer.from(generateWire(OBJ)),
    }).stdout.toString();
    expect(fresh).toBe(readFileSync(path.join(ROOT, "src/wire/layout.gen.ts"), "utf8"));
  });

  test("a compact descriptor's 16-bit offset can address every byte of a slot", () => {
    expect(ds_wire_const.DS_SLOT_SIZE - 1).toBeLessThanOrEqual(0xffff);
  });

  test(".rodata holds the configuration and bpf_snprintf's IP and 64-bit inode formats (the rest is formatted by hand), .bss only the flood target, the type anchor and the doorbell's last ring", () => {
    expect(Object.keys(sections[".rodata"].vars).sort()).toEqual(["ds_cfg", "ds_fmt_ip4", "ds_fmt_ip6", "ds_fmt_u64"]);
    expect(Object.keys(sections[".bss"].vars).sort()).toEqual(["ds_bell_ns", "ds_bss", "ds_wire_anchor"]);
  });
});

describe("the event table", () => {
  for (const spec of EVENTS.filter((e) => e.fixed === e.struct)) {
    test(`${spec.name}: DS_RECORD_HEAD, the type's struct, str[] last (what emit_record writes)`, () => {
      const s = spec.struct;
      expect(s.off.hdr).toBe(0);
      for (const [m, off] of Object.entries(ds_record.off)) expect(`${m}@${s.off[m]}`).toBe(`${m}@${off}`);
      const own = Object.keys(s.off).filter((m) => !(m in ds_record.off) && m !== "str");
      // The type's own struct, if any, is named like the event and sits right after the head.
      expect(own).toEqual(["setsid", "unlink", "rmdir"].includes(spec.name) ? [] : [spec.name]);
      const data = own.length === 0 ? 0 : s.bytes[spec.name]!;
      expect(s.off.str).toBe(ds_record.size + data);
      // str[] last, padded to 8 bytes: emit_record writes the padding (zeros) and the strings after it.
      expect(s.size - (s.off.str! + s.bytes.str!)).toBe((8 - (s.bytes.str! % 8)) % 8);
      expect(s.count.str).toBe(ds_rec_str.DS_REC_STR_NR);
      expect(spec.strings.slice(0, 4)).toEqual(["comm", "nodename", "pid_tree", "exe"]);
      expect(spec.strings.length).toBeLessThanOrEqual(ds_rec_str.DS_REC_STR_NR);
    });
  }
  for (const spec of EVENTS.filter((e) => e.fixed !== e.struct)) {
    test(`${spec.name}: header first, str[] last, one fixed array per string in order`, () => {
      const s = spec.struct;
      expect(s.off.hdr).toBe(0);
      expect(s.kind.hdr).toBe("ds_header");
      expect(s.bytes.hdr).toBe(ds_header.size);
      // Compact strings start right after the struct: nothing may follow str[].
      expect(s.off.str! + s.bytes.str!).toBe(s.size);
      expect(s.count.str).toBe(spec.strings.length);
      const f = spec.fixed;
      expect(f.off.base).toBe(0);
      expect(f.bytes.base).toBe(s.size);
      let at = s.size;
      for (const name of spec.strings) {
        expect(`${name}@${f.off[name]}`).toBe(`${name}@${at}`);
        at += f.bytes[name]!;
      }
      expect(at).toBe(f.size);
      expect(f.size).toBeLessThanOrEqual(ds_wire_const.DS_SLOT_SIZE);
    });
  }

  test("every event type of the C enum has exactly one entry", () => {
    for (const [name, value] of Object.entries(EventType)) expect(SPEC_BY_TYPE[value]?.name).toBe(name as "exec");
    expect(EVENTS.length).toBe(Object.keys(EventType).length);
  });

  test("a program several events share goes on the selected events' tracepoints, once each", () => {
    const names = (events: Parameters<typeof programsFor>[0]) =>
      programsFor(events).filter((p) => p.name === "ds_names_enter");
    const rename = names(["rename"]);
    expect(rename.length).toBe(1);
    expect(rename[0]!.tracepoints).toContain("syscalls/sys_enter_renameat2");
    expect(rename[0]!.tracepoints).not.toContain("syscalls/sys_enter_linkat");
    const both = names(["rename", "link", "unlink", "rmdir"]);
    expect(both.length).toBe(1);
    const tps = both[0]!.tracepoints!;
    for (const tp of ["renameat", "renameat2", "linkat", "symlinkat", "unlinkat"]) {
      expect(tps).toContain(`syscalls/sys_enter_${tp}`);
    }
    expect(new Set(tps).size).toBe(tps.length);
    // Before the exits it shares events with: an entry attached first keeps what its call was given.
    const order = programsFor(["memfd_create", "rename"]).map((p) => p.name);
    expect(order.indexOf("ds_names_enter")).toBeLessThan(order.indexOf("ds_memfd_create_exit"));
    expect(order.indexOf("ds_names_enter")).toBeLessThan(order.indexOf("ds_rename_exit"));
    expect(names(["exec", "connect"]).length).toBe(0);
  });

  test("privilege_escalation finds an exec's escalation in a tracepoint program of its own, not in the exec program", () => {
    const progs = programsFor(["privilege_escalation"]);
    const names = progs.map((p) => p.name);
    expect(names).not.toContain("ds_exec");
    for (const n of [
      "ds_exec_privesc",
      "ds_execve_enter",
      "ds_execve_exit",
      "ds_setid_enter",
      "ds_setid_exit",
      "ds_emit",
    ]) {
      expect(names).toContain(n);
    }
    expect(progs.find((p) => p.name === "ds_execve_exit")?.tracepoints).toEqual([
      "syscalls/sys_exit_execve",
      "syscalls/sys_exit_execveat",
    ]);
    // The stash is kept at entry: the entry is attached before the exit.
    expect(names.indexOf("ds_execve_enter")).toBeLessThan(names.indexOf("ds_execve_exit"));
  });

  test("the shared load's weights: every program measured, or named as not measured", () => {
    const measured = Object.keys(verifiedInsns);
    expect([...measured, ...notMeasured].sort()).toEqual([...ALL_PROGRAMS].sort());
  });

  test("enum names as the CLI spells them", () => {
    expect(Mode).toEqual({ dual: 0, single: 1, nest3: 2 });
    expect(Transport).toEqual({ perf: 0, ringbuf: 1, "ringbuf-output": 2 });
    expect(() => named({ DS_X_A: 1, OTHER: 2 }, "DS_X_")).toThrow(/OTHER/);
  });
});
