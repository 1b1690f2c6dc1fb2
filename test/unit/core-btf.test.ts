/**
 * The cut of a kernel's BTF (src/ebpf/core-btf.ts) on hand-built BTF, on the
 * running kernel's, and on damaged input; and its cache
 * (src/ebpf/core-btf-cache.ts). test/kernel/core-btf.test.ts checks that
 * libbpf relocates the real object the same way with the cut as without it.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { BtfFormatError, kernelTypes, readKernelBtf, withKernelBtf } from "../../src/ebpf/core-btf.ts";
import {
  cachedKernelTypes,
  cacheKey,
  formatEntry,
  parseEntry,
  readCut,
  writeCut,
} from "../../src/ebpf/core-btf-cache.ts";
import { coreRoots } from "../../src/wire/layout.gen.ts";

/** Builds raw BTF: each type is [name, kind, vlen, sizeOrType, ...extra words]; names are added to the string table. */
function btf(types: Array<[string, number, number, number, ...Array<number | string>]>, kflag = false): Uint8Array {
  const strs: string[] = [""];
  const offsets = new Map<string, number>([["", 0]]);
  let strSize = 1;
  const str = (s: string) => {
    let o = offsets.get(s);
    if (o === undefined) {
      o = strSize;
      offsets.set(s, o);
      strs.push(s);
      strSize += Buffer.byteLength(s) + 1;
    }
    return o;
  };
  const words: number[] = [];
  for (const [name, kind, vlen, sizeOrType, ...extra] of types) {
    words.push(str(name), ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType);
    for (const x of extra) words.push(typeof x === "string" ? str(x) : x);
  }
  const strBytes = Buffer.from(`${strs.join("\0")}\0`);
  const out = new Uint8Array(24 + words.length * 4 + strBytes.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0xeb9f, true);
  out[2] = 1;
  v.setUint32(4, 24, true);
  v.setUint32(12, words.length * 4, true);
  v.setUint32(16, words.length * 4, true);
  v.setUint32(20, strBytes.length, true);
  for (const [i, w] of words.entries()) v.setUint32(24 + i * 4, w >>> 0, true);
  out.set(strBytes, 24 + words.length * 4);
  return out;
}

const INT = 1;
const PTR = 2;
const ARRAY = 3;
const STRUCT = 4;
const ENUM = 6;
const TYPEDEF = 8;
const FUNC = 12;
const FUNC_PROTO = 13;

