/**
 * How many instructions each program takes to the verifier: its own and
 * those of every function it calls or hands to bpf_loop, each once, as libbpf
 * appends them at load. Before the load libbpf counts a program's own only
 * (bpf_program__insn_cnt: 87 for ds_exec, which carries 7,280), too little to
 * share a load out by (src/ebpf/shared-load.ts). Computed at build time into
 * the generated layout (programInsns): at run time the walk would cost a start
 * 8-16 ms. Read from the object as libbpf reads
 * it: a call's target is its relocation's symbol plus imm + 1 instructions, a
 * bpf_loop callback's its symbol plus imm bytes, an unrelocated call's its
 * own place plus imm + 1.
 */
import {
  type ElfSection,
  type ElfSymbol,
  elfRelocations,
  elfSections,
  elfSymbols,
  SHF_EXECINSTR,
  SHT_REL,
  STT_FUNC,
} from "../src/ebpf/elf.ts";

const INSN = 8;
const CALL = 0x85;
const LD_IMM64 = 0x18;
const PSEUDO_CALL = 1;

/** Every program's instruction count, subprograms included: the functions outside .text. */
export function programSizes(elf: Uint8Array): Map<string, number> {
  const sections = elfSections(elf);
  const symbols = elfSymbols(elf, sections);
  const funcs = symbols.filter((s) => s.type === STT_FUNC && s.size > 0);
  const names = funcs
    .filter((f) => sections[f.section] !== undefined && (sections[f.section]!.flags & SHF_EXECINSTR) !== 0)
    .filter((f) => sections[f.section]!.name !== ".text")
    .map((f) => f.name)
    .sort();
  const relocs = new Map<number, Map<number, ElfSymbol>>();
  for (const rel of sections.filter((s) => s.type === SHT_REL)) {
    const at = new Map<number, ElfSymbol>();
    for (const r of elfRelocations(elf, rel)) {
      const sym = symbols[r.symbol];
      if (sym !== undefined) at.set(r.offset, sym);
    }
    relocs.set(rel.info, at);
  }
  const funcAt = (section: number, off: number) =>
    funcs.find((f) => f.section === section && off >= f.value && off < f.value + f.size);
  // What each function calls or hands to bpf_loop, read once however many programs share it.
  const callees = new Map<ElfSymbol, ElfSymbol[]>();
  const calleesOf = (f: ElfSymbol): ElfSymbol[] => {
    const known = callees.get(f);
    if (known !== undefined) return known;
    const out: ElfSymbol[] = [];
    callees.set(f, out);
    const sec: ElfSection | undefined = sections[f.section];
    if (sec === undefined || sec.start + f.value + f.size > sec.end) return out;
    const at = relocs.get(f.section);
    const v = new DataView(elf.buffer, elf.byteOffset + sec.start, sec.end - sec.start);
    for (let off = f.value; off + INSN <= f.value + f.size; off += INSN) {
      const code = v.getUint8(off);
      const call = code === CALL && v.getUint8(off + 1) >> 4 === PSEUDO_CALL;
      const sym = at?.get(off);
      // A function's address (bpf_loop's callback) is an ld_imm64 relocated against code; libbpf marks it
      // BPF_PSEUDO_FUNC itself. Other ld_imm64 relocations name maps, where no function lies.
      if (!call && !(code === LD_IMM64 && sym !== undefined)) continue;
      const imm = v.getInt32(off + 4, true);
      const target =
        sym === undefined
          ? funcAt(f.section, off + (imm + 1) * INSN)
          : funcAt(sym.section, call ? sym.value + (imm + 1) * INSN : sym.value + imm);
      if (target !== undefined) out.push(target);
    }
    return out;
  };
  const sizes = new Map<string, number>();
  for (const name of names) {
    const main = funcs.find((f) => f.name === name);
    if (main === undefined) continue;
    const seen = new Set<ElfSymbol>([main]);
    const todo = [main];
    for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
      for (const c of calleesOf(f)) {
        if (seen.has(c)) continue;
        seen.add(c);
        todo.push(c);
      }
    }
    sizes.set(
      name,
      [...seen].reduce((n, f) => n + f.size / INSN, 0),
    );
  }
  return sizes;
}
