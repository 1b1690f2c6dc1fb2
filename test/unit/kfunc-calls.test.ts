/**
 * The loader's write of bpf_rdonly_cast's id into the built object's calls
 * (src/ebpf/kfunc-calls.ts): every placeholder call, in the programs' sections
 * and in .text's global functions, and not one other byte.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { elfSections, SHF_EXECINSTR } from "../../src/ebpf/elf.ts";
import { setRdonlyCastId } from "../../src/ebpf/kfunc-calls.ts";
import { ds_wire_const } from "../../src/wire/layout.gen.ts";

const OBJ = process.env.DS_BPF_OBJ ?? path.join(import.meta.dir, "../../out/dual_slot.x64.bpf.o");

function object(): Uint8Array {
  if (!existsSync(OBJ)) throw new Error(`${OBJ} is missing: run \`bun run build\` first (CI builds before tests)`);
  return new Uint8Array(readFileSync(OBJ));
}

/** Where each kfunc call instruction (code 0x85, src_reg 2) lies, and its id. */
function kfuncCalls(elf: Uint8Array): Array<{ section: string; at: number; id: number }> {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const calls: Array<{ section: string; at: number; id: number }> = [];
  for (const s of elfSections(elf)) {
    if ((s.flags & SHF_EXECINSTR) === 0) continue;
    for (let i = s.start; i + 8 <= s.end; i += 8)
      if (elf[i] === 0x85 && elf[i + 1]! >> 4 === 2)
        calls.push({ section: s.name, at: i, id: v.getInt32(i + 4, true) });
  }
  return calls;
}

describe("bpf_rdonly_cast's id written into the object", () => {
  test("every call gets the id, in program sections and .text alike, and no other byte changes", () => {
    const image = object();
    const before = kfuncCalls(image);
    expect(before.length).toBeGreaterThan(100);
    expect(before.every((c) => c.id === ds_wire_const.DS_KFUNC_RDONLY_CAST)).toBe(true);
    expect(before.some((c) => c.section === ".text")).toBe(true);
    expect(before.some((c) => c.section.startsWith("raw_tracepoint/"))).toBe(true);

    const original = Uint8Array.from(image);
    setRdonlyCastId(image, 64919);
    const after = kfuncCalls(image);
    expect(after.map((c) => c.at)).toEqual(before.map((c) => c.at));
    expect(after.every((c) => c.id === 64919)).toBe(true);
    const changed: number[] = [];
    for (let i = 0; i < image.length; i++) if (image[i] !== original[i]) changed.push(i);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((i) => before.some((c) => i >= c.at + 4 && i < c.at + 8))).toBe(true);

    // Set again (a load retried, another load from the same image): the calls are remembered.
    // 0 where the kernel has no such kfunc: the verifier prunes an id-0 call, as an unresolved weak one.
    setRdonlyCastId(image, 0);
    expect(kfuncCalls(image).every((c) => c.id === 0)).toBe(true);
    expect(kfuncCalls(image).map((c) => c.at)).toEqual(before.map((c) => c.at));
  });

  test("refuses what is not this build's object, and ids that are not BTF ids", () => {
    const image = object();
    expect(() => setRdonlyCastId(new Uint8Array(16), 1)).toThrow(/not a little-endian ELF64/);
    expect(() => setRdonlyCastId(image.subarray(0, 4096), 1)).toThrow(/outside/);
    // A copy of an object whose calls were already written (or another build's) has none to write.
    const written = Uint8Array.from(image);
    setRdonlyCastId(written, 7);
    expect(() => setRdonlyCastId(Uint8Array.from(written), 1)).toThrow(/no bpf_rdonly_cast call/);
    expect(() => setRdonlyCastId(image, -1)).toThrow(/not a BTF id/);
    expect(() => setRdonlyCastId(image, 2 ** 31)).toThrow(/not a BTF id/);
  });
});