/** Each type record's kind and size-or-type word (kinds this file builds only). */
function records(raw: Uint8Array): Array<{ kind: number; sizeOrType: number }> {
  const v = new DataView(raw.buffer, raw.byteOffset);
  const end = 24 + v.getUint32(12, true);
  const out: Array<{ kind: number; sizeOrType: number }> = [];
  for (let p = 24; p < end; ) {
    const info = v.getUint32(p + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    out.push({ kind, sizeOrType: v.getUint32(p + 8, true) });
    p += 12 + (kind === INT ? 4 : kind === ARRAY ? 12 : 0);
    p += kind === STRUCT ? 12 * vlen : kind === ENUM || kind === FUNC_PROTO ? 8 * vlen : 0;
  }
  return out;
}

/** A small kernel: task_struct (and a flavoured twin) embedding a typedef'd int, an array and an enum; a pointer to mm_struct. */
function smallKernel(): Uint8Array {
  return btf([
    ["int", INT, 0, 4, 0x01000020], // 1: signed 32-bit
    ["pid_t", TYPEDEF, 0, 1], // 2
    ["mm_struct", STRUCT, 1, 8, "users", 1, 0], // 3
    ["", PTR, 0, 3], // 4: mm_struct *
    ["char", INT, 0, 1, 0x00000008], // 5
    ["", ARRAY, 0, 0, 5, 1, 16], // 6: char[16]
    ["state", ENUM, 2, 4, "RUNNING", 0, "DEAD", 1], // 7
    ["task_struct", STRUCT, 4, 40, "pid", 2, 0, "mm", 4, 64, "comm", 6, 128, "st", 7, 256], // 8
    ["task_struct___v2", STRUCT, 1, 4, "pid", 2, 0], // 9: a flavour libbpf also takes as a candidate
    ["task_structure", STRUCT, 1, 4, "pid", 2, 0], // 10: only the same prefix
    ["", FUNC_PROTO, 1, 4, "p", 4], // 11
    ["bpf_rdonly_cast", FUNC, 0, 11], // 12
    ["unrelated", STRUCT, 1, 4, "x", 1, 0], // 13
  ]);
}

describe("kernelTypes", () => {
  test("keeps the candidates and what they embed, with pointers to void, and finds ids and functions", () => {
    const k = kernelTypes(
      smallKernel(),
      [{ kind: "STRUCT", name: "task_struct" }],
      ["mm_struct", "nope"],
      ["bpf_rdonly_cast", "bpf_obj_new"],
    );
    expect(k.total).toBe(13);
    expect(k.ids).toEqual(new Map([["mm_struct", 3]]));
    expect(k.funcs).toEqual(new Map([["bpf_rdonly_cast", 12]]));
    // task_struct, its four members' types (typedef -> int, ptr, array -> char + index int, enum), and the flavour.
    const again = kernelTypes(
      k.btf,
      [{ kind: "STRUCT", name: "task_struct" }],
      ["task_struct", "task_struct___v2", "mm_struct"],
    );
    expect(again.ids.get("task_struct")).toBe(1);
    expect(again.ids.has("task_struct___v2")).toBe(true);
    expect(again.ids.has("mm_struct")).toBe(false); // behind a pointer: not kept
    expect(k.kept).toBe(8); // task_struct, pid_t, int, ptr, array, char, enum, task_struct___v2
    // A second cut of the cut is the same bytes: the same candidates, met in the same order.
    expect(Buffer.from(again.btf).equals(Buffer.from(k.btf))).toBe(true);
    // The one pointer in the cut points at void.
    const pointers = records(k.btf).filter((r) => r.kind === PTR);
    expect(pointers.map((r) => r.sizeOrType)).toEqual([0]);
  });

  test("an enum root keeps the enum; a root of a kind CO-RE does not look up is refused", () => {
    const k = kernelTypes(smallKernel(), [{ kind: "ENUM", name: "state" }]);
    expect(k.kept).toBe(1);
    expect(k.unmatched).toEqual([]);
    expect(() => kernelTypes(smallKernel(), [{ kind: "FUNC", name: "bpf_rdonly_cast" }])).toThrow(/not supported/);
  });

  test("the running kernel's BTF: every root of the object is kept, and a cut of the cut is the cut", () => {
    let raw: Uint8Array;
    try {
      raw = readKernelBtf();
    } catch (e) {
      // Every kernel the agent supports has it (preflight requires it); a host without it cannot run the suite.
      throw new Error(`/sys/kernel/btf/vmlinux: ${String(e)}`);
    }
    const k = kernelTypes(raw, coreRoots, ["task_struct", "cred", "file"]);
    expect(k.total).toBeGreaterThan(10_000);
    expect(k.kept).toBeLessThan(k.total / 10);
    // The same cut from the BTF mapped (6.16+; read elsewhere), read after the mapping is gone: a copy.
    const mapped = withKernelBtf((b) => kernelTypes(b, coreRoots, ["task_struct", "cred", "file"]));
    expect(Buffer.from(mapped.btf).equals(Buffer.from(k.btf))).toBe(true);
    expect(mapped.ids).toEqual(k.ids);
    const again = kernelTypes(
      k.btf,
      coreRoots,
      coreRoots.map((r) => r.name),
    );
    for (const r of coreRoots) expect(again.ids.has(r.name)).toBe(true);
    expect(Buffer.from(again.btf).equals(Buffer.from(k.btf))).toBe(true);
  });

  test("damaged BTF is a BtfFormatError, never another exception or a hang (fuzzed)", () => {
    const base = smallKernel();
    const roots = [
      { kind: "STRUCT", name: "task_struct" },
      { kind: "ENUM", name: "state" },
    ];
    let seed = 0x2545f491;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = base.slice(0, i % 7 === 0 ? rand(base.length) : base.length);
      for (let j = 1 + rand(4); j > 0; j--) if (b.length > 0) b[rand(b.length)] = rand(256);
      try {
        const k = kernelTypes(b, roots, ["task_struct"], ["bpf_rdonly_cast"]);
        expect(k.btf.length).toBeGreaterThanOrEqual(24);
      } catch (e) {
        if (!(e instanceof BtfFormatError)) throw new Error(`case ${i}: ${String(e)}`);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
    expect(() => kernelTypes(new Uint8Array(10), roots)).toThrow(BtfFormatError);
  });
});

test("roots the kernel has no type for are named (libbpf would look in the modules' BTF for them)", () => {
  const k = kernelTypes(smallKernel(), [
    { kind: "STRUCT", name: "task_struct" },
    { kind: "STRUCT", name: "nf_conn" },
    { kind: "STRUCT", name: "state" }, // an enum of that name is not a struct
  ]);
  expect(k.unmatched).toEqual(["nf_conn", "state"]);
});

test("a one-letter root finds its flavours too, as libbpf's essential names do", () => {
  const raw = btf([
    ["int", INT, 0, 4, 0x01000020],
    ["q___v1", STRUCT, 1, 4, "x", 1, 0],
    ["q", STRUCT, 1, 4, "x", 1, 0],
  ]);
  const k = kernelTypes(raw, [{ kind: "STRUCT", name: "q" }]);
  expect(records(k.btf).filter((r) => r.kind === STRUCT)).toHaveLength(2);
});

describe("the cut's cache", () => {
  const request = {
    roots: [{ kind: "STRUCT", name: "task_struct" }],
    structs: ["mm_struct"],
    funcs: ["bpf_rdonly_cast"],
  };
  const cut = () => kernelTypes(smallKernel(), request.roots, request.structs, request.funcs);

  test("an entry reads back as written, and only for its own key", () => {
    const entry = formatEntry(cut(), "k1");
    const back = parseEntry(entry, "k1");
    expect(back).not.toBeNull();
    expect(Buffer.from(back!.btf).equals(Buffer.from(cut().btf))).toBe(true);
    expect(back!.ids).toEqual(new Map([["mm_struct", 3]]));
    expect(back!.funcs).toEqual(new Map([["bpf_rdonly_cast", 12]]));
    expect(parseEntry(entry, "k2")).toBeNull();
    expect(parseEntry(entry.subarray(0, entry.length - 1), "k1")).toBeNull();
    expect(parseEntry(new TextEncoder().encode("{}\n"), "k1")).toBeNull();
    expect(parseEntry(new Uint8Array([0xff, 0x0a]), "k1")).toBeNull();
  });

  test("the key changes with the request, the boot and the kernel's BTF", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ds-key-"));
    try {
      const boot = path.join(dir, "boot_id");
      const kbtf = path.join(dir, "vmlinux");
      writeFileSync(boot, "a\n");
      writeFileSync(kbtf, smallKernel());
      const k = cacheKey(request, kbtf, boot);
      expect(cacheKey(request, kbtf, boot)).toBe(k);
      expect(cacheKey(request, kbtf, boot, "another build")).not.toBe(k);
      expect(cacheKey({ ...request, funcs: [] }, kbtf, boot)).not.toBe(k);
      writeFileSync(boot, "b\n");
      expect(cacheKey(request, kbtf, boot)).not.toBe(k);
      writeFileSync(boot, "a\n");
      // Within one boot the kernel's BTF cannot change; its size and header are checked all the same.
      writeFileSync(kbtf, btf([["int", INT, 0, 4, 0x01000020]]));
      expect(cacheKey(request, kbtf, boot)).not.toBe(k);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("written once, read after; an entry others may write is not used", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ds-cache-"));
    const cache = path.join(dir, "cache");
    try {
      writeCut(cut(), "key-1", cache);
      const [name] = readdirSync(cache);
      expect(name).toBe("core-btf-key-1");
      expect(readCut("key-1", cache)).not.toBeNull();
      expect(readCut("key-2", cache)).toBeNull();
      chmodSync(path.join(cache, name!), 0o622);
      expect(readCut("key-1", cache)).toBeNull();
      // A directory others may write in: neither read nor written.
      chmodSync(path.join(cache, name!), 0o600);
      chmodSync(cache, 0o777);
      expect(readCut("key-1", cache)).toBeNull();
      writeCut(cut(), "key-3", cache);
      expect(existsSync(path.join(cache, "core-btf-key-3"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the running kernel's cut: made on the first call, read from the cache on the next", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ds-run-"));
    try {
      const request = { roots: coreRoots, structs: ["task_struct"], funcs: [] };
      const first = cachedKernelTypes(request, dir);
      expect(readdirSync(dir)).toHaveLength(1);
      // What the next call finds: this boot's entry, for this request and this build.
      expect(readCut(cacheKey(request), dir)).not.toBeNull();
      const second = cachedKernelTypes(request, dir);
      expect(Buffer.from(second.btf).equals(Buffer.from(first.btf))).toBe(true);
      expect(second.ids).toEqual(first.ids);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
